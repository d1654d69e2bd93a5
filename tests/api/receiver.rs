//! An HTTP receiver on 127.0.0.1 whose answers a test can switch: status, delay, Retry-After,
//! a number of failures before it recovers. It records every request it gets.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
pub struct Control {
    status: AtomicU16,
    delay_ms: AtomicU64,
    fail_next: AtomicUsize,
    retry_after: Mutex<Option<String>>,
    requests: Mutex<Vec<Received>>,
}

pub struct Receiver {
    pub url: String,
    pub control: Arc<Control>,
}

async fn handle(req: HttpRequest, body: web::Bytes, c: web::Data<Arc<Control>>) -> HttpResponse {
    let delay = c.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let failing = c
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing {
        500
    } else {
        c.status.load(Ordering::SeqCst)
    };
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    c.requests.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at: Instant::now(),
        status,
    });
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    if let Some(ra) = c.retry_after.lock().unwrap().clone() {
        res.insert_header(("retry-after", ra));
    }
    if (300..400).contains(&status) {
        res.insert_header(("location", "/elsewhere"));
    }
    res.body(format!("receiver answered {status}"))
}

impl Receiver {
    pub async fn start() -> Receiver {
        let control = Arc::new(Control::default());
        control.status.store(200, Ordering::SeqCst);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let data = web::Data::new(control.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(handle))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            control,
        }
    }

    pub fn set_status(&self, status: u16) {
        self.control.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.control
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn fail_next(&self, n: usize) {
        self.control.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn set_retry_after(&self, v: Option<&str>) {
        *self.control.retry_after.lock().unwrap() = v.map(str::to_owned);
    }

    pub fn received(&self) -> Vec<Received> {
        self.control.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests arrived (bounded).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

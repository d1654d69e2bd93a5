//! The database going away: while it refuses, the API and the webhook URLs answer 503
//! `database_unavailable` with `Retry-After` within seconds (never a 500, never a hang); what
//! was acknowledged before is delivered once it is back.
//!
//! PostgreSQL is reached through a TCP relay on 127.0.0.1 that the test cuts (every connection
//! dropped, new ones refused) and restores; SQLite is made unavailable the way it can be, by
//! another process holding its write lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::delivery::{delivery_settings, setup_with, Setup};
use crate::receiver::Receiver;
use crate::webhooks::{vectorcare_event, VECTORCARE_PRIVATE_PEM};

/// A TCP relay to PostgreSQL that can be cut and restored.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    // Down: the connection is closed at once, as by a server that is not there.
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Relay { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn webhook(s: &Setup, n: u64) -> reqwest::Response {
    let body = vectorcare_event(
        &format!("01JQ{n:022}"),
        &format!("VC-OUTAGE{n}"),
        "ASSIGNED",
        "REQUEST_DATA_UPDATED",
    );
    s.app
        .post_vectorcare("/webhooks/vectorcare/acme", &body, VECTORCARE_PRIVATE_PEM)
        .await
}

/// Sends `count` webhooks at once; returns the acknowledged event ids.
async fn acknowledged(s: &Setup, from: u64, count: u64) -> Vec<String> {
    let answers = futures_util::future::join_all((from..from + count).map(|n| webhook(s, n))).await;
    let mut ids = Vec::new();
    for res in answers {
        assert_eq!(res.status().as_u16(), 200);
        let v: Value = res.json().await.unwrap();
        ids.push(v["event_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// While the database is away: webhooks and the API answer 503 `database_unavailable` with
/// `Retry-After`, each within a few seconds.
async fn refused_while_away(s: &Setup, from: u64, api_too: bool) {
    let started = Instant::now();
    let answers = futures_util::future::join_all((from..from + 5).map(|n| webhook(s, n))).await;
    for res in answers {
        let retry_after = res.headers().contains_key("retry-after");
        let body = crate::helpers::assert_problem(res, 503, "database_unavailable").await;
        assert!(retry_after, "{body}");
    }
    if api_too {
        let res = s.app.get_as("/api/v1/tenants?limit=5", &s.admin).await;
        assert!(res.headers().contains_key("retry-after"));
        crate::helpers::assert_problem(res, 503, "database_unavailable").await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(8), "answered in {took:?}");
}

async fn delivered_within(rx: &Receiver, expected: &[String], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let got: std::collections::HashSet<String> = rx
            .received()
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let missing: Vec<&String> = expected.iter().filter(|id| !got.contains(*id)).collect();
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} acknowledged events not delivered within {limit:?}",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn outage_settings(c: &mut gateway::config::RawSettings) {
    delivery_settings(c);
    c.delivery_enabled = true;
    c.delivery_poll_interval = "200ms".into();
    c.delivery_timeout = "5s".into();
    c.delivery_lease = "40s".into();
}

#[tokio::test]
async fn postgresql_going_away_answers_503_and_every_acknowledged_event_is_delivered_when_it_returns(
) {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("PostgreSQL only (TEST_DATABASE_URL); the SQLite case has its own test");
        return;
    };
    let server = url::Url::parse(&admin_url).unwrap();
    let target = format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port().unwrap_or(5432)
    );
    let relay = Relay::start(target).await;
    let port = relay.port;
    let s = setup_with(move |c| {
        outage_settings(c);
        let mut url = url::Url::parse(c.database_url.as_deref().unwrap()).unwrap();
        url.set_port(Some(port)).unwrap();
        c.database_url = Some(url.to_string());
    })
    .await;
    let rx = Receiver::start().await;
    // Deliveries are still in flight when the database goes away.
    rx.set_delay(Duration::from_millis(1500));
    s.endpoint(&rx.url, json!({})).await;
    let before = acknowledged(&s, 0, 20).await;

    relay.down();
    refused_while_away(&s, 100, true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    relay.up();

    rx.set_delay(Duration::ZERO);
    delivered_within(&rx, &before, Duration::from_secs(30)).await;
    // And the gateway takes webhooks again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let res = webhook(&s, 200).await;
        if res.status().as_u16() == 200 || Instant::now() > deadline {
            break res;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after.status().as_u16(), 200);
}

#[tokio::test]
async fn sqlite_locked_by_another_process_answers_503_and_every_acknowledged_event_is_delivered_after(
) {
    let s = setup_with(outage_settings).await;
    if s.app.database.is_postgres() {
        eprintln!("SQLite only; PostgreSQL has its own test");
        return;
    }
    let rx = Receiver::start().await;
    rx.set_delay(Duration::from_millis(1500));
    s.endpoint(&rx.url, json!({})).await;
    let before = acknowledged(&s, 0, 20).await;

    // Another process takes the database's write lock and keeps it.
    let file = s
        .app
        .database
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (locked, is_locked) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked.send(()).unwrap();
        let _ = held.recv();
        conn.execute_batch("COMMIT").unwrap();
    });
    is_locked.recv().unwrap();
    refused_while_away(&s, 100, false).await;
    release.send(()).unwrap();
    holder.join().unwrap();

    rx.set_delay(Duration::ZERO);
    delivered_within(&rx, &before, Duration::from_secs(30)).await;
    assert_eq!(webhook(&s, 200).await.status().as_u16(), 200);
}

//! `gateway bench`: a load test anyone can run on one machine. It starts a gateway process on a
//! fresh database, onboards tenants whose endpoints point at a built-in sink on 127.0.0.1, sends
//! signed VectorCare and Vital webhooks at a chosen concurrency, waits for every delivery, and
//! reports throughput, latency, the gateway's peak memory, and any lost or duplicated delivery.
//! With `--purgeable N` the purger works through N expired events meanwhile (`seed`).

mod seed;
mod sink;

use sink::{sink_handler, Sink};

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::crypto::MasterKey;
use crate::domain::SigningSecret;
use crate::providers::vectorcare::simulate::sign as sign_vectorcare;
use crate::providers::vital::simulate::sign as sign_vital;

const PRIVATE_PEM: &str = include_str!("../../tests/fixtures/keys/vectorcare_private.pem");
const PUBLIC_PEM: &str = include_str!("../../tests/fixtures/keys/vectorcare_public.pem");
const VITAL_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const BLS: &str = include_str!("../../tests/fixtures/vectorcare/bls_broadcast_received.json");
const ORDER: &str =
    include_str!("../../tests/fixtures/vital/order_appointment_scheduled_bare.json");

#[derive(Debug, Clone)]
pub struct Options {
    pub events: usize,
    pub concurrency: usize,
    pub fanout: usize,
    pub tenants: usize,
    /// PostgreSQL server URL to create a throw-away database on; SQLite when `None`.
    pub database_url: Option<String>,
    pub wait: Duration,
    /// Extra gateway settings, as (key, value): `sqlite_synchronous=normal` → `GATEWAY_SQLITE_SYNCHRONOUS`.
    pub set: Vec<(String, String)>,
    /// Open-loop pacing: send this many webhooks per second (closed loop at `concurrency` when `None`).
    pub rate: Option<f64>,
    /// Expired events stored before the timed phase, for the purger to work through during it.
    pub purgeable: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: String,
    /// Offered load in webhooks per second; `null` for a closed loop.
    pub rate: Option<f64>,
    pub events: usize,
    pub fanout: usize,
    pub concurrency: usize,
    pub ingest_per_second: f64,
    pub deliveries_per_second: f64,
    pub ack_ms_p50: f64,
    pub ack_ms_p99: f64,
    pub ack_ms_max: f64,
    pub end_to_end_ms_p50: f64,
    pub end_to_end_ms_p99: f64,
    pub gateway_peak_rss_mb: f64,
    pub errors: usize,
    pub lost: usize,
    pub duplicated: usize,
    pub cores: usize,
    /// Expired events stored before the timed phase (`--purgeable`).
    pub purgeable: usize,
    /// How many of them the purger had purged when the last delivery arrived.
    pub purged_during_run: u64,
}

async fn send(
    client: &reqwest::Client,
    p: &Prepared,
    errors: &std::sync::atomic::AtomicUsize,
) -> Option<(String, Instant, Duration)> {
    #[derive(serde::Deserialize)]
    struct Ack {
        event_id: String,
    }
    let sent = Instant::now();
    let mut req = client.post(&p.url).body(p.body.clone());
    for (k, v) in &p.headers {
        req = req.header(*k, v);
    }
    let failed = match req.send().await {
        Ok(res) if res.status().is_success() => {
            let took = sent.elapsed();
            match res.json::<Ack>().await {
                Ok(ack) => return Some((ack.event_id, sent, took)),
                Err(e) => format!("unreadable acknowledgement: {e}"),
            }
        }
        Ok(res) => format!("answered {}", res.status()),
        Err(e) => format!("failed: {e}"),
    };
    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // What failed, for whoever reads the run (never the body: it is patient data).
    eprintln!("bench: webhook {failed}");
    None
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Gateway {
    child: Child,
    base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_command(
    dir: &std::path::Path,
    database_url: &Option<String>,
    key: &str,
    set: &[(String, String)],
) -> anyhow::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe().context("locating the gateway binary")?);
    cmd.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("GATEWAY_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.env("GATEWAY_MASTER_KEY", key)
        .env("GATEWAY_LOG_FORMAT", "json")
        .env("GATEWAY_LOG", "warn,gateway::app=info")
        .env("GATEWAY_ALLOW_HTTP_ENDPOINTS", "true")
        .env("GATEWAY_SSRF_ALLOWLIST", "127.0.0.1/32")
        .env("GATEWAY_INGEST_RATE_LIMIT_PER_SECOND", "1000000")
        .env("GATEWAY_INGEST_RATE_LIMIT_BURST", "1000000")
        .env("GATEWAY_ADMIN_RATE_LIMIT_BURST", "100000");
    for (k, v) in set {
        cmd.env(crate::config::env_name(k), v);
    }
    Ok(cmd)
}

fn start_gateway(
    dir: &std::path::Path,
    database_url: &Option<String>,
    key: &str,
    set: &[(String, String)],
) -> anyhow::Result<Gateway> {
    let mut child = gateway_command(dir, database_url, key, set)?
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting the gateway")?;
    let stdout = child.stdout.take().context("gateway stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v["fields"]["message"] == "listening" {
                    let _ = tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_owned());
                } else if v["level"] == "ERROR" || v["level"] == "WARN" {
                    // The gateway's own errors and warnings explain a failed run (a 503, say);
                    // they are shown as they come.
                    eprintln!("gateway: {line}");
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .context("the gateway did not start")?;
    Ok(Gateway {
        child,
        base: format!("http://{addr}"),
    })
}

/// Signed requests, prepared before the clock starts: signing is the provider's cost, not ours.
struct Prepared {
    url: String,
    body: web::Bytes,
    headers: Vec<(&'static str, String)>,
}

fn prepare(opts: &Options, base: &str) -> anyhow::Result<Vec<Prepared>> {
    let bls: Value = serde_json::from_str(BLS)?;
    let order: Value = serde_json::from_str(ORDER)?;
    let secret = SigningSecret::parse(VITAL_SECRET).map_err(|e| anyhow::anyhow!(e))?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let mut out = Vec::with_capacity(opts.events);
    for i in 0..opts.events {
        let tenant = format!("bench-{}", i % opts.tenants);
        if i % 2 == 0 {
            let mut b = bls.clone();
            b["event_id"] = json!(format!("{run}{i:010}"));
            b["service_request_id"] = json!(format!("VC-B{i}"));
            b["action"] = json!("BROADCAST_RECEIVED");
            let body = serde_json::to_vec(&b)?;
            let sig = sign_vectorcare(PRIVATE_PEM, &body).map_err(|e| anyhow::anyhow!(e))?;
            out.push(Prepared {
                url: format!("{base}/webhooks/vectorcare/{tenant}"),
                body: body.into(),
                headers: vec![("x-vectorcare-signature", sig)],
            });
        } else {
            let mut o = order.clone();
            o["id"] = json!(format!("order-{run}-{i}"));
            o["notes"] = json!("x".repeat(600));
            let body = serde_json::to_vec(
                &json!({"event_type": "labtest.order.updated", "data": o, "team_id": "bench"}),
            )?;
            let (id, ts, sig) = sign_vital(&secret, &body);
            out.push(Prepared {
                url: format!("{base}/webhooks/vital/{tenant}"),
                body: body.into(),
                headers: vec![
                    ("svix-id", id),
                    ("svix-timestamp", ts.to_string()),
                    ("svix-signature", sig),
                ],
            });
        }
    }
    Ok(out)
}

pub async fn run(opts: Options) -> anyhow::Result<Report> {
    let dir = tempfile_dir()?;
    let key = MasterKey::generate().to_base64();
    let (database_url, cleanup) = match &opts.database_url {
        Some(admin) => {
            let name = format!("gw_bench_{}", uuid::Uuid::new_v4().simple());
            let conn = sea_orm::Database::connect(admin)
                .await
                .context("connecting to --database-url")?;
            sea_orm::ConnectionTrait::execute_unprepared(
                &conn,
                &format!("CREATE DATABASE \"{name}\""),
            )
            .await?;
            let mut url = url::Url::parse(admin)?;
            url.set_path(&name);
            (Some(url.to_string()), Some((conn, name)))
        }
        None => (None, None),
    };
    let result = run_on(&opts, &dir, &database_url, &key).await;
    if let Some((conn, name)) = cleanup {
        let _ = sea_orm::ConnectionTrait::execute_unprepared(
            &conn,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("gateway-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn run_on(
    opts: &Options,
    dir: &std::path::Path,
    database_url: &Option<String>,
    key: &str,
) -> anyhow::Result<Report> {
    // The sink: answers 204 at once and records what arrived.
    let sink = Arc::new(Sink::default());
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let sink_url = format!("http://{}/sink", listener.local_addr()?);
    let data = web::Data::new(sink.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(sink_handler))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let sink_handle = server.handle();
    tokio::spawn(server);

    let mut set = opts.set.clone();
    if opts.purgeable > 0 && !set.iter().any(|(k, _)| k == "purge_interval") {
        set.push(("purge_interval".into(), "1s".into()));
    }
    let opts = &Options {
        set,
        ..opts.clone()
    };
    let gw = start_gateway(dir, database_url, key, &opts.set)?;
    let out = gateway_command(dir, database_url, key, &opts.set)?
        .args(["token", "create", "--role", "admin", "--name", "bench"])
        .output()?;
    if !out.status.success() {
        bail!(
            "token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = String::from_utf8(out.stdout)?.trim().to_owned();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency)
        .build()?;
    let api = format!("{}/api/v1", gw.base);
    for t in 0..opts.tenants {
        let slug = format!("bench-{t}");
        let calls = [
            (
                reqwest::Method::POST,
                "/tenants".to_owned(),
                json!({"slug": slug, "name": slug}),
            ),
            (
                reqwest::Method::PUT,
                format!("/tenants/{slug}/providers/vectorcare"),
                json!({"public_keys": [PUBLIC_PEM]}),
            ),
            (
                reqwest::Method::PUT,
                format!("/tenants/{slug}/providers/vital"),
                json!({"signing_secrets": [VITAL_SECRET]}),
            ),
        ];
        for (method, path, body) in calls {
            let res = client
                .request(method, format!("{api}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("onboarding {path}: {}", res.status());
            }
        }
        for _ in 0..opts.fanout {
            let res = client
                .post(format!("{api}/tenants/{slug}/endpoints"))
                .bearer_auth(&token)
                .json(&json!({"url": sink_url}))
                .send()
                .await?;
            if !res.status().is_success() {
                bail!("creating an endpoint: {}", res.status());
            }
        }
    }

    let seeded = if opts.purgeable > 0 {
        let db = seed::connect(dir, database_url).await?;
        seed::insert(&db, "bench-0", opts.purgeable).await?;
        eprintln!(
            "bench: {} expired events stored for the purger",
            opts.purgeable
        );
        Some(db)
    } else {
        None
    };
    let prepared = prepare(opts, &gw.base)?;
    // Marks the start of the timed phase for anyone profiling the run (`perf record -a`).
    eprintln!("bench: {} webhooks signed; sending", prepared.len());
    let acks: Arc<Mutex<Vec<(String, Instant, Duration)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(opts.events)));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let prepared: Arc<Vec<Prepared>> = Arc::new(prepared);
    let started = Instant::now();
    match opts.rate.filter(|r| *r > 0.0) {
        // Open loop: one task per webhook, started on the clock, at most `concurrency` in flight.
        Some(rate) => {
            let slots = Arc::new(Semaphore::new(opts.concurrency));
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            let mut tasks = Vec::with_capacity(prepared.len());
            for i in 0..prepared.len() {
                tick.tick().await;
                let permit = slots.clone().acquire_owned().await?;
                let (client, prepared) = (client.clone(), prepared.clone());
                let (acks, errors) = (acks.clone(), errors.clone());
                tasks.push(tokio::spawn(async move {
                    if let Some(ack) = send(&client, &prepared[i], &errors).await {
                        acks.lock().unwrap_or_else(|p| p.into_inner()).push(ack);
                    }
                    drop(permit);
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        }
        // Closed loop: `concurrency` senders, each sending its next webhook as soon as the last
        // is acknowledged. No task, lock or permit per webhook: the load generator shares the
        // machine's cores with the gateway it measures, so it should take as little as it can.
        None => {
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut senders = Vec::with_capacity(opts.concurrency);
            for _ in 0..opts.concurrency {
                let (client, prepared) = (client.clone(), prepared.clone());
                let (acks, errors, next) = (acks.clone(), errors.clone(), next.clone());
                senders.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(p) = prepared.get(i) else { break };
                        if let Some(ack) = send(&client, p, &errors).await {
                            mine.push(ack);
                        }
                    }
                    acks.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .append(&mut mine);
                }));
            }
            for t in senders {
                let _ = t.await;
            }
        }
    }
    let ingest_elapsed = started.elapsed();
    let acks = std::mem::take(&mut *acks.lock().unwrap_or_else(|p| p.into_inner()));
    let expected = acks.len() * opts.fanout;
    let deadline = Instant::now() + opts.wait;
    loop {
        let n = sink.got.lock().unwrap_or_else(|p| p.into_inner()).len();
        if n >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A little longer, so duplicates would show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = peak_rss_mb(gw.child.id());
    drop(gw);
    sink_handle.stop(false).await;

    let got = sink.got.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let last = got.iter().map(|(_, _, at)| *at).max().unwrap_or(started);
    let mut per_event: HashMap<&str, Vec<Instant>> = HashMap::new();
    let mut wids = HashSet::new();
    let mut duplicated = 0;
    for (id, wid, at) in &got {
        per_event.entry(id.as_str()).or_default().push(*at);
        if !wids.insert(wid.as_str()) {
            duplicated += 1;
        }
    }
    let purged_during_run = match &seeded {
        Some(db) => seed::purged(db).await?,
        None => 0,
    };
    let mut lost = 0;
    let mut e2e = Vec::with_capacity(acks.len());
    for (id, sent, _) in &acks {
        match per_event.get(id.as_str()) {
            Some(times) => {
                lost += opts.fanout.saturating_sub(times.len());
                if let Some(done) = times.iter().max() {
                    e2e.push((*done - *sent).as_secs_f64() * 1000.0);
                }
            }
            None => lost += opts.fanout,
        }
    }
    let mut ack_ms: Vec<f64> = acks
        .iter()
        .map(|(_, _, d)| d.as_secs_f64() * 1000.0)
        .collect();
    ack_ms.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    Ok(Report {
        rate: opts.rate,
        backend: if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
        .to_owned(),
        events: opts.events,
        fanout: opts.fanout,
        concurrency: opts.concurrency,
        ingest_per_second: acks.len() as f64 / ingest_elapsed.as_secs_f64(),
        deliveries_per_second: got.len() as f64 / (last - started).as_secs_f64().max(1e-9),
        ack_ms_p50: percentile(&ack_ms, 0.5),
        ack_ms_p99: percentile(&ack_ms, 0.99),
        ack_ms_max: ack_ms.last().copied().unwrap_or(0.0),
        end_to_end_ms_p50: percentile(&e2e, 0.5),
        end_to_end_ms_p99: percentile(&e2e, 0.99),
        gateway_peak_rss_mb: rss,
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        lost,
        duplicated,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        purgeable: opts.purgeable,
        purged_during_run,
    })
}

pub fn table(r: &Report) -> String {
    format!(
        "backend {} | events {} | fan-out {} | concurrency {} | rate {} | cores {}\n\
         ingest            {:>10.0} events/s\n\
         deliveries        {:>10.0} deliveries/s\n\
         ack latency       p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms\n\
         end to end        p50 {:.1} ms  p99 {:.1} ms\n\
         gateway peak RSS  {:.1} MB\n\
         errors {}  lost {}  duplicated {}\n\
         purged meanwhile  {} of {} expired events\n",
        r.backend,
        r.events,
        r.fanout,
        r.concurrency,
        r.rate
            .map_or_else(|| "max".to_owned(), |x| format!("{x}/s")),
        r.cores,
        r.ingest_per_second,
        r.deliveries_per_second,
        r.ack_ms_p50,
        r.ack_ms_p99,
        r.ack_ms_max,
        r.end_to_end_ms_p50,
        r.end_to_end_ms_p99,
        r.gateway_peak_rss_mb,
        r.errors,
        r.lost,
        r.duplicated,
        r.purged_during_run,
        r.purgeable
    )
}

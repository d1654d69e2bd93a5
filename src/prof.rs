//! TEMPORARY profiling counters.
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
pub static T: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
pub static N: [AtomicU64; 16] = [const { AtomicU64::new(0) }; 16];
pub const NAMES: [&str; 16] = [
    "gate_wait_ingest",
    "begin",
    "endpoints",
    "events",
    "heads",
    "deliveries",
    "commit",
    "batch_total",
    "outcome_total",
    "claim_total",
    "load_payloads",
    "gate_wait_outcome",
    "gate_wait_claim",
    "outcome_commit",
    "attempts_insert",
    "deliveries_update",
];
pub fn add(i: usize, since: std::time::Instant, n: u64) {
    T[i].fetch_add(since.elapsed().as_micros() as u64, Relaxed);
    N[i].fetch_add(n, Relaxed);
}
pub fn spawn() {
    if std::env::var("PROF").is_err() {
        return;
    }
    std::thread::spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let mut s = String::new();
        for i in 0..16 {
            let t = T[i].swap(0, Relaxed);
            let n = N[i].swap(0, Relaxed);
            if t > 0 {
                s += &format!("{}={}ms/{} ", NAMES[i], t / 1000, n);
            }
        }
        eprintln!("PROF {s}");
    });
}

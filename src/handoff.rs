//! Deliveries handed from the outbox to this process's workers without a round trip through the
//! queue. The outbox leases a new delivery to this worker in the very transaction that stores
//! its event, when a slot is free for it now; after the commit the delivery goes straight to a
//! worker with its payload. The lease is in the database, so if this process dies the delivery
//! is claimed again when the lease expires: the hand-off saves the claim, never the durability.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify};

use crate::delivery::{Capacity, Handed, Reserved};

/// The outbox's side of the hand-off.
#[derive(Clone)]
pub struct Handoff {
    capacity: Arc<Capacity>,
    tx: Option<mpsc::UnboundedSender<Handed>>,
    worker_id: String,
    lease: chrono::Duration,
    wake: Arc<Notify>,
}

impl Handoff {
    /// `enabled` is false when this process does not deliver: nothing is handed off then.
    pub fn new(
        capacity: Arc<Capacity>,
        worker_id: String,
        lease: chrono::Duration,
        enabled: bool,
        wake: Arc<Notify>,
    ) -> (Self, Option<mpsc::UnboundedReceiver<Handed>>) {
        let (tx, rx) = if enabled {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        (
            Self {
                capacity,
                tx,
                worker_id,
                lease,
                wake,
            },
            rx,
        )
    }

    /// A hand-off that hands nothing off: every delivery goes through the queue.
    pub fn disabled(worker_id: String) -> Self {
        Self::new(
            Arc::new(Capacity::new(0, 1)),
            worker_id,
            chrono::Duration::minutes(1),
            false,
            Arc::new(Notify::new()),
        )
        .0
    }

    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// A worker slot for one new delivery, if one is free now (the endpoint's own limit is
    /// applied when it is sent). A FIFO endpoint's deliveries always go through the queue,
    /// which orders them per subject.
    pub fn reserve(&self, fifo_endpoint: bool) -> Option<Reserved> {
        self.tx.as_ref()?;
        if fifo_endpoint {
            return None;
        }
        self.capacity.try_reserve()
    }

    /// The lease a handed-off delivery is stored with.
    pub fn lease_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.lease
    }

    /// Some new deliveries were left in the queue: the workers look.
    pub fn queued(&self) {
        self.capacity.mark_backlog();
        self.wake.notify_one();
    }

    /// After the commit: the deliveries go to the workers.
    pub fn send(&self, handed: Vec<Handed>) {
        let Some(tx) = &self.tx else { return };
        for h in handed {
            // A closed channel means the workers stopped; the lease brings the delivery back.
            let _ = tx.send(h);
        }
    }
}

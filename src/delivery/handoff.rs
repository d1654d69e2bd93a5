//! Deliveries handed from the writer to this process's workers without a round trip through the
//! queue. The writer leases a new delivery to this worker in the very transaction that stores
//! its event, when a slot is free for it now; after the commit the delivery goes straight to a
//! worker with its payload. The lease is in the database, so if this process dies the delivery
//! is claimed again when the lease expires: the hand-off saves the claim, never the durability.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::Claimed;
use crate::domain::EndpointId;
use crate::store::endpoint;

/// How many deliveries this process sends at once, in all and per endpoint.
pub struct Capacity {
    pub(super) slots: Arc<Semaphore>,
    /// The queue may hold due deliveries no worker here has claimed: a worker that finishes
    /// then looks at the queue. Without it, handed-off deliveries alone need no claim at all.
    backlog: AtomicBool,
    endpoint_slots: Mutex<HashMap<EndpointId, (usize, Arc<Semaphore>)>>,
    endpoint_default: usize,
}

impl Capacity {
    pub fn new(concurrency: usize, endpoint_default: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            backlog: AtomicBool::new(true),
            endpoint_slots: Mutex::new(HashMap::new()),
            endpoint_default,
        }
    }

    pub fn mark_backlog(&self) {
        self.backlog.store(true, Ordering::SeqCst);
    }

    /// Called before a claim: whatever is written after it sets the flag again.
    pub(super) fn clear_backlog(&self) {
        self.backlog.store(false, Ordering::SeqCst);
    }

    pub(super) fn has_backlog(&self) -> bool {
        self.backlog.load(Ordering::SeqCst)
    }

    pub(super) fn endpoint_slot(&self, ep: &endpoint::Model) -> Arc<Semaphore> {
        let cap = ep
            .max_concurrency
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or(self.endpoint_default);
        let mut map = self
            .endpoint_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(ep.id.clone())
            .or_insert_with(|| (cap, Arc::new(Semaphore::new(cap))));
        if entry.0 != cap {
            *entry = (cap, Arc::new(Semaphore::new(cap)));
        }
        entry.1.clone()
    }
}

/// A delivery leased at insert time, with the slot it will be sent in.
pub struct Handed {
    pub claimed: Claimed,
    pub(super) slot: OwnedSemaphorePermit,
}

/// The writer's side of the hand-off.
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
        let slot = self.capacity.slots.clone().try_acquire_owned().ok()?;
        Some(Reserved { slot })
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

/// A slot taken for a delivery not yet committed; dropped (and freed) if the commit fails.
pub struct Reserved {
    slot: OwnedSemaphorePermit,
}

impl Reserved {
    pub fn with(self, claimed: Claimed) -> Handed {
        Handed {
            claimed,
            slot: self.slot,
        }
    }
}

//! How many deliveries this process sends at once, in all and per endpoint. The slots are
//! shared with the hand-off (`crate::handoff`), which reserves one for a new delivery in the
//! transaction that stores its event.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::queue::Claimed;
use crate::domain::EndpointId;
use crate::store::endpoint;

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

    /// A worker slot for one new delivery, if one is free now.
    pub fn try_reserve(&self) -> Option<Reserved> {
        let slot = self.slots.clone().try_acquire_owned().ok()?;
        Some(Reserved { slot })
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

    /// The endpoints whose every slot here is taken: the next claim passes them over (at most
    /// a hundred, the busiest first found).
    pub(super) fn busy_endpoints(&self) -> Vec<EndpointId> {
        let map = self
            .endpoint_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, (_, s))| s.available_permits() == 0)
            .map(|(id, _)| id.clone())
            .take(100)
            .collect()
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

//! The outbox: the one write path of the hot path. Webhooks being acknowledged and delivery
//! attempts being recorded queue here; each cycle writes everything waiting, both kinds, in one
//! transaction (group commit): one commit (one fsync on SQLite) answers them all. On SQLite
//! there is one writer, on its own connection; on PostgreSQL several, whose round trips overlap.
//!
//! What a cycle writes is planned in `plan` (pure: staleness, fan-out, hand-off) and written by
//! a [`Backend`]: `sqlite` (SQLite's own API) or `postgres` (sea-orm). Both own the same rows:
//! events, subject heads, deliveries (the outbox rows) and delivery outcomes.
//!
//! A cycle's new deliveries are leased to this process's workers in the same transaction when
//! they have room (`crate::handoff`), and sent right after the commit without being claimed.

pub mod plan;
mod postgres;
mod sqlite;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};

use crate::delivery::{NotRecorded, Plan};
use crate::handoff::Handoff;
use crate::store::{Turn, WriteGate};
pub use plan::{is_key_destroyed, Outcome, Record, Sealed, Stored};
pub use postgres::Postgres;
pub use sqlite::Sqlite;

/// Writes one cycle in one transaction: the outcomes, then the events with their subjects'
/// heads and their deliveries. Every backend writes the same rows for the same input.
pub trait Backend: Send + Sync {
    fn write<'a>(
        &'a self,
        records: &'a [&'a Record],
        plans: &'a [&'a Plan],
        handoff: &'a Handoff,
    ) -> BoxFuture<'a, Result<Stored, DbErr>>;
}

/// The backend for the gate's database: SQLite's own connection when the gate has one, else
/// sea-orm (PostgreSQL, or an in-memory SQLite database).
pub fn backend_for(gate: &WriteGate) -> Arc<dyn Backend> {
    match gate.direct() {
        Some(conn) => Arc::new(Sqlite::new(conn)),
        None => Arc::new(Postgres::new(gate.db().clone())),
    }
}

type EventJob = (Record, oneshot::Sender<Result<Outcome, Refused>>);

/// A record the outbox did not store, and why. The record comes back when its data key was
/// destroyed before it was written ([`is_key_destroyed`]): the ingest seals it again.
pub struct Refused {
    pub error: DbErr,
    pub record: Option<Box<Record>>,
}

impl From<DbErr> for Refused {
    fn from(error: DbErr) -> Self {
        Self {
            error,
            record: None,
        }
    }
}
type OutcomeJob = (Plan, oneshot::Sender<Result<(), Box<NotRecorded>>>);

#[derive(Clone)]
pub struct Writer {
    events: mpsc::Sender<EventJob>,
    outcomes: mpsc::Sender<OutcomeJob>,
}

struct Inbox {
    events: mpsc::Receiver<EventJob>,
    outcomes: mpsc::Receiver<OutcomeJob>,
}

impl Writer {
    /// Starts the writer tasks; they run until every handle is dropped, after finishing what
    /// they have.
    pub fn start(gate: WriteGate, max_batch: usize, handoff: Handoff) -> Self {
        let max_batch = max_batch.max(1);
        let (events, events_rx) = mpsc::channel(16 * max_batch);
        let (outcomes, outcomes_rx) = mpsc::channel(16 * max_batch);
        let inbox = Arc::new(tokio::sync::Mutex::new(Inbox {
            events: events_rx,
            outcomes: outcomes_rx,
        }));
        let backend = backend_for(&gate);
        let writers = if gate.backend() == sea_orm::DatabaseBackend::Postgres {
            4
        } else {
            1
        };
        for _ in 0..writers {
            let cycle = Cycle {
                gate: gate.clone(),
                backend: backend.clone(),
                handoff: handoff.clone(),
            };
            tokio::spawn(run(cycle, inbox.clone(), max_batch));
        }
        Self { events, outcomes }
    }

    /// Stores a verified webhook; answers after the commit.
    pub async fn submit(&self, record: Record) -> Result<Outcome, Refused> {
        let (reply, answer) = oneshot::channel();
        self.events
            .send((record, reply))
            .await
            .map_err(|_| DbErr::Custom("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the writer dropped the request".into()))?
    }

    /// Records a delivery attempt; answers after the commit.
    pub async fn record(&self, plan: Plan) -> Result<(), Box<NotRecorded>> {
        let (reply, answer) = oneshot::channel();
        self.outcomes.send((plan, reply)).await.map_err(|e| {
            Box::new(NotRecorded {
                error: DbErr::Custom("the writer has stopped".into()),
                plan: Some(e.0 .0),
            })
        })?;
        answer.await.map_err(|_| {
            Box::new(NotRecorded {
                error: DbErr::Custom("the writer dropped the outcome".into()),
                plan: None,
            })
        })?
    }
}

async fn run(cycle: Cycle, inbox: Arc<tokio::sync::Mutex<Inbox>>, max_batch: usize) {
    let (mut events_open, mut outcomes_open) = (true, true);
    loop {
        let mut events = Vec::new();
        let mut outcomes = Vec::new();
        {
            // One writer collects at a time; the others write theirs meanwhile.
            let mut inbox = inbox.lock().await;
            let inbox = &mut *inbox;
            tokio::select! {
                n = inbox.events.recv_many(&mut events, max_batch), if events_open => {
                    events_open = n > 0;
                }
                n = inbox.outcomes.recv_many(&mut outcomes, max_batch), if outcomes_open => {
                    outcomes_open = n > 0;
                }
                else => return,
            }
            // Whatever else is waiting joins this cycle.
            while events.len() < max_batch {
                match inbox.events.try_recv() {
                    Ok(job) => events.push(job),
                    Err(_) => break,
                }
            }
            while outcomes.len() < max_batch {
                match inbox.outcomes.try_recv() {
                    Ok(job) => outcomes.push(job),
                    Err(_) => break,
                }
            }
        }
        if events.is_empty() && outcomes.is_empty() {
            continue;
        }
        cycle.write(events, outcomes).await;
    }
}

/// The error every waiter of a cycle hears when the database cannot be reached (or SQLite's lock
/// is held elsewhere past the busy timeout): `crate::error::is_unavailable` holds for it.
fn unavailable() -> DbErr {
    DbErr::ConnectionAcquire(sea_orm::error::ConnAcquireErr::Timeout)
}

/// Every waiter of a cycle hears that the database is unavailable (503, retry); outcomes come
/// back to be written again.
fn refuse_all(events: Vec<EventJob>, outcomes: Vec<OutcomeJob>) {
    for (_, reply) in events {
        let _ = reply.send(Err(unavailable().into()));
    }
    for (plan, reply) in outcomes {
        let _ = reply.send(Err(Box::new(NotRecorded {
            error: unavailable(),
            plan: Some(plan),
        })));
    }
}

struct Cycle {
    gate: WriteGate,
    backend: Arc<dyn Backend>,
    handoff: Handoff,
}

impl Cycle {
    async fn write(&self, events: Vec<EventJob>, outcomes: Vec<OutcomeJob>) {
        let records: Vec<&Record> = events.iter().map(|(r, _)| r).collect();
        let plans: Vec<&Plan> = outcomes.iter().map(|(p, _)| p).collect();
        // Others waiting for a lock held elsewhere (an outage) may hold the turn in a row: past
        // the time a request waits for the database, the cycle answers as the database would.
        let Some(turn) = self
            .gate
            .enter_within(crate::store::UNAVAILABLE_AFTER)
            .await
        else {
            tracing::warn!(
                events = events.len(),
                outcomes = outcomes.len(),
                "write cycle not started: the write gate stayed busy"
            );
            refuse_all(events, outcomes);
            return;
        };
        let result = self.transaction(&turn, &records, &plans).await;
        match result {
            Ok(mut stored) => {
                drop(turn);
                let answers = std::mem::take(&mut stored.outcomes);
                self.done(stored);
                for ((_, reply), outcome) in events.into_iter().zip(answers) {
                    let _ = reply.send(Ok(outcome));
                }
                for (_, reply) in outcomes {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) if crate::error::is_unavailable(&e) => {
                // Nothing can be written now: every waiter hears so at once (503, retry) rather
                // than after one timeout per row.
                drop(turn);
                tracing::warn!(error = %e, events = events.len(), outcomes = outcomes.len(), "write cycle failed: database unavailable");
                refuse_all(events, outcomes);
            }
            Err(e) => {
                // One bad row must not fail its neighbours: each is written on its own.
                tracing::warn!(error = %e, events = events.len(), outcomes = outcomes.len(), "write cycle failed; retrying one by one");
                for (plan, reply) in outcomes {
                    let result = match self.transaction(&turn, &[], &[&plan]).await {
                        Ok(_) => Ok(()),
                        Err(error) => Err(Box::new(NotRecorded {
                            error,
                            plan: Some(plan),
                        })),
                    };
                    let _ = reply.send(result);
                }
                for (record, reply) in events {
                    let result = match self.transaction(&turn, &[&record], &[]).await {
                        Ok(mut stored) => {
                            let outcome = stored.outcomes.pop();
                            self.done(stored);
                            outcome.ok_or_else(|| {
                                DbErr::Custom("the event was not stored".into()).into()
                            })
                        }
                        Err(error) if is_key_destroyed(&error) => Err(Refused {
                            error,
                            record: Some(Box::new(record)),
                        }),
                        Err(e) => {
                            tracing::error!(error = %e, event = %record.id, "storing an event failed");
                            Err(e.into())
                        }
                    };
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// One transaction through the backend. The caller holds the writers' turn: on SQLite it
    /// keeps the claims' connection out of the database's one write lock meanwhile.
    async fn transaction(
        &self,
        _held: &Turn<'_>,
        records: &[&Record],
        plans: &[&Plan],
    ) -> Result<Stored, DbErr> {
        self.backend.write(records, plans, &self.handoff).await
    }

    /// After a commit: the handed-off deliveries go to the workers, and the workers look at the
    /// queue when some deliveries wait there.
    fn done(&self, stored: Stored) {
        if stored.queued {
            self.handoff.queued();
        }
        self.handoff.send(stored.handed);
    }
}

impl crate::delivery::Recorder for Writer {
    fn record(&self, plan: Plan) -> BoxFuture<'_, Result<(), Box<NotRecorded>>> {
        Box::pin(Writer::record(self, plan))
    }
}

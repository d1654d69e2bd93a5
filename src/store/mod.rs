//! Storage: one sea-orm connection to SQLite (embedded default) or PostgreSQL, migrations, and
//! the entities. Database functions take `&impl ConnectionTrait` so they run inside or outside
//! a transaction alike.

pub mod access_entry;
pub mod alert;
pub mod api_token;
pub mod audit_entry;
pub mod data_key;
pub mod delivery;
pub mod delivery_attempt;
pub mod disclosures;
pub mod endpoint;
pub mod endpoint_headers;
pub mod endpoint_secret;
pub mod endpoint_sequence;
pub mod event;
pub mod instance;
pub mod lease;
pub mod monitor;
pub mod payload;
pub mod provider_action;
pub mod provider_connection;
pub mod provider_key;
pub mod purge;
pub mod rekey;
pub mod scope;
pub mod subject_head;
pub mod tenant;

pub use scope::for_tenant;

/// The `n`th (1-based) bound parameter in the backend's spelling.
pub fn placeholder(backend: DatabaseBackend, n: usize) -> String {
    match backend {
        DatabaseBackend::Postgres => format!("${n}"),
        _ => format!("?{n}"),
    }
}

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::config::{DatabaseTarget, Settings, SqliteSync};

/// How long a request waits for a connection (or SQLite's lock) before it answers 503
/// `database_unavailable`: well inside a provider's timeout (VectorCare's is 10 s), so the
/// provider gets a clear answer and retries rather than timing out.
pub const UNAVAILABLE_AFTER: Duration = Duration::from_secs(3);

/// Opens the pool. For SQLite: WAL (readers never block the writer), foreign keys enforced, a busy
/// timeout instead of immediate `SQLITE_BUSY`, and the file (and its folder) created on first run.
pub async fn connect(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    open(settings, settings.database_max_connections).await
}

async fn open(settings: &Settings, connections: u32) -> anyhow::Result<DatabaseConnection> {
    let options = match &settings.database {
        DatabaseTarget::Sqlite { url, .. } => {
            if let Some(file) = sqlite_file(url) {
                let dir = file.parent().map(PathBuf::from).unwrap_or_default();
                crate::crypto::create_private_dir(&dir)
                    .with_context(|| format!("creating the database folder {}", dir.display()))?;
                // Patient data: the file and its WAL and shared-memory companions are this
                // user's only, those of an older install included.
                for suffix in ["", "-wal", "-shm"] {
                    let mut path = file.clone().into_os_string();
                    path.push(suffix);
                    let path = PathBuf::from(path);
                    if suffix.is_empty() || path.exists() {
                        crate::crypto::make_private_file(&path)
                            .with_context(|| format!("making {} private", path.display()))?;
                    }
                }
            }
            let sync = match settings.sqlite_synchronous {
                SqliteSync::Full => SqliteSynchronous::Full,
                SqliteSync::Normal => SqliteSynchronous::Normal,
            };
            let mut o = ConnectOptions::new(url.clone());
            o.map_sqlx_sqlite_opts(move |o| {
                o.journal_mode(SqliteJournalMode::Wal)
                    // Checkpoints run in the background (`spawn_checkpointer`), not inside the
                    // commit that happens to cross the threshold: that commit is an acknowledgement.
                    .pragma("wal_autocheckpoint", "0")
                    .foreign_keys(true)
                    .busy_timeout(UNAVAILABLE_AFTER)
                    .synchronous(sync)
                    .create_if_missing(true)
                    // Statement journals of multi-row statements stay in memory, not temp files.
                    .pragma("temp_store", "memory")
                    // What the purger and deletions remove (through the pool) is overwritten
                    // with zeros, not left readable in free pages. The outbox's own connection
                    // only adds and updates rows, and keeps SQLite's default.
                    .pragma("secure_delete", "on")
            });
            o
        }
        DatabaseTarget::Postgres { url } => {
            let mut o = ConnectOptions::new(url.expose_secret().to_owned());
            let port = postgres_port(url.expose_secret());
            o.map_sqlx_postgres_pool_opts(move |p| {
                p.after_connect(move |_, _| {
                    Box::pin(async move {
                        nodelay_to_port(port);
                        Ok(())
                    })
                })
            });
            o
        }
    };
    let mut options = options;
    options
        .max_connections(connections)
        .min_connections(1)
        .connect_timeout(UNAVAILABLE_AFTER)
        .acquire_timeout(UNAVAILABLE_AFTER)
        // Statement logging could carry patient data from bound values into the log.
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .context("connecting to the database (check DATABASE_URL)")
}

/// SQLite: copies the WAL back into the database in the background, so no acknowledgement
/// waits for a whole checkpoint.
///
/// A checkpoint is CPU and disk work that competes with the request threads, so it runs on a
/// thread of its own whose scheduling priority is lowered, once a second, without blocking
/// writers (`PASSIVE`).
///
/// Under sustained load a passive checkpoint never catches up: writers append while it copies,
/// and SQLite starts the WAL over only when every frame has been copied. Measured at full
/// speed, the WAL grew by 120 MB/s without bound. So when the WAL has grown past
/// `WAL_RESET_FRAMES`, the checkpointer copies what its passes left while holding the writers'
/// turn: with every frame copied, the next write starts the WAL over. The writers wait for that
/// last copy and its `fsync` (20–40 ms measured at 1,000 webhooks/s, about once a second: it sets
/// the ack latency's p99, README "Performance"), never for a reader (a passive checkpoint does
/// not wait for readers).
pub fn spawn_checkpointer(
    settings: &Settings,
    gate: &WriteGate,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let Some(conn) = open_direct(settings)? else {
        return Ok(());
    };
    let turn = gate.turn.clone();
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            lower_priority();
            let checkpoint = |mode: &str| -> rusqlite::Result<i64> {
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
                    row.get::<_, i64>(1)
                })
            };
            while !stop.is_cancelled() {
                std::thread::sleep(CHECKPOINT_EVERY);
                match checkpoint("PASSIVE") {
                    Ok(mut frames) if frames > WAL_RESET_FRAMES => {
                        // Each pass copies what was written during the one before; once that
                        // is little, the writers wait only for the last few frames.
                        for _ in 0..8 {
                            match checkpoint("PASSIVE") {
                                Ok(now) if now - frames > WAL_REMAINDER_FRAMES => frames = now,
                                _ => break,
                            }
                        }
                        let _held = turn.as_ref().map(|m| m.blocking_lock());
                        if let Err(e) = checkpoint("PASSIVE") {
                            tracing::debug!(error = %e, "WAL checkpoint deferred");
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "WAL checkpoint deferred"),
                }
            }
        })
        .context("starting the checkpoint thread")?;
    Ok(())
}

/// 16 MiB of 4 KiB pages (measured at 1,000 webhooks/s: the WAL grows by ~30 frames a webhook,
/// as each small commit writes every page it touched).
const WAL_RESET_FRAMES: i64 = 4_096;
/// The passes before taking the writers' turn stop once a pass found fewer new frames than this.
const WAL_REMAINDER_FRAMES: i64 = 1_024;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Background work yields to the threads answering requests (Linux: nice 10 for this thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; a failure leaves the priority as is.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// The TCP port of a PostgreSQL URL (5432 unless it says otherwise).
fn postgres_port(url: &str) -> u16 {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.port())
        .unwrap_or(5432)
}

/// sqlx 0.9.0 no longer sets TCP_NODELAY on its sockets (sqlx issue #4335; the fix, #4336, is not
/// released yet). A statement or answer longer than one TCP segment then waits ~40 ms for the
/// other side's delayed ACK; measured here: multi-row inserts of webhook bodies took 43 ms at the
/// median instead of 1 ms. After each new pool connection, every socket of this process whose
/// peer is the PostgreSQL port gets TCP_NODELAY, as libpq and sqlx 0.8 always did.
fn nodelay_to_port(port: u16) {
    #[cfg(target_os = "linux")]
    {
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            // SAFETY: the descriptor is only borrowed for the calls below; if it is not a socket,
            // or was closed meanwhile, they fail and nothing happens.
            let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&borrowed);
            if sock.r#type().ok() != Some(socket2::Type::STREAM) {
                continue;
            }
            let peer = sock.peer_addr().ok().and_then(|a| a.as_socket());
            if peer.is_some_and(|p| p.port() == port) {
                let _ = sock.set_tcp_nodelay(true);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = port;
}

/// The file behind an SQLite URL, if it names one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

pub fn backend_name(db: &impl ConnectionTrait) -> &'static str {
    match db.get_database_backend() {
        DatabaseBackend::Sqlite => "sqlite",
        DatabaseBackend::Postgres => "postgres",
        _ => "other",
    }
}

pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("applying migrations")
}

/// Ready means: the database answers and nothing this binary expects is missing from the schema.
pub async fn readiness(db: &DatabaseConnection) -> Result<(), String> {
    if let Err(e) = db.ping().await {
        tracing::warn!(error = %e, "readiness: database does not answer");
        return Err("the database does not answer".into());
    }
    match Migrator::get_pending_migrations_read_only(db).await {
        Ok(pending) if pending.is_empty() => Ok(()),
        Ok(pending) => Err(format!(
            "{} migration(s) pending; run `gateway migrate up` or enable migrate_on_start",
            pending.len()
        )),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: migration status unknown");
            Err("the migration status could not be read".into())
        }
    }
}

/// Starts a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`): a deferred transaction that reads first and writes later fails at once with
/// `SQLITE_BUSY` when another connection wrote in between, instead of waiting its turn.
pub async fn begin_write<C: sea_orm::TransactionTrait>(
    db: &C,
) -> Result<C::Transaction, sea_orm::DbErr> {
    db.begin_with_options(sea_orm::TransactionOptions {
        sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// The hot writers of this process: ingest, claims and outcomes.
///
/// SQLite has one writer at a time, and a writer waiting for its lock inside SQLite sleeps in
/// the busy handler (1, 2, 5, 10 ms ...); so the hot writers queue here instead, in order and
/// without sleeping, and write through connections of their own. Their page caches stay warm:
/// a pooled connection drops its whole cache whenever another connection has written, and the
/// hot path would read the same index pages again on every transaction.
///
/// The group commit (`crate::outbox`) writes through `direct`, SQLite's own API on a connection
/// it keeps: each statement is prepared once and runs on the writer's thread. Through sqlx every
/// statement is a round trip to the connection's worker thread, and that round trip was the
/// largest part of a write cycle (README, "Performance"). Claims, which are rare while the
/// hand-off works, keep using sqlx on `db`.
/// On PostgreSQL the gate is open and the writers share the pool.
#[derive(Clone)]
pub struct WriteGate {
    db: DatabaseConnection,
    turn: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
    direct: Option<std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>>,
}

/// A writer's turn: the connection to write with, for as long as the turn is held.
pub struct Turn<'a> {
    pub db: &'a DatabaseConnection,
    pub direct: Option<&'a std::sync::Mutex<rusqlite::Connection>>,
    _held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteGate {
    pub async fn open(settings: &Settings, pool: &DatabaseConnection) -> anyhow::Result<Self> {
        Ok(match pool.get_database_backend() {
            DatabaseBackend::Sqlite => Self {
                db: open(settings, 1).await?,
                turn: Some(std::sync::Arc::new(tokio::sync::Mutex::new(()))),
                direct: open_direct(settings)?
                    .map(|c| std::sync::Arc::new(std::sync::Mutex::new(c))),
            },
            _ => Self {
                db: pool.clone(),
                turn: None,
                direct: None,
            },
        })
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// The connection the gate's writers use through sea-orm.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// SQLite's own connection to the database file, when there is one.
    pub fn direct(&self) -> Option<std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>> {
        self.direct.clone()
    }

    /// The turn, if it comes within `wait`: a writer answers "unavailable" rather than queue
    /// behind others each waiting for a lock held elsewhere.
    pub async fn enter_within(&self, wait: Duration) -> Option<Turn<'_>> {
        tokio::time::timeout(wait, self.enter()).await.ok()
    }

    pub async fn enter(&self) -> Turn<'_> {
        Turn {
            db: &self.db,
            direct: self.direct.as_deref(),
            _held: match &self.turn {
                Some(m) => Some(m.clone().lock_owned().await),
                None => None,
            },
        }
    }
}

/// SQLite's own connection to the database file, set up as the pool's connections are (WAL is
/// the file's mode already). `None` for an in-memory database, which only a pool can share.
fn open_direct(settings: &Settings) -> anyhow::Result<Option<rusqlite::Connection>> {
    let DatabaseTarget::Sqlite { url, .. } = &settings.database else {
        return Ok(None);
    };
    let Some(path) = sqlite_file(url) else {
        return Ok(None);
    };
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} for writing", path.display()))?;
    let sync = match settings.sqlite_synchronous {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    };
    conn.busy_timeout(UNAVAILABLE_AFTER)?;
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // As on the pool: checkpoints run in the background, never inside an acknowledgement's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(Some(conn))
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite://./data/gateway.db?mode=rwc")
                .unwrap()
                .to_str(),
            Some("./data/gateway.db")
        );
        assert_eq!(
            sqlite_file("sqlite:/tmp/x.db").unwrap().to_str(),
            Some("/tmp/x.db")
        );
        assert!(sqlite_file("sqlite::memory:").is_none());
    }
}

/// Splits `items` into pieces whose lengths are powers of two (at most `max`), largest first.
/// Multi-row statements are prepared and cached per connection by their text; with these
/// sizes a statement has a handful of shapes, not one per batch size, and the cache stays small.
pub fn pow2_chunks<T>(mut items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if items.is_empty() {
            return None;
        }
        let mut size = 1;
        while size * 2 <= items.len() && size * 2 <= max {
            size *= 2;
        }
        let (head, tail) = items.split_at(size);
        items = tail;
        Some(head)
    })
}

#[cfg(test)]
mod chunk_tests {
    #[test]
    fn chunks_are_powers_of_two_and_cover_everything_in_order() {
        let items: Vec<u32> = (0..203).collect();
        let sizes: Vec<usize> = super::pow2_chunks(&items, 128).map(<[u32]>::len).collect();
        assert_eq!(sizes, vec![128, 64, 8, 2, 1]);
        let joined: Vec<u32> = super::pow2_chunks(&items, 128).flatten().copied().collect();
        assert_eq!(joined, items);
        assert_eq!(super::pow2_chunks(&items[..0], 128).count(), 0);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod nodelay_tests {
    #[test]
    fn sockets_to_the_database_port_get_tcp_nodelay() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let to_db = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let elsewhere =
            std::net::TcpStream::connect(("127.0.0.1", other.local_addr().unwrap().port()))
                .unwrap();
        assert!(!to_db.nodelay().unwrap());
        super::nodelay_to_port(port);
        assert!(to_db.nodelay().unwrap());
        assert!(!elsewhere.nodelay().unwrap(), "only the database's port");
        assert_eq!(super::postgres_port("postgres://u@db.example:6543/x"), 6543);
        assert_eq!(super::postgres_port("postgres://u@db.example/x"), 5432);
    }
}

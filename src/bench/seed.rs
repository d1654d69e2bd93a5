//! `gateway bench --purgeable N`: events stored long ago, past every retention period, so the
//! gateway's purger works through them while the run measures acknowledgements. Inserted by the
//! database itself (a recursive CTE on SQLite, `generate_series` on PostgreSQL) in one
//! statement, each with a sealed-payload-sized blob, before the timed phase.

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, Statement};

/// How old the seeded events are: far past the longest retention period (3650 days).
const AGE_DAYS: i64 = 4000;
/// About what a sealed payload of the bench's webhooks weighs (compressed, then sealed).
const BLOB_BYTES: usize = 2048;

pub async fn connect(
    dir: &std::path::Path,
    database_url: &Option<String>,
) -> anyhow::Result<DatabaseConnection> {
    let url = match database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}?mode=rw", dir.join("data/gateway.db").display()),
    };
    let mut options = sea_orm::ConnectOptions::new(url);
    options.sqlx_logging(false);
    Database::connect(options)
        .await
        .context("connecting to the bench's database")
}

/// Inserts `n` events of the tenant `slug`, received `AGE_DAYS` ago.
pub async fn insert(db: &DatabaseConnection, slug: &str, n: usize) -> anyhow::Result<()> {
    let at = chrono::Utc::now() - chrono::Duration::days(AGE_DAYS);
    let ms = at.timestamp_millis();
    let time = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    let backend = db.get_database_backend();
    // Ids sort as events received at `at` (`EventId::bound_at`): the purger's range scan finds
    // them on the id index.
    let sql = match backend {
        DatabaseBackend::Postgres => format!(
            "INSERT INTO events (id, tenant_id, provider, provider_event_id, event_type, subject, \
             status, order_key, stale, occurred_at, received_at, normalized, raw_body, \
             raw_headers, verification, sealed_payload) \
             SELECT 'evt_' || lpad(to_hex({ms}::bigint), 12, '0') || lpad(g::text, 20, '0'), \
             t.id, 'vectorcare', 'seed-' || g, 'transport.request.updated', 'seed-' || (g % 1000), \
             'scheduled', '', false, '{time}', '{time}', '{{}}', '', '{{}}', '{{}}', \
             convert_to(repeat(md5(g::text), {reps}), 'UTF8') \
             FROM generate_series(1, {n}) g, tenants t WHERE t.slug = '{slug}'",
            reps = BLOB_BYTES / 32
        ),
        _ => format!(
            "WITH RECURSIVE c(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM c WHERE g < {n}) \
             INSERT INTO events (id, tenant_id, provider, provider_event_id, event_type, subject, \
             status, order_key, stale, occurred_at, received_at, normalized, raw_body, \
             raw_headers, verification, sealed_payload) \
             SELECT printf('evt_%012x%020d', {ms}, g), t.id, 'vectorcare', 'seed-' || g, \
             'transport.request.updated', 'seed-' || (g % 1000), 'scheduled', '', 0, '{time}', \
             '{time}', '{{}}', '', '{{}}', '{{}}', randomblob({BLOB_BYTES}) \
             FROM c, tenants t WHERE t.slug = '{slug}'"
        ),
    };
    db.execute_raw(Statement::from_string(backend, sql))
        .await
        .context("seeding purgeable events")?;
    Ok(())
}

/// How many seeded events are purged so far.
pub async fn purged(db: &DatabaseConnection) -> anyhow::Result<u64> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COUNT(*) AS n FROM events WHERE provider_event_id LIKE 'seed-%' \
             AND purged_at IS NOT NULL",
        ))
        .await?
        .context("counting purged events")?;
    let n: i64 = row.try_get("", "n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

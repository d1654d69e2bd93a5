//! Named leases: one replica at a time runs a periodic job (the monitor). A lease is taken when
//! free or expired, and kept by renewing it before it runs out; a replica that dies lets it
//! expire, and another takes over.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, Statement};

use super::placeholder;

/// Takes or renews the lease `name` for `holder` until `until`; `true` when `holder` has it.
pub async fn take(
    db: &impl ConnectionTrait,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let backend = db.get_database_backend();
    let [p1, p2, p3, p4] = [1, 2, 3, 4].map(|n| placeholder(backend, n));
    let sql = format!(
        "INSERT INTO leases (name, holder, until) VALUES ({p1}, {p2}, {p3}) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
         WHERE leases.until < {p4} OR leases.holder = excluded.holder"
    );
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [name.into(), holder.into(), until.into(), now.into()],
        ))
        .await?;
    Ok(done.rows_affected() == 1)
}

//! One integration binary: every test talks to a real gateway over its public port, on SQLite by
//! default and on PostgreSQL when TEST_DATABASE_URL is set.

mod errors;
mod health;
mod helpers;
mod master_key;
mod process;
mod tls;

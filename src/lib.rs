//! Webhook gateway for healthcare integrations.
//!
//! Where things are:
//! - `cli`, `config`, `telemetry`: the process: command line, settings, logs.
//! - `startup`: the application (state, routes, middleware) on a pre-bound listener.
//! - `http`, `error`: request ids, access logs, and problem+json for every error.
//! - `store`: the database (SQLite or PostgreSQL) and its entities; `crypto`: the master key.
//! - `health`: liveness and readiness; `tls`: HTTPS with certificate reload.

pub mod actions;
pub mod admin;
pub mod admin_ui;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod health;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod normalize;
pub mod openapi;
pub mod providers;
pub mod rate_limit;
pub mod signature;
pub mod simulate;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod writer;

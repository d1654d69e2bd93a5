//! Webhook gateway for healthcare integrations.
//!
//! The path an event takes, top to bottom; a module imports only from modules below it
//! (`tests/api/layers.rs` fails on an import cycle):
//! - `cli`, `bench`, `simulate`: the process: command line, load test, example webhooks.
//! - `app`: wiring: assembles the state and the pipeline, runs the server.
//! - `web`: HTTP: request ids, errors as problem+json, token extractors, the admin API, the
//!   webhook routes, provider actions, health, metrics, OpenAPI, the admin UI.
//! - `ingest`: a webhook's tenant, keys, verification and normalization, handed to the outbox.
//! - `outbox`: the group commit that stores events with their deliveries (SQLite, PostgreSQL).
//! - `handoff`: new deliveries passed in memory to this process's workers.
//! - `delivery`: the workers: queue, policy, endpoints, send, SSRF guard.
//! - below them all: `providers`, `normalize`, `signature` (what providers send and what the
//!   gateway makes of it); `store` (the database), `domain` (parsed values), `crypto`, `config`,
//!   `error`, `metrics`, `rate_limit`, `telemetry`, `tls`, `outbound` (how HTTP clients leave).

pub mod app;
pub mod bench;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod domain;
pub mod error;
pub mod fhir;
pub mod handoff;
pub mod ingest;
pub mod metrics;
pub mod normalize;
pub mod outbound;
pub mod outbox;
pub mod providers;
pub mod rate_limit;
pub mod signature;
pub mod simulate;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod web;

//! One integration binary: every test talks to a real gateway over its public port, on SQLite by
//! default and on PostgreSQL when TEST_DATABASE_URL is set.

mod access_log;
mod actions;
mod admin_ui;
mod audit;
mod authz;
mod contract;
mod delivery;
mod delivery_workers;
mod durability;
mod endpoints;
mod errors;
mod fake_providers;
mod fuzz;
mod hardening;
mod health;
mod helpers;
mod layers;
mod master_key;
mod normalization;
mod openapi;
mod outage;
mod outbox;
mod payload_mode;
mod phi_logs;
mod process;
mod providers;
mod receiver;
mod retention;
mod sealing;
mod secrets_at_rest;
mod stats;
mod tenants;
mod tls;
mod uber_health;
mod webhooks;

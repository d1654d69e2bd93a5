//! Structured logs: JSON lines in production, readable text in a terminal.

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Where log lines go: the server logs to stdout; one-shot commands log to stderr so that their
/// stdout carries only their result (e.g. a token for `TOKEN=$(gateway token create ...)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init(format: LogFormat, filter: &str, sink: Sink) {
    let writer = move || -> Box<dyn std::io::Write> {
        match sink {
            Sink::Stdout => Box::new(std::io::stdout()),
            Sink::Stderr => Box::new(std::io::stderr()),
        }
    };
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let result = match format {
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .try_init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).with_writer(writer).try_init(),
    };
    let _ = result;
}

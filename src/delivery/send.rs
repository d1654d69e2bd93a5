//! One HTTP attempt: the signed POST and its classification for the attempt log.

use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::StatusCode;

use super::ssrf::{Guard, GuardedResolver, Refused};

pub const SNIPPET_BYTES: usize = 1024;

pub struct Outcome {
    pub status: Option<u16>,
    pub duration: Duration,
    /// `None` on success.
    pub error_class: Option<&'static str>,
    pub error: Option<String>,
    pub snippet: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.error_class.is_none()
    }
}

pub struct Sender {
    client: reqwest::Client,
    guard: Arc<Guard>,
    /// Through a proxy the proxy resolves the name: the guard resolves it first.
    proxied: bool,
}

/// The header naming the delivery; `webhook-id` names the message (the event).
pub const DELIVERY_ID: &str = "x-delivery-id";

/// The header carrying the delivery's number in its endpoint's sequence (also in the body, as
/// the CloudEvents extension [`SEQUENCE_ATTRIBUTE`]).
pub const SEQUENCE: &str = "x-gateway-sequence";

/// The CloudEvents extension attribute (an Integer) with the endpoint's sequence number.
pub const SEQUENCE_ATTRIBUTE: &str = "endpointseq";

/// `body` (a JSON object) with the sequence number as its first member: one copy, no parse.
pub fn with_sequence(body: &[u8], seq: i64) -> Vec<u8> {
    let attribute = format!("{{\"{SEQUENCE_ATTRIBUTE}\":{seq}");
    let mut out = Vec::with_capacity(body.len() + attribute.len() + 1);
    out.extend_from_slice(attribute.as_bytes());
    match body.strip_prefix(b"{") {
        Some(rest) if rest.iter().any(|b| !b.is_ascii_whitespace() && *b != b'}') => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        _ => out.push(b'}'),
    }
    out
}

/// One message as it goes out: headers are Standard Webhooks, body structured CloudEvents JSON.
pub struct Message<'a> {
    pub url: &'a str,
    /// The message's id, the same for every endpoint, retry and resend of it (Standard
    /// Webhooks): the event's id, which receivers deduplicate on.
    pub webhook_id: &'a str,
    /// This delivery (one event to one endpoint), for a receiver's support questions and logs.
    pub delivery_id: Option<&'a str>,
    /// The delivery's number in the endpoint's sequence, when it has one.
    pub sequence: Option<i64>,
    pub body: &'a [u8],
    /// `whsec_` key bytes of every secret that signs (rotation: several).
    pub keys: &'a [Vec<u8>],
    pub extra_headers: &'a [(String, String)],
}

impl Sender {
    /// `concurrency` is the most attempts this process has in flight at once. That many idle
    /// connections per host are kept, since one customer's host often serves many endpoints.
    /// Capping below it made the gateway open and close hundreds of connections a second toward
    /// a busy host (measured: 520/s at 6,000 deliveries/s, each a TCP handshake on both sides).
    pub fn new(
        timeout: Duration,
        concurrency: usize,
        guard: Guard,
        proxy: Option<&url::Url>,
    ) -> Self {
        let guard = Arc::new(guard);
        let client = crate::outbound::client(proxy)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(guard.clone())))
            .pool_max_idle_per_host(concurrency)
            .user_agent(concat!("webhook-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            guard,
            proxied: proxy.is_some(),
        }
    }

    pub async fn send(&self, m: &Message<'_>) -> Outcome {
        let started = Instant::now();
        let fail = |class: &'static str, error: String| Outcome {
            status: None,
            duration: started.elapsed(),
            error_class: Some(class),
            error: Some(error),
            snippet: None,
            retry_after: None,
        };
        let url = match reqwest::Url::parse(m.url) {
            Ok(u) => u,
            Err(e) => return fail("other", format!("invalid URL: {e}")),
        };
        // IP literals never reach the resolver; check them here.
        if let Some(ip) = super::ssrf::literal(&url) {
            if !self.guard.allows(ip) {
                return fail("ssrf_refused", format!("{ip} is an internal address"));
            }
        } else if self.proxied {
            let host = url.host_str().unwrap_or_default();
            if let Err(e) = GuardedResolver(self.guard.clone()).check(host).await {
                return match e.downcast_ref::<Refused>() {
                    Some(r) => fail("ssrf_refused", r.to_string()),
                    None => fail("dns", e.to_string()),
                };
            }
        }
        let timestamp = Utc::now().timestamp();
        let signatures: Vec<String> = m
            .keys
            .iter()
            .map(|k| crate::signature::sign(k, m.webhook_id, timestamp, m.body))
            .collect();
        let mut headers = HeaderMap::new();
        for (name, value) in m.extra_headers {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        }
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/cloudevents+json"),
        );
        if let Ok(v) = HeaderValue::from_str(m.webhook_id) {
            headers.insert("webhook-id", v);
        }
        if let Some(Ok(v)) = m.delivery_id.map(HeaderValue::from_str) {
            headers.insert(DELIVERY_ID, v);
        }
        if let Some(seq) = m.sequence {
            headers.insert(SEQUENCE, HeaderValue::from(seq));
        }
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        if let Ok(v) = HeaderValue::from_str(&signatures.join(" ")) {
            headers.insert("webhook-signature", v);
        }
        let res = self
            .client
            .post(url)
            .headers(headers)
            .body(m.body.to_vec())
            .send()
            .await;
        let mut res = match res {
            Ok(r) => r,
            Err(e) => {
                let (class, text) = classify(&e);
                return fail(class, text);
            }
        };
        let status = res.status();
        let retry_after = retry_after(res.headers());
        let mut snippet = Vec::new();
        while snippet.len() < SNIPPET_BYTES {
            match res.chunk().await {
                Ok(Some(chunk)) => snippet
                    .extend_from_slice(&chunk[..chunk.len().min(SNIPPET_BYTES - snippet.len())]),
                _ => break,
            }
        }
        let snippet = (!snippet.is_empty()).then(|| String::from_utf8_lossy(&snippet).into_owned());
        let (class, error) = if status.is_success() {
            (None, None)
        } else if status.is_redirection() {
            (
                Some("redirect"),
                Some(format!("answered {status}; redirects are not followed")),
            )
        } else {
            (Some("http_status"), Some(format!("answered {status}")))
        };
        Outcome {
            status: Some(status.as_u16()),
            duration: started.elapsed(),
            error_class: class,
            error,
            snippet,
            retry_after: if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                retry_after
            } else {
                None
            },
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date; `None` when absent, unreadable or past.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    at.duration_since(std::time::SystemTime::now()).ok()
}

fn classify(e: &reqwest::Error) -> (&'static str, String) {
    let mut source = e.source();
    let mut chain = e.to_string();
    while let Some(s) = source {
        if s.downcast_ref::<Refused>().is_some() {
            return ("ssrf_refused", s.to_string());
        }
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    // hyper and rustls hand errors up as text inside io::Error; the words tell the layer.
    let lower = chain.to_lowercase();
    let class = if e.is_timeout() {
        "timeout"
    } else if lower.contains("dns")
        || lower.contains("failed to lookup")
        || lower.contains("name or service not known")
    {
        "dns"
    } else if [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "peer sent",
        "alert",
        "unknown issuer",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        "tls"
    } else if e.is_connect() {
        "connect"
    } else {
        "other"
    };
    (class, chain.chars().take(1000).collect())
}

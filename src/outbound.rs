//! How the gateway's HTTP clients leave the machine: never through the environment's
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` (a proxy resolves names itself, past the SSRF guard),
//! only through the `outbound_proxy` an operator configured.

/// A client builder for callbacks and provider calls.
pub fn client(proxy: Option<&url::Url>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().no_proxy();
    match proxy.map(|p| reqwest::Proxy::all(p.as_str())) {
        Some(Ok(p)) => builder.proxy(p),
        _ => builder,
    }
}

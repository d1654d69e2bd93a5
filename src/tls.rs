//! HTTPS served by the gateway itself, for deployments without a terminating proxy
//! (VectorCare only posts to HTTPS). The certificate is re-read when its files change, so a
//! renewal (certbot, cert-manager) needs no restart.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::{anyhow, Context};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::config::TlsSettings;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a certificate chain and its private key, and checks that they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    if chain.is_empty() {
        return Err(anyhow!("{} holds no PEM certificate", cert.display()));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, private, &provider()).map_err(|e| {
        anyhow!(
            "certificate {} and key {} do not fit: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// Hands out the current certificate; swapped in place on reload.
pub struct ReloadingResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReloadingResolver")
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

impl ReloadingResolver {
    fn replace(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut current) = self.current.write() {
            *current = key;
        }
    }
}

pub fn server_config(tls: &TlsSettings) -> anyhow::Result<(ServerConfig, Arc<ReloadingResolver>)> {
    let resolver = Arc::new(ReloadingResolver {
        current: RwLock::new(load_certified_key(&tls.cert, &tls.key)?),
    });
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((config, resolver))
}

fn modified(tls: &TlsSettings) -> Option<(SystemTime, SystemTime)> {
    let c = std::fs::metadata(&tls.cert).ok()?.modified().ok()?;
    let k = std::fs::metadata(&tls.key).ok()?.modified().ok()?;
    Some((c, k))
}

/// Polls the files' modification times; a pair that fails to load is logged and the old
/// certificate stays in service.
pub fn spawn_reloader(tls: TlsSettings, resolver: Arc<ReloadingResolver>, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut seen = modified(&tls);
        let mut tick = tokio::time::interval(tls.reload_interval);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = modified(&tls);
            if now == seen {
                continue;
            }
            match load_certified_key(&tls.cert, &tls.key) {
                Ok(key) => {
                    resolver.replace(key);
                    seen = now;
                    tracing::info!(cert = %tls.cert.display(), "TLS certificate reloaded");
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "TLS certificate changed but could not be loaded; keeping the previous one"
                    );
                }
            }
        }
    });
}

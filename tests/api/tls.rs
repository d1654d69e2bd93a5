//! HTTPS served directly, and a renewed certificate taken without a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

use crate::helpers::spawn_app_with;

/// A fresh CA and a leaf for 127.0.0.1 signed by it: (CA PEM, leaf PEM, leaf key PEM).
fn issue() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    // Rename so the reloader never reads a half-written file.
    for (name, text) in [("cert.pem", cert), ("key.pem", key)] {
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_gateway_serves_https_and_picks_up_a_renewed_certificate_without_restart() {
    let certs = tempfile::tempdir().unwrap();
    let (ca1, cert1, key1) = issue();
    write_pair(certs.path(), &cert1, &key1);
    let dir = certs.path().to_path_buf();
    let app = spawn_app_with(move |s| {
        s.tls_cert = Some(dir.join("cert.pem"));
        s.tls_key = Some(dir.join("key.pem"));
        s.tls_reload_interval = "100ms".into();
    })
    .await;
    assert!(app.address.starts_with("https://"));

    let old_ca = client_trusting(&ca1);
    let res = old_ca.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/healthz", app.port)).await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));

    let (ca2, cert2, key2) = issue();
    std::thread::sleep(Duration::from_millis(20)); // a distinct modification time
    write_pair(certs.path(), &cert2, &key2);

    let new_ca = client_trusting(&ca2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // A new client per try: a pooled connection would keep the old certificate.
        let ok = client_trusting(&ca2)
            .get(app.url("/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(new_ca.get(app.url("/healthz")).send().await.is_ok());
    let stale = client_trusting(&ca1).get(app.url("/healthz")).send().await;
    assert!(stale.is_err(), "the old certificate is no longer served");
}

#[tokio::test]
async fn a_certificate_that_does_not_match_its_key_is_refused_at_start() {
    let certs = tempfile::tempdir().unwrap();
    let (_, cert1, _) = issue();
    let (_, _, key2) = issue();
    write_pair(certs.path(), &cert1, &key2);
    let raw = gateway::config::RawSettings {
        tls_cert: Some(certs.path().join("cert.pem")),
        tls_key: Some(certs.path().join("key.pem")),
        ..crate::helpers::test_settings(certs.path(), "sqlite::memory:")
    };
    let settings = gateway::config::Settings::from_raw(raw).unwrap();
    let err = gateway::app::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("do not fit"), "{err:#}");
}

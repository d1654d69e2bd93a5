//! The test harness: `spawn_app()` starts a gateway on port 0 with a fresh database.

use std::path::PathBuf;
use std::sync::Once;

use gateway::config::{RawSettings, Settings};
use gateway::crypto::MasterKey;
use gateway::startup::{AppState, Application};
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

static TRACING: Once = Once::new();

/// `TEST_LOG=1 cargo test` shows the gateway's logs.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            gateway::telemetry::init(gateway::config::LogFormat::Pretty, "debug");
        }
    });
}

/// A database for one test: a file in a temp folder, or a PostgreSQL database created for the
/// test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    pg: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn new(dir: &std::path::Path) -> Self {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(admin_url) if !admin_url.is_empty() => {
                let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("connect to TEST_DATABASE_URL");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    pg: Some((admin_url, name)),
                }
            }
            _ => Self {
                url: format!("sqlite://{}?mode=rwc", dir.join("gateway.db").display()),
                pg: None,
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Drop runs inside the test's runtime; a separate thread with its own runtime may block.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                        admin.close().await.ok();
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub state: AppState,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    // Field order matters: the database is dropped after the app's folder.
    _dir: TempDir,
    pub database: TestDatabase,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }
}

/// Settings every test starts from: port 0, a fresh database, a known master key.
pub fn test_settings(dir: &std::path::Path, database_url: &str) -> RawSettings {
    RawSettings {
        listen: "127.0.0.1:0".into(),
        public_url: Some("https://gateway.test".into()),
        data_dir: dir.to_path_buf(),
        database_url: Some(database_url.to_owned()),
        database_max_connections: 4,
        master_key: Some(MasterKey::generate().to_base64()),
        log_format: "pretty".into(),
        http_workers: Some(1),
        shutdown_timeout: "5s".into(),
        ..RawSettings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a gateway after `customize` has adjusted its settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let database = TestDatabase::new(dir.path()).await;
    let mut raw = test_settings(dir.path(), &database.url);
    customize(&mut raw);
    let settings = Settings::from_raw(raw).expect("valid test settings");
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let app = Application::build(settings).await.expect("build app");
    let port = app.local_addr().port();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("{scheme}://127.0.0.1:{port}"),
        port,
        state,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        data_dir: dir.path().to_path_buf(),
        _dir: dir,
        database,
    }
}

/// Asserts a problem+json answer with this status and code, and returns its body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> serde_json::Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("application/problem+json"),
        "content-type {ct}"
    );
    let body: serde_json::Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert_eq!(body["type"], format!("urn:webhook-gateway:problem:{code}"));
    body
}

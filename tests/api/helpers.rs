//! The test harness: `spawn_app()` starts a gateway on port 0 with a fresh database.

use std::path::PathBuf;
use std::sync::Once;

use gateway::config::{RawSettings, Settings};
use gateway::crypto::MasterKey;
use gateway::{app::Application, web::AppState};
use sea_orm::{ConnectionTrait, Database};
use tempfile::TempDir;

static TRACING: Once = Once::new();

/// `TEST_LOG=1 cargo test` shows the gateway's logs.
fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            gateway::telemetry::init(
                gateway::config::LogFormat::Pretty,
                "debug",
                gateway::telemetry::Sink::Stdout,
            );
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
    /// An SQLite file, whatever TEST_DATABASE_URL says.
    pub fn sqlite(dir: &std::path::Path) -> Self {
        Self {
            url: format!("sqlite://{}?mode=rwc", dir.join("gateway.db").display()),
            pg: None,
        }
    }

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

impl Drop for TestApp {
    /// The app's background work (delivery workers, the SQLite checkpoint thread) stops with
    /// the test instead of outliving it.
    fn drop(&mut self) {
        self.state.shutdown.cancel();
    }
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
        database_max_connections: Some(4),
        master_key: Some(MasterKey::generate().to_base64()),
        log_format: "pretty".into(),
        http_workers: Some(1),
        shutdown_timeout: "5s".into(),
        // Tests drive delivery themselves (`drain`), unless they turn the workers on.
        delivery_enabled: false,
        ..RawSettings::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a gateway after `customize` has adjusted its settings.
pub async fn spawn_app_with(customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    spawn(false, customize).await
}

/// Starts a gateway on SQLite, also when the other tests run on PostgreSQL.
pub async fn spawn_sqlite_app() -> TestApp {
    spawn(true, |_| {}).await
}

/// [`spawn_sqlite_app`] after `customize` has adjusted its settings.
pub async fn spawn_sqlite_app_with(customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    spawn(true, customize).await
}

async fn spawn(sqlite: bool, customize: impl FnOnce(&mut RawSettings)) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let database = if sqlite {
        TestDatabase::sqlite(dir.path())
    } else {
        TestDatabase::new(dir.path()).await
    };
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

pub const VECTORCARE_PUBLIC_PEM: &str = include_str!("../fixtures/keys/vectorcare_public.pem");
pub const VECTORCARE_ROTATED_PUBLIC_PEM: &str =
    include_str!("../fixtures/keys/vectorcare_rotated_public.pem");
pub const WEAK_1024_PUBLIC_PEM: &str = include_str!("../fixtures/keys/weak_1024_public.pem");
/// The Svix documentation's example secret.
pub const VITAL_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// Helpers per admin endpoint: each sends a real HTTP request through the public port.
impl TestApp {
    /// Mints a token straight into the database (the API path is tested on its own).
    pub async fn token_for(&self, role: gateway::web::auth::Role) -> String {
        let (_, jwt) = gateway::web::auth::issue_token(
            &self.state.db,
            &self.state.jwt,
            "test token",
            &role,
            std::time::Duration::from_secs(3600),
            None,
        )
        .await
        .expect("issue token");
        jwt
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(gateway::web::auth::Role::Admin).await
    }

    pub async fn tenant_token(&self, tenant_id: &str) -> String {
        let id = gateway::domain::TenantId::parse(tenant_id).expect("tenant id");
        self.token_for(gateway::web::auth::Role::Tenant(id)).await
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("request")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post_as(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn put_as(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.call(reqwest::Method::PUT, path, Some(token), Some(body))
            .await
    }

    pub async fn patch_as(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.call(reqwest::Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> reqwest::Response {
        self.call(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }

    /// Creates a tenant and returns its JSON.
    pub async fn create_tenant(
        &self,
        token: &str,
        slug: &str,
        customer_id: Option<&str>,
    ) -> serde_json::Value {
        let res = self
            .post_as(
                "/api/v1/tenants",
                token,
                serde_json::json!({"slug": slug, "name": format!("Tenant {slug}"), "customer_id": customer_id}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "create tenant {slug}");
        res.json().await.expect("tenant JSON")
    }

    /// Sets a VectorCare connection with the fixture public key.
    pub async fn connect_vectorcare(&self, token: &str, tenant: &str) -> serde_json::Value {
        let res = self
            .put_as(
                &format!("/api/v1/tenants/{tenant}/providers/vectorcare"),
                token,
                serde_json::json!({
                    "public_keys": [VECTORCARE_PUBLIC_PEM],
                    "client_id": "client-123",
                    "client_secret": "vc-client-secret-0123456789",
                }),
            )
            .await;
        assert!(
            res.status().is_success(),
            "connect vectorcare: {}",
            res.status()
        );
        res.json().await.expect("connection JSON")
    }

    /// Creates an endpoint and returns its JSON (with the one-time `signing_secret`).
    pub async fn create_endpoint(&self, token: &str, tenant: &str, url: &str) -> serde_json::Value {
        let res = self
            .post_as(
                &format!("/api/v1/tenants/{tenant}/endpoints"),
                token,
                serde_json::json!({"url": url, "description": "test receiver"}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "create endpoint");
        res.json().await.expect("endpoint JSON")
    }
}

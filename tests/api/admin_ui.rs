//! The admin UI: served from the binary with a strict policy, and driven end to end in Debian's
//! headless Chromium by `tests/browser/admin-ui.test.mjs` (playwright-core).

use std::path::Path;
use std::process::Command;

use crate::helpers::{spawn_app, TestDatabase};

#[tokio::test]
async fn the_admin_ui_is_served_from_the_binary_and_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;
    let res = app.get("/admin").await;
    assert_eq!(res.status().as_u16(), 200);
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = res.text().await.unwrap();
    assert!(html.contains("/admin/app.js"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URL in the page"
    );
    for (path, kind) in [
        ("/admin/app.js", "javascript"),
        ("/admin/delivery.js", "javascript"),
        ("/admin/style.css", "css"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status().as_u16(), 200, "{path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.contains(kind), "{path}: {ct}");
        let text = res.text().await.unwrap();
        // The only absolute URLs: the SVG namespace (an identifier, never fetched) and the
        // example.com placeholders of input fields.
        for (i, _) in text.match_indices("://") {
            let host: String = text[i + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            assert!(
                host == "www.w3.org" || host.ends_with("example.com"),
                "{path} refers to {host}"
            );
        }
    }
}

/// Runs the browser test with the binary cargo built. Needs Node.js and Chromium
/// (`apt-get install chromium`, or `CHROMIUM=/path`); installs playwright-core on first run.
#[tokio::test]
async fn an_admin_onboards_a_tenant_and_redelivers_a_failed_delivery_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser_dir = root.join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the admin UI test needs Chromium: `apt-get install chromium` (Debian), or set CHROMIUM"
    );
    if !browser_dir.join("node_modules/playwright-core").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&browser_dir)
            .status()
            .expect("npm (Node.js) is needed for the admin UI test");
        assert!(status.success(), "npm ci in tests/browser failed");
    }
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(dir.path()).await;
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir.join("admin-ui.test.mjs"))
        .env("UI_TEST_BIN", env!("CARGO_BIN_EXE_gateway"))
        .env("CHROMIUM", &chromium);
    if db.is_postgres() {
        cmd.env("UI_TEST_DATABASE_URL", &db.url);
    }
    let out = cmd
        .output()
        .expect("node (Node.js) is needed for the admin UI test");
    assert!(
        out.status.success(),
        "browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

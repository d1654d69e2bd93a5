use gateway::app::Application;
use gateway::config::Settings;
use gateway::crypto::MasterKey;

use crate::helpers::{spawn_app, test_settings};

#[tokio::test]
async fn a_restart_with_another_master_key_is_refused_with_a_clear_message() {
    let app = spawn_app().await;
    let mut raw = test_settings(&app.data_dir, &app.database.url);
    raw.master_key = Some(MasterKey::generate().to_base64());
    let err = Application::build(Settings::from_raw(raw).unwrap())
        .await
        .err()
        .expect("a different key is refused");
    assert!(
        format!("{err:#}").contains("master key does not match"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_restart_with_the_same_master_key_is_accepted() {
    let app = spawn_app().await;
    let mut raw = test_settings(&app.data_dir, &app.database.url);
    raw.master_key = Some(app.state.master_key.to_base64());
    Application::build(Settings::from_raw(raw).unwrap())
        .await
        .expect("same key accepted");
}

use super::*;

fn raw() -> RawSettings {
    RawSettings::default()
}

fn err_text(raw: RawSettings) -> String {
    Settings::from_raw(raw).unwrap_err().to_string()
}

#[test]
fn defaults_validate_to_the_embedded_sqlite_on_port_8080() {
    let s = Settings::from_raw(raw()).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8080/");
    assert!(matches!(
        s.database,
        DatabaseTarget::Sqlite { embedded_default: true, ref url } if url.contains("data/gateway.db")
    ));
    assert!(matches!(s.master_key, MasterKeySource::Generated(_)));
}

#[test]
fn a_bad_listen_address_names_the_setting() {
    let text = err_text(RawSettings {
        listen: "localhost".into(),
        ..raw()
    });
    assert!(text.contains("GATEWAY_LISTEN"), "{text}");
}

#[test]
fn a_public_url_with_a_query_is_refused() {
    let text = err_text(RawSettings {
        public_url: Some("https://gw.example/?a=1".into()),
        ..raw()
    });
    assert!(
        text.contains("GATEWAY_PUBLIC_URL") && text.contains("query"),
        "{text}"
    );
}

#[test]
fn an_unsupported_database_is_refused() {
    let text = err_text(RawSettings {
        database_url: Some("mysql://x".into()),
        ..raw()
    });
    assert!(text.contains("DATABASE_URL"), "{text}");
}

#[test]
fn postgres_without_a_master_key_is_refused() {
    let text = err_text(RawSettings {
        database_url: Some("postgres://postgres@127.0.0.1/test".into()),
        ..raw()
    });
    assert!(text.contains("GATEWAY_MASTER_KEY"), "{text}");
}

#[test]
fn a_master_key_of_the_wrong_length_is_refused() {
    let text = err_text(RawSettings {
        master_key: Some("c2hvcnQ=".into()),
        ..raw()
    });
    assert!(
        text.contains("GATEWAY_MASTER_KEY") && text.contains("32 bytes"),
        "{text}"
    );
}

#[test]
fn synchronous_off_is_refused() {
    let text = err_text(RawSettings {
        sqlite_synchronous: "off".into(),
        ..raw()
    });
    assert!(text.contains("GATEWAY_SQLITE_SYNCHRONOUS"), "{text}");
}

#[test]
fn a_tls_certificate_without_a_key_is_refused() {
    let text = err_text(RawSettings {
        tls_cert: Some("/etc/hostname".into()),
        ..raw()
    });
    assert!(text.contains("GATEWAY_TLS_KEY"), "{text}");
}

#[test]
fn environment_overrides_the_file_which_overrides_defaults() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "gateway.toml",
            r#"
            listen = "127.0.0.1:9000"
            public_url = "https://file.example"
            "#,
        )?;
        jail.set_env("GATEWAY_PUBLIC_URL", "https://env.example/base/");
        let s = Settings::load(Some(Path::new("gateway.toml"))).map_err(|e| e.to_string())?;
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.public_url.as_str(), "https://env.example/base/");
        Ok(())
    });
}

#[test]
fn an_unknown_key_in_the_file_is_refused_by_name() {
    figment::Jail::expect_with(|jail| {
        jail.create_file("gateway.toml", "listn = \"127.0.0.1:9000\"")?;
        let e = Settings::load(Some(Path::new("gateway.toml"))).unwrap_err();
        assert!(e.to_string().contains("listn"), "{e}");
        Ok(())
    });
}

#[test]
fn a_wrongly_typed_environment_value_is_refused_by_name() {
    figment::Jail::expect_with(|jail| {
        jail.set_env("GATEWAY_MAX_BODY_BYTES", "lots");
        let e = Settings::load(None).unwrap_err();
        assert!(e.to_string().contains("GATEWAY_MAX_BODY_BYTES"), "{e}");
        Ok(())
    });
}

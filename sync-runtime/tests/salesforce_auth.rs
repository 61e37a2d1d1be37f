//! Logging in to the emulated org with every OAuth flow, refreshing an expired session without the
//! caller noticing, and keeping credentials out of Debug output, errors and logs.

mod salesforce_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use salesforce_support::{fast_retries, org, org_with, Org, PASSWORD, USERNAME};
use serde_json::Value;
use sync_runtime::salesforce::{CallKind, Client, Config, Credentials, SfErrorKind};

async fn accounts(client: &Client) -> u64 {
    client
        .count("SELECT COUNT() FROM Account")
        .await
        .expect("count works once logged in")
}

fn client_for(org: &Org, credentials: Credentials) -> Client {
    let mut config = Config::new(org.base.clone(), credentials);
    config.retry = fast_retries();
    config.org_reserve = 0;
    Client::new(config).expect("client")
}

#[tokio::test]
async fn password_grant_logs_in_and_queries() {
    let org = org().await;
    let client = org.client();
    assert!(accounts(&client).await > 0);
    assert_eq!(client.call_counts().get(CallKind::Auth), 1);
    assert_eq!(client.instance_url().await.expect("instance"), org.base);
}

#[tokio::test]
async fn client_credentials_grant_logs_in() {
    let org = org().await;
    let client = client_for(
        &org,
        Credentials::ClientCredentials {
            client_id: "forcesync".into(),
            client_secret: "forcesync".into(),
        },
    );
    assert!(accounts(&client).await > 0);
}

#[tokio::test]
async fn refresh_token_grant_logs_in() {
    let org = org().await;
    sync_runtime::salesforce::http::install_crypto_provider();
    let issued: Value = reqwest::Client::new()
        .post(format!("{}/services/oauth2/token", org.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "forcesync"),
            ("client_secret", "forcesync"),
            ("username", USERNAME),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let refresh = issued["refresh_token"].as_str().expect("a refresh token");
    let client = client_for(
        &org,
        Credentials::RefreshToken {
            client_id: "forcesync".into(),
            client_secret: None,
            refresh_token: refresh.into(),
        },
    );
    assert!(accounts(&client).await > 0);
}

#[tokio::test]
async fn jwt_bearer_grant_signs_with_the_key_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec!["forcesync-connected-app".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let cert_path = dir.path().join("app.crt");
    let key_path = dir.path().join("app.key");
    std::fs::write(&cert_path, cert.pem()).expect("cert file");
    std::fs::write(&key_path, key.serialize_pem()).expect("key file");
    let org = org_with(sf_emulator::server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        seed: Some("demo".to_owned()),
        jwt_cert: Some(cert_path),
        ..Default::default()
    })
    .await;
    let client = client_for(
        &org,
        Credentials::JwtBearer {
            client_id: "forcesync".into(),
            username: USERNAME.into(),
            key_file: key_path,
            audience: None,
        },
    );
    assert!(accounts(&client).await > 0);

    // A key the org does not trust is refused, as a definite auth error.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
    let other_path = dir.path().join("other.key");
    std::fs::write(&other_path, other.serialize_pem()).expect("key file");
    let stranger = client_for(
        &org,
        Credentials::JwtBearer {
            client_id: "forcesync".into(),
            username: USERNAME.into(),
            key_file: other_path,
            audience: None,
        },
    );
    let e = stranger.login().await.expect_err("untrusted key");
    assert_eq!(e.kind, SfErrorKind::Auth);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn an_expired_session_is_refreshed_and_the_call_retried_once() {
    let org = org().await;
    let client = org.client();
    let before = accounts(&client).await;
    org.post("sessions/expire", serde_json::json!({})).await;
    assert_eq!(accounts(&client).await, before);
    let counts = client.call_counts();
    assert_eq!(counts.get(CallKind::Auth), 2, "logged in again once");
    assert_eq!(
        counts.get(CallKind::Query),
        3,
        "the refused query was sent again"
    );
}

/// A log sink for the test's tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn credentials_never_reach_debug_output_errors_or_logs() {
    const SECRET: &str = "cs-Secret-7f3a";
    const GOOD_PASSWORD: &str = "pw-Good-91c2";
    const TOKEN: &str = "tok-Sec-55e0";
    let org = org_with(sf_emulator::server::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        seed: Some("demo".to_owned()),
        password: GOOD_PASSWORD.to_owned(),
        security_token: TOKEN.to_owned(),
        client_secret: SECRET.to_owned(),
        ..Default::default()
    })
    .await;
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let credentials = |password: &str| Credentials::Password {
        client_id: "forcesync".into(),
        client_secret: SECRET.into(),
        username: USERNAME.into(),
        password: password.into(),
        security_token: TOKEN.into(),
    };
    let good = client_for(&org, credentials(GOOD_PASSWORD));
    assert!(accounts(&good).await > 0);
    // An expired session makes the client log in again, and logs it.
    org.post("sessions/expire", serde_json::json!({})).await;
    assert!(accounts(&good).await > 0);

    let wrong_password = "pw-Wrong-0b7d";
    let bad = client_for(&org, credentials(wrong_password));
    let error = bad.login().await.expect_err("wrong password");
    assert_eq!(error.kind, SfErrorKind::Auth);

    let shown = [
        format!("{good:?}"),
        format!("{bad:?}"),
        format!("{:?}", good.config()),
        format!("{error:?}"),
        error.to_string(),
        String::from_utf8_lossy(&logs.0.lock().expect("logs")).into_owned(),
    ];
    assert!(
        shown[5].contains("logging in again"),
        "the refresh is logged: {}",
        shown[5]
    );
    for text in &shown {
        for secret in [SECRET, GOOD_PASSWORD, TOKEN, wrong_password] {
            assert!(!text.contains(secret), "{secret} leaked into: {text}");
        }
    }
}

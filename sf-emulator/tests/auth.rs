//! Authentication as clients see it over real HTTP: every OAuth grant (password,
//! client_credentials, refresh_token, JWT bearer), their error bodies, revocation, identity,
//! SOAP login in simple-salesforce's and jsforce's envelopes with its fault, expired sessions,
//! and HTTPS with the generated CA.

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sf_emulator::server::{start, Config, RunningEmulator};
use sha2::Sha256;

async fn emulator(config: Config) -> RunningEmulator {
    start(config).await.expect("the emulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn token(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let response = client()
        .post(format!("{base}/services/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

const PASSWORD_GRANT: &[(&str, &str)] = &[
    ("grant_type", "password"),
    ("client_id", "forcesync"),
    ("client_secret", "forcesync"),
    ("username", "admin@example.com"),
    ("password", "forcesync"),
];

/// A REST call that needs a valid session.
async fn rest_status(base: &str, access_token: &str) -> (StatusCode, Value) {
    let response = client()
        .get(format!("{base}/services/data/v59.0/sobjects"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn password_grant_returns_a_signed_token_response() {
    let emu = emulator(Config::ephemeral()).await;
    let (status, body) = token(&emu.base_url, PASSWORD_GRANT).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let org_id = emu.org.org_id().to_string();
    let user_id = emu.org.user_id().to_string();
    assert_eq!(body["instance_url"], json!(emu.base_url));
    assert_eq!(
        body["id"],
        json!(format!("{}/id/{org_id}/{user_id}", emu.base_url))
    );
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["scope"].as_str().unwrap().contains("api"));
    let issued_at = body["issued_at"].as_str().expect("issued_at is a string");
    let issued_ms: i64 = issued_at.parse().unwrap();
    assert!((issued_ms - emu.org.now_ms()).abs() < 60_000);
    let mut mac = Hmac::<Sha256>::new_from_slice(b"forcesync").unwrap();
    mac.update(format!("{}{issued_at}", body["id"].as_str().unwrap()).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(body["signature"], json!(expected));
    assert!(body["refresh_token"].as_str().is_some());

    let access_token = body["access_token"].as_str().unwrap();
    assert!(access_token.starts_with(&org_id[..15]));
    let (status, _) = rest_status(&emu.base_url, access_token).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn instance_url_follows_the_host_the_client_used() {
    let emu = emulator(Config::ephemeral()).await;
    let via_localhost = format!("http://localhost:{}", emu.addr.port());
    let (status, body) = token(&via_localhost, PASSWORD_GRANT).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["instance_url"], json!(via_localhost));
    assert!(body["id"].as_str().unwrap().starts_with(&via_localhost));
}

#[tokio::test]
async fn password_grant_errors_are_salesforce_oauth_errors() {
    let emu = emulator(Config::ephemeral()).await;
    let with = |name: &'static str, value: &'static str| {
        PASSWORD_GRANT
            .iter()
            .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
            .collect::<Vec<_>>()
    };
    let cases = [
        (
            with("password", "wrong"),
            json!({"error":"invalid_grant","error_description":"authentication failure"}),
        ),
        (
            with("username", "someone@example.com"),
            json!({"error":"invalid_grant","error_description":"authentication failure"}),
        ),
        (
            with("client_secret", "wrong"),
            json!({"error":"invalid_client","error_description":"invalid client credentials"}),
        ),
        (
            with("client_id", "other-app"),
            json!({"error":"invalid_client_id","error_description":"client identifier invalid"}),
        ),
        (
            with("grant_type", "authorization_code"),
            json!({"error":"unsupported_grant_type","error_description":"grant type not supported"}),
        ),
    ];
    for (form, expected) in cases {
        let (status, body) = token(&emu.base_url, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body, expected, "{form:?}");
    }
}

#[tokio::test]
async fn security_token_is_appended_to_the_password() {
    let config = Config {
        security_token: "TOKEN123".into(),
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    let (status, _) = token(&emu.base_url, PASSWORD_GRANT).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let form: Vec<_> = PASSWORD_GRANT
        .iter()
        .map(|&(k, v)| {
            if k == "password" {
                (k, "forcesyncTOKEN123")
            } else {
                (k, v)
            }
        })
        .collect();
    let (status, body) = token(&emu.base_url, &form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn client_credentials_with_basic_auth_or_form_fields() {
    let emu = emulator(Config::ephemeral()).await;
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("forcesync:{secret}"))
        )
    };
    let response = client()
        .post(format!("{}/services/oauth2/token", emu.base_url))
        .header("Authorization", basic("forcesync"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    let (status, _) = rest_status(&emu.base_url, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    let response = client()
        .post(format!("{}/services/oauth2/token", emu.base_url))
        .header("Authorization", basic("nope"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "invalid_client"
    );

    let (status, _) = token(
        &emu.base_url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "forcesync"),
            ("client_secret", "forcesync"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refresh_token_grant_mints_new_sessions() {
    let emu = emulator(Config::ephemeral()).await;
    let (_, first) = token(&emu.base_url, PASSWORD_GRANT).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    // jsforce omits client_secret when it has none; tap-salesforce sends it.
    for form in [
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", "forcesync"),
            ("refresh_token", refresh),
        ],
        vec![
            ("grant_type", "refresh_token"),
            ("client_id", "forcesync"),
            ("client_secret", "forcesync"),
            ("refresh_token", refresh),
        ],
    ] {
        let (status, body) = token(&emu.base_url, &form).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_ne!(body["access_token"], first["access_token"]);
        let (status, _) = rest_status(&emu.base_url, body["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = token(
        &emu.base_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", "forcesync"),
            ("refresh_token", "5Aep861nonsense"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error":"invalid_grant","error_description":"expired access/refresh token"})
    );
}

/// An RSA key and a self-signed certificate for it, as a connected app would hold them.
fn jwt_keys(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["forcesync-connected-app".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.join("connected-app.crt");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    (key.serialize_pem(), cert_path)
}

fn assertion(private_pem: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn jwt_bearer_grant_verifies_the_assertion_against_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, cert_path) = jwt_keys(dir.path());
    let config = Config {
        jwt_cert: Some(cert_path),
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    let now = emu.org.now_ms() / 1000;
    let grant = |claims: Value| {
        let assertion = assertion(&private_pem, claims);
        let base = emu.base_url.clone();
        async move {
            token(
                &base,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &assertion),
                ],
            )
            .await
        }
    };
    // simple-salesforce sends exp as a string.
    let (status, body) = grant(json!({"iss":"forcesync","sub":"admin@example.com",
        "aud":"https://login.salesforce.com","exp":(now + 180).to_string()}))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none());
    let (status, _) = rest_status(&emu.base_url, body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // The emulator's own URL is an accepted audience too.
    let (status, _) = grant(json!({"iss":"forcesync","sub":"admin@example.com",
        "aud":emu.base_url,"exp":now + 180}))
    .await;
    assert_eq!(status, StatusCode::OK);

    let refused = [
        (
            json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":now - 5}),
            json!({"error":"invalid_grant","error_description":"expired authorization code"}),
        ),
        (
            json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://elsewhere.example","exp":now + 180}),
            json!({"error":"invalid_grant","error_description":"audience is invalid"}),
        ),
        (
            json!({"iss":"another-app","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":now + 180}),
            json!({"error":"invalid_client_id","error_description":"client identifier invalid"}),
        ),
        (
            json!({"iss":"forcesync","sub":"nobody@example.com","aud":"https://login.salesforce.com","exp":now + 180}),
            json!({"error":"invalid_grant","error_description":"user hasn't approved this consumer"}),
        ),
    ];
    for (claims, expected) in refused {
        let (status, body) = grant(claims.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{claims}");
        assert_eq!(body, expected, "{claims}");
    }

    // Signed with a key the connected app does not have.
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = jwt_keys(other.path());
    let forged = assertion(
        &other_key,
        json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":now + 180}),
    );
    let (status, body) = token(
        &emu.base_url,
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &forged),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error":"invalid_grant","error_description":"invalid assertion"})
    );
}

#[tokio::test]
async fn revoked_and_expired_sessions_get_invalid_session_id() {
    let emu = emulator(Config::ephemeral()).await;
    let (_, body) = token(&emu.base_url, PASSWORD_GRANT).await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let response = client()
        .post(format!("{}/services/oauth2/revoke", emu.base_url))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = rest_status(&emu.base_url, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );

    // Sessions end after their lifetime of inactivity.
    let (_, body) = token(&emu.base_url, PASSWORD_GRANT).await;
    let access = body["access_token"].as_str().unwrap().to_string();
    emu.org.advance_clock(7_201 * 1000);
    let (status, body) = rest_status(&emu.base_url, &access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!([{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}])
    );
}

#[tokio::test]
async fn identity_and_userinfo_describe_the_session_user() {
    let emu = emulator(Config::ephemeral()).await;
    let (_, body) = token(&emu.base_url, PASSWORD_GRANT).await;
    let access = body["access_token"].as_str().unwrap();
    let identity: Value = client()
        .get(body["id"].as_str().unwrap())
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(identity["id"], body["id"]);
    assert_eq!(identity["username"], "admin@example.com");
    assert_eq!(
        identity["organization_id"],
        json!(emu.org.org_id().to_string())
    );
    assert_eq!(identity["user_id"], json!(emu.org.user_id().to_string()));
    assert_eq!(
        identity["urls"]["rest"],
        json!(format!("{}/services/data/v{{version}}/", emu.base_url))
    );

    let userinfo: Value = client()
        .get(format!("{}/services/oauth2/userinfo", emu.base_url))
        .header("Authorization", format!("OAuth {access}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo["preferred_username"], "admin@example.com");
    assert_eq!(userinfo["sub"], body["id"]);

    let response = client()
        .get(format!("{}/services/oauth2/userinfo", emu.base_url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.text().await.unwrap(), "Bad_OAuth_Token");
}

const SIMPLE_SALESFORCE_LOGIN: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<env:Envelope
        xmlns:xsd="http://www.w3.org/2001/XMLSchema"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"
        xmlns:urn="urn:partner.soap.sforce.com">
    <env:Header>
        <urn:CallOptions>
            <urn:client>simple-salesforce</urn:client>
            <urn:defaultNamespace>sf</urn:defaultNamespace>
        </urn:CallOptions>
    </env:Header>
    <env:Body>
        <n1:login xmlns:n1="urn:partner.soap.sforce.com">
            <n1:username>admin@example.com</n1:username>
            <n1:password>PASSWORD</n1:password>
        </n1:login>
    </env:Body>
</env:Envelope>"#;

const JSFORCE_LOGIN: &str = r#"<?xml version="1.0" encoding="utf-8"?><se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header/><se:Body><login xmlns="urn:partner.soap.sforce.com"><username>admin@example.com</username><password>PASSWORD</password></login></se:Body></se:Envelope>"#;

async fn soap(base: &str, path: &str, body: String) -> (StatusCode, String, String) {
    let response = client()
        .post(format!("{base}{path}"))
        .header("Content-Type", "text/xml")
        .header("SOAPAction", "login")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// The text of the first `<name>` element (unprefixed, as minidom/jsforce look for it).
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

#[tokio::test]
async fn soap_login_accepts_both_client_envelopes() {
    let emu = emulator(Config::ephemeral()).await;
    let org_id = emu.org.org_id().to_string();
    // Salesforce's Pub/Sub API quick start posts to the endpoint with a trailing slash.
    for (envelope, path) in [
        (SIMPLE_SALESFORCE_LOGIN, "/services/Soap/u/59.0"),
        (JSFORCE_LOGIN, "/services/Soap/u/59.0"),
        (SIMPLE_SALESFORCE_LOGIN, "/services/Soap/u/59.0/"),
    ] {
        let (status, content_type, xml) = soap(
            &emu.base_url,
            path,
            envelope.replace("PASSWORD", "forcesync"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{xml}");
        assert!(content_type.starts_with("text/xml"));
        assert!(xml.contains(r#"<soapenv:Body><loginResponse><result>"#));
        assert!(xml.contains(r#"xmlns="urn:partner.soap.sforce.com""#));
        assert_eq!(
            element(&xml, "serverUrl"),
            Some(format!("{}/services/Soap/u/59.0/{org_id}", emu.base_url).as_str())
        );
        assert_eq!(
            element(&xml, "metadataServerUrl"),
            Some(format!("{}/services/Soap/m/59.0/{org_id}", emu.base_url).as_str())
        );
        assert_eq!(element(&xml, "passwordExpired"), Some("false"));
        assert_eq!(element(&xml, "sandbox"), Some("false"));
        assert_eq!(element(&xml, "organizationId"), Some(org_id.as_str()));
        assert_eq!(
            element(&xml, "userId"),
            Some(emu.org.user_id().to_string().as_str())
        );
        assert_eq!(element(&xml, "sessionSecondsValid"), Some("7200"));
        let session = element(&xml, "sessionId").unwrap();
        let (status, _) = rest_status(&emu.base_url, session).await;
        assert_eq!(status, StatusCode::OK);
    }

    // The enterprise endpoint answers in its own namespace and with a /c/ server URL.
    let (status, _, xml) = soap(
        &emu.base_url,
        "/services/Soap/c/52.0",
        JSFORCE_LOGIN.replace("PASSWORD", "forcesync"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(xml.contains(r#"xmlns="urn:enterprise.soap.sforce.com""#));
    assert_eq!(
        element(&xml, "serverUrl"),
        Some(format!("{}/services/Soap/c/52.0/{org_id}", emu.base_url).as_str())
    );
}

#[tokio::test]
async fn soap_login_failure_is_an_invalid_login_fault() {
    let emu = emulator(Config::ephemeral()).await;
    let (status, content_type, xml) = soap(
        &emu.base_url,
        "/services/Soap/u/59.0",
        SIMPLE_SALESFORCE_LOGIN.replace("PASSWORD", "wrong"),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(content_type.starts_with("text/xml"));
    assert_eq!(
        xml,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">"#,
            r#"<soapenv:Body><soapenv:Fault><faultcode>INVALID_LOGIN</faultcode>"#,
            r#"<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>"#,
            r#"<detail><sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"#,
            r#"<sf:exceptionMessage>Invalid username, password, security token; or user locked out.</sf:exceptionMessage>"#,
            r#"</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#
        )
    );

    let (status, _, xml) = soap(&emu.base_url, "/services/Soap/u/59.0", "<nope".into()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(xml.contains("<faultcode>soapenv:Client</faultcode>"));
}

#[tokio::test]
async fn soap_logout_ends_the_session() {
    let emu = emulator(Config::ephemeral()).await;
    let (_, _, xml) = soap(
        &emu.base_url,
        "/services/Soap/u/59.0",
        JSFORCE_LOGIN.replace("PASSWORD", "forcesync"),
    )
    .await;
    let session = element(&xml, "sessionId").unwrap().to_string();
    let server_url = element(&xml, "serverUrl").unwrap().to_string();
    let logout = format!(
        r#"<se:Envelope xmlns:se="http://schemas.xmlsoap.org/soap/envelope/"><se:Header><SessionHeader xmlns="urn:partner.soap.sforce.com"><sessionId>{session}</sessionId></SessionHeader></se:Header><se:Body><logout xmlns="urn:partner.soap.sforce.com"/></se:Body></se:Envelope>"#
    );
    let path = server_url.strip_prefix(&emu.base_url).unwrap().to_string();
    let (status, _, xml) = soap(&emu.base_url, &path, logout).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains("<logoutResponse/>"));
    let (status, _) = rest_status(&emu.base_url, &session).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tls_serves_https_trusted_through_the_written_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    let config = Config {
        tls: true,
        ca_out: Some(ca_path.clone()),
        ..Config::ephemeral()
    };
    let emu = emulator(config).await;
    assert!(emu.base_url.starts_with("https://127.0.0.1:"));
    let ca = std::fs::read(&ca_path).expect("the CA is written");
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    for base in [
        emu.base_url.clone(),
        format!("https://localhost:{}", emu.addr.port()),
    ] {
        let response = trusting
            .post(format!("{base}/services/oauth2/token"))
            .form(PASSWORD_GRANT)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["instance_url"], json!(base));
    }
    // A client that does not trust the CA refuses the connection.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only(Vec::<reqwest::Certificate>::new())
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{}/services/data", emu.base_url))
        .send()
        .await
        .is_err());
}

/// The binary with `--tls --ca-out --jwt-cert`: prints an https base URL first, writes the CA,
/// and a client trusting that CA logs in over the JWT bearer flow.
#[tokio::test]
async fn the_binary_serves_https_and_jwt_from_its_flags() {
    use tokio::io::AsyncBufReadExt;

    let dir = tempfile::tempdir().unwrap();
    let (private_pem, cert_path) = jwt_keys(dir.path());
    let ca_path = dir.path().join("ca.pem");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sf-emulator"))
        .args(["--listen", "127.0.0.1:0", "--tls", "--ca-out"])
        .arg(&ca_path)
        .arg("--jwt-cert")
        .arg(&cert_path)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the sf-emulator binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut first_line = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).read_line(&mut first_line),
    )
    .await
    .expect("a base URL within 30 s")
    .unwrap();
    let base = first_line.trim().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");

    let ca = std::fs::read(&ca_path).expect("the CA is written before the URL is printed");
    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = assertion(
        &private_pem,
        json!({"iss":"forcesync","sub":"admin@example.com",
            "aud":"https://login.salesforce.com","exp":now + 180}),
    );
    let response = trusting
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", jwt.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instance_url"], json!(base));
    child.kill().await.unwrap();
}

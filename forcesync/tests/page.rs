//! The status page of `forcesync run` in a real browser: headless Chromium (Debian's `chromium`
//! and `chromium-driver`, installed by .ci/run) driven over WebDriver, against the emulator and
//! real Postgres. A JavaScript error or a failed request on any page fails the test; screenshots
//! of each page land in `target/page-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use forcesync_tests::pg::TestDb;
use serde_json::{json, Value};

const CLIENT_SECRET: &str = "cs-5Tr8pQz1";
const PASSWORD: &str = "pw-3Kd7Vn2x";
const ADMIN_TOKEN: &str = "adm-Q9w8E7r6T5y4U3i2";
const HOSTILE: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"> test";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child when dropped (the test's daemons and chromedriver never outlive it).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn forcesync(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forcesync"));
    command.args(args);
    for name in [
        "SF_JWT_KEY_FILE",
        "SF_REFRESH_TOKEN",
        "RUST_LOG",
        "FORCESYNC_ADMIN_TOKEN",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn screenshots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/page-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The browser: chromedriver on a free port and a headless Chromium session that keeps the
/// console and network log; answers chromedriver's address too (for its log endpoint).
async fn browser() -> (Killed, Client, String) {
    let port = free_port();
    let driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("chromedriver runs ({e}); install Debian's chromium and chromium-driver (.ci/run does)")
        });
    let driver = Killed(driver);
    let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
        "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"]
        },
        "goog:loggingPrefs": {"browser": "ALL"}
    }))
    .unwrap();
    let started = Instant::now();
    let client = loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("a Chromium session starts: {e}"),
        }
    };
    (driver, client, format!("http://127.0.0.1:{port}"))
}

/// The browser's console and network log since the last call: every SEVERE entry (an uncaught
/// error, a failed request) fails the test.
async fn assert_clean(client: &Client, driver_port_url: &str, page: &str) {
    let session = client.session_id().await.unwrap().unwrap();
    let log: Value = reqwest::Client::new()
        .post(format!("{driver_port_url}/session/{session}/se/log"))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let severe: Vec<&Value> = log["value"]
        .as_array()
        .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    assert!(
        severe.is_empty(),
        "{page}: errors in the browser: {severe:?}"
    );
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn text_of(client: &Client, css: &str) -> String {
    match client.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

async fn wait_text(client: &Client, css: &str, what: &str, wanted: impl Fn(&str) -> bool) {
    let started = Instant::now();
    loop {
        let text = text_of(client, css).await;
        if wanted(&text) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}; `{css}` shows: {text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn sf_login(base: &str, config: &sf_emulator::server::Config) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", config.client_id.as_str()),
            ("client_secret", CLIENT_SECRET),
            ("username", config.username.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_mappings_failures_and_acts_in_a_real_browser() {
    sync_runtime::salesforce::http::install_crypto_provider();
    let config = sf_emulator::server::Config {
        seed: Some("demo".to_owned()),
        client_secret: CLIENT_SECRET.to_owned(),
        password: PASSWORD.to_owned(),
        ..sf_emulator::server::Config::ephemeral()
    };
    let emulator = sf_emulator::server::start(config.clone()).await.unwrap();
    let db = TestDb::new();
    let mut env = vec![
        ("DATABASE_URL", db.url.clone()),
        ("SF_LOGIN_URL", emulator.base_url.clone()),
        ("SF_CLIENT_ID", config.client_id.clone()),
        ("SF_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ("SF_USERNAME", config.username.clone()),
        ("SF_PASSWORD", PASSWORD.to_owned()),
    ];
    let out = forcesync(&["migrate"], &env).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Any other address than loopback needs the admin token.
    let public = format!("0.0.0.0:{}", free_port());
    let out = forcesync(&["run", "--listen", &public], &env)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("FORCESYNC_ADMIN_TOKEN"), "{err}");

    let http = reqwest::Client::new();
    let rule = http
        .post(format!("{}/__emulator/validation-rules", emulator.base_url))
        .json(&json!({"object": "Account", "field": "Name", "op": "contains",
            "value": "test", "message": "Test accounts are not allowed", "errorDisplayField": "Name"}))
        .send()
        .await
        .unwrap();
    assert!(rule.status().is_success());

    env.push(("FORCESYNC_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()));
    let listen = format!("127.0.0.1:{}", free_port());
    let logs = tempfile::tempdir().unwrap();
    let log_path = logs.path().join("daemon.log");
    let _daemon = Killed(
        forcesync(&["run", "--listen", &listen], &env)
            .stdout(Stdio::from(std::fs::File::create(&log_path).unwrap()))
            .stderr(Stdio::from(
                std::fs::File::create(logs.path().join("daemon.err")).unwrap(),
            ))
            .spawn()
            .unwrap(),
    );
    let base = format!("http://{listen}");
    eventually("/readyz answers 200", || async {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // /healthz and /metrics need no token; the page does.
    for open in ["/healthz", "/metrics"] {
        let r = http.get(format!("{base}{open}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{open}");
    }
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(
        r.status(),
        303,
        "a browser without a session is sent to the login form"
    );
    let r = http
        .get(format!("{base}/"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(format!("{base}/mappings/Account"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a script with the bearer token sees the page"
    );
    // Actions: POST only, with the admin token and the CSRF token.
    let r = http
        .post(format!("{base}/mappings/Account/pause"))
        .form(&[("csrf", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "an action without the admin token is refused"
    );
    let r = http
        .get(format!("{base}/mappings/Account/pause"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405, "nothing changes on GET");

    let (driver, browser, driver_url) = browser().await;

    // Sign in.
    browser.goto(&format!("{base}/")).await.unwrap();
    let token_field = browser
        .wait()
        .for_element(Locator::Id("token"))
        .await
        .unwrap();
    shot(&browser, "login").await;
    token_field.send_keys(ADMIN_TOKEN).await.unwrap();
    browser
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Css("tr[data-mapping='Account']"))
        .await
        .unwrap();
    let cookies = browser.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "forcesync_session")
        .expect("the session cookie");
    assert_eq!(session.http_only(), Some(true));
    assert!(!session.value().contains(ADMIN_TOKEN));

    // The overview: every mapping with its state.
    for mapping in generated::salesforce::REGISTRY.mappings {
        let css = format!("tr[data-mapping='{}'] .state", mapping.object);
        wait_text(&browser, &css, "the mapping's state", |s| {
            s == "STREAMING" || s == "POLLING"
        })
        .await;
    }
    shot(&browser, "overview").await;
    assert_clean(&browser, &driver_url, "overview").await;

    // A write Salesforce refuses appears with its message; its hostile name renders as text.
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    pg.execute(
        "INSERT INTO salesforce.account (name) VALUES ($1)",
        &[&HOSTILE],
    )
    .await
    .unwrap();
    browser
        .goto(&format!("{base}/mappings/Account"))
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        if text_of(&browser, "#failed")
            .await
            .contains("Test accounts are not allowed")
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the failed write is listed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        browser.refresh().await.unwrap();
    }
    let failed = text_of(&browser, "#failed").await;
    assert!(
        failed.contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        "{failed}"
    );
    browser
        .find(Locator::Css("#failed details summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let values = text_of(&browser, "#failed details").await;
    assert!(
        values.contains("<script>window.__xss=1</script>"),
        "as text: {values}"
    );
    let xss = browser
        .execute("return window.__xss === undefined;", vec![])
        .await
        .unwrap();
    assert_eq!(xss, json!(true), "no script from a record ran");
    shot(&browser, "mapping-failed").await;
    assert_clean(&browser, &driver_url, "a mapping with a failed write").await;

    // An action with the session but without the CSRF token is refused.
    let r = http
        .post(format!("{base}/mappings/Account/retry"))
        .header("Cookie", format!("forcesync_session={}", session.value()))
        .form(&[("all", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "an action without the CSRF token is refused"
    );

    // Fixed in Salesforce (the rule removed), retry sends it and it leaves the list.
    let r = http
        .delete(format!("{}/__emulator/validation-rules", emulator.base_url))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    browser
        .find(Locator::Css(
            "#failed li form[action='/mappings/Account/retry'] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "[role=status]", "the retry's confirmation", |t| {
        t.contains("1 failed writes requeued")
    })
    .await;
    eventually("the retried write reaches Salesforce", || async {
        pg.query_one(
            "SELECT sfid FROM salesforce.account WHERE name = $1",
            &[&HOSTILE],
        )
        .await
        .is_ok_and(|r| r.get::<_, Option<String>>(0).is_some())
    })
    .await;
    browser
        .goto(&format!("{base}/mappings/Account"))
        .await
        .unwrap();
    let failed = text_of(&browser, "#failed").await;
    assert!(failed.contains("No failed writes."), "{failed}");
    shot(&browser, "mapping-retried").await;
    assert_clean(&browser, &driver_url, "after retry").await;

    // The page updates by itself when a change arrives from Salesforce.
    browser
        .execute("window.__kept = 42; return true;", vec![])
        .await
        .unwrap();
    let token = sf_login(&emulator.base_url, &config).await;
    let created: Value = http
        .post(format!(
            "{}/services/data/v{}/sobjects/Account",
            emulator.base_url,
            generated::salesforce::REGISTRY.api_version
        ))
        .bearer_auth(token)
        .json(&json!({"Name": "Arrived while watching"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    wait_text(&browser, "#live", "the new change on the page", |t| {
        t.contains(&id[..15])
    })
    .await;
    let kept = browser
        .execute("return window.__kept;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(42), "updated without a reload");
    shot(&browser, "mapping-live").await;

    // Pause and resume change the state shown.
    browser
        .find(Locator::Css(
            "form[action='/mappings/Account/pause'] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#live .state", "PAUSED", |s| s == "PAUSED").await;
    shot(&browser, "mapping-paused").await;
    browser
        .find(Locator::Css(
            "form[action='/mappings/Account/resume'] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#live .state", "running again", |s| {
        s == "STREAMING" || s == "POLLING"
    })
    .await;

    // Reload asks for confirmation first.
    browser
        .find(Locator::Css(
            "form[action='/mappings/Account/reload'] button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The mapping's page has an `h1` too: wait for the confirmation's (the old one goes stale).
    wait_text(&browser, "h1", "the reload confirmation", |s| {
        s == "Reload Account?"
    })
    .await;
    shot(&browser, "reload-confirm").await;
    browser
        .find(Locator::LinkText("Cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("failed"))
        .await
        .unwrap();
    assert_clean(&browser, &driver_url, "pause, resume, reload").await;

    // A narrow screen: the overview still renders without errors.
    browser.set_window_size(390, 844).await.unwrap();
    browser.goto(&format!("{base}/")).await.unwrap();
    browser
        .wait()
        .for_element(Locator::Css("tr[data-mapping='Account']"))
        .await
        .unwrap();
    shot(&browser, "overview-narrow").await;
    let source = browser.source().await.unwrap();
    for secret in [ADMIN_TOKEN, CLIENT_SECRET, PASSWORD] {
        assert!(!source.contains(secret), "a secret in the page");
    }
    assert_clean(&browser, &driver_url, "narrow overview").await;
    browser.close().await.unwrap();
    drop(driver);

    let log = std::fs::read_to_string(&log_path).unwrap_or_default()
        + &std::fs::read_to_string(logs.path().join("daemon.err")).unwrap_or_default();
    for secret in [ADMIN_TOKEN, CLIENT_SECRET, PASSWORD] {
        assert!(!log.contains(secret), "a secret in the daemon's log");
    }
}

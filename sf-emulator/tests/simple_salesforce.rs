//! Runs the pytest suite in `tests/python/` — the real, unmodified simple-salesforce package
//! driving the emulator — against an in-process emulator served over HTTPS (simple-salesforce
//! only speaks https) with a JWT certificate configured.
//!
//! The test provisions its own Python environment: when `python3` cannot import pytest and
//! simple-salesforce, it creates a virtualenv under the target directory and installs the pinned
//! versions there (once; later runs reuse it). With `PYTHON` set, that interpreter is used as it
//! is. Only when no Python 3 exists at all does the suite not run, and it says so loudly.

use std::path::Path;
use std::process::Command;

use sf_emulator::server::{start, Config};

/// The pinned client versions the suite runs against.
const REQUIREMENTS: [&str; 2] = ["simple-salesforce==1.12.10", "pytest>=8"];

/// An interpreter that can run the suite, provisioning a virtualenv when needed; `None` when
/// this machine has no Python 3.
fn python() -> Option<String> {
    if let Ok(python) = std::env::var("PYTHON") {
        return Some(python);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    if simple_salesforce_version("python3").is_ok() {
        return Some("python3".to_string());
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("simple-salesforce-venv");
    let venv_python = venv.join("bin/python");
    if simple_salesforce_version(&venv_python.to_string_lossy()).is_err() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(
            created.success(),
            "cannot create a virtualenv at {} (on Debian: apt-get install python3-venv)",
            venv.display()
        );
        let installed = Command::new(&venv_python)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(REQUIREMENTS)
            .status()
            .expect("pip runs");
        assert!(
            installed.success(),
            "pip could not install {REQUIREMENTS:?}"
        );
    }
    Some(venv_python.to_string_lossy().into_owned())
}

/// The installed simple-salesforce version, or a message saying how to install it.
fn simple_salesforce_version(python: &str) -> Result<String, String> {
    let probe = Command::new(python)
        .args([
            "-c",
            "import importlib.metadata as m, pytest, simple_salesforce; \
             print(m.version('simple-salesforce'))",
        ])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if probe.status.success() {
        Ok(String::from_utf8_lossy(&probe.stdout).trim().to_string())
    } else {
        Err(format!(
            "{python} cannot import simple_salesforce and pytest ({}); install them with \
             `python3 -m pip install simple-salesforce==1.12.10 pytest`",
            String::from_utf8_lossy(&probe.stderr).trim()
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_salesforce_drives_the_emulator() {
    let Some(python) = python() else {
        eprintln!(
            "\n*** SKIPPED: no python3 on this machine, so the simple-salesforce suite did not run. \
             Install Python 3 to run it. ***\n"
        );
        return;
    };
    let version = simple_salesforce_version(&python).unwrap_or_else(|message| panic!("{message}"));
    eprintln!("simple-salesforce {version}");

    let dir = tempfile::tempdir().unwrap();
    // The connected app's JWT key pair: the emulator trusts the certificate, the client signs.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["forcesync-connected-app".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let cert_path = dir.path().join("connected-app.crt");
    let key_path = dir.path().join("connected-app.key");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let ca_path = dir.path().join("emulator-ca.pem");

    let emu = start(Config {
        tls: true,
        ca_out: Some(ca_path.clone()),
        jwt_cert: Some(cert_path),
        ..Config::ephemeral()
    })
    .await
    .expect("the emulator starts with TLS");

    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    let base_url = emu.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(&suite)
            // The Pub/Sub API suite has its own test and environment (`tests/pubsub_python.rs`).
            .arg(format!("--ignore={}", suite.join("pubsub").display()))
            .env("SF_EMULATOR_URL", &base_url)
            .env("SF_EMULATOR_CA", &ca_path)
            .env("SF_EMULATOR_JWT_KEY", &key_path)
            .env("REQUESTS_CA_BUNDLE", &ca_path)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("pytest runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the simple-salesforce suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    emu.stop().await;
}

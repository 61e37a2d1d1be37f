//! Runs the pytest suite in `tests/python/pubsub/` — the Pub/Sub API driven the way Salesforce's
//! own Python quick start drives it, with real, unmodified third-party packages: SOAP login,
//! grpcio with stubs generated from `proto/pubsub_api.proto` by `grpc_tools.protoc` at test time,
//! TLS trusting the emulator's CA, Apache `avro` decoding payloads with the schema fetched by id,
//! `bitstring` reading the header bitmaps — against an in-process emulator served over HTTPS.
//!
//! The test provisions its own Python environment: a virtualenv under the target directory with
//! the pinned versions below (created once; later runs reuse it). With `PYTHON` set, that
//! interpreter is used as it is. Only when no Python 3 exists at all does the suite not run, and
//! it says so loudly.

use std::path::Path;
use std::process::Command;

use sf_emulator::server::{start, Config};

/// The pinned client versions the suite runs against.
const REQUIREMENTS: [&str; 6] = [
    "grpcio==1.68.1",
    "grpcio-tools==1.68.1",
    "avro==1.12.0",
    "requests==2.32.3",
    "bitstring==4.2.3",
    "pytest>=8",
];

/// What the suite imports (the probe that the environment is complete).
const IMPORTS: &str = "import grpc, grpc_tools.protoc, avro.schema, requests, bitstring, pytest";

/// An interpreter that can run the suite, provisioning a virtualenv when needed; `None` when
/// this machine has no Python 3.
fn python() -> Option<String> {
    if let Ok(python) = std::env::var("PYTHON") {
        return Some(python);
    }
    if Command::new("python3").arg("--version").output().is_err() {
        return None;
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pubsub-python-venv");
    let venv_python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", IMPORTS])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !ready(&venv_python) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_quick_start_s_clients_drive_the_pubsub_api() {
    let Some(python) = python() else {
        eprintln!(
            "\n*** SKIPPED: no python3 on this machine, so the Pub/Sub API Python suite did not \
             run. Install Python 3 to run it. ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("emulator-ca.pem");
    let emu = start(Config {
        tls: true,
        ca_out: Some(ca_path.clone()),
        // Keepalives tell the suite it has caught up with the retained events.
        pubsub_keepalive_ms: 300,
        ..Config::ephemeral()
    })
    .await
    .expect("the emulator starts with TLS");
    let pubsub = emu.pubsub_url.clone().expect("the Pub/Sub API is served");
    let pubsub = pubsub
        .strip_prefix("https://")
        .expect("served over TLS")
        .trim_end_matches('/')
        .to_string();

    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let suite = crate_dir.join("tests/python/pubsub");
    let proto_dir = crate_dir.join("proto");
    let base_url = emu.base_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(&suite)
            .env("SF_EMULATOR_URL", &base_url)
            .env("SF_EMULATOR_CA", &ca_path)
            .env("SF_EMULATOR_PUBSUB", &pubsub)
            .env("SF_EMULATOR_PROTO_DIR", &proto_dir)
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
        "the Pub/Sub API Python suite failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    emu.stop().await;
}

//! The baseline of `forcesync bench write`: a bare sequential client loop, run as a **separate
//! process**, as a user comparing forcesync with a script of their own would run it. It logs in
//! (OAuth username-password flow), then creates the records through sObject Collections, 200 a
//! call, one call after the other on one keep-alive connection, and nothing else: no Postgres,
//! no journal, no retries.
//!
//! Two such loops, each its own process: this binary's hidden `forcesync bench bare-loop`
//! (reqwest, a single-threaded runtime; always there), and the same loop in Python with
//! `requests` (the issue's baseline) when `python3` can import `requests`. The parent passes the
//! org's address and credentials in the environment (never on the command line) and reads one
//! JSON line back: `{"records": N, "seconds": S, "calls": C}`.

use std::process::Stdio;
use std::time::Instant;

use serde_json::{json, Value};
use sync_runtime::cli::CliError;

use super::measure::Throughput;

/// Records per sObject Collections call (Salesforce's maximum).
pub const PER_CALL: usize = 200;

/// Where the loop sends and how it logs in (passed to the child in its environment).
#[derive(Debug, Clone)]
pub struct LoopOrg {
    pub login_url: String,
    pub api_version: String,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    /// The password with the security token appended, as the password grant takes it.
    pub password: String,
}

impl LoopOrg {
    fn env(&self) -> [(&'static str, &str); 6] {
        [
            ("BARE_LOOP_LOGIN_URL", &self.login_url),
            ("BARE_LOOP_API_VERSION", &self.api_version),
            ("BARE_LOOP_CLIENT_ID", &self.client_id),
            ("BARE_LOOP_CLIENT_SECRET", &self.client_secret),
            ("BARE_LOOP_USERNAME", &self.username),
            ("BARE_LOOP_PASSWORD", &self.password),
        ]
    }

    fn from_env() -> Result<LoopOrg, CliError> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                CliError::settings(format!(
                    "{name} is not set (`bench bare-loop` is started by `bench write`)"
                ))
            })
        };
        Ok(LoopOrg {
            login_url: var("BARE_LOOP_LOGIN_URL")?,
            api_version: var("BARE_LOOP_API_VERSION")?,
            client_id: var("BARE_LOOP_CLIENT_ID")?,
            client_secret: var("BARE_LOOP_CLIENT_SECRET")?,
            username: var("BARE_LOOP_USERNAME")?,
            password: var("BARE_LOOP_PASSWORD")?,
        })
    }
}

/// Which loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// This binary, `forcesync bench bare-loop` (reqwest).
    Forcesync,
    /// `python3` with `requests`.
    Python,
}

impl Client {
    /// The name printed on its line.
    pub fn label(self) -> &'static str {
        match self {
            Client::Forcesync => "bare Collections loop, reqwest",
            Client::Python => "bare Collections loop, Python",
        }
    }

    /// Its name in a run's line.
    pub fn short_name(self) -> &'static str {
        match self {
            Client::Forcesync => "reqwest loop",
            Client::Python => "Python loop",
        }
    }

    /// What it is, for the ratio's line.
    pub fn description(self) -> &'static str {
        match self {
            Client::Forcesync => "Rust reqwest, `forcesync bench bare-loop`",
            Client::Python => "Python `requests`",
        }
    }
}

/// The hidden subcommand the child runs.
pub fn command() -> clap::Command {
    clap::Command::new("bare-loop")
        .hide(true)
        .about("(started by `bench write`) a bare sequential sObject Collections loop")
        .arg(
            clap::Arg::new("records")
                .long("records")
                .value_name("N")
                .required(true)
                .value_parser(clap::value_parser!(u32).range(1..)),
        )
        .arg(
            clap::Arg::new("prefix")
                .long("prefix")
                .value_name("TEXT")
                .default_value("Baseline"),
        )
}

/// The child: logs in, sends, prints its JSON line.
pub fn run(sub: &clap::ArgMatches) -> Result<(), CliError> {
    let records = *sub.get_one::<u32>("records").expect("required");
    let prefix = sub.get_one::<String>("prefix").expect("defaulted").clone();
    let org = LoopOrg::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    let t = runtime.block_on(sequential_loop(&org, records, &prefix))?;
    println!(
        "{}",
        json!({"records": t.records, "seconds": t.seconds, "calls": t.calls})
    );
    Ok(())
}

/// The loop itself: one call after the other, each awaited before the next is sent.
async fn sequential_loop(
    org: &LoopOrg,
    records: u32,
    prefix: &str,
) -> Result<Throughput, CliError> {
    let http = reqwest::Client::new();
    let fail = |what: &str, e: &dyn std::fmt::Display| CliError::failure(format!("{what}: {e}"));
    let login: Value = http
        .post(format!(
            "{}/services/oauth2/token",
            org.login_url.trim_end_matches('/')
        ))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
            ("username", &org.username),
            ("password", &org.password),
        ])
        .send()
        .await
        .map_err(|e| fail("login", &e))?
        .error_for_status()
        .map_err(|e| fail("login", &e))?
        .json()
        .await
        .map_err(|e| fail("login", &e))?;
    let token = login["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let instance = login["instance_url"]
        .as_str()
        .unwrap_or(&org.login_url)
        .trim_end_matches('/')
        .to_owned();
    let url = format!(
        "{instance}/services/data/v{}/composite/sobjects",
        org.api_version.trim_start_matches('v')
    );
    let started = Instant::now();
    let mut calls = 0;
    let total = records as usize;
    for start in (0..total).step_by(PER_CALL) {
        let chunk: Vec<Value> = (start..total.min(start + PER_CALL))
            .map(|i| json!({"attributes": {"type": "Account"}, "Name": format!("{prefix} {i}")}))
            .collect();
        let body = json!({"allOrNone": false, "records": chunk});
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .map_err(|e| fail("sObject Collections", &e))?;
        calls += 1;
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| fail("sObject Collections answer", &e))?;
        if !status.is_success() {
            return Err(CliError::failure(format!(
                "sObject Collections answered {status}: {answer}"
            )));
        }
    }
    Ok(Throughput {
        records: u64::from(records),
        seconds: started.elapsed().as_secs_f64(),
        calls,
    })
}

/// The same loop in Python with `requests` (stdin of `python3 -`).
const PYTHON_LOOP: &str = r#"
import json, os, sys, time
import requests
env = os.environ
records, prefix = int(sys.argv[1]), sys.argv[2]
s = requests.Session()
login = s.post(env["BARE_LOOP_LOGIN_URL"].rstrip("/") + "/services/oauth2/token", data={
    "grant_type": "password", "client_id": env["BARE_LOOP_CLIENT_ID"],
    "client_secret": env["BARE_LOOP_CLIENT_SECRET"], "username": env["BARE_LOOP_USERNAME"],
    "password": env["BARE_LOOP_PASSWORD"]})
login.raise_for_status()
login = login.json()
url = "%s/services/data/v%s/composite/sobjects" % (
    login.get("instance_url", env["BARE_LOOP_LOGIN_URL"]).rstrip("/"),
    env["BARE_LOOP_API_VERSION"].lstrip("v"))
headers = {"Authorization": "Bearer " + login["access_token"]}
calls = 0
started = time.perf_counter()
for start in range(0, records, 200):
    body = {"allOrNone": False, "records": [
        {"attributes": {"type": "Account"}, "Name": "%s %d" % (prefix, i)}
        for i in range(start, min(start + 200, records))]}
    r = s.post(url, json=body, headers=headers)
    calls += 1
    r.raise_for_status()
    r.json()
seconds = time.perf_counter() - started
print(json.dumps({"records": records, "seconds": seconds, "calls": calls}))
"#;

/// Whether `python3` can import `requests` here.
pub async fn python_available() -> bool {
    tokio::process::Command::new("python3")
        .args(["-c", "import requests"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Runs one loop as a child process and reads its figures.
pub async fn measure(
    client: Client,
    org: &LoopOrg,
    records: u32,
    prefix: &str,
) -> Result<Throughput, CliError> {
    let mut command = match client {
        Client::Forcesync => {
            let exe = std::env::current_exe().map_err(|e| {
                CliError::failure(format!("cannot find this binary to run the bare loop: {e}"))
            })?;
            let mut c = tokio::process::Command::new(exe);
            c.args(["bench", "bare-loop", "--records"])
                .arg(records.to_string())
                .args(["--prefix", prefix])
                .stdin(Stdio::null());
            c
        }
        Client::Python => {
            let mut c = tokio::process::Command::new("python3");
            c.args(["-", &records.to_string(), prefix])
                .stdin(Stdio::piped());
            c
        }
    };
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in org.env() {
        command.env(name, value);
    }
    let mut child = command
        .spawn()
        .map_err(|e| CliError::failure(format!("{}: cannot start: {e}", client.label())))?;
    if client == Client::Python {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("piped");
        stdin
            .write_all(PYTHON_LOOP.as_bytes())
            .await
            .map_err(|e| CliError::failure(format!("{}: {e}", client.label())))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| CliError::failure(format!("{}: {e}", client.label())))?;
    if !out.status.success() {
        return Err(CliError::failure(format!(
            "{} failed ({}): {}",
            client.label(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    parse_figures(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| {
        CliError::failure(format!(
            "{} printed no figures: {}",
            client.label(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    })
}

/// The figures of a child's last JSON line (pure).
pub fn parse_figures(stdout: &str) -> Option<Throughput> {
    let line: Value =
        serde_json::from_str(stdout.lines().rev().find(|l| !l.trim().is_empty())?).ok()?;
    Some(Throughput {
        records: line["records"].as_u64()?,
        seconds: line["seconds"].as_f64()?,
        calls: line["calls"].as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_childs_figures_are_read_from_its_last_line() {
        let t = parse_figures("warming up\n{\"records\": 400, \"seconds\": 0.5, \"calls\": 2}\n\n")
            .unwrap();
        assert_eq!(
            t,
            Throughput {
                records: 400,
                seconds: 0.5,
                calls: 2
            }
        );
        assert_eq!(parse_figures("Traceback (most recent call last):"), None);
        assert_eq!(parse_figures(""), None);
    }
}

//! The demo's throwaway Postgres: `initdb` into a temp dir and `pg_ctl start` on a free port (as
//! the `postgres` OS user when run as root). A watchdog shell holds the cluster and stops it,
//! removing the directory, as soon as this process exits however it exits (its stdin is a pipe
//! from this process). The same approach as the test harness (`tests/src/pg.rs`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running private cluster; dropping it stops the cluster.
pub struct Cluster {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub url: String,
    pg_ctl: PathBuf,
    data: PathBuf,
    as_root: bool,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop the server now; the watchdog then only removes the directory.
        let data = self.data.display().to_string();
        let pg_ctl = self.pg_ctl.display().to_string();
        let args = ["-D", data.as_str(), "-m", "fast", "-w", "stop"];
        let mut stop = if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", pg_ctl.as_str()]).args(args);
            c
        } else {
            let mut c = Command::new(&pg_ctl);
            c.args(args);
            c
        };
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

fn bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    candidates.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = candidates.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    Err("no Postgres server binaries found (initdb, pg_ctl): install Postgres, or set DATABASE_URL to a database the demo may use".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// Starts a private cluster.
pub fn start() -> Result<Cluster, String> {
    let bin = bin_dir()?;
    let root = std::env::temp_dir().join(format!("forcesync-demo-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    let as_root = is_root();
    if as_root {
        let ok = Command::new("chown")
            .args(["postgres:", &root.display().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!(
                "cannot hand {} to the postgres user",
                root.display()
            ));
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free TCP port: {e}"))?;
    let data = root.join("data");
    let log = root.join("postgres.log");
    let script = format!(
        "set -e
{initdb} -D {data} -U postgres -A trust -E UTF8 --no-sync >{log} 2>&1
{pg_ctl} -D {data} -l {log} -w -o \"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null
echo ready
set +e
cat >/dev/null
{pg_ctl} -D {data} -m fast stop >/dev/null 2>&1
rm -rf {root}",
        initdb = quote(&bin.join("initdb")),
        pg_ctl = quote(&bin.join("pg_ctl")),
        data = quote(&data),
        log = quote(&log),
        root = quote(&root),
    );
    let mut command = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start Postgres: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() != "ready" {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("the demo Postgres did not start:\n{log}"));
    }
    let stdin = child.stdin.take().ok_or("no stdin")?;
    Ok(Cluster {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        pg_ctl: bin.join("pg_ctl"),
        data,
        as_root,
        watchdog: Some((child, stdin)),
    })
}

//! A throwaway Postgres cluster: `initdb` into a temp dir and `pg_ctl start` on a free port,
//! run as the `postgres` OS user when this process is root. Used by the test harness
//! (`forcesync_tests::pg`) and by `forcesync demo` / `bench`, so both start Postgres one way.
//!
//! A watchdog shell holds the cluster: it stops the server and removes the directory as soon as
//! this process exits, however it exits, because its stdin is a pipe from this process. Dropping
//! the [`Cluster`] stops it at once (a harness that keeps it in a `static` relies on the
//! watchdog instead). No dependencies.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// A running private cluster; dropping it stops the cluster and removes its directory.
pub struct Cluster {
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    pg_ctl: PathBuf,
    data: PathBuf,
    as_root: bool,
    watchdog: Option<(Child, ChildStdin)>,
}

impl Cluster {
    /// Initializes and starts a cluster in `<temp dir>/<name>-<pid>`. The superuser is
    /// `postgres`, with trust authentication on 127.0.0.1 only.
    pub fn start(name: &str) -> Result<Cluster, String> {
        let bin = bin_dir()?;
        let root = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("cannot create {}: {e}", root.display()))?;
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
        // Init and start the cluster, say "ready", then wait for stdin to close (this process
        // exiting, or `Drop`) and tear everything down.
        let script = format!(
            "set -e
{initdb} -D {data} -U postgres -A trust -E UTF8 --no-sync >{log} 2>&1
{pg_ctl} -D {data} -l {log} -w -o \"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null
echo ready
set +e
cat >/dev/null
{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1
rm -rf {root}",
            initdb = quote(&bin.join("initdb")),
            pg_ctl = quote(&bin.join("pg_ctl")),
            data = quote(&data),
            log = quote(&log),
            root = quote(&root),
        );
        let mut command = as_postgres(as_root, "sh");
        command.args(["-c", &script]);
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
            return Err(format!("the throwaway Postgres did not start:\n{log}"));
        }
        let stdin = child.stdin.take().ok_or("no stdin")?;
        Ok(Cluster {
            port,
            pg_ctl: bin.join("pg_ctl"),
            data,
            as_root,
            watchdog: Some((child, stdin)),
        })
    }

    /// The URL of database `db` as the superuser: `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stop the server now (fast: sessions end cleanly); the watchdog then only removes
        // the directory.
        let data = self.data.display().to_string();
        let mut stop = as_postgres(self.as_root, &self.pg_ctl.display().to_string());
        stop.args(["-D", data.as_str(), "-m", "fast", "-w", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// `program`, run as the `postgres` OS user when this process is root.
fn as_postgres(as_root: bool, program: &str) -> Command {
    if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn bin_dir() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pg_ctl").is_file())
        .collect();
    candidates.sort_by_key(|p| version_of(p));
    if let Some(dir) = candidates.pop() {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").is_file() {
            return Ok(dir);
        }
    }
    Err(
        "no Postgres server binaries found (initdb and pg_ctl in /usr/lib/postgresql/*/bin or \
         from pg_config): install Postgres, or set DATABASE_URL to a database forcesync may use"
            .to_owned(),
    )
}

/// The major version of `/usr/lib/postgresql/<version>/bin` (0 when not a number).
fn version_of(bin: &Path) -> u32 {
    bin.parent()
        .and_then(|v| v.file_name())
        .and_then(|v| v.to_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_cluster_accepts_connections_until_dropped() {
        let cluster = Cluster::start("pg-cluster-selftest").unwrap();
        assert!(cluster
            .url("app")
            .ends_with(&format!(":{}/app", cluster.port)));
        let data = cluster.data.clone();
        let port = cluster.port;
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        drop(cluster);
        assert!(!data.exists(), "the directory is removed");
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(quote(Path::new("/tmp/it's")), "'/tmp/it'\\''s'");
    }
}

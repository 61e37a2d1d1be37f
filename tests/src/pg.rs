//! The Postgres test harness: a fresh database per test.
//!
//! With `DATABASE_URL` set, databases are created on that server (and dropped afterwards).
//! Otherwise the first test starts a private throwaway cluster for the whole test process:
//! `initdb` into a temp dir and `pg_ctl start` on a free port, run as the `postgres` OS user when
//! the process is root. A watchdog shell holds the cluster: it stops it (and removes the temp
//! dir) as soon as the test process exits, however it exits, because its stdin is a pipe from
//! this process.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use diesel::{Connection, PgConnection, RunQueryDsl};

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDb {
    /// Creates an empty database on the test server.
    pub fn new() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let server = server();
        let name = format!(
            "forcesync_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::establish(&server.admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        TestDb {
            url: server.url_for(&name),
            name,
            admin_url: server.admin_url.clone(),
        }
    }

    /// A new connection to this database.
    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.name))
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}

struct Server {
    /// URL of the maintenance database, used to create and drop test databases.
    admin_url: String,
    /// `admin_url` with the database name replaced by `{db}`.
    template: String,
    /// The watchdog and its stdin, held open for the life of the process.
    _watchdog: Option<(Child, ChildStdin)>,
}

impl Server {
    fn url_for(&self, db: &str) -> String {
        self.template.replace("{db}", db)
    }
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => external(&url),
        _ => private_cluster(),
    })
}

/// Splits `postgres://…/dbname?opts` into a template with `{db}` in place of the name.
fn external(url: &str) -> Server {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base_path = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let template = format!("{base_path}/{{db}}{query}");
    Server {
        admin_url: url.to_owned(),
        template,
        _watchdog: None,
    }
}

fn postgres_bin_dir() -> PathBuf {
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
        return dir;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("pg_ctl").is_file() {
            return dir;
        }
    }
    panic!(
        "no Postgres found: set DATABASE_URL, or install the server (initdb and pg_ctl in \
         /usr/lib/postgresql/*/bin or on PATH)"
    )
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free TCP port: {e}"))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

fn private_cluster() -> Server {
    let bin = postgres_bin_dir();
    let root = std::env::temp_dir().join(format!("forcesync-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("cannot create {root:?}: {e}"));
    let as_root = is_root();
    if as_root {
        let status = Command::new("chown")
            .args(["postgres:", &root.display().to_string()])
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "cannot hand {root:?} to the postgres user"
        );
    }
    let port = free_port();
    let data = root.join("data");
    let log = root.join("postgres.log");
    let (initdb, pg_ctl) = (bin.join("initdb"), bin.join("pg_ctl"));
    // The watchdog: init and start the cluster, say "ready", then wait for stdin to close
    // (this process exiting) and tear everything down.
    let script = format!(
        "set -e
{initdb} -D {data} -U postgres -A trust -E UTF8 --no-sync >{log} 2>&1
{pg_ctl} -D {data} -l {log} -w -o \"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null
echo ready
set +e
cat >/dev/null
{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1
rm -rf {root}",
        initdb = shell_quote(&initdb),
        pg_ctl = shell_quote(&pg_ctl),
        data = shell_quote(&data),
        log = shell_quote(&log),
        root = shell_quote(&root),
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
        .unwrap_or_else(|e| panic!("cannot start the Postgres watchdog: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() != "ready" {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("the private Postgres cluster did not start:\n{log}");
    }
    let mut stdin = child.stdin.take().expect("piped stdin");
    let _ = stdin.flush();
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    Server {
        admin_url,
        template: format!("postgres://postgres@127.0.0.1:{port}/{{db}}"),
        _watchdog: Some((child, stdin)),
    }
}

//! The Postgres test harness: a fresh database per test.
//!
//! With `DATABASE_URL` set, databases are created on that server (and dropped afterwards).
//! Otherwise the first test starts a private throwaway cluster ([`pg_cluster::Cluster`], the
//! same one `forcesync demo` uses) for the whole test process; its watchdog stops it when the
//! test process exits, however it exits.

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
    /// The private cluster, held for the life of the process.
    _cluster: Option<pg_cluster::Cluster>,
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
        _cluster: None,
    }
}

fn private_cluster() -> Server {
    let cluster = pg_cluster::Cluster::start("forcesync-pg")
        .unwrap_or_else(|e| panic!("{e}\n(or set DATABASE_URL to a server the tests may use)"));
    Server {
        admin_url: cluster.url("postgres"),
        template: cluster.url("{db}"),
        _cluster: Some(cluster),
    }
}

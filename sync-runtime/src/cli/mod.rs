//! The `forcesync` command: a thin front-end over the engine, built from any generated registry.
//!
//! A mappings crate builds its own binary with a few lines:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     sync_runtime::cli::main(sync_runtime::cli::App::new(
//!         &generated::salesforce::REGISTRY,
//!         &generated::MIGRATIONS,
//!     ))
//! }
//! ```
//!
//! Settings come from the environment or `--config FILE` ([`settings`]); each command lives in
//! the module named after it. Exit codes: [`EXIT_OK`], [`EXIT_FAILURE`] (something failed while
//! running: Postgres or Salesforce unreachable, a refused call), [`EXIT_SETTINGS`] (a missing or
//! wrong setting or argument: fix the invocation), [`EXIT_ATTENTION`] (the command ran and
//! found something an operator must look at).

pub(crate) mod admin;
pub mod adopt;
pub(crate) mod describe;
pub(crate) mod hc_import;
pub(crate) mod init;
pub(crate) mod logging;
pub(crate) mod mapping_file;
pub(crate) mod metrics;
pub mod migrate;
pub mod page;
pub mod progress;
pub mod report;
pub mod run;
pub mod server;
pub mod settings;
#[cfg(test)]
mod testing;
pub(crate) mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use diesel_migrations::EmbeddedMigrations;

use crate::adapter::{MappingDescriptor, Registry};
use logging::LogFormat;
use settings::{SettingsError, Sources};

/// Success.
pub const EXIT_OK: u8 = 0;
/// Something failed while running (Postgres or Salesforce unreachable, a refused call).
pub const EXIT_FAILURE: u8 = 1;
/// A missing or wrong setting or argument.
pub const EXIT_SETTINGS: u8 = 2;
/// The command ran and found something to look at (failed writes, differences).
pub const EXIT_ATTENTION: u8 = 3;

/// An extra command an app adds to its binary (the repository's `demo`).
#[derive(Clone, Copy)]
pub struct Extension {
    /// The subcommand's definition (its name is the command's name).
    pub command: fn() -> clap::Command,
    /// Runs it.
    pub run: fn(&Context, &clap::ArgMatches) -> Result<(), CliError>,
    /// The log level when `RUST_LOG` is unset (`"info"` like the built-in commands; `"warn"` for a
    /// command whose own output is the point, such as `demo`).
    pub log_level: &'static str,
}

/// What the binary is built from.
#[derive(Clone, Copy)]
pub struct App {
    pub registry: &'static Registry,
    pub migrations: &'static EmbeddedMigrations,
    /// Extra commands (the repository's `demo` and `bench`).
    pub extensions: &'static [Extension],
}

impl App {
    pub fn new(registry: &'static Registry, migrations: &'static EmbeddedMigrations) -> App {
        App {
            registry,
            migrations,
            extensions: &[],
        }
    }

    /// Adds extra commands.
    pub fn with_extensions(mut self, extensions: &'static [Extension]) -> App {
        self.extensions = extensions;
        self
    }
}

/// A command failure: what to print and the exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    pub fn failure(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    pub fn settings(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_SETTINGS,
            message: message.into(),
        }
    }
}

impl From<SettingsError> for CliError {
    fn from(e: SettingsError) -> Self {
        CliError::settings(e.to_string())
    }
}

impl From<tokio_postgres::Error> for CliError {
    fn from(e: tokio_postgres::Error) -> Self {
        CliError::failure(format!("Postgres: {}", crate::engine::db::describe(&e)))
    }
}

impl From<crate::engine::EngineError> for CliError {
    fn from(e: crate::engine::EngineError) -> Self {
        CliError::failure(e.to_string())
    }
}

impl From<report::ReportError> for CliError {
    fn from(e: report::ReportError) -> Self {
        match e {
            report::ReportError::NotMigrated(_) => CliError::failure(e.to_string()),
            report::ReportError::Postgres(e) => e.into(),
        }
    }
}

/// Everything a command runs with.
pub struct Context {
    pub app: App,
    pub config_file: Option<PathBuf>,
    pub log_format: LogFormat,
}

impl Context {
    /// The settings (file and environment).
    pub fn sources(&self) -> Result<Sources, SettingsError> {
        Sources::gather(self.config_file.as_deref(), |name| std::env::var(name).ok())
    }

    /// `DATABASE_URL`, checked.
    pub fn database_url(&self) -> Result<String, SettingsError> {
        self.sources()?.database_url()
    }

    /// The Salesforce client settings, checked.
    pub fn salesforce(&self) -> Result<crate::salesforce::Config, SettingsError> {
        let (login_url, credentials) = self.sources()?.salesforce()?;
        let mut config = crate::salesforce::Config::new(login_url, credentials);
        config.api_version = self.app.registry.api_version.to_owned();
        if let Some(url) = self.sources()?.pubsub_url()? {
            config.pubsub_url = url;
        }
        Ok(config)
    }

    /// The mapping named `name` (case-insensitive), or an error listing the mappings.
    pub fn mapping(&self, name: &str) -> Result<&'static MappingDescriptor, CliError> {
        self.app.registry.mapping(name).ok_or_else(|| {
            CliError::settings(format!(
                "no mapping named `{name}`; the mappings are: {}",
                self.app
                    .registry
                    .mappings
                    .iter()
                    .map(|m| m.object)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The named mapping, or every mapping.
    pub fn mappings(
        &self,
        name: Option<&str>,
    ) -> Result<Vec<&'static MappingDescriptor>, CliError> {
        match name {
            Some(name) => Ok(vec![self.mapping(name)?]),
            None => Ok(self.app.registry.mappings.to_vec()),
        }
    }

    /// A Postgres connection to `DATABASE_URL`.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, CliError> {
        let url = self.database_url()?;
        crate::engine::connect(&url)
            .await
            .map_err(|e| CliError::failure(format!("cannot connect to DATABASE_URL: {e}")))
    }
}

/// Keep Salesforce in step with Postgres: the forcesync command.
#[derive(Debug, Parser)]
#[command(name = "forcesync", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// A TOML file of settings (SF_LOGIN_URL, SF_CLIENT_ID, …, DATABASE_URL); the environment wins.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How log lines look on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str =
    "Exit codes: 0 success; 1 failure while running (Postgres or Salesforce); \
2 missing or wrong setting or argument; 3 ran, and found something to look at (failed writes, \
records that differ).\n\
Settings: SF_LOGIN_URL (default https://login.salesforce.com), SF_CLIENT_ID, SF_CLIENT_SECRET, \
SF_USERNAME, SF_PASSWORD, SF_JWT_KEY_FILE, SF_REFRESH_TOKEN, DATABASE_URL, \
FORCESYNC_DEGRADED_POLL_SECONDS (default 10), FORCESYNC_PUBSUB_URL (default \
https://api.pubsub.salesforce.com:7443), FORCESYNC_STREAMING_TRANSPORT (pubsub or cometd; default: \
forcesync.toml's streaming_transport, pubsub).";

/// Which failed writes `retry` and `ignore` act on.
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Only this mapping's failed writes.
    pub mapping: Option<String>,
    /// These trigger-log ids (repeat the flag for several).
    #[arg(long = "id", value_name = "TRIGGER_LOG_ID")]
    pub ids: Vec<i32>,
    /// Every failed write (of the mapping, when given).
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
}

/// What `describe` does.
#[derive(Debug, Subcommand)]
pub enum DescribeAction {
    /// Fetch describe snapshots (every mapped object when none is named) into a directory.
    Pull {
        objects: Vec<String>,
        /// Where the snapshots go (what the build reads).
        #[arg(long, default_value = "mappings/describe")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the app migrations and the engine's system migrations (or revert them).
    Migrate {
        /// Revert every app migration, then drop the engine's tables.
        #[arg(long)]
        revert: bool,
    },
    /// The daemon: every mapping's read and write loops, and the HTTP listener.
    Run {
        /// Where /healthz, /readyz, /metrics and the status page are served (an address other
        /// than loopback needs FORCESYNC_ADMIN_TOKEN).
        #[arg(long, default_value = "127.0.0.1:9187")]
        listen: SocketAddr,
        /// Run only these mappings (repeat the flag; all by default).
        #[arg(long = "only", value_name = "MAPPING")]
        only: Vec<String>,
    },
    /// Every mapping: access, state, rows, pending and failed writes, conflicts, lag, last sync, API calls.
    Status {
        /// One mapping only.
        mapping: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Failed writes (Salesforce's message and the row) and records the read side could not apply.
    Errors {
        mapping: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send failed writes again, as they are.
    Retry(SelectArgs),
    /// Mark failed writes handled (the rows keep the app's values).
    Ignore(SelectArgs),
    /// Recorded conflicts: both values and the decision.
    Conflicts {
        mapping: Option<String>,
        /// The most recent N.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Stop syncing a mapping (all when none is named) until `resume`; kept across restarts.
    Pause { mapping: Option<String> },
    /// Resume a paused mapping (all when none is named).
    Resume { mapping: Option<String> },
    /// Read the mapping again from Salesforce into a shadow table and swap it in (the app keeps reading).
    Reload { mapping: String },
    /// Describe snapshots: `describe pull [OBJECT…]` fetches them into mappings/describe/.
    Describe {
        #[command(subcommand)]
        action: DescribeAction,
    },
    /// Write starter mappings (<DIR>/<Object>.toml) with every syncable field listed, commented, ready to trim.
    ///
    /// Reads the describe snapshot <DIR>/describe/<Object>.json; when it is missing, fetches it
    /// with the configured Salesforce connection (SF_* settings) and saves it there first.
    /// The record name and the fields Salesforce requires on create are uncommented.
    /// With --from-heroku-connect EXPORT.json: the mappings of a Heroku Connect export, as they
    /// are there, and forcesync.toml; what does not carry over is reported.
    Init {
        /// Salesforce objects (API names), e.g. Account Invoice__c.
        #[arg(required_unless_present = "from_heroku_connect")]
        objects: Vec<String>,
        /// Import Heroku Connect's mapping export (its dashboard's Export, or
        /// `heroku connect:export`) instead: every mapping of it, and forcesync.toml.
        #[arg(long, value_name = "EXPORT.json", conflicts_with_all = ["objects", "read_write"])]
        from_heroku_connect: Option<PathBuf>,
        /// The mappings directory.
        #[arg(long, default_value = "mappings")]
        dir: PathBuf,
        /// Write `access = "read_write"` (and the unique external ID as upsert_key).
        #[arg(long)]
        read_write: bool,
        /// Overwrite existing mapping files.
        #[arg(long)]
        force: bool,
    },
    /// Take over a database Heroku Connect made, in place: no reload, every id kept, its trigger log kept.
    ///
    /// Prints the plan per mapping (tables, columns, indexes, triggers and functions replaced,
    /// trigger-log entries by state), then applies it in one transaction. Pause the Heroku
    /// Connect connection first. Needs DATABASE_URL; with SF_* settings it logs in first and
    /// refuses an org other than the one in `_hcmeta.org_id` (--force overrides).
    Adopt {
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The plan (and outcome) as JSON.
        #[arg(long)]
        json: bool,
        /// Adopt even though Heroku Connect processed an entry in the last 10 minutes.
        #[arg(long)]
        force: bool,
    },
    /// Compare Salesforce and Postgres record by record (Ids and SystemModstamp): missing, extra and stale rows.
    ///
    /// Reads Salesforce's Ids in Id order (REST, or one Bulk API 2.0 job above --bulk-above
    /// records) and Postgres's in bounded memory. Exit code 3 when records differ and were not
    /// repaired.
    Verify {
        /// One mapping only (all by default).
        mapping: Option<String>,
        /// Re-read exactly the differing records (rows with pending writes are left alone).
        #[arg(long)]
        repair: bool,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
        /// How many Ids of each kind to show.
        #[arg(long, default_value_t = 10, value_name = "N")]
        show: usize,
        /// Read Salesforce through a Bulk API 2.0 query job above this many records.
        #[arg(long, default_value_t = 50_000, value_name = "N")]
        bulk_above: u64,
    },
    /// Re-read every change since a time (after an outage longer than the event retention).
    Recover {
        /// RFC 3339 (`2026-01-31T12:00:00Z`), `YYYY-MM-DD HH:MM:SS` (UTC) or `YYYY-MM-DD`.
        #[arg(long, value_name = "TIMESTAMP")]
        since: String,
        /// Only this mapping.
        mapping: Option<String>,
    },
}

/// Runs the command line of the current process; the binary's `main`.
pub fn main(app: App) -> ExitCode {
    main_from(app, std::env::args_os())
}

/// Runs a command line.
pub fn main_from<I, T>(app: App, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Cli::command();
    for ext in app.extensions {
        command = command.subcommand((ext.command)());
    }
    let matches = match command.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_SETTINGS
            } else {
                EXIT_OK
            });
        }
    };
    let config_file = matches.get_one::<PathBuf>("config").cloned();
    let log_format = matches
        .get_one::<LogFormat>("log_format")
        .copied()
        .unwrap_or_default();
    let log_level = matches
        .subcommand_name()
        .and_then(|name| {
            app.extensions
                .iter()
                .find(|ext| (ext.command)().get_name() == name)
        })
        .map_or("info", |ext| ext.log_level);
    logging::init(log_format, log_level);
    let ctx = Context {
        app,
        config_file,
        log_format,
    };
    let extension = matches.subcommand().and_then(|(name, sub)| {
        ctx.app
            .extensions
            .iter()
            .find(|ext| (ext.command)().get_name() == name)
            .map(|ext| (ext, sub))
    });
    let result = match extension {
        Some((ext, sub)) => (ext.run)(&ctx, sub),
        None => match Cli::from_arg_matches(&matches) {
            Ok(cli) => dispatch(&ctx, cli.command),
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(EXIT_SETTINGS);
            }
        },
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// A multi-threaded runtime for a command.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}

fn dispatch(ctx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Migrate { revert } => migrate::migrate(ctx, revert),
        Command::Run { listen, only } => runtime()?.block_on(run::run(ctx, listen, only)),
        Command::Status { mapping, json } => {
            runtime()?.block_on(admin::status(ctx, mapping.as_deref(), json))
        }
        Command::Errors { mapping, json } => {
            runtime()?.block_on(admin::errors(ctx, mapping.as_deref(), json))
        }
        Command::Retry(select) => runtime()?.block_on(admin::retry_or_ignore(ctx, &select, true)),
        Command::Ignore(select) => runtime()?.block_on(admin::retry_or_ignore(ctx, &select, false)),
        Command::Conflicts {
            mapping,
            limit,
            json,
        } => runtime()?.block_on(admin::conflicts(ctx, mapping.as_deref(), limit, json)),
        Command::Pause { mapping } => {
            runtime()?.block_on(admin::set_paused(ctx, mapping.as_deref(), true))
        }
        Command::Resume { mapping } => {
            runtime()?.block_on(admin::set_paused(ctx, mapping.as_deref(), false))
        }
        Command::Describe {
            action: DescribeAction::Pull { objects, dir },
        } => runtime()?.block_on(describe::pull(ctx, &objects, &dir)),
        Command::Reload { mapping } => runtime()?.block_on(run::reload(ctx, &mapping)),
        Command::Init {
            from_heroku_connect: Some(export),
            dir,
            force,
            ..
        } => runtime()?.block_on(init::init_from_heroku_connect(ctx, &export, &dir, force)),
        Command::Init {
            objects,
            dir,
            read_write,
            force,
            from_heroku_connect: None,
        } => runtime()?.block_on(init::init(ctx, &objects, &dir, read_write, force)),
        Command::Adopt {
            dry_run,
            json,
            force,
        } => runtime()?.block_on(adopt::adopt(ctx, dry_run, json, force)),
        Command::Verify {
            mapping,
            repair,
            json,
            show,
            bulk_above,
        } => {
            let options = verify::Options {
                compare: crate::engine::verify::Options {
                    repair,
                    show,
                    bulk_above,
                },
                json,
            };
            runtime()?.block_on(verify::verify(ctx, mapping.as_deref(), &options))
        }
        Command::Recover { since, mapping } => {
            let since = run::parse_since(&since).map_err(CliError::settings)?;
            runtime()?.block_on(run::recover(ctx, since, mapping.as_deref()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn retry_takes_a_mapping_ids_or_all() {
        let cli = Cli::try_parse_from(["forcesync", "retry", "Account", "--id", "4", "--id", "7"])
            .unwrap();
        let Command::Retry(select) = cli.command else {
            panic!("not retry")
        };
        assert_eq!(select.mapping.as_deref(), Some("Account"));
        assert_eq!(select.ids, [4, 7]);
        assert!(Cli::try_parse_from(["forcesync", "retry", "--all", "--id", "4"]).is_err());
    }

    #[test]
    fn run_listens_on_the_documented_default() {
        let cli = Cli::try_parse_from(["forcesync", "run"]).unwrap();
        let Command::Run { listen, .. } = cli.command else {
            panic!("not run")
        };
        assert_eq!(listen.to_string(), "127.0.0.1:9187");
    }
}

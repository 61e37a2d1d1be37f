//! `forcesync adopt [--dry-run] [--json] [--force]`: takes over, in place, the schema Heroku
//! Connect created and filled (forcesync.toml's `schema`), instead of a new database and a full
//! load ([`crate::engine::adopt`] does the work). Prints the plan (`--json`: as JSON); with
//! `--dry-run` stops there and changes nothing. Exit code 2 when it refuses: incompatible
//! column types, Heroku Connect still active (without `--force`), no such schema.

use std::any::Any;

use diesel::connection::{BoxableConnection, SimpleConnection};
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::QueryResult;
use diesel_migrations::EmbeddedMigrations;

use crate::engine::adopt::{self, plan, AdoptError, AppMigration, Options};
use crate::engine::EngineConfig;

use super::{run, CliError, Context};

/// Collects the SQL a migration would run, instead of running it.
#[derive(Default)]
struct Capture(String);

impl SimpleConnection for Capture {
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        self.0.push_str(query);
        self.0.push('\n');
        Ok(())
    }
}

impl BoxableConnection<Pg> for Capture {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The app migrations embedded in the binary: version and SQL, in order.
pub fn app_migrations(
    migrations: &'static EmbeddedMigrations,
) -> Result<Vec<AppMigration>, CliError> {
    let mut list = MigrationSource::<Pg>::migrations(migrations)
        .map_err(|e| CliError::failure(format!("the embedded migrations: {e}")))?;
    list.sort_by_key(|m| m.name().version().to_string());
    list.iter()
        .map(|m| {
            let mut capture = Capture::default();
            m.run(&mut capture)
                .map_err(|e| CliError::failure(format!("migration {}: {e}", m.name())))?;
            Ok(AppMigration {
                version: m.name().version().to_string(),
                sql: capture.0,
            })
        })
        .collect()
}

/// `forcesync adopt`.
pub async fn adopt(ctx: &Context, dry_run: bool, json: bool, force: bool) -> Result<(), CliError> {
    let migrations = app_migrations(ctx.app.migrations)?;
    let mut db = ctx.connect().await?;
    let mut options = Options::new(EngineConfig::new("").lookback);
    options.dry_run = dry_run;
    options.force = force;
    // With Salesforce settings, log in first: the org they reach must be Heroku Connect's.
    let client = match ctx.salesforce() {
        Ok(config) => Some(
            crate::salesforce::Client::new(config)
                .map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?,
        ),
        Err(_) => None,
    };
    if let Some(client) = &client {
        run::check_login(client).await?;
        options.org_id = client
            .org_id()
            .await
            .map_err(|e| CliError::failure(format!("Salesforce: {e}")))?;
    }
    let outcome = adopt::adopt(&mut db, ctx.app.registry, &migrations, &options)
        .await
        .map_err(|e| match e {
            AdoptError::Refused(message) => CliError::settings(message),
            AdoptError::Postgres(_) => CliError::failure(format!(
                "{e}; nothing was changed (adoption runs in one transaction)"
            )),
        })?;
    if json {
        let value = serde_json::json!({
            "plan": outcome.plan,
            "dry_run": dry_run,
            "applied": outcome.applied,
            "already_adopted": outcome.already_adopted,
            "heroku_connect_last_processed_at": outcome.last_processed_at.map(|t| t.to_rfc3339()),
            "pending": outcome.pending,
            "refused": outcome.refusal,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON values serialize")
        );
    } else {
        if outcome.already_adopted && outcome.refusal.is_none() {
            println!(
                "Already adopted: schema {} is forcesync's; nothing to do.",
                outcome.plan.schema
            );
            return Ok(());
        }
        print!("{}", plan::render(&outcome.plan));
        if let Some(at) = outcome.last_processed_at {
            println!(
                "Heroku Connect last processed a trigger-log entry at {}.",
                at.to_rfc3339()
            );
        }
        if let Some(refusal) = &outcome.refusal {
            println!("Refused: nothing was changed.");
            return Err(CliError::settings(refusal.clone()));
        }
        if dry_run {
            println!("Dry run: nothing was changed.");
            return Ok(());
        }
        println!(
            "Adopted schema {} in one transaction. PENDING entries: {} create(s) to reconcile \
             against Salesforce, {} sent again.",
            outcome.plan.schema, outcome.pending.reconciled, outcome.pending.resent
        );
    }
    if let Some(refusal) = outcome.refusal {
        return Err(CliError::settings(refusal));
    }
    if outcome.applied && !json {
        if client.is_some() {
            println!("Salesforce accepts the login. Next: `forcesync run`.");
        } else {
            println!("Next: set the SF_* settings, then `forcesync run`.");
        }
    }
    Ok(())
}

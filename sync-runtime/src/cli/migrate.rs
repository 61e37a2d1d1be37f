//! `forcesync migrate`: the app's generated migrations (diesel, embedded in the binary), then the
//! engine's system migrations and a state row per mapping; `--revert` undoes both, app first.

use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::{Connection, PgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness};

use crate::adapter::Registry;
use crate::engine::state::StateStore;
use crate::engine::system;

use super::{CliError, Context};

/// Applies (or reverts) every migration.
pub fn migrate(ctx: &Context, revert: bool) -> Result<(), CliError> {
    let url = ctx.database_url()?;
    let registry = ctx.app.registry;
    if revert {
        for version in app_migrations(&url, ctx.app.migrations, true)? {
            println!("reverted app migration {version}");
        }
        super::runtime()?.block_on(async {
            let db = crate::engine::connect(&url).await?;
            system::revert(&db, registry.schema).await?;
            println!("dropped the engine tables of schema {}", registry.schema);
            Ok::<_, CliError>(())
        })?;
        return Ok(());
    }
    let applied = app_migrations(&url, ctx.app.migrations, false)?;
    for version in &applied {
        println!("applied app migration {version}");
    }
    let names = super::runtime()?.block_on(system_migrations(&url, registry))?;
    for name in &names {
        println!("applied engine migration {name}");
    }
    if applied.is_empty() && names.is_empty() {
        println!("the database is up to date");
    }
    Ok(())
}

/// Applies (or reverts all of) the app's migrations; answers the versions (blocking).
pub fn app_migrations(
    url: &str,
    migrations: &'static EmbeddedMigrations,
    revert: bool,
) -> Result<Vec<String>, CliError> {
    let mut conn = PgConnection::establish(url)
        .map_err(|e| CliError::failure(format!("cannot connect to DATABASE_URL: {e}")))?;
    let source = Embedded(migrations);
    let versions = if revert {
        conn.revert_all_migrations(source)
            .map_err(|e| CliError::failure(format!("reverting the app migrations failed: {e}")))?
    } else {
        conn.run_pending_migrations(source)
            .map_err(|e| CliError::failure(format!("applying the app migrations failed: {e}")))?
    };
    Ok(versions.iter().map(ToString::to_string).collect())
}

/// Applies the engine's system migrations and creates every mapping's state row.
pub async fn system_migrations(
    url: &str,
    registry: &Registry,
) -> Result<Vec<&'static str>, CliError> {
    let mut db = crate::engine::connect(url).await?;
    let names = system::migrate(&mut db, registry.schema).await?;
    let states = StateStore::new(registry.schema);
    for mapping in registry.mappings {
        states.ensure(&db, mapping.object, mapping.table).await?;
    }
    Ok(names)
}

/// The app's embedded migrations, by reference.
#[derive(Clone, Copy)]
struct Embedded(&'static EmbeddedMigrations);

impl MigrationSource<Pg> for Embedded {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        MigrationSource::<Pg>::migrations(self.0)
    }
}

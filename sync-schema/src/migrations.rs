//! Migration directories: finding the schema of the latest migration, and writing the next one.
//!
//! Layout (diesel_migrations): `migrations/<version>_<name>/{up.sql,down.sql}`, plus forcesync's
//! `schema.json` (the [`SchemaSnapshot`] after the migration) for the next diff. Versions are
//! `YYYY-MM-DD-NNNNNN`: the UTC day the migration was generated and a sequence number, so
//! versions sort in the order the migrations were written.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalog::Catalog;
use crate::sql::{plan, PlanError, SchemaSnapshot};

/// The snapshot file stored in each generated migration directory.
pub const SNAPSHOT_FILE: &str = "schema.json";

#[derive(Debug)]
pub enum MigrationError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    BadSnapshot {
        path: PathBuf,
        error: serde_json::Error,
    },
    Plan(Vec<PlanError>),
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MigrationError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            MigrationError::BadSnapshot { path, error } => write!(
                f,
                "{}: not a forcesync schema snapshot ({error}); restore it from version control",
                path.display()
            ),
            MigrationError::Plan(errors) => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for MigrationError {}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MigrationError + '_ {
    move |error| MigrationError::Io {
        path: path.to_owned(),
        error,
    }
}

/// The migration directories (those holding an `up.sql`), sorted by name.
pub fn migration_dirs(dir: &Path) -> Result<Vec<PathBuf>, MigrationError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        if path.join("up.sql").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The snapshot stored with the latest generated migration, if any.
pub fn latest_snapshot(dir: &Path) -> Result<Option<SchemaSnapshot>, MigrationError> {
    for migration in migration_dirs(dir)?.iter().rev() {
        let path = migration.join(SNAPSHOT_FILE);
        if path.is_file() {
            let json = std::fs::read_to_string(&path).map_err(io(&path))?;
            return SchemaSnapshot::from_json(&json)
                .map(Some)
                .map_err(|error| MigrationError::BadSnapshot { path, error });
        }
    }
    Ok(None)
}

/// What [`write_next`] did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The new migration directory, when the schema changed.
    pub written: Option<PathBuf>,
    /// Things the build should print (kept columns and tables).
    pub warnings: Vec<String>,
}

/// Plans the migration from the latest snapshot in `dir` to `catalog` and, when anything
/// changed, writes it as a new directory. `today` is the UTC date (`YYYY-MM-DD`) for the version.
pub fn write_next(dir: &Path, catalog: &Catalog, today: &str) -> Result<Outcome, MigrationError> {
    let previous = latest_snapshot(dir)?;
    let plan = plan(previous.as_ref(), catalog).map_err(MigrationError::Plan)?;
    let mut outcome = Outcome {
        written: None,
        warnings: plan.warnings.clone(),
    };
    if plan.is_empty() {
        return Ok(outcome);
    }
    let existing = migration_dirs(dir)?;
    let last_date = existing
        .last()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .and_then(|n| n.get(..10))
        .filter(|d| d.len() == 10 && d.as_bytes()[4] == b'-')
        .map(str::to_owned);
    let date = match last_date {
        Some(last) if last.as_str() > today => last,
        _ => today.to_owned(),
    };
    let name = format!("{date}-{:06}_{}", existing.len() + 1, plan.slug());
    let path = dir.join(name);
    std::fs::create_dir_all(&path).map_err(io(&path))?;
    for (file, contents) in [
        ("up.sql", plan.up_sql()),
        ("down.sql", plan.down_sql()),
        (SNAPSHOT_FILE, plan.snapshot.to_json()),
    ] {
        let file = path.join(file);
        std::fs::write(&file, contents).map_err(io(&file))?;
    }
    outcome.written = Some(path);
    Ok(outcome)
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_computed_in_the_proleptic_gregorian_calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}

//! `forcesync verify [MAPPING] [--repair]`: the options, the text or JSON report and the exit
//! code (3 while records differ). The comparison and the repair are the engine's
//! ([`crate::engine::verify`]).

use crate::engine::verify::{self as engine_verify, Report, VerifyError};

use super::{run, CliError, Context, EXIT_ATTENTION};

/// The text report (pure).
pub fn render(reports: &[Report]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}: {} records in Salesforce, {} rows in Postgres ({} API calls, {}): ",
            r.mapping, r.salesforce_records, r.postgres_rows, r.api_calls, r.read_through
        ));
        if r.differences() == 0 {
            out.push_str("in step\n");
            continue;
        }
        out.push_str(&format!(
            "{} missing, {} extra, {} stale\n",
            r.missing, r.extra, r.stale
        ));
        for (label, count, ids) in [
            ("missing", r.missing, &r.missing_ids),
            ("extra", r.extra, &r.extra_ids),
            ("stale", r.stale, &r.stale_ids),
        ] {
            if ids.is_empty() {
                continue;
            }
            let more = count - ids.len() as u64;
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            out.push_str(&format!("  {label:<8} {}{more}\n", ids.join(" ")));
        }
        if let Some(repair) = &r.repair {
            out.push_str(&format!(
                "  repaired: {} rows re-read, {} removed",
                repair.restored, repair.removed
            ));
            if repair.skipped_pending_writes > 0 {
                out.push_str(&format!(
                    "; {} extra rows left alone (writes still pending)",
                    repair.skipped_pending_writes
                ));
            }
            out.push('\n');
        }
    }
    out
}

/// `forcesync verify`.
pub async fn verify(
    ctx: &Context,
    mapping: Option<&str>,
    options: &Options,
) -> Result<(), CliError> {
    let only = match mapping {
        Some(name) => vec![ctx.mapping(name)?.object.to_owned()],
        None => Vec::new(),
    };
    let engine = run::engine(ctx, only).await?;
    let mut reports = Vec::new();
    for m in engine.mappings() {
        let mctx = engine.context(m)?;
        let before = engine.client.call_counts().total();
        let mut report = engine_verify::compare(&mctx, &options.compare).await?;
        report.api_calls = engine.client.call_counts().total() - before;
        reports.push(report);
    }
    if options.json {
        let text = serde_json::to_string_pretty(&reports)
            .map_err(|e| CliError::failure(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&reports));
    }
    let unresolved: u64 = reports.iter().map(Report::unresolved).sum();
    if unresolved > 0 {
        let hint = if options.compare.repair {
            "the writer sends the pending writes first; run `forcesync verify --repair` again afterwards"
        } else {
            "`forcesync verify --repair` re-reads exactly those records"
        };
        return Err(CliError {
            code: EXIT_ATTENTION,
            message: format!("{unresolved} records differ; {hint}"),
        });
    }
    Ok(())
}

/// How `verify` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// What is compared and whether it is repaired.
    pub compare: engine_verify::Options,
    pub json: bool,
}

impl From<VerifyError> for CliError {
    fn from(e: VerifyError) -> Self {
        CliError::failure(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::verify::{Kind, Repair};

    #[test]
    fn the_report_counts_everything_and_shows_the_first_ids() {
        let mut report = Report {
            mapping: "Account".into(),
            salesforce_records: 5,
            postgres_rows: 4,
            read_through: "rest",
            api_calls: 2,
            ..Report::default()
        };
        for id in ["001A", "001B", "001C"] {
            report.record(Kind::Missing, id, 2);
        }
        report.record(Kind::Stale, "001D", 2);
        assert_eq!(
            (report.missing, report.stale, report.differences()),
            (3, 1, 4)
        );
        let text = render(std::slice::from_ref(&report));
        assert!(text.contains("Account: 5 records in Salesforce, 4 rows in Postgres (2 API calls, rest): 3 missing, 0 extra, 1 stale"), "{text}");
        assert!(text.contains("missing  001A 001B (and 1 more)"), "{text}");
        assert!(text.contains("stale    001D\n"), "{text}");
        assert!(!text.contains("extra "), "{text}");
        assert_eq!(report.unresolved(), 4);
        report.repair = Some(Repair {
            restored: 4,
            removed: 0,
            skipped_pending_writes: 0,
        });
        assert_eq!(report.unresolved(), 0);
        assert!(render(&[report]).contains("repaired: 4 rows re-read, 0 removed"));
    }
}

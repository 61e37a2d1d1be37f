//! Conflicts: a Salesforce change arriving for a row whose application changes have not reached
//! Salesforce yet (entries still `NEW` or `PENDING` in `_trigger_log`).
//!
//! Resolution is per field and pure ([`resolve`]); every overlapping field is recorded in
//! `_forcesync_conflicts` with both values and the decision, so nothing is overwritten silently
//! (Heroku Connect's documented weakness). Policies (`conflict` in the mapping):
//! - `merge` (default): Salesforce's values for fields the app did not change, the app's pending
//!   values for fields it did (they will be sent);
//! - `salesforce_wins`: Salesforce's value is stored and the overlapping pending change is dropped;
//! - `postgres_wins`: the app's pending value is kept and sent;
//! - `last_writer_wins`: the later of the two changes wins (Postgres commit time of the pending
//!   change against Salesforce's change time).
//!
//! The change event caused by forcesync's own write (`changeOrigin` `…client=forcesync`) is not a
//! conflict: fields the app changed again since are kept, nothing is recorded. Neither is that
//! write read back by a path that carries no origin (a poll, a catch-up after a restart) while
//! its answer is not settled: a Salesforce value equal to the value of a pending change the writer
//! has sent (its entry is in a write batch or the write journal) is forcesync's own echo too.
//!
//! When Salesforce wins a field whose app change the writer has already sent, that write cannot
//! be recalled: landing after Salesforce's change, it would undo it in Salesforce (and its echo
//! in Postgres). So Salesforce's value is sent back after it ([`Decision::resend`]), and both
//! sides end with the value the policy chose, whichever landed first.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::adapter::ConflictPolicy;

/// Which side's value a field ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    Salesforce,
    Postgres,
}

/// A column the app changed and has not yet sent.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChange {
    pub column: String,
    pub value: Value,
    /// When the app committed the change (the trigger-log entry's `created_at`).
    pub changed_at: DateTime<Utc>,
    pub trigger_log_id: i32,
    /// The writer has sent it and its answer is not settled: it may be in Salesforce already.
    pub sent: bool,
}

/// A column a Salesforce change sets.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingChange {
    pub column: String,
    pub value: Value,
}

/// What happens to one overlapping column.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub column: String,
    pub winner: Winner,
    /// Record it in `_forcesync_conflicts` (false for the echo of forcesync's own write).
    pub record: bool,
    pub postgres_value: Value,
    pub salesforce_value: Value,
    pub trigger_log_id: i32,
    /// Salesforce won, but the writer has sent an app change to this column that may land after
    /// Salesforce's: Salesforce's value is written to Salesforce again, after it.
    pub resend: bool,
}

impl Decision {
    /// The decision as stored: `salesforce` or `postgres`.
    pub fn as_str(&self) -> &'static str {
        match self.winner {
            Winner::Salesforce => "salesforce",
            Winner::Postgres => "postgres",
        }
    }
}

/// The policy's name as written in mappings.
pub fn policy_name(policy: ConflictPolicy) -> &'static str {
    match policy {
        ConflictPolicy::Merge => "merge",
        ConflictPolicy::SalesforceWins => "salesforce_wins",
        ConflictPolicy::PostgresWins => "postgres_wins",
        ConflictPolicy::LastWriterWins => "last_writer_wins",
    }
}

/// Decides every column both sides changed. Columns only one side changed need no decision:
/// Salesforce's are applied, the app's stay pending. When the app changed a column several
/// times, the latest pending value counts. `same(column, pending, incoming)` says whether a
/// pending value (typed) and an incoming one (Salesforce's, as text) are the same value.
pub fn resolve(
    policy: ConflictPolicy,
    own_write: bool,
    salesforce_changed_at: DateTime<Utc>,
    pending: &[PendingChange],
    incoming: &[IncomingChange],
    same: impl Fn(&str, &Value, &Value) -> bool,
) -> Vec<Decision> {
    let mut decisions = Vec::new();
    for change in incoming {
        let Some(local) = pending
            .iter()
            .filter(|p| p.column == change.column)
            .max_by_key(|p| (p.changed_at, p.trigger_log_id))
        else {
            continue;
        };
        // Salesforce holds a value the writer sent for this column: forcesync's own write,
        // arriving by a path that does not say so.
        let echo = pending.iter().any(|p| {
            p.sent && p.column == change.column && same(&p.column, &p.value, &change.value)
        });
        if own_write || echo {
            decisions.push(Decision {
                column: change.column.clone(),
                winner: Winner::Postgres,
                record: false,
                postgres_value: local.value.clone(),
                salesforce_value: change.value.clone(),
                trigger_log_id: local.trigger_log_id,
                resend: false,
            });
            continue;
        }
        let winner = match policy {
            ConflictPolicy::Merge | ConflictPolicy::PostgresWins => Winner::Postgres,
            ConflictPolicy::SalesforceWins => Winner::Salesforce,
            ConflictPolicy::LastWriterWins => {
                if salesforce_changed_at > local.changed_at {
                    Winner::Salesforce
                } else {
                    Winner::Postgres
                }
            }
        };
        // Both sides wrote the same value: no conflict to speak of.
        let same = same(&change.column, &local.value, &change.value);
        let in_flight = pending.iter().any(|p| p.sent && p.column == change.column);
        decisions.push(Decision {
            column: change.column.clone(),
            winner,
            record: !same,
            postgres_value: local.value.clone(),
            salesforce_value: change.value.clone(),
            trigger_log_id: local.trigger_log_id,
            resend: winner == Winner::Salesforce && in_flight,
        });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use ConflictPolicy::{LastWriterWins, Merge, PostgresWins, SalesforceWins};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn pending(column: &str, value: Value, secs: i64) -> PendingChange {
        PendingChange {
            column: column.into(),
            value,
            changed_at: at(secs),
            trigger_log_id: secs as i32,
            sent: false,
        }
    }

    fn equal(_: &str, a: &Value, b: &Value) -> bool {
        a == b
    }

    fn incoming(column: &str, value: Value) -> IncomingChange {
        IncomingChange {
            column: column.into(),
            value,
        }
    }

    #[test]
    fn merge_keeps_the_apps_fields_and_takes_salesforces_others() {
        let decisions = resolve(
            Merge,
            false,
            at(10),
            &[pending("phone", json!("111"), 5)],
            &[
                incoming("phone", json!("222")),
                incoming("name", json!("Acme")),
            ],
            equal,
        );
        assert_eq!(decisions.len(), 1, "only the overlapping column is decided");
        assert_eq!(decisions[0].column, "phone");
        assert_eq!(decisions[0].winner, Winner::Postgres);
        assert!(decisions[0].record);
    }

    /// The decisions on `phone`, changed in Postgres to each of `postgres` and in Salesforce to
    /// `salesforce` (value, at seconds).
    fn phone(
        policy: ConflictPolicy,
        echo: bool,
        postgres: &[(&str, i64)],
        salesforce: (&str, i64),
    ) -> Vec<Decision> {
        let pending: Vec<_> = postgres
            .iter()
            .map(|&(value, secs)| pending("phone", json!(value), secs))
            .collect();
        let (value, secs) = salesforce;
        let incoming = [incoming("phone", json!(value))];
        resolve(policy, echo, at(secs), &pending, &incoming, equal)
    }

    /// Who keeps `phone`, changed in Postgres at 5 s and in Salesforce at `salesforce_secs`.
    fn phone_winner(policy: ConflictPolicy, salesforce_secs: i64) -> Winner {
        phone(policy, false, &[("111", 5)], ("222", salesforce_secs))[0].winner
    }

    #[test]
    fn salesforce_wins_and_postgres_wins_pick_their_side() {
        assert_eq!(phone_winner(SalesforceWins, 1), Winner::Salesforce);
        assert_eq!(phone_winner(PostgresWins, 99), Winner::Postgres);
    }

    #[test]
    fn last_writer_wins_compares_the_two_change_times() {
        assert_eq!(phone_winner(LastWriterWins, 6), Winner::Salesforce);
        assert_eq!(phone_winner(LastWriterWins, 4), Winner::Postgres);
    }

    #[test]
    fn the_latest_pending_value_counts() {
        let decisions = phone(Merge, false, &[("1", 1), ("2", 2)], ("3", 10));
        assert_eq!(decisions[0].postgres_value, json!("2"));
    }

    #[test]
    fn the_echo_of_our_own_write_is_not_a_conflict() {
        let decisions = phone(SalesforceWins, true, &[("newer", 9)], ("sent", 10));
        assert_eq!(decisions[0].winner, Winner::Postgres);
        assert!(!decisions[0].record);
    }

    #[test]
    fn equal_values_are_decided_but_not_recorded() {
        let decisions = phone(Merge, false, &[("same", 1)], ("same", 10));
        assert!(!decisions[0].record);
    }

    /// The app set the phone to `sent` (the writer sent it; the process died before the answer
    /// was settled), then to `newer`; a poll after the restart reads `sent` back from Salesforce,
    /// later than `newer` was committed.
    fn echo_read_back(policy: ConflictPolicy) -> Vec<Decision> {
        let mut sent = pending("phone", json!("sent"), 5);
        sent.sent = true;
        resolve(
            policy,
            false,
            at(10),
            &[sent, pending("phone", json!("newer"), 7)],
            &[incoming("phone", json!("sent"))],
            equal,
        )
    }

    #[test]
    fn our_own_unsettled_write_read_back_without_an_origin_is_not_a_conflict() {
        for policy in [Merge, SalesforceWins, PostgresWins, LastWriterWins] {
            let decisions = echo_read_back(policy);
            assert_eq!(decisions.len(), 1);
            assert_eq!(
                decisions[0].winner,
                Winner::Postgres,
                "{policy:?}: the app's newer value stays and is sent"
            );
            assert!(!decisions[0].record, "{policy:?}: nothing to record");
            assert_eq!(decisions[0].postgres_value, json!("newer"));
        }
    }

    #[test]
    fn a_value_the_writer_has_not_sent_is_still_a_conflict() {
        // The same read, but the earlier value was never sent: a Salesforce user set it.
        let decisions = resolve(
            SalesforceWins,
            false,
            at(10),
            &[
                pending("phone", json!("sent"), 5),
                pending("phone", json!("newer"), 7),
            ],
            &[incoming("phone", json!("sent"))],
            equal,
        );
        assert_eq!(decisions[0].winner, Winner::Salesforce);
        assert!(decisions[0].record);
    }

    #[test]
    fn values_are_compared_by_the_given_equality() {
        // A number the app wrote and Salesforce's text of it.
        let decisions = resolve(
            Merge,
            false,
            at(10),
            &[pending("annualrevenue", json!(10.0), 5)],
            &[incoming("annualrevenue", json!("10"))],
            |_, a, b| a.as_f64() == b.as_str().and_then(|t| t.parse().ok()),
        );
        assert!(!decisions[0].record, "the same value in two forms");
    }

    #[test]
    fn salesforce_winning_over_an_app_write_in_flight_sends_its_value_again() {
        // The app's phone is on its way to Salesforce when a user's change to it arrives.
        let mut in_flight = pending("phone", json!("app"), 5);
        in_flight.sent = true;
        let decide = |policy, pending: &[PendingChange]| {
            resolve(
                policy,
                false,
                at(10),
                pending,
                &[incoming("phone", json!("user"))],
                equal,
            )
            .remove(0)
        };
        let sf = decide(SalesforceWins, std::slice::from_ref(&in_flight));
        assert_eq!(sf.winner, Winner::Salesforce);
        assert!(
            sf.record && sf.resend,
            "recorded, and the user's value sent after"
        );
        let lww = decide(LastWriterWins, std::slice::from_ref(&in_flight));
        assert!(lww.resend, "the user's change is the later one");
        // Nothing to undo: the app's change was not sent, or the app won.
        assert!(!decide(SalesforceWins, &[pending("phone", json!("app"), 5)]).resend);
        assert!(!decide(Merge, std::slice::from_ref(&in_flight)).resend);
        assert!(!decide(PostgresWins, std::slice::from_ref(&in_flight)).resend);
    }
}

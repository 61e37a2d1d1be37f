//! What a Salesforce answer means for a write (pure).
//!
//! | answer                                             | decision                                    |
//! |----------------------------------------------------|---------------------------------------------|
//! | record `success`                                   | `Success`: sfid written back, `_hc_lastop` `INSERTED` / `UPDATED`, entries `SUCCESS` |
//! | record error, definite (validation, required, …)   | `Failed`: entries `FAILED`, `_hc_err` JSON, row kept as written, not retried |
//! | record error, indefinite (`UNABLE_TO_LOCK_ROW`, …) | `Retry` after a backoff; other records go on |
//! | delete of a record already gone                    | `Success`                                   |
//! | whole call failed, definite                        | every record `Failed`                       |
//! | whole call failed, indefinite or budget used up    | every record `Retry`                        |
//! | whole call failed, ambiguous (may have applied)    | create, upsert: `Reconcile` (see `reconcile`); update, delete: `Retry` (idempotent) |
//!
//! An upsert is reconciled rather than resent: sent again to a record it already created, it
//! becomes an update, which Salesforce refuses for create-only fields (a master-detail parent).

use std::time::Duration;

use serde_json::{json, Value};

use crate::salesforce::error::{classify_code, ErrorClass, SfError};

use super::plan::CallKind;

/// `_hc_lastop` after a successful write (Heroku Connect's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LastOp {
    Inserted,
    Updated,
    /// The record was deleted: no row left to mark.
    Deleted,
}

impl LastOp {
    pub fn as_str(self) -> &'static str {
        match self {
            LastOp::Inserted => "INSERTED",
            LastOp::Updated => "UPDATED",
            LastOp::Deleted => "DELETED",
        }
    }
}

/// One error of a per-record result (`statusCode` in sObject Collections, `errorCode` in REST).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

/// Salesforce's per-record answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordResult {
    Success {
        id: Option<String>,
        /// Upsert: whether the record was created.
        created: Option<bool>,
    },
    Failure(Vec<RecordError>),
}

/// The `_hc_err` JSON of a failed row: `{"errorCode", "message", "fields"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HcError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl HcError {
    pub fn to_json(&self) -> Value {
        json!({"errorCode": self.code, "message": self.message, "fields": self.fields})
    }

    /// The text kept in `_trigger_log.sf_message`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.code, self.message)
    }
}

/// What to do with a write after Salesforce answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Success {
        sfid: Option<String>,
        lastop: LastOp,
    },
    Failed(HcError),
    /// Not applied: send again after a backoff.
    Retry {
        reason: String,
    },
    /// May have been applied: reconcile against Salesforce before anything is resent.
    Reconcile {
        reason: String,
    },
}

/// Codes meaning a delete found nothing to delete: the record is already gone.
const GONE: &[&str] = &[
    "ENTITY_IS_DELETED",
    "NOT_FOUND",
    "INVALID_CROSS_REFERENCE_KEY",
];

/// Decides on one record's result.
pub fn decide_record(kind: CallKind, result: &RecordResult) -> Decision {
    match result {
        RecordResult::Success { id, created } => Decision::Success {
            sfid: id.clone(),
            lastop: match (kind, created) {
                (CallKind::Create, _) | (CallKind::Upsert, Some(true)) => LastOp::Inserted,
                (CallKind::Delete, _) => LastOp::Deleted,
                _ => LastOp::Updated,
            },
        },
        RecordResult::Failure(errors) => {
            let first = errors.first().cloned().unwrap_or(RecordError {
                code: "UNKNOWN_ERROR".into(),
                message: "Salesforce reported a failure without an error".into(),
                fields: vec![],
            });
            if kind == CallKind::Delete && GONE.contains(&first.code.as_str()) {
                return Decision::Success {
                    sfid: None,
                    lastop: LastOp::Deleted,
                };
            }
            match classify_code(&first.code) {
                ErrorClass::Indefinite => Decision::Retry {
                    reason: format!("{}: {}", first.code, first.message),
                },
                ErrorClass::Definite | ErrorClass::Ambiguous => Decision::Failed(HcError {
                    code: first.code,
                    message: first.message,
                    fields: first.fields,
                }),
            }
        }
    }
}

/// Decides on every record of a call that failed as a whole.
pub fn decide_call_error(kind: CallKind, error: &SfError) -> Decision {
    let reason = error.to_string();
    if error.is_budget() {
        return Decision::Retry { reason };
    }
    match error.class {
        ErrorClass::Indefinite => Decision::Retry { reason },
        ErrorClass::Ambiguous if matches!(kind, CallKind::Create | CallKind::Upsert) => {
            Decision::Reconcile { reason }
        }
        ErrorClass::Ambiguous => Decision::Retry { reason },
        ErrorClass::Definite => Decision::Failed(HcError {
            code: error.code.clone(),
            message: error.message.clone(),
            fields: error.fields.clone(),
        }),
    }
}

/// Retry backoff: how long to wait before attempt `attempt` (1 = first retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(500),
            max: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// `base · 2^(attempt-1)`, capped at `max`, scaled by `jitter` in `[0.5, 1]` (pass a random
    /// number in `[0, 1)`) so that records failed together do not retry together.
    ///
    /// That is the client's schedule ([`crate::salesforce::backoff::delay`]) from half the base
    /// to half the cap, its jitter adding up to as much again.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        crate::salesforce::backoff::delay(self.base / 2, self.max / 2, attempt, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: &str) -> RecordResult {
        RecordResult::Failure(vec![RecordError {
            code: code.into(),
            message: "msg".into(),
            fields: vec!["Amount__c".into()],
        }])
    }

    #[test]
    fn a_created_record_comes_back_inserted_with_its_sfid() {
        let d = decide_record(
            CallKind::Create,
            &RecordResult::Success {
                id: Some("001A".into()),
                created: None,
            },
        );
        assert_eq!(
            d,
            Decision::Success {
                sfid: Some("001A".into()),
                lastop: LastOp::Inserted
            }
        );
        let d = decide_record(
            CallKind::Upsert,
            &RecordResult::Success {
                id: Some("a00A".into()),
                created: Some(false),
            },
        );
        assert!(matches!(
            d,
            Decision::Success {
                lastop: LastOp::Updated,
                ..
            }
        ));
    }

    #[test]
    fn a_validation_failure_is_final_with_hc_err_json() {
        let Decision::Failed(err) = decide_record(
            CallKind::Update,
            &failure("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        ) else {
            panic!("expected a failure");
        };
        assert_eq!(
            err.to_json(),
            json!({"errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "msg", "fields": ["Amount__c"]})
        );
    }

    #[test]
    fn a_locked_row_is_retried() {
        assert!(matches!(
            decide_record(CallKind::Update, &failure("UNABLE_TO_LOCK_ROW")),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn deleting_a_record_already_gone_succeeds() {
        assert_eq!(
            decide_record(CallKind::Delete, &failure("ENTITY_IS_DELETED")),
            Decision::Success {
                sfid: None,
                lastop: LastOp::Deleted
            }
        );
        assert!(matches!(
            decide_record(CallKind::Update, &failure("ENTITY_IS_DELETED")),
            Decision::Failed(_)
        ));
    }

    #[test]
    fn ambiguous_creates_and_upserts_are_reconciled_and_other_writes_resent() {
        let err = SfError::api(Some(500), "UNKNOWN_EXCEPTION", "boom", vec![]);
        let err = SfError {
            class: ErrorClass::Ambiguous,
            ..err
        };
        for kind in [CallKind::Create, CallKind::Upsert] {
            assert!(matches!(
                decide_call_error(kind, &err),
                Decision::Reconcile { .. }
            ));
        }
        for kind in [CallKind::Update, CallKind::Delete] {
            assert!(matches!(
                decide_call_error(kind, &err),
                Decision::Retry { .. }
            ));
        }
    }

    #[test]
    fn a_whole_call_refused_for_good_fails_its_records() {
        let err = SfError::api(Some(400), "INVALID_FIELD", "No such column", vec![]);
        assert!(matches!(
            decide_call_error(CallKind::Create, &err),
            Decision::Failed(e) if e.code == "INVALID_FIELD"
        ));
        let unavailable = SfError::api(Some(503), "SERVER_UNAVAILABLE", "down", vec![]);
        assert!(matches!(
            decide_call_error(CallKind::Create, &unavailable),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 0.0), Duration::from_millis(200));
        assert_eq!(b.delay(u32::MAX, 1.0), Duration::from_secs(1));
    }
}

//! Reconciling creates that may or may not have reached Salesforce (pure matching).
//!
//! A create without an upsert key is not idempotent: sending it twice makes two records. So the
//! writer journals every create before sending it (`journal`), and a journaled create whose
//! outcome is unknown (the process died between the call and the Postgres commit, or the call
//! failed ambiguously) is reconciled before anything new is sent:
//!
//! 1. query the records of the object created since the earliest in-flight send (minus a margin
//!    for clock skew), by the integration user when its Id is known (the token response's
//!    identity URL), selecting the journaled fields, ordered by `CreatedDate, Id`;
//! 2. drop candidates whose Id a Postgres row already holds (adopted earlier, or synced in by
//!    the read path), except, when the query was by the integration user, a row the app never
//!    inserted (no `INSERT` entry in the trigger log or archive): that is the copy of a record
//!    this writer created, stored by a poll or a load before the writer found out, and it gives
//!    way to the app's row when the record is adopted, with the changes the app made on it;
//! 3. match each in-flight create, oldest first, to the first remaining candidate whose every
//!    sent field has the sent value ([`same_value`]), but for the fields the app changed on the
//!    candidate's copy (`changed_since`: those changes went to Salesforce as updates of the
//!    record); each candidate is matched at most once, so two identical rows sent together
//!    adopt two distinct records;
//! 4. a match is adopted (its Id written back, the entries `SUCCESS`); an in-flight create with
//!    no match was not applied and is sent again.
//!
//! Limitation: automation that rewrites a sent field on create (a workflow field update, a
//! trigger) makes the record unrecognisable; such a create is sent again. Mappings with an
//! upsert key do not depend on this: they upsert by external ID.

mod journaled;

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// A journaled create whose outcome is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct InFlightCreate {
    pub journal_id: i64,
    /// The body sent (fields by Salesforce name).
    pub body: Map<String, Value>,
}

/// A record Salesforce holds, as queried.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub fields: Map<String, Value>,
    /// Fields (Salesforce names, lower case) the app changed on the read path's copy of the
    /// record since it was created: their values tell nothing of what was sent.
    pub changed_since: HashSet<String>,
}

/// What happens to an in-flight create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Salesforce has it: adopt this Id.
    Adopt(String),
    /// Salesforce does not have it: send it again.
    Resend,
}

/// The fields to select when querying candidates for these creates.
pub fn fields_to_query(creates: &[InFlightCreate]) -> Vec<String> {
    // A relationship value is selected by its path (`Invoice__r.External_Id__c`).
    let mut fields: Vec<String> = creates
        .iter()
        .flat_map(|c| {
            crate::adapter::flat_body(&c.body)
                .into_iter()
                .map(|(k, _)| k)
        })
        .collect();
    fields.sort_unstable_by_key(|f| f.to_ascii_lowercase());
    fields.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    fields.retain(|f| !f.eq_ignore_ascii_case("Id"));
    fields
}

/// Matches in-flight creates (oldest first) to candidates (in creation order). See the module
/// documentation.
pub fn match_creates(
    creates: &[InFlightCreate],
    candidates: &[Candidate],
    taken: &HashSet<String>,
) -> Vec<(i64, Resolution)> {
    let mut used: HashSet<&str> = taken.iter().map(String::as_str).collect();
    creates
        .iter()
        .map(|create| {
            let found = candidates.iter().find(|c| {
                !used.contains(c.id.as_str()) && matches(&create.body, &c.fields, &c.changed_since)
            });
            match found {
                Some(c) => {
                    used.insert(c.id.as_str());
                    (create.journal_id, Resolution::Adopt(c.id.clone()))
                }
                None => (create.journal_id, Resolution::Resend),
            }
        })
        .collect()
}

fn matches(
    sent: &Map<String, Value>,
    stored: &Map<String, Value>,
    changed_since: &HashSet<String>,
) -> bool {
    sent.iter().all(|(field, value)| {
        if changed_since.contains(&field.to_ascii_lowercase()) {
            return true;
        }
        let stored_value = stored
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .map(|(_, v)| v)
            .unwrap_or(&Value::Null);
        match (value, stored_value) {
            // A parent named by external ID: the query answers the parent nested the same way.
            (Value::Object(sent_parent), Value::Object(stored_parent)) => {
                matches(sent_parent, stored_parent, &HashSet::new())
            }
            (Value::Object(_), _) => false,
            _ => same_value(value, stored_value),
        }
    })
}

/// Whether a sent value and the value Salesforce stores are the same: numbers by value,
/// datetimes by instant (Salesforce answers `…+0000` for a sent `…Z`), times without their
/// zone suffix, everything else exactly.
pub fn same_value(sent: &Value, stored: &Value) -> bool {
    match (sent, stored) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) if a == b => true,
        (Value::String(a), Value::String(b)) => match (instant(a), instant(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a.trim_end_matches('Z') == b.trim_end_matches('Z'),
        },
        // A number sent as text, or the reverse (Bulk and CSV sources).
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            a.parse::<f64>().ok() == b.as_f64()
        }
        (a, b) => a == b,
    }
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    if s.len() < 19 || s.as_bytes().get(10).is_none_or(|b| *b != b'T') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn create(id: i64, body: Value) -> InFlightCreate {
        InFlightCreate {
            journal_id: id,
            body: map(body),
        }
    }

    fn candidate(id: &str, fields: Value) -> Candidate {
        Candidate {
            id: id.into(),
            fields: map(fields),
            changed_since: HashSet::new(),
        }
    }

    #[test]
    fn a_record_the_app_changed_through_the_read_paths_copy_is_still_recognised() {
        let edited = Candidate {
            changed_since: HashSet::from(["phone".to_owned()]),
            ..candidate(
                "001A",
                json!({"Name": "Acme", "Phone": "edited on the copy"}),
            )
        };
        let r = match_creates(
            &[create(1, json!({"Name": "Acme", "Phone": "1"}))],
            &[edited],
            &HashSet::new(),
        );
        assert_eq!(r, vec![(1, Resolution::Adopt("001A".into()))]);
        let renamed = Candidate {
            changed_since: HashSet::from(["phone".to_owned()]),
            ..candidate("001B", json!({"Name": "Other", "Phone": "1"}))
        };
        let r = match_creates(
            &[create(2, json!({"Name": "Acme", "Phone": "1"}))],
            &[renamed],
            &HashSet::new(),
        );
        assert_eq!(
            r,
            vec![(2, Resolution::Resend)],
            "the fields the app did not change must still match"
        );
    }

    #[test]
    fn a_create_salesforce_applied_is_adopted_and_a_lost_one_resent() {
        let r = match_creates(
            &[
                create(1, json!({"Name": "Acme", "Phone": "1"})),
                create(2, json!({"Name": "Lost"})),
            ],
            &[
                candidate("001X", json!({"Name": "Other", "Phone": null})),
                candidate("001A", json!({"Name": "Acme", "Phone": "1"})),
            ],
            &HashSet::new(),
        );
        assert_eq!(
            r,
            [
                (1, Resolution::Adopt("001A".into())),
                (2, Resolution::Resend)
            ]
        );
    }

    #[test]
    fn identical_rows_adopt_distinct_records_and_never_one_already_held() {
        let body = json!({"Name": "Same"});
        let r = match_creates(
            &[
                create(1, body.clone()),
                create(2, body.clone()),
                create(3, body.clone()),
            ],
            &[
                candidate("001A", body.clone()),
                candidate("001B", body.clone()),
                candidate("001C", body.clone()),
            ],
            &HashSet::from(["001A".to_owned()]),
        );
        assert_eq!(
            r,
            [
                (1, Resolution::Adopt("001B".into())),
                (2, Resolution::Adopt("001C".into())),
                (3, Resolution::Resend)
            ]
        );
    }

    #[test]
    fn values_compare_as_salesforce_stores_them() {
        assert!(same_value(&json!(10), &json!(10.0)));
        assert!(same_value(
            &json!("2024-01-02T03:04:05.000Z"),
            &json!("2024-01-02T03:04:05.000+0000")
        ));
        assert!(!same_value(
            &json!("2024-01-02T03:04:05.000Z"),
            &json!("2024-01-02T03:04:06.000+0000")
        ));
        assert!(same_value(&json!("03:04:05.000Z"), &json!("03:04:05.000")));
        assert!(same_value(&json!(true), &json!(true)));
        assert!(!same_value(&json!("a"), &json!(null)));
    }

    #[test]
    fn field_names_match_case_insensitively_and_are_queried_once() {
        let creates = [
            create(1, json!({"Name": "a", "Phone": "1"})),
            create(2, json!({"name": "b", "Website": "w"})),
        ];
        assert_eq!(fields_to_query(&creates), ["Name", "Phone", "Website"]);
        let r = match_creates(
            &creates[1..],
            &[candidate("001A", json!({"Name": "b", "Website": "w"}))],
            &HashSet::new(),
        );
        assert_eq!(r, [(2, Resolution::Adopt("001A".into()))]);
    }

    #[test]
    fn a_child_naming_its_parent_by_external_id_is_recognised_by_that_parent() {
        let creates = [create(
            1,
            json!({"Quantity__c": 2, "Invoice__r": {"External_Id__c": "INV-1"}}),
        )];
        assert_eq!(
            fields_to_query(&creates),
            ["Invoice__r.External_Id__c", "Quantity__c"]
        );
        let nested = |ext: &str| {
            json!({"Quantity__c": 2.0, "Invoice__r": {
                "attributes": {"type": "Invoice__c"}, "External_Id__c": ext}})
        };
        let r = match_creates(
            &creates,
            &[
                candidate("a02A", nested("INV-2")),
                candidate("a02B", json!({"Quantity__c": 2.0, "Invoice__r": null})),
                candidate("a02C", nested("INV-1")),
            ],
            &HashSet::new(),
        );
        assert_eq!(r, [(1, Resolution::Adopt("a02C".into()))]);
    }
}

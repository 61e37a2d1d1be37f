//! The mapping's `filter`, evaluated by the engine.
//!
//! Salesforce filters queries for us but not change events, and a record that stops matching must
//! leave the table, so the engine evaluates the filter itself (with `sync_schema::soql`'s parser
//! and evaluator, the same code that validated it at build time).

use serde_json::Value;
use sync_schema::soql::Condition;

use crate::adapter::MappingDescriptor;

/// A mapping's filter, parsed once.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    condition: Option<Condition>,
    fields: Vec<String>,
}

/// What the filter says of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Matches,
    DoesNotMatch,
    /// The values at hand do not decide it: read the record from Salesforce.
    Unknown,
}

impl Filter {
    /// The filter of `mapping` (none: every record matches).
    pub fn of(mapping: &MappingDescriptor) -> Result<Filter, String> {
        let Some(text) = mapping.filter else {
            return Ok(Filter::default());
        };
        let condition = Condition::parse(text).map_err(|e| {
            format!(
                "the filter of mapping {} is invalid: {}",
                mapping.object, e.message
            )
        })?;
        let fields = condition.fields();
        Ok(Filter {
            condition: Some(condition),
            fields,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.condition.is_none()
    }

    /// The field paths the filter reads.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The filter's fields that the mapping does not store (they must be selected in queries
    /// and fetched to evaluate stored rows).
    pub fn unmapped_fields(&self, mapping: &MappingDescriptor) -> Vec<String> {
        self.fields
            .iter()
            .filter(|f| mapping.field(f).is_none())
            .cloned()
            .collect()
    }

    /// Whether a change of these Salesforce fields can change the verdict.
    pub fn touched_by<'a>(&self, changed: impl IntoIterator<Item = &'a str>) -> bool {
        let fields = &self.fields;
        changed.into_iter().any(|c| {
            let c = c.split('.').next().unwrap_or(c);
            fields.iter().any(|f| {
                let base = f.split('.').next().unwrap_or(f);
                base.eq_ignore_ascii_case(c)
                    || base
                        .strip_suffix("__r")
                        .is_some_and(|stem| c.eq_ignore_ascii_case(&format!("{stem}__c")))
                    || c.eq_ignore_ascii_case(&format!("{base}Id"))
            })
        })
    }

    /// The verdict on a record whose values `lookup` provides.
    pub fn verdict(&self, lookup: &dyn Fn(&str) -> Option<Value>) -> Verdict {
        match &self.condition {
            None => Verdict::Matches,
            Some(condition) => match condition.eval(lookup) {
                Some(true) => Verdict::Matches,
                Some(false) => Verdict::DoesNotMatch,
                None => Verdict::Unknown,
            },
        }
    }

    /// The verdict on a REST record (query result or retrieve).
    pub fn verdict_on_record(&self, record: &Value) -> Verdict {
        let lookup = sync_schema::soql::json_lookup(record);
        self.verdict(&lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(text: &'static str) -> Filter {
        let condition = Condition::parse(text).unwrap();
        Filter {
            fields: condition.fields(),
            condition: Some(condition),
        }
    }

    #[test]
    fn records_entering_and_leaving_the_filter_are_told_apart() {
        let f = filter("IsDeleted = false AND Type != 'Competitor'");
        assert_eq!(
            f.verdict_on_record(&json!({"IsDeleted": false, "Type": "Customer"})),
            Verdict::Matches
        );
        assert_eq!(
            f.verdict_on_record(&json!({"IsDeleted": false, "Type": "Competitor"})),
            Verdict::DoesNotMatch
        );
        assert_eq!(
            f.verdict_on_record(&json!({"IsDeleted": false})),
            Verdict::Unknown,
            "a field the record does not carry must be read"
        );
    }

    #[test]
    fn only_changes_to_filter_fields_can_change_the_verdict() {
        let f = filter("Type != 'Competitor' AND Account__r.Industry = 'Banking'");
        assert!(f.touched_by(["Type"]));
        assert!(f.touched_by(["Account__c"]));
        assert!(!f.touched_by(["Phone", "Name"]));
        assert!(Filter::default().verdict(&|_| None) == Verdict::Matches);
    }
}

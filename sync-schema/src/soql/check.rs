//! Checking a parsed filter against the object's describe: fields exist and are filterable,
//! operators suit the field types, literals fit them.

use super::ast::{Comparison, Condition, FieldPath, Literal, Operator as O, Spanned};
use super::{err, FilterError};
use crate::describe::{FieldDescribe, SObjectDescribe};
use crate::diagnostics::did_you_mean;
use crate::model::SfType;

/// Every problem of `condition` against `object`, in filter order.
pub(super) fn check<'a>(
    condition: &Condition,
    object: &'a SObjectDescribe,
    parent: &dyn Fn(&str) -> Option<&'a SObjectDescribe>,
) -> Vec<FilterError> {
    let mut checker = Checker {
        object,
        parent,
        errors: Vec::new(),
    };
    checker.condition(condition);
    checker.errors
}

struct Checker<'a, 'p> {
    object: &'a SObjectDescribe,
    parent: &'p dyn Fn(&str) -> Option<&'a SObjectDescribe>,
    errors: Vec<FilterError>,
}

/// What a comparison's left side resolved to.
struct Target<'a> {
    field: &'a FieldDescribe,
    object: &'a SObjectDescribe,
}

impl<'a> Checker<'a, '_> {
    fn condition(&mut self, condition: &Condition) {
        match condition {
            Condition::And(operands) | Condition::Or(operands) => {
                operands.iter().for_each(|c| self.condition(c));
            }
            Condition::Not(inner) => self.condition(inner),
            Condition::Comparison(comparison) => {
                if let Some(target) = self.resolve(&comparison.field) {
                    self.check(&target, comparison);
                }
            }
        }
    }

    fn resolve(&mut self, path: &FieldPath) -> Option<Target<'a>> {
        let span = path.span.clone();
        let mut object = self.object;
        let (last, relationships) = path.parts.split_last()?;
        for rel in relationships {
            let reference = object.fields.iter().find(|f| {
                f.relationship_name
                    .as_deref()
                    .is_some_and(|r| r.eq_ignore_ascii_case(rel))
            });
            let Some(reference) = reference else {
                let names = object
                    .fields
                    .iter()
                    .filter_map(|f| f.relationship_name.as_deref());
                let help = match did_you_mean(rel, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "use the relationship name of a lookup field on {} (e.g. `Owner` for OwnerId)",
                        object.name
                    ),
                };
                self.errors.push(err(
                    span,
                    format!("unknown relationship `{rel}` on {}", object.name),
                    help,
                ));
                return None;
            };
            if reference.reference_to.len() != 1 {
                self.errors.push(err(
                    span,
                    format!(
                        "`{rel}` is polymorphic (it can point to {}); filters cannot follow it",
                        reference.reference_to.join(", ")
                    ),
                    format!("filter on `{}` itself instead", reference.name),
                ));
                return None;
            }
            let target = &reference.reference_to[0];
            let Some(parent) = (self.parent)(target) else {
                self.errors.push(err(
                    span,
                    format!("no describe snapshot for {target}, which `{rel}` points to"),
                    format!(
                        "run `forcesync describe pull {target}` to save mappings/describe/{target}.json"
                    ),
                ));
                return None;
            };
            object = parent;
        }
        match object.field(last) {
            Some(field) => Some(Target { field, object }),
            None => {
                let help = match did_you_mean(last, object.fields.iter().map(|f| f.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "see mappings/describe/{}.json for the fields of {}",
                        object.name, object.name
                    ),
                };
                self.errors.push(err(
                    span,
                    format!("unknown field `{last}` on {} in the filter", object.name),
                    help,
                ));
                None
            }
        }
    }

    fn check(&mut self, target: &Target<'_>, comparison: &Comparison) {
        let path = comparison.field.to_string();
        let path_span = comparison.field.span.clone();
        let op = comparison.op;
        let op_span = comparison.op_span.clone();
        let field = target.field;
        if field.is_compound() {
            self.errors.push(err(
                path_span,
                format!(
                    "`{path}` is a compound {} field and cannot be compared",
                    field.field_type
                ),
                format!(
                    "filter on its components instead, e.g. `{}`",
                    target
                        .object
                        .components(&field.name)
                        .first()
                        .map_or("BillingCity", |c| c.name.as_str())
                ),
            ));
            return;
        }
        let sf = match SfType::from_describe(&field.field_type) {
            Some(sf) if field.filterable => sf,
            _ => {
                self.errors.push(err(
                    path_span,
                    format!(
                        "`{path}` ({}) cannot be used in a filter: Salesforce does not allow filtering on it",
                        field.field_type
                    ),
                    "remove this condition or filter on another field",
                ));
                return;
            }
        };
        use SfType as T;
        let is_text = sf.is_text();
        match op {
            O::Like | O::NotLike
                if !is_text || matches!(sf, T::Id | T::Reference | T::MultiPicklist) =>
            {
                self.errors.push(err(
                    op_span,
                    format!("LIKE cannot be used on `{path}` ({})", field.field_type),
                    "LIKE works on text fields; compare with = or != instead",
                ));
                return;
            }
            O::Includes | O::Excludes if sf != T::MultiPicklist => {
                self.errors.push(err(
                    op_span,
                    format!(
                        "{} only works on multi-select picklists; `{path}` is {}",
                        op.as_str(),
                        field.field_type
                    ),
                    "use IN (...) for a single-valued field",
                ));
                return;
            }
            O::Lt | O::Le | O::Gt | O::Ge if matches!(sf, T::Boolean | T::MultiPicklist) => {
                self.errors.push(err(
                    op_span,
                    format!(
                        "`{}` cannot compare `{path}` ({})",
                        op.as_str(),
                        field.field_type
                    ),
                    "use = or != instead",
                ));
                return;
            }
            _ => {}
        }
        for Spanned { value, span } in &comparison.values {
            if let Literal::DateLiteral(literal) = value {
                self.errors.push(err(
                    span.clone(),
                    format!(
                        "the relative date literal `{literal}` cannot be used in a mapping filter"
                    ),
                    "records would enter and leave the filter as time passes, with no change in \
                     Salesforce to tell forcesync; compare with a fixed date such as 2024-01-31",
                ));
                continue;
            }
            if *value == Literal::Null {
                if !matches!(op, O::Eq | O::Ne | O::In | O::NotIn) {
                    self.errors.push(err(
                        span.clone(),
                        format!("null cannot be used with {}", op.as_str()),
                        format!("test for null with `{path} = null` or `{path} != null`"),
                    ));
                }
                continue;
            }
            let expected: &str = match sf {
                _ if is_text => "a quoted string",
                T::Int | T::Long => "a whole number",
                T::Double | T::Currency | T::Percent => "a number",
                T::Boolean => "true or false",
                T::Date => "a date such as 2024-01-31 or a date literal such as TODAY",
                T::DateTime => {
                    "a datetime such as 2024-01-31T10:00:00Z or a date literal such as LAST_N_DAYS:30"
                }
                _ => "a time such as 10:00:00.000Z",
            };
            let fits = match (sf, value) {
                (T::Id | T::Reference, Literal::String(s)) => {
                    if !(s.len() == 15 || s.len() == 18)
                        || !s.bytes().all(|b| b.is_ascii_alphanumeric())
                    {
                        self.errors.push(err(
                            span.clone(),
                            format!("'{s}' is not a valid Salesforce ID for `{path}`"),
                            "IDs are 15 or 18 letters and digits, e.g. '001000000000001AAA'",
                        ));
                    }
                    true
                }
                (T::Picklist | T::MultiPicklist, Literal::String(s))
                    if field.restricted_picklist && !matches!(op, O::Like | O::NotLike) =>
                {
                    let known = field
                        .picklist_values
                        .iter()
                        .any(|v| v.value.eq_ignore_ascii_case(s));
                    if !known {
                        let values = field.picklist_values.iter().map(|v| v.value.as_str());
                        let help = match did_you_mean(s, values.clone()) {
                            Some(m) => format!("did you mean '{m}'?"),
                            None => {
                                format!("its values are: {}", values.collect::<Vec<_>>().join(", "))
                            }
                        };
                        self.errors.push(err(
                            span.clone(),
                            format!(
                                "'{s}' is not a value of the restricted picklist `{path}`, so \
                                 no record can match it"
                            ),
                            help,
                        ));
                    }
                    true
                }
                (_, Literal::String(_)) => is_text,
                (T::Int | T::Long, Literal::Number { integral, .. }) => *integral,
                (T::Double | T::Currency | T::Percent, Literal::Number { .. }) => true,
                (T::Boolean, Literal::Boolean(_)) => true,
                (T::Date, Literal::Date(_)) => true,
                (T::DateTime, Literal::DateTime(_)) => true,
                (T::Time, Literal::Time(_)) => true,
                _ => false,
            };
            if !fits {
                let quoted = matches!(value, Literal::String(_))
                    && !is_text
                    && !matches!(sf, T::Boolean | T::Date | T::DateTime | T::Time);
                let help = if quoted {
                    format!(
                        "`{path}` is {}; write the value without quotes",
                        field.field_type
                    )
                } else {
                    format!(
                        "`{path}` is {}; compare it with {expected}",
                        field.field_type
                    )
                };
                self.errors.push(err(
                    span.clone(),
                    format!(
                        "{} cannot be compared with `{path}` ({})",
                        capitalise(value.what()),
                        field.field_type
                    ),
                    help,
                ));
            }
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

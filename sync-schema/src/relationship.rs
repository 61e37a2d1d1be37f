//! Relationship columns: a `fields` entry `"<Relationship>.<External ID field>"` (e.g.
//! `"Invoice__r.External_Id__c"`) maps the parent's external ID into a column of the child
//! (`invoice__r__external_id__c`, Heroku Connect's naming), so an app can name a parent that has
//! no `sfid` yet. Checked here against the child's and the parent's describes.

use crate::catalog::{Field, RelationshipPath};
use crate::describe::{FieldDescribe, SObjectDescribe};
use crate::diagnostics::did_you_mean;
use crate::mapping::{At, Sink};
use crate::types;

/// The catalog field of a relationship path entry, or every problem with it reported.
pub(crate) fn resolve<'d>(
    sink: &mut Sink<'_>,
    describe: &'d SObjectDescribe,
    parent: &dyn Fn(&str) -> Option<&'d SObjectDescribe>,
    entry: &At<String>,
) -> Option<Field> {
    let span = entry.span.clone();
    let parts: Vec<&str> = entry.value.split('.').collect();
    let [relationship, field_name] = parts.as_slice() else {
        sink.error(
            span,
            format!(
                "`{}` follows more than one relationship; a relationship column names one field \
                 of the direct parent",
                entry.value
            ),
            "write it as `<Relationship>.<External ID field>`, e.g. `Invoice__r.External_Id__c`",
        );
        return None;
    };
    let lookup = lookup_of(sink, describe, relationship, entry)?;
    let [object] = lookup.reference_to.as_slice() else {
        sink.error(
            span,
            format!(
                "`{relationship}` is polymorphic (it can point to {}); a relationship column needs \
                 one parent object",
                lookup.reference_to.join(", ")
            ),
            format!("map `{}` (the parent's Id) instead", lookup.name),
        );
        return None;
    };
    let Some(target) = parent(object) else {
        sink.error(
            span,
            format!("no describe snapshot for {object}, which `{relationship}` points to"),
            format!(
                "run `forcesync describe pull {object}` to save mappings/describe/{object}.json"
            ),
        );
        return None;
    };
    let Some(key) = target.field(field_name) else {
        let help = match did_you_mean(field_name, target.fields.iter().map(|f| f.name.as_str())) {
            Some(s) => format!("did you mean `{s}`?"),
            None => external_ids_help(target),
        };
        sink.error(
            span,
            format!("unknown field `{field_name}` on {}", target.name),
            help,
        );
        return None;
    };
    if !key.external_id || !key.id_lookup {
        sink.error(
            span,
            format!(
                "`{}` is not an external ID of {}, so Salesforce cannot find the parent by it",
                key.name, target.name
            ),
            external_ids_help(target),
        );
        return None;
    }
    let mut built = match types::field(key, false) {
        Ok(f) => f,
        Err(ty) => {
            sink.error(
                span,
                format!(
                    "`{}` on {} has type `{ty}`, which cannot be synced",
                    key.name, target.name
                ),
                "name the parent by a text or number external ID",
            );
            return None;
        }
    };
    let name = lookup.relationship_name.clone().unwrap_or_default();
    built.sf_name = format!("{name}.{}", key.name);
    built.label = format!("{} {}", lookup.label, key.label);
    built.column = types::relationship_column(&name, &key.name);
    // Written exactly when the lookup is: on create (and on update if the child can be
    // reparented); never required, since the lookup's Id can name the parent instead.
    built.nillable = true;
    built.createable = lookup.createable;
    built.updateable = lookup.updateable;
    built.defaulted_on_create = false;
    built.required_on_create = false;
    built.external_id = false;
    built.unique = false;
    built.calculated = false;
    built.compound = None;
    built.reference_to = vec![object.clone()];
    built.relationship_name = None;
    built.relationship = Some(RelationshipPath {
        lookup: lookup.name.clone(),
        name,
        object: object.clone(),
        field: key.name.clone(),
    });
    Some(built)
}

/// The lookup field whose relationship name is `relationship`, or an error pointing the user at
/// the right name.
fn lookup_of<'d>(
    sink: &mut Sink<'_>,
    describe: &'d SObjectDescribe,
    relationship: &str,
    entry: &At<String>,
) -> Option<&'d FieldDescribe> {
    let found = describe.fields.iter().find(|f| {
        f.field_type == "reference"
            && f.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(relationship))
    });
    if found.is_some() {
        return found;
    }
    let rest = entry.value.split_once('.').map_or("", |(_, r)| r);
    let help = match describe.field(relationship) {
        Some(f) if f.relationship_name.is_some() => format!(
            "a path follows the relationship name, not the lookup field: write `{}.{rest}`",
            f.relationship_name.as_deref().unwrap_or_default()
        ),
        _ => match did_you_mean(
            relationship,
            describe
                .fields
                .iter()
                .filter_map(|f| f.relationship_name.as_deref()),
        ) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "use the relationship name of a lookup field on {} (custom lookups end in __r)",
                describe.name
            ),
        },
    };
    sink.error(
        entry.span.clone(),
        format!("unknown relationship `{relationship}` on {}", describe.name),
        help,
    );
    None
}

/// What to use instead: the parent's external IDs, or how to make one.
fn external_ids_help(target: &SObjectDescribe) -> String {
    let ids: Vec<&str> = target
        .fields
        .iter()
        .filter(|f| f.external_id && f.id_lookup)
        .map(|f| f.name.as_str())
        .collect();
    match ids.as_slice() {
        [] => format!(
            "{} has no external ID field: mark one as External ID in Salesforce and run \
             `forcesync describe pull {}`, or map the lookup's Id instead",
            target.name, target.name
        ),
        [one] => format!("use `{one}`, the external ID of {}", target.name),
        many => format!(
            "use one of the external IDs of {}: {}",
            target.name,
            many.join(", ")
        ),
    }
}

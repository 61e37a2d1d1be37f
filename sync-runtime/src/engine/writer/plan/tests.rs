//! The write plan's tests: steps, ordering, chunking, Bulk above the threshold.

use serde_json::json;

use super::*;
use crate::adapter::testing::INVOICE_LINE;
use crate::engine::testing::ACCOUNT;
use crate::engine::writer::testing::{CONTACT, INVOICE};

fn values(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn op(table: &str, record_id: i32, op: NetOp) -> Coalesced {
    Coalesced {
        table: table.into(),
        record_id,
        op,
        entry_ids: vec![record_id * 10],
        deferred: vec![],
    }
}

fn create(table: &str, record_id: i32, v: Value) -> Coalesced {
    op(table, record_id, NetOp::Create { values: values(v) })
}

fn update(table: &str, record_id: i32, sfid: &str, v: Value) -> Coalesced {
    let sfid = sfid.into();
    op(
        table,
        record_id,
        NetOp::Update {
            sfid,
            values: values(v),
        },
    )
}

fn delete(table: &str, record_id: i32, sfid: &str) -> Coalesced {
    op(table, record_id, NetOp::Delete { sfid: sfid.into() })
}

/// The plan of `ops` with the default chunk size and Bulk threshold.
fn planned(mappings: &[&'static MappingDescriptor], ops: Vec<Coalesced>) -> Plan {
    plan(mappings, ops, PlanConfig::default())
}

/// The plan of `ops` over a child mapping and its parent, which goes first.
fn planned_with_parent(
    child: &'static MappingDescriptor,
    parent: &'static MappingDescriptor,
    ops: Vec<Coalesced>,
) -> Plan {
    let mappings = [child, parent];
    assert_eq!(mapping_order(&mappings), [1, 0]);
    planned(&mappings, ops)
}

fn kinds(plan: &Plan) -> Vec<(usize, CallKind)> {
    plan.steps.iter().map(|s| (s.mapping, s.kind)).collect()
}

#[test]
fn parents_are_written_before_children_and_deleted_after_them() {
    let p = planned_with_parent(
        &CONTACT,
        &ACCOUNT,
        vec![
            create("contact", 1, json!({"lastname": "L"})),
            delete("contact", 2, "003A"),
            create("account", 3, json!({"name": "A"})),
            delete("account", 4, "001A"),
        ],
    );
    assert_eq!(
        kinds(&p),
        [
            (1, CallKind::Create),
            (0, CallKind::Create),
            (0, CallKind::Delete),
            (1, CallKind::Delete)
        ]
    );
}

#[test]
fn a_parent_named_by_external_id_is_upserted_before_its_children_are_created() {
    let p = planned_with_parent(
        &INVOICE_LINE,
        &INVOICE,
        vec![
            create(
                "invoice_line__c",
                1,
                json!({"invoice__r__external_id__c": "INV-1", "description__c": "L1"}),
            ),
            create("invoice__c", 2, json!({"external_id__c": "INV-1"})),
            create(
                "invoice_line__c",
                3,
                json!({"invoice__r__external_id__c": "INV-1", "description__c": "L2"}),
            ),
        ],
    );
    assert_eq!(kinds(&p), [(1, CallKind::Upsert), (0, CallKind::Create)]);
    let lines: Vec<_> = p.steps[1].writes().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0].body,
        values(json!({"Invoice__r": {"External_Id__c": "INV-1"}, "Description__c": "L1"}))
    );
}

#[test]
fn an_update_sends_only_the_changed_writable_fields() {
    let p = planned(
        &[&ACCOUNT],
        vec![update(
            "account",
            1,
            "001A",
            json!({"phone": "555", "systemmodstamp": "2024-01-01T00:00:00"}),
        )],
    );
    let w: Vec<_> = p.steps[0].writes().collect();
    assert_eq!(w[0].kind, CallKind::Update);
    assert_eq!(w[0].sfid.as_deref(), Some("001A"));
    assert_eq!(w[0].body, values(json!({"Phone": "555"})));
}

#[test]
fn an_update_of_columns_salesforce_does_not_take_sends_nothing() {
    let p = planned(
        &[&ACCOUNT],
        vec![update(
            "account",
            1,
            "001A",
            json!({"systemmodstamp": "2024-01-01T00:00:00"}),
        )],
    );
    assert!(p.steps.is_empty());
    assert_eq!(p.settled.len(), 1);
    assert_eq!(p.settled[0].sfid.as_deref(), Some("001A"));
}

#[test]
fn a_create_with_an_upsert_key_value_is_an_upsert_by_external_id() {
    let p = planned(
        &[&INVOICE],
        vec![
            create(
                "invoice__c",
                1,
                json!({"name": "I-1", "external_id__c": "X1"}),
            ),
            create("invoice__c", 2, json!({"name": "I-2"})),
        ],
    );
    assert_eq!(kinds(&p), [(0, CallKind::Upsert), (0, CallKind::Create)]);
    let w: Vec<_> = p.steps[0].writes().collect();
    assert_eq!(w[0].external_id.as_deref(), Some("X1"));
    assert_eq!(w[0].body.get("External_Id__c"), Some(&json!("X1")));
}

#[test]
fn one_step_never_names_the_same_external_id_twice() {
    let p = planned(
        &[&INVOICE],
        vec![
            create("invoice__c", 1, json!({"external_id__c": "X1"})),
            create("invoice__c", 2, json!({"external_id__c": "x1"})),
            create("invoice__c", 3, json!({"external_id__c": "X2"})),
        ],
    );
    let ids: Vec<i32> = p.steps[0].writes().map(|w| w.record_id).collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(p.deferred, [20]);
}

#[test]
fn writes_are_chunked_by_200_and_large_steps_use_bulk() {
    let ops = |n: i32| {
        (1..=n)
            .map(|i| create("account", i, json!({"name": format!("A{i}")})))
            .collect::<Vec<_>>()
    };
    let p = planned(&[&ACCOUNT], ops(401));
    let Transport::Collections(chunks) = &p.steps[0].transport else {
        panic!("expected collections");
    };
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [200, 200, 1]
    );
    let p = plan(
        &[&ACCOUNT],
        ops(401),
        PlanConfig {
            chunk_size: 200,
            bulk_threshold: 400,
        },
    );
    assert!(matches!(&p.steps[0].transport, Transport::Bulk(w) if w.len() == 401));
}

#[test]
fn a_value_that_cannot_be_converted_is_rejected_before_sending() {
    let p = planned(
        &[&INVOICE],
        vec![create(
            "invoice__c",
            1,
            json!({"due_time__c": "not a time"}),
        )],
    );
    assert!(p.steps.is_empty());
    assert_eq!(p.rejected.len(), 1);
    assert_eq!(p.rejected[0].field, "Due_Time__c");
}

#[test]
fn entries_of_tables_outside_the_plan_are_deferred() {
    let p = planned(&[&ACCOUNT], vec![create("lead", 1, json!({"name": "x"}))]);
    assert!(p.steps.is_empty());
    assert_eq!(p.deferred, [10]);
}

#[test]
fn children_naming_an_unsent_parent_are_held_back_and_the_rest_go() {
    let mappings = [&INVOICE_LINE];
    let p = plan(
        &mappings,
        vec![
            create(
                "invoice_line__c",
                1,
                json!({"invoice__r__external_id__c": "INV-1", "description__c": "waits"}),
            ),
            create(
                "invoice_line__c",
                2,
                json!({"invoice__r__external_id__c": "INV-2", "description__c": "goes"}),
            ),
        ],
        PlanConfig {
            chunk_size: 1,
            ..PlanConfig::default()
        },
    );
    let keys: Vec<Vec<String>> = p
        .steps
        .iter()
        .flat_map(Step::writes)
        .map(|w| {
            parent_keys(mappings[0], w)
                .into_iter()
                .map(|(_, v)| v)
                .collect()
        })
        .collect();
    assert_eq!(keys, [vec!["INV-1".to_owned()], vec!["INV-2".to_owned()]]);
    let (kept, held) = hold_back(p.steps, |w| {
        parent_keys(mappings[0], w)
            .iter()
            .any(|(_, v)| v == "INV-1")
    });
    assert_eq!(held.iter().map(|w| w.record_id).collect::<Vec<_>>(), [1]);
    let sent: Vec<i32> = kept
        .iter()
        .flat_map(Step::writes)
        .map(|w| w.record_id)
        .collect();
    assert_eq!(sent, [2]);
    let (none, all) = hold_back(kept, |_| true);
    assert!(none.is_empty(), "a step left empty goes");
    assert_eq!(all.len(), 1);
}

//! The generated sync adapter converts Salesforce records (REST and CDC shapes) into typed rows
//! and rows back into create/update bodies (writable fields only).

use chrono::{NaiveDate, NaiveTime};
use forcesync_tests::sample::salesforce::{self, gadget, widget};
use serde_json::json;
use sync_runtime::adapter::{ConversionErrorKind, SfRecord, SyncAdapter, WriteBack};
use widget::{Status, Tags, Widget};

fn rest_record() -> serde_json::Value {
    json!({
        "attributes": {"type": "Widget__c", "url": "/services/data/v59.0/sobjects/Widget__c/a01000000000001AAA"},
        "Id": "a01000000000001AAA",
        "IsDeleted": false,
        "SystemModstamp": "2024-01-02T03:04:05.000+0000",
        "CreatedDate": "2024-01-01T00:00:00.000+0000",
        "Name": "Widget 1",
        "Status__c": "Sent",
        "Tags__c": "Red;Blue",
        "Quantity__c": 3,
        "Serial__c": 9000000000i64,
        "Price__c": 9.5,
        "Total__c": 28.5,
        "Active__c": true,
        "Due__c": "2024-02-01",
        "Shipped__c": "2024-01-03T10:00:00.000+0000",
        "Pickup__c": "14:45:00.000Z",
        "Notes__c": null,
        "External_Id__c": "W-1",
        "Account__c": "001000000000001AAA",
        "Location__Latitude__s": 52.52,
        "Location__Longitude__s": 13.405,
        "Location__c": {"latitude": 52.52, "longitude": 13.405},
        "BillingCity": "Berlin"
    })
}

#[test]
fn a_rest_record_becomes_a_typed_new_row() {
    let record = rest_record();
    let new = Widget::new_from_sf(&SfRecord::rest(&record).unwrap()).unwrap();
    assert_eq!(new.sfid.as_deref(), Some("a01000000000001AAA"));
    assert_eq!(new.name, "Widget 1");
    assert_eq!(new.status, Some(Status::Sent));
    assert_eq!(new.tags.as_ref().map(|t| t.len()), Some(2));
    assert_eq!(new.serial, Some(9_000_000_000));
    assert_eq!(new.due, NaiveDate::from_ymd_opt(2024, 2, 1));
    assert_eq!(
        new.system_modstamp.map(|t| t.to_string()).as_deref(),
        Some("2024-01-02 03:04:05")
    );
    assert_eq!(new.pickup, NaiveTime::from_hms_opt(14, 45, 0));
    assert_eq!(new.total, Some(28.5));
    assert_eq!(new.notes, None);
    assert_eq!(new.location_latitude, Some(52.52));
}

#[test]
fn a_cdc_update_becomes_a_changeset_of_the_changed_fields_only() {
    let event = json!({
        "ChangeEventHeader": {
            "entityName": "Widget__c", "changeType": "UPDATE",
            "changedFields": ["Status__c", "Notes__c", "BillingAddress", "Location__c"],
            "recordIds": ["a01000000000001AAA"]
        },
        "LastModifiedDate": "2024-01-05T00:00:00.000Z",
        "Status__c": "Archived",
        "Notes__c": null,
        "Shipped__c": "2024-01-04T08:00:00.000Z",
        "BillingAddress": {"City": "Paris"},
        "Location__c": {"latitude": 48.85, "longitude": 2.35}
    });
    let changes = Widget::changes_from_sf(&SfRecord::cdc(&event).unwrap()).unwrap();
    assert_eq!(changes.sfid, Some(Some("a01000000000001AAA".to_owned())));
    assert_eq!(
        changes.status,
        Some(Some(Status::Other("Archived".to_owned())))
    );
    assert_eq!(changes.notes, Some(None));
    assert_eq!(changes.billing_city, Some(Some("Paris".to_owned())));
    assert_eq!(changes.location_latitude, Some(Some(48.85)));
    assert_eq!(
        changes.shipped.flatten().map(|t| t.to_string()).as_deref(),
        Some("2024-01-04 08:00:00")
    );
    assert_eq!(changes.name, None, "absent fields are left alone");
    assert_eq!(changes.quantity, None);
}

#[test]
fn a_record_missing_a_required_field_is_a_clear_error() {
    let mut record = rest_record();
    record["Name"] = serde_json::Value::Null;
    let err = Widget::new_from_sf(&SfRecord::rest(&record).unwrap()).unwrap_err();
    assert_eq!(err.field, "Name");
    assert_eq!(err.kind, ConversionErrorKind::Missing);
    assert_eq!(
        err.to_string(),
        "field Name: a value is required but the record has none"
    );

    let mut record = rest_record();
    record["Quantity__c"] = json!("three");
    let err = Widget::new_from_sf(&SfRecord::rest(&record).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field Quantity__c: expected a 32-bit integer, got \"three\""
    );
}

fn row() -> Widget {
    let record = rest_record();
    let new = Widget::new_from_sf(&SfRecord::rest(&record).unwrap()).unwrap();
    Widget {
        id: 1,
        sfid: new.sfid,
        is_deleted: new.is_deleted,
        system_modstamp: new.system_modstamp,
        created_date: new.created_date,
        name: Some(new.name),
        status: new.status,
        tags: Some([Tags::Blue, Tags::Red].into()),
        quantity: new.quantity,
        serial: new.serial,
        price: new.price,
        total: new.total,
        active: new.active,
        due: new.due,
        shipped: new.shipped,
        pickup: new.pickup,
        notes: None,
        external_id: new.external_id,
        account: new.account,
        location_latitude: new.location_latitude,
        location_longitude: new.location_longitude,
        billing_city: new.billing_city,
        hc_lastop: Some("PENDING".to_owned()),
        hc_err: None,
    }
}

#[test]
fn a_row_becomes_a_create_body_of_writable_fields_with_values() {
    let body = row().create_body().into_json();
    let obj = body.as_object().unwrap();
    assert!(obj.get("Id").is_none() && obj.get("SystemModstamp").is_none());
    assert!(
        obj.get("Total__c").is_none(),
        "formula fields are never sent"
    );
    assert!(
        obj.get("Notes__c").is_none(),
        "unset fields are left out of a create"
    );
    assert_eq!(body["Name"], "Widget 1");
    assert_eq!(body["Tags__c"], "Red;Blue");
    assert_eq!(body["Shipped__c"], "2024-01-03T10:00:00.000Z");
    assert_eq!(body["Pickup__c"], "14:45:00.000Z");
    assert_eq!(body["Due__c"], "2024-02-01");
    assert_eq!(body["Location__Latitude__s"], 52.52);
}

#[test]
fn an_update_body_sends_null_to_clear_a_field() {
    let body = row().update_body().into_json();
    assert_eq!(body["Notes__c"], serde_json::Value::Null);
    assert!(body.get("Total__c").is_none());
}

/// Whether `$row` implements `WriteBack`, decided at compile time (autoref: the `WriteBack`
/// method is found first when the bound holds).
macro_rules! writes_back {
    ($row:ty) => {{
        struct Probe<T>(std::marker::PhantomData<T>);
        #[allow(dead_code)] // only the impl that applies is used
        trait Writes {
            fn writes(&self) -> bool {
                true
            }
        }
        impl<T: WriteBack> Writes for Probe<T> {}
        #[allow(dead_code)]
        trait Reads {
            fn writes(&self) -> bool {
                false
            }
        }
        impl<T> Reads for &Probe<T> {}
        (&Probe::<$row>(std::marker::PhantomData)).writes()
    }};
}

#[test]
fn only_read_write_mappings_write_back() {
    assert!(writes_back!(Widget));
    assert!(!writes_back!(gadget::Gadget));
    assert!(!gadget::MAPPING.is_read_write());
    assert!(gadget::MAPPING.fields.iter().all(|f| !f.writable));
}

#[test]
fn the_registry_lists_every_mapping_with_its_fields() {
    let objects: Vec<&str> = salesforce::MAPPINGS.iter().map(|m| m.object).collect();
    assert_eq!(objects, ["Gadget__c", "Widget__c"]);
    let registry = &salesforce::REGISTRY;
    assert_eq!(
        (registry.api_version, registry.schema),
        ("59.0", "salesforce")
    );
    assert_eq!(registry.mappings.len(), 2);
    assert_eq!(registry.mapping("widget__c").unwrap().table, "widget__c");
    assert_eq!(
        registry
            .mapping("Widget__c")
            .unwrap()
            .field("Name")
            .unwrap()
            .pg_type,
        sync_runtime::adapter::PgType::Varchar(80)
    );
    let w = &widget::MAPPING;
    assert_eq!(w.upsert_key, Some("External_Id__c"));
    assert_eq!(w.field("billingcity").unwrap().compound_key, Some("City"));
    assert_eq!(
        w.field("Location__Latitude__s").unwrap().compound_key,
        Some("Latitude")
    );
    assert_eq!(w.field_by_column("sfid").unwrap().sf_name, "Id");
    assert!(w.field("Total__c").unwrap().calculated);
}

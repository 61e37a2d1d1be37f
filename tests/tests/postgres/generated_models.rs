//! The models generated from this repo's `mappings/` round-trip through the committed
//! migrations: `Invoice__c` (restricted picklist, multipicklist, time, date, geolocation, long
//! text) and `Account` (picklists, address components).

use chrono::{NaiveDate, NaiveTime};
use diesel::prelude::*;
use generated::salesforce::account::{self, Account, AccountChanges, Industry, NewAccount};
use generated::salesforce::invoice::{
    self, Invoice, InvoiceChanges, NewInvoice, PaymentMethods, PaymentMethodsSet, Status,
};

use sync_runtime::adapter::{hstore, pg_values_to_sf_body, WriteKind};

use crate::support::{keys, migrated, text, trigger_log};

fn new_invoice() -> NewInvoice {
    NewInvoice {
        external_id: Some("INV-0001".to_owned()),
        tax_rate: Some(19.0),
        status: Some(Status::Sent),
        payment_methods: Some(PaymentMethodsSet::from([
            PaymentMethods::Card,
            PaymentMethods::BankTransfer,
        ])),
        issued_on: NaiveDate::from_ymd_opt(2026, 11, 1),
        due_time: NaiveTime::from_hms_opt(17, 30, 0),
        paid: Some(false),
        line_count: Some(3.0),
        notes: Some("Net 30.\nThank you!".to_owned()),
        location_latitude: Some(48.137_154),
        location_longitude: Some(11.576_124),
        ..NewInvoice::new("001000000000001AAA".to_owned(), 1200.5)
    }
}

#[test]
fn a_generated_invoice_round_trips_through_insert_select_and_update() {
    let (_db, mut conn) = migrated();
    let new = new_invoice();
    let row: Invoice = diesel::insert_into(invoice::invoice::table)
        .values(&new)
        .returning(Invoice::as_returning())
        .get_result(&mut conn)
        .unwrap();
    let read: Invoice = invoice::invoice::table
        .find(row.id)
        .select(Invoice::as_select())
        .first(&mut conn)
        .unwrap();
    assert_eq!(read.account.as_deref(), Some("001000000000001AAA"));
    assert_eq!(read.amount, Some(1200.5));
    assert_eq!(read.status, Some(Status::Sent));
    assert_eq!(read.payment_methods, new.payment_methods);
    assert_eq!(read.issued_on, new.issued_on);
    assert_eq!(read.due_time, new.due_time);
    assert_eq!(read.location_latitude, Some(48.137_154));
    assert_eq!(read.notes, new.notes);
    assert_eq!(read.hc_lastop.as_deref(), Some("PENDING"));

    let changes = InvoiceChanges {
        status: Some(Some(Status::Paid)),
        paid: Some(Some(true)),
        payment_methods: Some(Some(PaymentMethodsSet::from([PaymentMethods::Cash]))),
        ..InvoiceChanges::default()
    };
    let updated: Invoice = diesel::update(&read)
        .set(&changes)
        .returning(Invoice::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(updated.status, Some(Status::Paid));
    assert_eq!(updated.paid, Some(true));
    assert_eq!(updated.due_time, read.due_time);

    let log = trigger_log(&mut conn);
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].action, "UPDATE");
    assert_eq!(
        keys(&log[1].values),
        ["paid__c", "payment_methods__c", "status__c"]
    );
    assert_eq!(
        log[1].values.as_ref().unwrap()["payment_methods__c"],
        "Cash"
    );

    // The writer reads the captured columns (hstore text, typed by the mapping's columns) and
    // turns them into a Salesforce update body.
    let mut captured = |entry: usize, skip_nulls: bool| {
        let raw = text(
            &mut conn,
            &format!(
                "SELECT \"values\" AS value FROM salesforce._trigger_log ORDER BY id OFFSET {entry} LIMIT 1"
            ),
        )
        .unwrap();
        hstore::typed(
            Some(&invoice::MAPPING),
            hstore::parse(&raw).unwrap(),
            skip_nulls,
        )
    };
    let values = captured(1, false);
    let body = pg_values_to_sf_body(&invoice::MAPPING, &values, WriteKind::Update).unwrap();
    assert_eq!(
        body.into_json(),
        serde_json::json!({"Paid__c": true, "Payment_Methods__c": "Cash", "Status__c": "Paid"})
    );
    // An insert becomes a create body of the createable columns that have values; the time
    // and date columns are converted to Salesforce's spelling.
    let values = captured(0, true);
    let body = pg_values_to_sf_body(&invoice::MAPPING, &values, WriteKind::Create).unwrap();
    assert_eq!(
        body.get("Due_Time__c"),
        Some(&serde_json::json!("17:30:00.000Z"))
    );
    assert_eq!(
        body.get("Issued_On__c"),
        Some(&serde_json::json!("2026-11-01"))
    );
    assert_eq!(
        body.get("External_Id__c"),
        Some(&serde_json::json!("INV-0001"))
    );
    assert!(body.get("Id").is_none() && body.get("Total__c").is_none());
    assert!(
        body.get("Reseller__c").is_none(),
        "nulls are left out of a create"
    );
}

#[test]
fn a_generated_account_round_trips_with_picklists_and_address_components() {
    let (_db, mut conn) = migrated();
    let new = NewAccount {
        industry: Some(Industry::Banking),
        billing_city: Some("Munich".to_owned()),
        billing_latitude: Some(48.1),
        ..NewAccount::new("Acme".to_owned())
    };
    let row: Account = diesel::insert_into(account::account::table)
        .values(&new)
        .returning(Account::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(row.industry, Some(Industry::Banking));
    assert_eq!(row.billing_city.as_deref(), Some("Munich"));
    let updated: Account = diesel::update(&row)
        .set(&AccountChanges {
            industry: Some(None),
            ..AccountChanges::default()
        })
        .returning(Account::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(updated.industry, None);
    assert_eq!(updated.billing_city.as_deref(), Some("Munich"));
}

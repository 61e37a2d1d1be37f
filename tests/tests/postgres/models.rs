//! Typed rows round-trip through Postgres: every column type of the sample catalog (picklist
//! enum incl. an unknown value, multipicklist set, int, bigint, double, boolean, date, timestamp,
//! time, long text, geolocation components).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use forcesync_tests::pg::TestDb;
use forcesync_tests::sample::salesforce::widget::{
    widget, NewWidget, Status, Tags, TagsSet, Widget, WidgetChanges,
};

/// A fresh database with the sample catalog's initial migration applied.
fn sample_db() -> (TestDb, PgConnection) {
    let db = TestDb::new();
    let mut conn = db.conn();
    let plan = sync_schema::sql::plan(None, &sync_schema::testing::sample_catalog()).unwrap();
    conn.batch_execute(&plan.up_sql())
        .expect("sample migration applies");
    (db, conn)
}

fn datetime(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

fn new_widget() -> NewWidget {
    NewWidget {
        sfid: None,
        is_deleted: None,
        system_modstamp: None,
        created_date: None,
        name: "Widget 1".to_owned(),
        status: Some(Status::Sent),
        tags: Some(TagsSet::from([Tags::Red, Tags::Blue])),
        quantity: Some(3),
        serial: Some(9_000_000_000),
        price: Some(9.5),
        total: None,
        active: Some(true),
        due: NaiveDate::from_ymd_opt(2026, 12, 1),
        shipped: Some(datetime("2026-11-22 10:30:00.250")),
        pickup: NaiveTime::from_hms_opt(14, 45, 0),
        notes: Some("x".repeat(40_000)),
        external_id: Some("W-1".to_owned()),
        account: Some("001000000000001AAA".to_owned()),
        location_latitude: Some(52.520_008),
        location_longitude: Some(13.404_954),
        billing_city: Some("Berlin".to_owned()),
    }
}

#[test]
fn a_typed_insert_reads_back_every_column_type() {
    let (_db, mut conn) = sample_db();
    let new = new_widget();
    let row: Widget = diesel::insert_into(widget::table)
        .values(&new)
        .returning(Widget::as_returning())
        .get_result(&mut conn)
        .unwrap();
    let read: Widget = widget::table
        .find(row.id)
        .select(Widget::as_select())
        .first(&mut conn)
        .unwrap();
    assert_eq!(read, row);
    assert_eq!(read.name.as_deref(), Some("Widget 1"));
    assert_eq!(read.status, Some(Status::Sent));
    assert_eq!(read.tags, new.tags);
    assert_eq!(read.quantity, Some(3));
    assert_eq!(read.serial, Some(9_000_000_000));
    assert_eq!(read.price, Some(9.5));
    assert_eq!(read.active, Some(true));
    assert_eq!(read.due, new.due);
    assert_eq!(read.shipped, new.shipped);
    assert_eq!(read.pickup, new.pickup);
    assert_eq!(read.notes.as_ref().map(String::len), Some(40_000));
    assert_eq!(read.location_latitude, Some(52.520_008));
    assert_eq!(read.location_longitude, Some(13.404_954));
    assert_eq!(read.hc_lastop.as_deref(), Some("PENDING"));
}

#[test]
fn picklists_are_stored_as_their_api_values() {
    let (_db, mut conn) = sample_db();
    diesel::insert_into(widget::table)
        .values(&new_widget())
        .execute(&mut conn)
        .unwrap();
    let (status, tags): (Option<String>, Option<String>) = widget::table
        .select((
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("status__c"),
            diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::Text>>("tags__c"),
        ))
        .first(&mut conn)
        .unwrap();
    assert_eq!(status.as_deref(), Some("Sent"));
    assert_eq!(tags.as_deref(), Some("Red;Blue"));
}

#[test]
fn a_value_added_in_salesforce_later_still_loads_as_other() {
    let (_db, mut conn) = sample_db();
    conn.batch_execute(
        "INSERT INTO salesforce.widget__c (name, status__c, tags__c) VALUES ('w', 'Archived', 'Blue;Purple')",
    )
    .unwrap();
    let row: Widget = widget::table
        .select(Widget::as_select())
        .first(&mut conn)
        .unwrap();
    assert_eq!(row.status, Some(Status::Other("Archived".to_owned())));
    let tags = row.tags.unwrap();
    assert!(tags.contains(&Tags::Blue));
    assert!(tags.contains(&Tags::Other("Purple".to_owned())));
}

#[test]
fn a_changeset_updates_only_the_given_columns_and_can_clear_one() {
    let (_db, mut conn) = sample_db();
    let row: Widget = diesel::insert_into(widget::table)
        .values(&new_widget())
        .returning(Widget::as_returning())
        .get_result(&mut conn)
        .unwrap();
    let changes = WidgetChanges {
        status: Some(Some(Status::Paid)),
        notes: Some(None),
        quantity: Some(Some(4)),
        ..WidgetChanges::default()
    };
    let updated: Widget = diesel::update(&row)
        .set(&changes)
        .returning(Widget::as_returning())
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(updated.status, Some(Status::Paid));
    assert_eq!(updated.notes, None);
    assert_eq!(updated.quantity, Some(4));
    assert_eq!(updated.tags, row.tags);
    assert_eq!(updated.shipped, row.shipped);
    assert_eq!(updated.pickup, row.pickup);
}

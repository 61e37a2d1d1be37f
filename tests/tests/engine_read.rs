//! The read half end to end: Salesforce (the emulator) → the engine → real Postgres. The
//! streaming scenarios run over both transports (`name::cometd`, `name::pubsub`, or a pair of
//! named tests); the Pub/Sub API's own cases (a 10,000-change burst, a corrupt replay id,
//! keepalive-only periods, the fallback to CometD) follow them; last, a field added to the object in
//! Salesforce mid-stream (over both, and over Pub/Sub a replay across the schema change).

use std::time::Duration;

use forcesync_tests::engine::{eventually, Harness, Running};
use forcesync_tests::over_both_transports;
use serde_json::json;
use sync_runtime::adapter::ConflictPolicy;
use sync_runtime::engine::hub::Transport;
use sync_runtime::engine::{self, state::SyncState};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);

async fn count(pg: &tokio_postgres::Client, sql: &str) -> i64 {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

async fn loaded_at(pg: &tokio_postgres::Client) -> Option<String> {
    pg.query_one(
        "SELECT loaded_at::text FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn text(pg: &tokio_postgres::Client, sql: &str, sfid: &str) -> Option<String> {
    pg.query_opt(sql, &[&sfid])
        .await
        .unwrap()
        .and_then(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_loads_through_rest_and_bulk_give_the_same_rows() {
    let h = Harness::start().await;
    let rest = {
        let mut config = h.engine_config();
        config.bulk_threshold = u64::MAX;
        h.engine(config.clone()).migrate().await.unwrap();
        let ctx = h.ctx("Account", config);
        let report = engine::driver::load(&ctx, false).await.unwrap();
        assert!(!report.bulk);
        report.rows
    };
    let pg = h.pg().await;
    let sql = "SELECT string_agg(concat_ws('|', sfid, name, type, phone, annualrevenue::text, billingcity, systemmodstamp::text), ',' ORDER BY sfid) FROM salesforce.account";
    let by_rest: String = pg.query_one(sql, &[]).await.unwrap().get(0);

    let mut config = h.engine_config();
    config.bulk_threshold = 0;
    let ctx = h.ctx("Account", config);
    let report = engine::driver::load(&ctx, true).await.unwrap();
    assert!(report.bulk, "a threshold of 0 loads through Bulk API 2.0");
    assert_eq!(report.rows, rest);
    let by_bulk: String = pg.query_one(sql, &[]).await.unwrap().get(0);
    assert_eq!(by_rest, by_bulk);

    // The filter (`Type != 'Competitor'`) applied: no competitor was loaded.
    let expected = h
        .query("SELECT COUNT() FROM Account WHERE IsDeleted = false AND Type != 'Competitor'")
        .await;
    let _ = expected;
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM salesforce.account WHERE type = 'Competitor'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await as u64,
        rest
    );
    let status = ctx.states.get(&pg, "Account").await.unwrap().unwrap();
    assert_eq!(status.state, SyncState::Streaming);
    assert_eq!(status.load_done as u64, rest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_column_type_loads_the_same_through_rest_and_through_bulk() {
    // A Bulk load copies in COPY's binary format, a REST load in text: every column of every
    // row must come out the same, by an initial load (into a shadow table) and by a reload
    // (through a staging table). Account has integers, doubles and booleans; Invoice__c dates,
    // times, long text and geolocation doubles.
    let h = Harness::start().await;
    let mut pg = h.pg().await;
    // Values at the edges of their columns, and text COPY must escape.
    let account = h
        .create(
            "Account",
            json!({"Name": "Edge\tcase \\ back\nslash é€ 😀", "NumberOfEmployees": 99999999,
                   "AnnualRevenue": -0.000000123, "Description": "line one\r\nline\ttwo \\N"}),
        )
        .await;
    for (issued, due, paid, amount) in [
        ("1970-01-01", "00:00:00.000Z", true, 0.1),
        ("2099-12-31", "23:59:59.999Z", false, 9999999.99),
        ("2000-02-29", "12:30:00.500Z", true, -42.25),
    ] {
        h.create(
            "Invoice__c",
            json!({"Account__c": account, "Amount__c": amount,
                   "Paid__c": paid, "Issued_On__c": issued, "Due_Time__c": due,
                   "Notes__c": "tab\there\nnew line \\ backslash", "Location__Latitude__s": 47.6062,
                   "Location__Longitude__s": -122.3321}),
        )
        .await;
    }
    for (object, table, typed) in [
        ("Account", "account", "numberofemployees"),
        ("Invoice__c", "invoice__c", "due_time__c"),
    ] {
        let rest = {
            let mut config = h.engine_config();
            config.bulk_threshold = u64::MAX;
            config
        };
        let bulk = {
            let mut config = h.engine_config();
            config.bulk_threshold = 0;
            config
        };
        h.engine(rest.clone()).migrate().await.unwrap();
        // Every row, without its `id` (a second initial load numbers them anew), then with it.
        let without_id = format!(
            "SELECT string_agg(regexp_replace(t::text, '^\\(\\d+,', '('), E'\\n' ORDER BY t.sfid) \
             FROM salesforce.{table} t"
        );
        let whole =
            format!("SELECT string_agg(t::text, E'\\n' ORDER BY t.sfid) FROM salesforce.{table} t");

        let report = engine::driver::load(&h.ctx(object, rest), false)
            .await
            .unwrap();
        assert!(!report.bulk);
        let by_rest: String = pg.query_one(&without_id, &[]).await.unwrap().get(0);
        let with_values = count(
            &pg,
            &format!("SELECT count(*) FROM salesforce.{table} WHERE {typed} IS NOT NULL"),
        )
        .await;
        assert!(with_values > 0, "the seed gives {object} rows with {typed}");

        // The table emptied as the engine empties it (nothing captured), loaded again by Bulk.
        let tx = pg.transaction().await.unwrap();
        tx.batch_execute(&format!(
            "SET LOCAL forcesync.engine = 'on'; DELETE FROM salesforce.{table}"
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let report = engine::driver::load(&h.ctx(object, bulk.clone()), false)
            .await
            .unwrap();
        assert!(report.bulk && report.binary);
        let by_bulk: String = pg.query_one(&without_id, &[]).await.unwrap().get(0);
        assert_same_rows(&by_rest, &by_bulk, &format!("{object}: REST, then Bulk"));

        let before: String = pg.query_one(&whole, &[]).await.unwrap().get(0);
        let report = engine::driver::load(&h.ctx(object, bulk.clone()), true)
            .await
            .unwrap();
        assert!(report.bulk && report.binary);
        let reloaded: String = pg.query_one(&whole, &[]).await.unwrap().get(0);
        assert_same_rows(&before, &reloaded, &format!("{object}: a Bulk reload"));
    }

    // A column whose type is not the mapping's (a database adopted from Heroku Connect may have
    // one): the load copies text instead, and the values are the same.
    let revenue = "SELECT sum(annualrevenue)::float8 FROM salesforce.account";
    let before: f64 = pg.query_one(revenue, &[]).await.unwrap().get(0);
    pg.batch_execute("ALTER TABLE salesforce.account ALTER COLUMN annualrevenue TYPE numeric")
        .await
        .unwrap();
    let mut bulk = h.engine_config();
    bulk.bulk_threshold = 0;
    let report = engine::driver::load(&h.ctx("Account", bulk), true)
        .await
        .unwrap();
    assert!(report.bulk && !report.binary);
    let after: f64 = pg.query_one(revenue, &[]).await.unwrap().get(0);
    assert!((before - after).abs() < 0.01, "{before} against {after}");
}

/// Rows (one a line) equal, or the first few that differ shown side by side.
fn assert_same_rows(left: &str, right: &str, what: &str) {
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let differing: Vec<String> = l
        .iter()
        .zip(&r)
        .filter(|(a, b)| a != b)
        .take(3)
        .map(|(a, b)| format!("\n  {a}\n  {b}"))
        .collect();
    assert!(
        l.len() == r.len() && differing.is_empty(),
        "{what}: {} rows against {}; differing:{}",
        l.len(),
        r.len(),
        differing.concat()
    );
}

/// The engine streaming over `transport`.
fn run_engine_over(h: &Harness, objects: &[&str], transport: Transport) -> Running {
    h.run(h.engine_config_over(objects, transport))
}

async fn wait_state(pg: &tokio_postgres::Client, object: &str, state: SyncState) {
    let store = engine::state::StateStore::new("salesforce");
    eventually(WAIT, &format!("{object} reaches {state}"), || async {
        store
            .get(pg, object)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.state == state)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_created_updated_and_deleted_in_salesforce_reach_postgres_by_streaming() {
    accounts_reach_postgres_by_streaming(Transport::Cometd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_created_updated_and_deleted_reach_postgres_over_the_pubsub_api() {
    accounts_reach_postgres_by_streaming(Transport::PubSub).await;
}

async fn accounts_reach_postgres_by_streaming(transport: Transport) {
    let h = Harness::start().await;
    let running = run_engine_over(&h, &["Account"], transport);
    let pg = h.pg().await;
    wait_state(&pg, "Account", SyncState::Streaming).await;

    let id = h
        .create(
            "Account",
            json!({"Name": "Streamed Co", "Phone": "111", "Type": "Customer"}),
        )
        .await;
    eventually(WAIT, "the new Account appears", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("Streamed Co")
    })
    .await;

    h.update("Account", &id, json!({"Phone": "222", "Website": null}))
        .await;
    eventually(WAIT, "the phone change arrives", || async {
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("222")
    })
    .await;
    assert_eq!(
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("Streamed Co"),
        "fields the change did not name are untouched"
    );
    let lastop = text(
        &pg,
        "SELECT _hc_lastop FROM salesforce.account WHERE sfid = $1",
        &id,
    )
    .await;
    assert_eq!(lastop.as_deref(), Some("SYNCED"));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce._trigger_log").await,
        0,
        "engine writes are not captured"
    );

    // Leaving the filter removes the row; coming back brings it whole.
    h.update("Account", &id, json!({"Type": "Competitor"}))
        .await;
    eventually(WAIT, "the competitor leaves the table", || async {
        text(
            &pg,
            "SELECT sfid FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_none()
    })
    .await;
    h.update("Account", &id, json!({"Type": "Customer"})).await;
    eventually(WAIT, "the customer comes back whole", || async {
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("222")
    })
    .await;

    h.delete("Account", &id).await;
    eventually(WAIT, "the delete arrives", || async {
        text(
            &pg,
            "SELECT sfid FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_none()
    })
    .await;

    running.stop().await;
}

over_both_transports!(
    one_update_of_many_records_in_one_call_updates_every_row,
    two_engines_on_one_database_run_each_mapping_once,
    the_change_event_of_forcesyncs_own_insert_does_not_duplicate_the_row,
);

async fn one_update_of_many_records_in_one_call_updates_every_row(transport: Transport) {
    let h = Harness::start().await;
    let running = run_engine_over(&h, &["Account"], transport);
    let pg = h.pg().await;
    wait_state(&pg, "Account", SyncState::Streaming).await;
    let ids: Vec<String> = h
        .query("SELECT Id FROM Account WHERE Type != 'Competitor' ORDER BY Id LIMIT 25")
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    h.update_many(
        "Account",
        &ids,
        json!({"Rating": "Hot", "Phone": "+1 555 0199"}),
    )
    .await;
    eventually(WAIT, "every record of the call is updated", || async {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM salesforce.account WHERE sfid = ANY($1) AND phone = '+1 555 0199'",
                &[&ids],
            )
            .await
            .unwrap()
            .get(0);
        n == ids.len() as i64
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_leaves_a_record_the_writer_created_to_the_apps_row_and_fills_it_once_written_back()
{
    let h = Harness::start().await;
    let config = h.engine_config();
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let pg = h.pg().await;
    // The app inserts a row; the writer's create reaches Salesforce, and its answer is lost
    // (the journal row waits for reconciliation).
    let row: i32 = pg
        .query_one(
            "INSERT INTO salesforce.account (name) VALUES ('Created by the writer') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let sfid = h
        .create("Account", json!({"Name": "Created by the writer"}))
        .await;
    pg.execute(
        "INSERT INTO salesforce._forcesync_write_journal
             (mapping, table_name, record_id, kind, entry_ids, body, state)
         VALUES ('Account', 'account', $1, 'create', '{}', '{\"Name\": \"Created by the writer\"}',
                 'RECONCILE')",
        &[&row],
    )
    .await
    .unwrap();
    let named = "SELECT count(*) FROM salesforce.account WHERE name = 'Created by the writer'";
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        count(&pg, named).await,
        1,
        "no second row the app could take for its own"
    );

    // The writer adopts the record: the next poll gives the app's row what Salesforce set.
    pg.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on';
         UPDATE salesforce.account SET sfid = '{sfid}', _hc_lastop = 'INSERTED' WHERE id = {row};
         DELETE FROM salesforce._forcesync_write_journal WHERE record_id = {row};
         DELETE FROM salesforce._trigger_log WHERE record_id = {row};
         COMMIT"
    ))
    .await
    .unwrap();
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(count(&pg, named).await, 1);
    assert!(
        text(
            &pg,
            "SELECT systemmodstamp::text FROM salesforce.account WHERE sfid = $1",
            &sfid
        )
        .await
        .is_some(),
        "the app's row holds the record as Salesforce has it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opportunities_reach_postgres_by_polling_with_soft_deletes() {
    let h = Harness::start().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Opportunity", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let pg = h.pg().await;
    let account = h.query("SELECT Id FROM Account LIMIT 1").await[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = h
        .create(
            "Opportunity",
            json!({"Name": "Polled deal", "StageName": "Prospecting", "CloseDate": "2027-01-31", "AccountId": account}),
        )
        .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        text(
            &pg,
            "SELECT name FROM salesforce.opportunity WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("Polled deal")
    );
    h.update("Opportunity", &id, json!({"StageName": "Closed Won"}))
        .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        text(
            &pg,
            "SELECT stagename FROM salesforce.opportunity WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("Closed Won")
    );
    h.delete("Opportunity", &id).await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        text(
            &pg,
            "SELECT isdeleted::text FROM salesforce.opportunity WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("true"),
        "deletes = \"soft\" keeps the row with isdeleted = true"
    );

    // A reload (through a shadow table) keeps soft-deleted rows, and marks deleted a record
    // Salesforce lost meanwhile without a trace (deleted, recycle bin purged).
    let purged: String = pg
        .query_one(
            "SELECT sfid FROM salesforce.opportunity WHERE sfid <> $1 ORDER BY sfid LIMIT 1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    h.control(
        reqwest::Method::POST,
        "data/delete",
        json!({"ids": [purged]}),
    )
    .await;
    h.control(reqwest::Method::POST, "recycle-bin/purge", json!({}))
        .await;
    let oid = "SELECT 'salesforce.opportunity'::regclass::oid";
    let before: u32 = pg.query_one(oid, &[]).await.unwrap().get(0);
    engine::driver::load(&ctx, true).await.unwrap();
    let after: u32 = pg.query_one(oid, &[]).await.unwrap().get(0);
    assert_ne!(before, after, "the reload swapped a new table in");
    for sfid in [&id, &purged] {
        assert_eq!(
            text(
                &pg,
                "SELECT isdeleted::text FROM salesforce.opportunity WHERE sfid = $1",
                sfid
            )
            .await
            .as_deref(),
            Some("true")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_the_engine_is_stopped_are_applied_once_after_restart() {
    applied_once_after_restart(Transport::Cometd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_pubsub_api_a_restart_resumes_exactly_after_the_last_applied_change() {
    applied_once_after_restart(Transport::PubSub).await;
}

async fn applied_once_after_restart(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = run_engine_over(&h, &["Account"], transport);
    wait_state(&pg, "Account", SyncState::Streaming).await;
    let id = h.create("Account", json!({"Name": "Before stop"})).await;
    eventually(WAIT, "the first change arrives", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_some()
    })
    .await;
    let loaded_before = loaded_at(&pg).await;
    assert!(loaded_before.is_some(), "the load is recorded as complete");
    running.stop().await;
    let rows_before = count(&pg, "SELECT count(*) FROM salesforce.account").await;

    h.update("Account", &id, json!({"Name": "While stopped"}))
        .await;
    let created = h
        .create("Account", json!({"Name": "Created while stopped"}))
        .await;

    let running = run_engine_over(&h, &["Account"], transport);
    eventually(WAIT, "the changes made while stopped arrive", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("While stopped")
            && text(
                &pg,
                "SELECT name FROM salesforce.account WHERE sfid = $1",
                &created,
            )
            .await
            .is_some()
    })
    .await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows_before + 1,
        "exactly once"
    );
    assert_eq!(
        loaded_at(&pg).await,
        loaded_before,
        "a restart resumes; it does not load again"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salesforce_change_to_a_field_the_app_also_changed_is_recorded_as_a_conflict() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let id: String = pg
        .query_one(
            "SELECT sfid FROM salesforce.account ORDER BY sfid LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The app changes the phone (captured, not yet sent) ...
    pg.execute(
        "UPDATE salesforce.account SET phone = 'app' WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    // ... while a Salesforce user changes phone and website.
    h.update(
        "Account",
        &id,
        json!({"Phone": "salesforce", "Website": "https://sf.example"}),
    )
    .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();

    // Merge: Salesforce's website, the app's pending phone.
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("app")
    );
    assert_eq!(
        text(
            &pg,
            "SELECT website FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("https://sf.example")
    );
    let row = pg
        .query_one(
            "SELECT field, postgres_value #>> '{}', salesforce_value #>> '{}', policy, decision FROM salesforce._forcesync_conflicts WHERE sfid = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (field, pgv, sfv, policy, decision): (String, String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(field, "phone");
    assert_eq!((pgv.as_str(), sfv.as_str()), ("app", "salesforce"));
    assert_eq!((policy.as_str(), decision.as_str()), ("merge", "postgres"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_change_committing_while_a_salesforce_change_is_applied_is_not_overwritten() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let id: String = pg
        .query_one(
            "SELECT sfid FROM salesforce.account ORDER BY sfid LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // A Salesforce user changes the phone ...
    h.update("Account", &id, json!({"Phone": "salesforce"}))
        .await;
    // ... while the app's transaction changing it too is still open when the engine applies
    // Salesforce's change.
    let mut app = h.pg().await;
    let app_tx = app.transaction().await.unwrap();
    app_tx
        .execute(
            "UPDATE salesforce.account SET phone = 'app' WHERE sfid = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (polled, ()) = tokio::join!(engine::poll::poll_once(&ctx, None), async {
        eventually(WAIT, "the engine waits for the app's row", || async {
            count(
                &pg,
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .await
                > 0
        })
        .await;
        app_tx.commit().await.unwrap();
    });
    polled.unwrap();

    // The app's change committed first: it is a pending change the engine sees, and the merge
    // policy keeps it (and records the conflict) instead of overwriting it unseen.
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("app")
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM salesforce._forcesync_conflicts WHERE field = 'phone' AND decision = 'postgres'",
        )
        .await,
        1
    );
}

async fn two_engines_on_one_database_run_each_mapping_once(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running_a = run_engine_over(&h, &["Account"], transport);
    wait_state(&pg, "Account", SyncState::Streaming).await;
    let running_b = run_engine_over(&h, &["Account"], transport);
    let id = h.create("Account", json!({"Name": "Once"})).await;
    eventually(WAIT, "the Account arrives", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_some()
    })
    .await;
    let held: i64 = count(
        &pg,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .await;
    assert_eq!(held, 1, "one engine holds the mapping");
    // The holder stops; the other takes over and keeps syncing.
    running_a.stop().await;
    let later = h.create("Account", json!({"Name": "After takeover"})).await;
    eventually(WAIT, "the second engine took over", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &later,
        )
        .await
        .is_some()
    })
    .await;
    running_b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_fit_is_recorded_and_read_again_once_fixed() {
    a_record_that_does_not_fit(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_that_does_not_fit_a_bulk_load_is_recorded_and_the_rows_around_it_load() {
    // The Bulk load writes COPY's binary format row by row: the row is taken back whole.
    a_record_that_does_not_fit(true).await;
}

async fn a_record_that_does_not_fit(bulk: bool) {
    // In this org Account.Phone grew to 80 characters; the mapping's column is still varchar(40).
    let (h, _describe) = Harness::start_edited("Account", |describe| {
        for field in describe["fields"].as_array_mut().unwrap() {
            if field["name"] == "Phone" {
                field["length"] = json!(80);
            }
        }
    })
    .await;
    let long = "+1 415 555 0100 extension 1234567890 (reception desk)";
    let id = h
        .create("Account", json!({"Name": "Long Phone Inc", "Phone": long}))
        .await;

    let mut config = h.engine_config();
    config.bulk_threshold = if bulk { 0 } else { u64::MAX };
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    let report = engine::driver::load(&ctx, false).await.unwrap();
    assert_eq!((report.bulk, report.binary), (bulk, bulk));
    assert_eq!(report.errors, 1, "only the record that does not fit fails");
    let pg = h.pg().await;
    assert!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await > 100,
        "the rest loaded"
    );
    assert_eq!(
        report.rows as i64,
        count(
            &pg,
            "SELECT count(*) FROM salesforce.account WHERE sfid IS NOT NULL"
        )
        .await
    );
    let row = pg
        .query_one(
            "SELECT sfid, field, reason FROM salesforce._forcesync_read_errors WHERE resolved_at IS NULL",
            &[],
        )
        .await
        .unwrap();
    let (sfid, field, reason): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((sfid.as_str(), field.as_str()), (id.as_str(), "Phone"));
    assert!(reason.contains("varchar(40)"), "{reason}");

    // The cause is fixed (here in Salesforce); the record is read again and the error resolved.
    h.update("Account", &id, json!({"Phone": "+1 415 555 0100"}))
        .await;
    let resolved = engine::reread::retry_read_errors(&ctx).await.unwrap();
    assert_eq!(resolved, 1);
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("+1 415 555 0100")
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM salesforce._forcesync_read_errors WHERE resolved_at IS NULL"
        )
        .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_fields_are_refreshed_without_a_systemmodstamp_change() {
    let h = Harness::start().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Invoice__c", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let pg = h.pg().await;
    let invoice = h
        .query("SELECT Id, Amount__c FROM Invoice__c WHERE Status__c != 'Void' AND Amount__c != null LIMIT 1")
        .await;
    let id = invoice[0]["Id"].as_str().unwrap().to_owned();
    // Only the inputs change in Postgres' copy (as a change event would: formulas are not in events).
    h.update(
        "Invoice__c",
        &id,
        json!({"Amount__c": 1000, "Tax_Rate__c": 50}),
    )
    .await;
    pg.execute(
        "UPDATE salesforce.invoice__c SET amount__c = 1000, tax_rate__c = 50 WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    engine::formulas::refresh_formulas(&ctx).await.unwrap();
    assert_eq!(invoice_total(&pg, &id).await, Some(1500.0));

    // At or above the bulk threshold the refresh reads one Bulk API 2.0 query job instead.
    h.update("Invoice__c", &id, json!({"Tax_Rate__c": 10}))
        .await;
    pg.execute(
        "UPDATE salesforce.invoice__c SET tax_rate__c = 10 WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    let mut config = h.engine_config();
    config.bulk_threshold = 0;
    let ctx = h.ctx("Invoice__c", config);
    let refreshed = engine::formulas::refresh_formulas(&ctx).await.unwrap();
    assert!(refreshed > 0);
    let calls = ctx.client.call_counts();
    assert!(calls.get(sync_runtime::salesforce::CallKind::Bulk) > 0);
    assert_eq!(calls.get(sync_runtime::salesforce::CallKind::Query), 0);
    assert_eq!(invoice_total(&pg, &id).await, Some(1100.0));
}

async fn invoice_total(pg: &tokio_postgres::Client, sfid: &str) -> Option<f64> {
    pg.query_one(
        "SELECT total__c FROM salesforce.invoice__c WHERE sfid = $1",
        &[&sfid],
    )
    .await
    .unwrap()
    .get(0)
}

async fn the_change_event_of_forcesyncs_own_insert_does_not_duplicate_the_row(
    transport: Transport,
) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let config = h.engine_config_over(&["Account", "Invoice__c"], transport);
    let mut running = h.run(config.clone());
    for object in ["Account", "Invoice__c"] {
        wait_state(&pg, object, SyncState::Streaming).await;
    }
    for object in ["Account", "Invoice__c"] {
        let ctx = h.ctx(object, config.clone());
        // The writers' own ends are not checked (as before: the engine's is).
        running.spawn("a writer", move |shutdown| async move {
            let _ = engine::writer::run_mapping(
                &ctx,
                engine::writer::WriterConfig::default(),
                shutdown,
            )
            .await;
            Ok::<(), String>(())
        });
    }

    let account: String = pg
        .query_one(
            "SELECT sfid FROM salesforce.account ORDER BY sfid LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let before_accounts = count(&pg, "SELECT count(*) FROM salesforce.account").await;
    let before_invoices = count(&pg, "SELECT count(*) FROM salesforce.invoice__c").await;
    for i in 0..5 {
        pg.execute(
            "INSERT INTO salesforce.account (name, phone) VALUES ($1, '555')",
            &[&format!("Written by the app {i}")],
        )
        .await
        .unwrap();
        pg.execute(
            "INSERT INTO salesforce.invoice__c (name, account__c, amount__c, external_id__c, status__c) \
             VALUES ($1, $2, 10, $3, 'Draft')",
            &[&format!("INV-APP-{i}"), &account, &format!("EXT-APP-{i}")],
        )
        .await
        .unwrap();
    }
    eventually(WAIT, "every app row has its sfid", || async {
        count(&pg, "SELECT count(*) FROM salesforce.account WHERE name LIKE 'Written by the app%' AND sfid IS NOT NULL").await == 5
            // Invoice names are auto-numbered by Salesforce: rows are found by their external id.
            && count(&pg, "SELECT count(*) FROM salesforce.invoice__c WHERE external_id__c LIKE 'EXT-APP-%' AND sfid IS NOT NULL").await == 5
    })
    .await;
    // Let the change events of those creates arrive and be applied.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        before_accounts + 5
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.invoice__c").await,
        before_invoices + 5
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce._forcesync_conflicts").await,
        0,
        "our own writes are not conflicts"
    );
    running.stop().await;
}

/// Loads `object`, lets the app change `column` of one row (captured, not sent), then a Salesforce
/// user changes `field` of the same record; returns the row's sfid and the context.
async fn overlap(
    h: &Harness,
    object: &str,
    table: &str,
    column: &str,
    field: &str,
    app_first: bool,
) -> (String, engine::MappingCtx) {
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx(object, config);
    engine::driver::load(&ctx, false).await.unwrap();
    let pg = h.pg().await;
    let sfid: String = pg
        .query_one(
            &format!("SELECT sfid FROM salesforce.{table} ORDER BY sfid LIMIT 1"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let app = format!("UPDATE salesforce.{table} SET {column} = 'app' WHERE sfid = $1");
    if app_first {
        pg.execute(&app, &[&sfid]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        h.update(object, &sfid, json!({ field: "salesforce" }))
            .await;
    } else {
        h.update(object, &sfid, json!({ field: "salesforce" }))
            .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        pg.execute(&app, &[&sfid]).await.unwrap();
    }
    engine::poll::poll_once(&ctx, None).await.unwrap();
    (sfid, ctx)
}

async fn decision(pg: &tokio_postgres::Client, sfid: &str) -> (String, String) {
    let row = pg
        .query_one(
            "SELECT policy, decision FROM salesforce._forcesync_conflicts WHERE sfid = $1",
            &[&sfid],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_wins_drops_the_apps_overlapping_pending_change_and_records_it() {
    let h = Harness::start().await;
    let (sfid, _ctx) = overlap(&h, "Invoice__c", "invoice__c", "notes__c", "Notes__c", true).await;
    let pg = h.pg().await;
    assert_eq!(
        text(
            &pg,
            "SELECT notes__c FROM salesforce.invoice__c WHERE sfid = $1",
            &sfid
        )
        .await
        .as_deref(),
        Some("salesforce")
    );
    let (policy, decided) = decision(&pg, &sfid).await;
    assert_eq!(
        (policy.as_str(), decided.as_str()),
        ("salesforce_wins", "salesforce")
    );
    let pending = count(
        &pg,
        "SELECT count(*) FROM salesforce._trigger_log WHERE state = 'NEW' AND \"values\"::hstore ? 'notes__c'",
    )
    .await;
    assert_eq!(pending, 0, "the overlapping pending change is not sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_writer_wins_keeps_the_later_change_and_records_it() {
    let h = Harness::start().await;
    // The app wrote last: its value stays and will be sent.
    let (sfid, _ctx) = overlap(&h, "Contact", "contact", "title", "Title", false).await;
    let pg = h.pg().await;
    assert_eq!(
        text(
            &pg,
            "SELECT title FROM salesforce.contact WHERE sfid = $1",
            &sfid
        )
        .await
        .as_deref(),
        Some("app")
    );
    assert_eq!(
        decision(&pg, &sfid).await,
        ("last_writer_wins".into(), "postgres".into())
    );

    // Salesforce wrote last: its value is stored.
    let h = Harness::start().await;
    let (sfid, _ctx) = overlap(&h, "Contact", "contact", "title", "Title", true).await;
    let pg = h.pg().await;
    assert_eq!(
        text(
            &pg,
            "SELECT title FROM salesforce.contact WHERE sfid = $1",
            &sfid
        )
        .await
        .as_deref(),
        Some("salesforce")
    );
    assert_eq!(
        decision(&pg, &sfid).await,
        ("last_writer_wins".into(), "salesforce".into())
    );
}

/// The mapping's writer, running until stopped (its own end is not checked).
fn writer_of(ctx: engine::MappingCtx) -> Running {
    let mut writer = Running::new();
    writer.spawn("the writer", move |shutdown| async move {
        let _ =
            engine::writer::run_mapping(&ctx, engine::writer::WriterConfig::default(), shutdown)
                .await;
        Ok::<(), String>(())
    });
    writer
}

/// The phones of the `NEW` trigger-log entries that set one, oldest first.
async fn unsent_phones(pg: &tokio_postgres::Client) -> Vec<String> {
    pg.query(
        "SELECT \"values\"::public.hstore -> 'phone' FROM salesforce._trigger_log \
         WHERE state = 'NEW' AND \"values\"::public.hstore ? 'phone' ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The app sets the Account's phone, and the writer sends it: the process dies before the answer
/// is settled, leaving the batch row of its call (the write in flight).
async fn app_change_in_flight(pg: &tokio_postgres::Client, sfid: &str, phone: &str) {
    pg.execute(
        "UPDATE salesforce.account SET phone = $2 WHERE sfid = $1",
        &[&sfid, &phone],
    )
    .await
    .unwrap();
    let sent = pg
        .query_one(
            "SELECT l.id, l.record_id FROM salesforce._trigger_log l \
             JOIN salesforce.account a ON a.id = l.record_id \
             WHERE a.sfid = $1 ORDER BY l.id DESC LIMIT 1",
            &[&sfid],
        )
        .await
        .unwrap();
    let (entry, record): (i32, i32) = (sent.get(0), sent.get(1));
    pg.execute(
        "INSERT INTO salesforce._forcesync_write_batch (mapping, table_name, record_ids, creates, writes)
         VALUES ('Account', 'account', ARRAY[$1::int], false,
                 json_build_array(json_build_object(
                     'record_id', $1::int, 'kind', 'update', 'entry_ids', ARRAY[$2::int],
                     'sfid', $3::text, 'external_id', NULL,
                     'body', json_build_object('Phone', $4::text))))",
        &[&record, &entry, &sfid, &phone],
    )
    .await
    .unwrap();
}

/// Account's mapping with `policy` as its conflict policy (no mapping of this repository uses
/// `postgres_wins` or `last_writer_wins`), its initial load done: its context and the id of the
/// first Account.
async fn loaded_with_policy(
    h: &Harness,
    pg: &tokio_postgres::Client,
    policy: ConflictPolicy,
) -> (engine::MappingCtx, String) {
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    let engine = h.engine(config);
    engine.migrate().await.unwrap();
    let mut account = *generated::salesforce::REGISTRY.mapping("Account").unwrap();
    account.sync.conflict = policy;
    let account: &'static sync_runtime::adapter::MappingDescriptor = Box::leak(Box::new(account));
    let ctx = engine.context(account).unwrap();
    engine::driver::load(&ctx, false).await.unwrap();
    let id = account_ids(pg).await[0].0.clone();
    (ctx, id)
}

/// `(sfid, id)` of every synced Account row.
async fn account_ids(pg: &tokio_postgres::Client) -> Vec<(String, i32)> {
    pg.query(
        "SELECT sfid, id FROM salesforce.account WHERE sfid IS NOT NULL ORDER BY sfid",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

async fn table_oid(pg: &tokio_postgres::Client) -> u32 {
    pg.query_one("SELECT 'salesforce.account'::regclass::oid", &[])
        .await
        .unwrap()
        .get(0)
}

/// How many rows of `before` are still there under the same `id`.
async fn same_ids(pg: &tokio_postgres::Client, before: &[(String, i32)]) -> i64 {
    let sfids: Vec<&str> = before.iter().map(|(s, _)| s.as_str()).collect();
    let ids: Vec<i32> = before.iter().map(|(_, i)| *i).collect();
    pg.query_one(
        "SELECT count(*) FROM salesforce.account t \
         JOIN unnest($1::text[], $2::int[]) AS b(sfid, id) ON b.sfid = t.sfid AND b.id = t.id",
        &[&sfids, &ids],
    )
    .await
    .unwrap()
    .get(0)
}

/// Counts synced rows in a loop on its own connection until told to stop; answers the fewest
/// seen and how many reads were made.
fn reader(url: String) -> (watch::Sender<bool>, tokio::task::JoinHandle<(i64, u64)>) {
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let pg = engine::connect(&url).await.unwrap();
        let (mut fewest, mut reads) = (i64::MAX, 0);
        while !*stopped.borrow() {
            let n = count(
                &pg,
                "SELECT count(*) FROM salesforce.account WHERE sfid IS NOT NULL",
            )
            .await;
            fewest = fewest.min(n);
            reads += 1;
        }
        (fewest, reads)
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_swaps_in_a_shadow_table_the_app_never_sees_partial_and_every_id_stays() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let before = account_ids(&pg).await;
    let oid = table_oid(&pg).await;
    let indexes = "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
                   WHERE schemaname = 'salesforce' AND tablename = 'account'";
    let indexes_before: String = pg.query_one(indexes, &[]).await.unwrap().get(0);
    pg.batch_execute("GRANT SELECT ON salesforce.account TO PUBLIC")
        .await
        .unwrap();
    // The table's own settings, as an operator may have made them.
    let settings = "SELECT concat_ws(' | ', obj_description('salesforce.account'::regclass, 'pg_class'), \
                           col_description('salesforce.account'::regclass, 2), \
                           array_to_string(c.reloptions, ','), c.relreplident::text, \
                           (SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
                            WHERE x.indrelid = c.oid AND x.indisclustered), \
                           (SELECT a.attstattarget::int::text FROM pg_attribute a \
                            WHERE a.attrelid = c.oid AND a.attname = 'industry')) \
                    FROM pg_class c WHERE c.oid = 'salesforce.account'::regclass";
    pg.batch_execute(
        "COMMENT ON TABLE salesforce.account IS 'Accounts, synced by forcesync'; \
         COMMENT ON COLUMN salesforce.account.sfid IS 'the Salesforce Id'; \
         ALTER TABLE salesforce.account SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05); \
         ALTER TABLE salesforce.account REPLICA IDENTITY FULL; \
         ALTER TABLE salesforce.account CLUSTER ON hc_idx_account_industry; \
         ALTER TABLE salesforce.account ALTER COLUMN industry SET STATISTICS 500",
    )
    .await
    .unwrap();
    let settings_before: String = pg.query_one(settings, &[]).await.unwrap().get(0);
    assert!(
        settings_before.contains("fillfactor=80") && settings_before.contains("| f |"),
        "{settings_before}"
    );

    // The app's own rows: one not sent yet, one synced row with an unsent change.
    let local: i32 = pg
        .query_one(
            "INSERT INTO salesforce.account (name) VALUES ('Only in Postgres') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let (pending, pending_id) = before[0].clone();
    pg.execute(
        "UPDATE salesforce.account SET phone = 'app pending' WHERE sfid = $1",
        &[&pending],
    )
    .await
    .unwrap();
    // (That row drifted too, in a field the app did not change.)
    pg.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on'; \
         UPDATE salesforce.account SET website = 'drifted' WHERE sfid = '{pending}'; COMMIT"
    ))
    .await
    .unwrap();
    // A column the app added to the table keeps its values.
    let noted = before[3].0.clone();
    pg.batch_execute(&format!(
        "ALTER TABLE salesforce.account ADD COLUMN app_note text; \
         BEGIN; SET LOCAL forcesync.engine = 'on'; \
         UPDATE salesforce.account SET app_note = 'kept' WHERE sfid = '{noted}'; COMMIT"
    ))
    .await
    .unwrap();
    // A row that drifted from Salesforce (written behind the engine's back, not captured) ...
    let drifted = before[1].0.clone();
    pg.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on'; \
         UPDATE salesforce.account SET website = 'drifted' WHERE sfid = '{drifted}'; COMMIT"
    ))
    .await
    .unwrap();
    // ... and a record deleted in Salesforce without a change event, its recycle bin purged.
    let gone = before[2].0.clone();
    h.control(reqwest::Method::POST, "data/delete", json!({"ids": [gone]}))
        .await;
    h.control(reqwest::Method::POST, "recycle-bin/purge", json!({}))
        .await;

    let (stop, reads) = reader(h.db.url.clone());
    let report = engine::driver::load(&ctx, true).await.unwrap();
    stop.send(true).unwrap();
    let (fewest, reads) = reads.await.unwrap();
    let stable = before.len() as i64 - 1;
    assert!(reads > 0);
    assert!(
        fewest >= stable,
        "the app saw {fewest} synced rows during the reload, fewer than the {stable} that stay"
    );
    assert_ne!(table_oid(&pg).await, oid, "a new table was swapped in");
    assert_eq!(report.rows as i64, stable);

    // Every record in both keeps its id; the app's rows and its unsent change are there.
    assert_eq!(same_ids(&pg, &before).await, stable);
    assert_eq!(
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE id::text = $1 AND sfid IS NULL",
            &local.to_string()
        )
        .await
        .as_deref(),
        Some("Only in Postgres")
    );
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &pending
        )
        .await
        .as_deref(),
        Some("app pending")
    );
    assert_eq!(
        count(
            &pg,
            &format!(
                "SELECT count(*) FROM salesforce._trigger_log WHERE record_id = {pending_id} \
                 AND state = 'NEW' AND \"values\"::hstore ? 'phone'"
            )
        )
        .await,
        1,
        "the unsent change still points at its row"
    );
    // Salesforce's data is back where the table had drifted (the row with the app's unsent
    // change included); the purged record left.
    for sfid in [&drifted, &pending] {
        let website = h
            .query(&format!("SELECT Website FROM Account WHERE Id = '{sfid}'"))
            .await[0]["Website"]
            .as_str()
            .map(str::to_owned);
        assert_eq!(
            text(
                &pg,
                "SELECT website FROM salesforce.account WHERE sfid = $1",
                sfid
            )
            .await,
            website
        );
    }
    assert!(text(
        &pg,
        "SELECT sfid FROM salesforce.account WHERE sfid = $1",
        &gone
    )
    .await
    .is_none());

    assert_eq!(
        text(
            &pg,
            "SELECT app_note FROM salesforce.account WHERE sfid = $1",
            &noted
        )
        .await
        .as_deref(),
        Some("kept")
    );

    // The swapped-in table is the table: same indexes, grants, sequence, capture triggers.
    let indexes_after: String = pg.query_one(indexes, &[]).await.unwrap().get(0);
    assert_eq!(indexes_after, indexes_before);
    let granted: bool = pg
        .query_one(
            "SELECT has_table_privilege('public', 'salesforce.account', 'SELECT')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(granted);
    let settings_after: String = pg.query_one(settings, &[]).await.unwrap().get(0);
    assert_eq!(
        settings_after, settings_before,
        "comments, storage parameters, replica identity, clustering and statistics stay"
    );
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM pg_class WHERE relname = 'account_reload'"
        )
        .await,
        0
    );
    let next: i32 = pg
        .query_one(
            "INSERT INTO salesforce.account (name) VALUES ('After the reload') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let max_before = before.iter().map(|(_, id)| *id).max().unwrap().max(local);
    assert!(next > max_before, "ids continue from the same sequence");
    assert_eq!(
        count(
            &pg,
            &format!(
                "SELECT count(*) FROM salesforce._trigger_log WHERE record_id = {next} \
                 AND table_name = 'account' AND action = 'INSERT'"
            )
        )
        .await,
        1,
        "application writes are captured on the new table"
    );
    let status = ctx.states.get(&pg, "Account").await.unwrap().unwrap();
    assert_eq!(status.load_done, stable);
    assert_eq!(status.state, SyncState::Streaming);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_a_table_a_view_depends_on_merges_in_place() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    pg.batch_execute(
        "CREATE VIEW salesforce.named_accounts AS SELECT id, sfid, name FROM salesforce.account",
    )
    .await
    .unwrap();
    let before = account_ids(&pg).await;
    let oid = table_oid(&pg).await;

    let (stop, reads) = reader(h.db.url.clone());
    let report = engine::driver::load(&ctx, true).await.unwrap();
    stop.send(true).unwrap();
    let (fewest, _) = reads.await.unwrap();
    assert_eq!(fewest, before.len() as i64, "never a partial table");
    assert_eq!(report.rows as usize, before.len());
    assert_eq!(table_oid(&pg).await, oid, "the table was kept, not swapped");
    assert_eq!(same_ids(&pg, &before).await, before.len() as i64);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.named_accounts").await,
        before.len() as i64,
        "the view still reads the table"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wins_keeps_the_apps_pending_value_sends_it_and_records_the_conflict() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let (ctx, id) = loaded_with_policy(&h, &pg, ConflictPolicy::PostgresWins).await;

    // The app changes the phone (captured, not yet sent), then a Salesforce user changes phone
    // and website.
    pg.execute(
        "UPDATE salesforce.account SET phone = 'app' WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    h.update(
        "Account",
        &id,
        json!({"Phone": "salesforce", "Website": "https://sf.example"}),
    )
    .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    let phone = "SELECT phone FROM salesforce.account WHERE sfid = $1";
    assert_eq!(text(&pg, phone, &id).await.as_deref(), Some("app"));
    assert_eq!(
        text(
            &pg,
            "SELECT website FROM salesforce.account WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("https://sf.example")
    );
    let row = pg
        .query_one(
            "SELECT field, postgres_value #>> '{}', salesforce_value #>> '{}', policy, decision \
             FROM salesforce._forcesync_conflicts WHERE sfid = $1",
            &[&id],
        )
        .await
        .unwrap();
    let recorded: (String, String, String, String, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        recorded,
        (
            "phone".into(),
            "app".into(),
            "salesforce".into(),
            "postgres_wins".into(),
            "postgres".into()
        )
    );

    // The writer sends the app's value: Salesforce ends with it, the row keeps it.
    let writer = writer_of(ctx);
    let soql = format!("SELECT Phone FROM Account WHERE Id = '{id}'");
    eventually(WAIT, "Salesforce holds the app's phone", || async {
        h.query(&soql).await[0]["Phone"] == json!("app")
    })
    .await;
    assert_eq!(text(&pg, phone, &id).await.as_deref(), Some("app"));
    writer.stop().await;
}

/// The writer sent the app's phone and the process died before the answer was settled (its batch
/// row is left); the app has changed the phone again since. A poll after the restart reads the
/// sent value back from Salesforce, with a change time later than the app's newer value: that is
/// forcesync's own write, not a Salesforce user's, so under `last_writer_wins` it must neither
/// replace the app's newer value nor be recorded as a conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_own_unsettled_write_read_back_by_a_poll_keeps_the_apps_newer_value_and_is_no_conflict()
{
    let h = Harness::start().await;
    let pg = h.pg().await;
    let (ctx, id) = loaded_with_policy(&h, &pg, ConflictPolicy::LastWriterWins).await;
    let phone = "SELECT phone FROM salesforce.account WHERE sfid = $1";

    // The app's first change, as the writer sent it: the batch row of its call is left behind.
    app_change_in_flight(&pg, &id, "sent").await;
    // The app changes the phone again; then the sent write lands in Salesforce.
    pg.execute(
        "UPDATE salesforce.account SET phone = 'newer' WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    // Salesforce's change times are whole seconds: the write lands in a later one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    h.update("Account", &id, json!({"Phone": "sent"})).await;

    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        text(&pg, phone, &id).await.as_deref(),
        Some("newer"),
        "the app's newer value stays, to be sent"
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce._forcesync_conflicts").await,
        0,
        "forcesync's own write is no conflict"
    );
    assert_eq!(
        unsent_phones(&pg).await,
        ["sent", "newer"],
        "the write in flight, and the app's newer change still to be sent"
    );

    // The same read while the write is not in flight (nobody sent `sent`): a Salesforce user's
    // change, recorded and decided by the policy.
    pg.execute("DELETE FROM salesforce._forcesync_write_batch", &[])
        .await
        .unwrap();
    h.update("Account", &id, json!({"Phone": "sent"})).await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce._forcesync_conflicts").await,
        1,
        "someone else's change to the same field is a conflict"
    );
}

/// Under `salesforce_wins`, a Salesforce user changes the phone while the app's change to it is
/// already on its way to Salesforce (its batch row says so; the process died before the answer).
/// That write cannot be recalled, and it lands after the user's change: the user's value is sent
/// again after it, so both sides end with the value the policy chose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_winning_over_an_app_write_already_sent_ends_with_salesforces_value_on_both_sides(
) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let (ctx, id) = loaded_with_policy(&h, &pg, ConflictPolicy::SalesforceWins).await;
    let phone = "SELECT phone FROM salesforce.account WHERE sfid = $1";

    app_change_in_flight(&pg, &id, "app").await;
    h.update("Account", &id, json!({"Phone": "user"})).await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    assert_eq!(text(&pg, phone, &id).await.as_deref(), Some("user"));
    assert_eq!(
        text(
            &pg,
            "SELECT decision FROM salesforce._forcesync_conflicts WHERE sfid = $1",
            &id
        )
        .await
        .as_deref(),
        Some("salesforce")
    );
    assert_eq!(
        unsent_phones(&pg).await,
        ["app", "user"],
        "the change in flight keeps what it sent; Salesforce's value follows it"
    );

    // The writer starts: the write left in flight is sent again (it lands after the user's
    // change), then the user's value after it.
    let soql = format!("SELECT Phone FROM Account WHERE Id = '{id}'");
    let writer = writer_of(ctx);
    eventually(WAIT, "the writer has sent everything", || async {
        count(
            &pg,
            "SELECT count(*) FROM salesforce._trigger_log WHERE state IN ('NEW', 'PENDING')",
        )
        .await
            == 0
            && count(
                &pg,
                "SELECT (SELECT count(*) FROM salesforce._forcesync_write_batch) \
                      + (SELECT count(*) FROM salesforce._forcesync_write_journal)",
            )
            .await
                == 0
    })
    .await;
    writer.stop().await;
    assert_eq!(
        h.query(&soql).await[0]["Phone"],
        json!("user"),
        "Salesforce ends with the user's value"
    );
    assert_eq!(text(&pg, phone, &id).await.as_deref(), Some("user"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_record_again_keeps_the_apps_unsent_change_to_a_field_salesforce_did_not_touch() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let id = account_ids(&pg).await[0].0.clone();
    pg.execute(
        "UPDATE salesforce.account SET phone = 'app' WHERE sfid = $1",
        &[&id],
    )
    .await
    .unwrap();
    // Salesforce changes another field: the poll reads the whole record.
    h.update("Account", &id, json!({"Website": "https://sf.example"}))
        .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    let row = pg
        .query_one(
            "SELECT phone, website FROM salesforce.account WHERE sfid = $1",
            &[&id],
        )
        .await
        .unwrap();
    let (phone, website): (Option<String>, Option<String>) = (row.get(0), row.get(1));
    assert_eq!(website.as_deref(), Some("https://sf.example"));
    assert_eq!(
        phone.as_deref(),
        Some("app"),
        "the app's unsent value stays"
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce._forcesync_conflicts").await,
        0,
        "nothing both sides changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polled_parent_whose_external_id_changed_renames_it_in_its_childrens_rows() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let config = h.engine_config();
    h.engine(config.clone()).migrate().await.unwrap();
    let account = h
        .create("Account", json!({"Name": "Polled Parent Co"}))
        .await;
    let invoice = h
        .create(
            "Invoice__c",
            json!({"Account__c": account, "External_Id__c": "INV-POLL-1", "Amount__c": 5}),
        )
        .await;
    let line = h
        .create(
            "Invoice_Line__c",
            json!({"Invoice__c": invoice, "Description__c": "Polled line"}),
        )
        .await;
    let invoices = h.ctx("Invoice__c", config.clone());
    let lines = h.ctx("Invoice_Line__c", config);
    engine::driver::load(&invoices, false).await.unwrap();
    engine::driver::load(&lines, false).await.unwrap();
    let named = "SELECT invoice__r__external_id__c FROM salesforce.invoice_line__c WHERE sfid = $1";
    assert_eq!(text(&pg, named, &line).await.as_deref(), Some("INV-POLL-1"));

    // The invoice's external ID changes in Salesforce; polling reads the invoice (not the line,
    // whose SystemModstamp does not move), and the line's row follows.
    h.update(
        "Invoice__c",
        &invoice,
        json!({"External_Id__c": "INV-POLL-2"}),
    )
    .await;
    engine::poll::poll_once(&invoices, None).await.unwrap();
    assert_eq!(text(&pg, named, &line).await.as_deref(), Some("INV-POLL-2"));
    assert_eq!(
        count(
            &pg,
            "SELECT count(*) FROM salesforce._trigger_log WHERE table_name = 'invoice_line__c'"
        )
        .await,
        0,
        "the followed key is not sent back"
    );
}

/// A change event as Salesforce publishes it for one Account.
fn account_event(
    kind: &str,
    sfid: &str,
    at_ms: i64,
    fields: serde_json::Value,
) -> serde_json::Value {
    let changed: Vec<String> = if kind == "UPDATE" {
        fields.as_object().unwrap().keys().cloned().collect()
    } else {
        Vec::new()
    };
    let mut payload = json!({
        "ChangeEventHeader": {
            "entityName": "Account", "changeType": kind, "changedFields": changed,
            "recordIds": [sfid], "changeOrigin": "", "transactionKey": format!("t{at_ms}"),
            "sequenceNumber": 1, "commitTimestamp": at_ms, "commitNumber": at_ms,
            "commitUser": "005000000000001AAA"
        }
    });
    for (k, v) in fields.as_object().unwrap() {
        payload[k] = v.clone();
    }
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_events_delivered_together_ends_as_applying_them_one_by_one_in_commit_order() {
    let h = Harness::start().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let mut pg = h.pg().await;
    let ids = account_ids(&pg).await;
    let (updated, deleted) = (ids[0].0.clone(), ids[1].0.clone());
    let created = "001000000000999AAA";
    let rows_before = count(&pg, "SELECT count(*) FROM salesforce.account").await;
    // Later than anything stored.
    let t = chrono::Utc::now().timestamp_millis() + 60_000;
    let events = [
        account_event(
            "CREATE",
            created,
            t + 1,
            json!({"Name": "Batch Created", "Type": "Customer - Direct", "Phone": "c1"}),
        ),
        account_event("UPDATE", created, t + 3, json!({"Phone": "c3"})),
        // Delivered late: older than the change before it.
        account_event("UPDATE", created, t + 2, json!({"Phone": "c2"})),
        account_event("UPDATE", &updated, t + 1, json!({"Phone": "a1"})),
        account_event("UPDATE", &updated, t + 2, json!({"Website": "a2.example"})),
        account_event("DELETE", &deleted, t + 1, json!({})),
    ];
    let payloads: Vec<&serde_json::Value> = events.iter().collect();
    let tx = engine::apply::begin_engine_tx(&mut pg).await.unwrap();
    let applied = engine::ingest::apply_events(&ctx, &tx, &payloads)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(applied.errors, 0);
    assert_eq!(applied.deleted, 1);

    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            created
        )
        .await
        .as_deref(),
        Some("c3"),
        "the latest change wins, whatever the delivery order"
    );
    assert_eq!(
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            created
        )
        .await
        .as_deref(),
        Some("Batch Created")
    );
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            &updated
        )
        .await
        .as_deref(),
        Some("a1"),
        "each event's columns are applied"
    );
    assert_eq!(
        text(
            &pg,
            "SELECT website FROM salesforce.account WHERE sfid = $1",
            &updated
        )
        .await
        .as_deref(),
        Some("a2.example")
    );
    assert!(text(
        &pg,
        "SELECT sfid FROM salesforce.account WHERE sfid = $1",
        &deleted
    )
    .await
    .is_none());
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows_before,
        "one row created, one deleted"
    );

    // The same batch again (a replay after a restart) changes nothing.
    let tx = engine::apply::begin_engine_tx(&mut pg).await.unwrap();
    engine::ingest::apply_events(&ctx, &tx, &payloads)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        text(
            &pg,
            "SELECT phone FROM salesforce.account WHERE sfid = $1",
            created
        )
        .await
        .as_deref(),
        Some("c3")
    );
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows_before
    );
}

// ---- The Pub/Sub API's own cases ------------------------------------------------------------

async fn records_read(pg: &tokio_postgres::Client) -> i64 {
    count(
        pg,
        "SELECT records_read FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
    )
    .await
}

async fn transport_in_use(
    pg: &tokio_postgres::Client,
) -> (SyncState, Option<String>, Option<String>) {
    let status = engine::state::StateStore::new("salesforce")
        .get(pg, "Account")
        .await
        .unwrap()
        .unwrap();
    (status.state, status.streaming_transport, status.message)
}

/// Waits until Account's channel is subscribed after its load and catch-up poll (the engine
/// records the transport then), so its counters move only with streamed changes.
async fn wait_subscribed(pg: &tokio_postgres::Client) {
    eventually(WAIT, "Account is subscribed", || async {
        engine::state::StateStore::new("salesforce")
            .get(pg, "Account")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.state == SyncState::Streaming && s.streaming_transport.is_some())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_10_000_changes_over_the_pubsub_api_arrives_without_a_stall() {
    const BURST: usize = 10_000;
    let h = Harness::start().await;
    // Room for the burst in the org's daily delivery allocation (10,000 by default): the events
    // must all be streamed, not caught up by polling once the allocation is used up.
    h.control(
        reqwest::Method::PUT,
        "limits",
        json!({"DailyDeliveredPlatformEvents": 100_000}),
    )
    .await;
    let pg = h.pg().await;
    let running = run_engine_over(&h, &["Account"], Transport::PubSub);
    wait_subscribed(&pg).await;
    let read_before = records_read(&pg).await;
    // 10,000 Accounts created in calls of 200, back to back: far more than the 100 events a
    // stream may owe, so the stream must keep asking for more (a client that asks only when a
    // request was fully served, or counts keepalives as events, stalls after 100 or 200).
    for chunk in (0..BURST).collect::<Vec<_>>().chunks(200) {
        let records: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| json!({"Name": format!("Burst {i}")}))
            .collect();
        h.create_many("Account", &records).await;
    }
    eventually(
        Duration::from_secs(180),
        "all 10,000 Accounts of the burst arrive",
        || async {
            count(
                &pg,
                "SELECT count(*) FROM salesforce.account WHERE name LIKE 'Burst %'",
            )
            .await
                == BURST as i64
        },
    )
    .await;
    assert_eq!(
        records_read(&pg).await - read_before,
        BURST as i64,
        "each change applied once"
    );
    let (state, transport, message) = transport_in_use(&pg).await;
    assert_eq!(state, SyncState::Streaming, "{message:?}");
    assert_eq!(transport.as_deref(), Some("pubsub"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_pubsub_replay_id_falls_back_to_catching_up_by_polling() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = run_engine_over(&h, &["Account"], Transport::PubSub);
    wait_state(&pg, "Account", SyncState::Streaming).await;
    let id = h.create("Account", json!({"Name": "Streamed first"})).await;
    // The create may reach Postgres first by a repair poll; the stream's own delivery is what
    // stores a Pub/Sub replay id, so wait for that.
    eventually(WAIT, "the first change is streamed", || async {
        let stored: Option<Vec<u8>> = pg
            .query_one(
                "SELECT cdc_replay_bytes FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        stored.is_some()
            && text(
                &pg,
                "SELECT name FROM salesforce.account WHERE sfid = $1",
                &id,
            )
            .await
            .is_some()
    })
    .await;
    running.stop().await;

    // The stored position is damaged (or past retention: the org answers the same way), and a
    // change is made while the engine is down.
    pg.execute(
        "UPDATE salesforce._forcesync_mapping_state SET cdc_replay_bytes = '\\xdeadbeef' WHERE mapping = 'Account'",
        &[],
    )
    .await
    .unwrap();
    h.update("Account", &id, json!({"Name": "Changed while down"}))
        .await;
    let rows = count(&pg, "SELECT count(*) FROM salesforce.account").await;

    let running = run_engine_over(&h, &["Account"], Transport::PubSub);
    eventually(WAIT, "the change is caught up by polling", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("Changed while down")
    })
    .await;
    wait_state(&pg, "Account", SyncState::Streaming).await;
    h.update("Account", &id, json!({"Name": "Streamed again"}))
        .await;
    eventually(WAIT, "streaming resumes over the Pub/Sub API", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("Streamed again")
    })
    .await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows
    );
    let stored: Option<Vec<u8>> = pg
        .query_one(
            "SELECT cdc_replay_bytes FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_ne!(
        stored.as_deref(),
        Some(&[0xde, 0xad, 0xbe, 0xef][..]),
        "a good position replaced the corrupt one"
    );
    let (_, transport, _) = transport_in_use(&pg).await;
    assert_eq!(transport.as_deref(), Some("pubsub"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_only_periods_keep_a_pubsub_stream_alive_and_lose_nothing() {
    // The org sends an empty keepalive every 100 ms while events are owed and none exist.
    let h = Harness::start_with(|config| config.pubsub_keepalive_ms = 100).await;
    let pg = h.pg().await;
    let running = run_engine_over(&h, &["Account"], Transport::PubSub);
    wait_subscribed(&pg).await;
    let read_before = records_read(&pg).await;
    let id = h.query("SELECT Id FROM Account ORDER BY Id LIMIT 1").await[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    for round in 0..3 {
        // About 15 keepalives and nothing else.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let phone = format!("after keepalives {round}");
        h.update("Account", &id, json!({ "Phone": phone.clone() }))
            .await;
        eventually(WAIT, "the change after a keepalive-only period", || async {
            text(
                &pg,
                "SELECT phone FROM salesforce.account WHERE sfid = $1",
                &id,
            )
            .await
            .as_deref()
                == Some(phone.as_str())
        })
        .await;
    }
    assert_eq!(records_read(&pg).await - read_before, 3, "each change once");
    let (state, transport, _) = transport_in_use(&pg).await;
    assert_eq!(state, SyncState::Streaming);
    assert_eq!(transport.as_deref(), Some("pubsub"));
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_pubsub_api_the_engine_streams_over_cometd_says_so_and_loses_nothing() {
    // Nothing listens at the Pub/Sub endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    falls_back_to_cometd(|_| nowhere).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pubsub_endpoint_that_is_no_pubsub_api_makes_the_engine_stream_over_cometd() {
    // An HTTP server that accepts the stream but is not the Pub/Sub API (the org's REST listener).
    falls_back_to_cometd(|h| h.emulator.base_url.clone()).await;
}

/// A first run over the Pub/Sub API stores a Pub/Sub position; then the engine, still asking for
/// the Pub/Sub API but pointed at `endpoint`, streams over CometD, says so, and catches up the
/// change made while it was down by polling.
async fn falls_back_to_cometd(endpoint: impl FnOnce(&Harness) -> String) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    // A first run over the Pub/Sub API stores a Pub/Sub replay position.
    let running = run_engine_over(&h, &["Account"], Transport::PubSub);
    wait_state(&pg, "Account", SyncState::Streaming).await;
    let id = h.create("Account", json!({"Name": "Over Pub/Sub"})).await;
    eventually(WAIT, "the first change arrives", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_some()
    })
    .await;
    running.stop().await;
    h.update("Account", &id, json!({"Name": "While down"}))
        .await;

    // Then the Pub/Sub endpoint is gone: the engine still asks for the Pub/Sub API, finds it
    // unavailable, and streams over CometD; the stored Pub/Sub position means
    // nothing to CometD, so the change made meanwhile is caught up by polling.
    let mut salesforce = h.salesforce();
    salesforce.pubsub_url = endpoint(&h);
    let mut config = h.engine_config();
    config.only = vec!["Account".into()];
    config.streaming_transport = Some(Transport::PubSub);
    let running = Running::start(
        engine::Engine::new(&generated::salesforce::REGISTRY, config, salesforce).expect("engine"),
    );
    eventually(WAIT, "the change made while down is caught up", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("While down")
    })
    .await;
    eventually(WAIT, "Account streams over CometD", || async {
        let (state, transport, _) = transport_in_use(&pg).await;
        state == SyncState::Streaming && transport.as_deref() == Some("cometd")
    })
    .await;
    let (_, _, message) = transport_in_use(&pg).await;
    let message = message.unwrap_or_default();
    assert!(
        message.contains("the Pub/Sub API is not available")
            && message.contains("streaming over CometD for this run"),
        "{message}"
    );
    h.update("Account", &id, json!({"Name": "Over CometD"}))
        .await;
    eventually(WAIT, "a change streams over CometD", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .as_deref()
            == Some("Over CometD")
    })
    .await;
    running.stop().await;
}

// ---- A field added to the object in Salesforce while streaming ------------------------------

over_both_transports!(a_field_added_to_the_object_in_salesforce_mid_stream_does_not_stop_streaming);

async fn unresolved_read_errors(pg: &tokio_postgres::Client) -> i64 {
    count(
        pg,
        "SELECT count(*) FROM salesforce._forcesync_read_errors WHERE resolved_at IS NULL",
    )
    .await
}

async fn stored_pubsub_position(pg: &tokio_postgres::Client) -> Option<Vec<u8>> {
    pg.query_one(
        "SELECT cdc_replay_bytes FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Waits until the engine has applied `total` records since it started.
async fn applied(pg: &tokio_postgres::Client, total: i64, what: &str) {
    eventually(WAIT, &format!("{what} is applied"), || async {
        records_read(pg).await >= total
    })
    .await;
}

async fn phone_of(pg: &tokio_postgres::Client, sfid: &str) -> Option<String> {
    text(
        pg,
        "SELECT phone FROM salesforce.account WHERE sfid = $1",
        sfid,
    )
    .await
}

/// An administrator adds a custom field to Account while the engine streams it (the mapping
/// does not have the field): changes before and after it arrive, each applied once, changes
/// that set only the new field included; the mapping stays STREAMING with no read error. Over
/// the Pub/Sub API the events after the change come with a new schema id, and a restart
/// replaying from a position before the change decodes old- and new-schema events alike.
async fn a_field_added_to_the_object_in_salesforce_mid_stream_does_not_stop_streaming(
    transport: Transport,
) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = run_engine_over(&h, &["Account"], transport);
    wait_subscribed(&pg).await;
    let read_before = records_read(&pg).await;
    let rows_before = count(&pg, "SELECT count(*) FROM salesforce.account").await;

    // Each change is waited for before the next (the engine counts a record once per batch of
    // events, so two changes of one record delivered together would count once).
    let mut changes = 0;
    let a = h
        .create("Account", json!({"Name": "Before the field", "Phone": "0"}))
        .await;
    changes += 1;
    applied(&pg, read_before + changes, "the create before the change").await;
    let before_change = stored_pubsub_position(&pg).await;
    h.update("Account", &a, json!({"Phone": "1"})).await;
    changes += 1;
    applied(&pg, read_before + changes, "the update before the change").await;

    let added = h
        .control(
            reqwest::Method::POST,
            "schema/Account/fields",
            json!({"name": "Tier__c", "type": "string", "length": 40}),
        )
        .await;
    assert_eq!(added["field"]["name"], "Tier__c", "{added}");

    h.update("Account", &a, json!({"Tier__c": "Gold"})).await;
    changes += 1;
    applied(&pg, read_before + changes, "a change of only the new field").await;
    h.update("Account", &a, json!({"Tier__c": "Silver", "Phone": "2"}))
        .await;
    changes += 1;
    applied(
        &pg,
        read_before + changes,
        "a change of the new and a mapped field",
    )
    .await;
    let b = h
        .create(
            "Account",
            json!({"Name": "After the field", "Tier__c": "Gold", "Phone": "10"}),
        )
        .await;
    changes += 1;
    applied(&pg, read_before + changes, "a create setting the new field").await;
    h.update("Account", &b, json!({"Phone": "11"})).await;
    changes += 1;
    applied(&pg, read_before + changes, "a change of a mapped field").await;
    assert_eq!(phone_of(&pg, &a).await.as_deref(), Some("2"));
    assert_eq!(phone_of(&pg, &b).await.as_deref(), Some("11"));
    // Time for anything delivered twice to be (wrongly) applied.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows_before + 2,
        "no record twice"
    );
    assert_eq!(
        records_read(&pg).await - read_before,
        changes,
        "each change applied once"
    );
    assert_eq!(unresolved_read_errors(&pg).await, 0, "no read error");
    let (state, used, message) = transport_in_use(&pg).await;
    assert_eq!(state, SyncState::Streaming, "{message:?}");
    let expected = match transport {
        Transport::PubSub => "pubsub",
        Transport::Cometd => "cometd",
    };
    assert_eq!(used.as_deref(), Some(expected));
    running.stop().await;
    let after_all = stored_pubsub_position(&pg).await;

    if transport != Transport::PubSub {
        return;
    }
    // A restart replaying from before the change: the update before it (old schema id) and
    // the four changes after it (new schema id) are delivered again and decoded.
    let before_change = before_change.expect("a Pub/Sub position is stored");
    pg.execute(
        "UPDATE salesforce._forcesync_mapping_state SET cdc_replay_bytes = $1 WHERE mapping = 'Account'",
        &[&before_change],
    )
    .await
    .unwrap();
    let end = h.emulator.org.cdc().latest_replay_id();
    let read_before = records_read(&pg).await;
    let running = run_engine_over(&h, &["Account"], transport);
    eventually(
        WAIT,
        "the replay from before the change is read to its end",
        || async { stored_pubsub_position(&pg).await == after_all },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(unresolved_read_errors(&pg).await, 0, "both schemas decode");
    assert!(
        records_read(&pg).await > read_before,
        "the replayed events were read"
    );
    assert_eq!(phone_of(&pg, &a).await.as_deref(), Some("2"));
    assert_eq!(phone_of(&pg, &b).await.as_deref(), Some("11"));
    assert_eq!(
        count(&pg, "SELECT count(*) FROM salesforce.account").await,
        rows_before + 2,
        "no record twice"
    );
    let (state, _, message) = transport_in_use(&pg).await;
    assert_eq!(state, SyncState::Streaming, "{message:?}");
    assert_eq!(
        h.emulator.org.cdc().latest_replay_id(),
        end,
        "nothing was written to Salesforce meanwhile"
    );
    running.stop().await;
}

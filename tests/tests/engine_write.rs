//! The trigger-log writer end to end: an application writes to the generated tables in a real
//! Postgres, the writer sends the captured changes to the in-process Salesforce emulator.

use std::time::Duration;

use forcesync_tests::engine::{eventually, writer_config, Harness, Running, SCHEMA};
use generated::salesforce::{account, invoice, invoice_line};
use serde_json::{json, Value};
use sync_runtime::adapter::MappingDescriptor;
use sync_runtime::engine::writer::admin::{self, Action, Selection};
use sync_runtime::engine::writer::{through, Target, Writer, WriterConfig};
use sync_runtime::salesforce::Client;

const DRAIN: Duration = Duration::from_secs(60);

async fn insert_account(db: &tokio_postgres::Client, name: &str) -> i32 {
    db.query_one(
        "INSERT INTO salesforce.account (name, phone) VALUES ($1, '1') RETURNING id",
        &[&name],
    )
    .await
    .expect("insert")
    .get(0)
}

async fn row(
    db: &tokio_postgres::Client,
    table: &str,
    id: i32,
) -> (Option<String>, Option<String>, Option<String>) {
    let r = db
        .query_one(
            &format!("SELECT sfid, _hc_lastop, _hc_err FROM salesforce.{table} WHERE id = $1"),
            &[&id],
        )
        .await
        .expect("row");
    (r.get(0), r.get(1), r.get(2))
}

/// The id of the row's `NEW` trigger-log entry (the row has one).
async fn new_entry(db: &tokio_postgres::Client, record_id: i32) -> i32 {
    db.query_one(
        "SELECT id FROM salesforce._trigger_log WHERE record_id = $1 AND state = 'NEW'",
        &[&record_id],
    )
    .await
    .expect("entry")
    .get(0)
}

async fn archived(db: &tokio_postgres::Client, state: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM salesforce._trigger_log_archive WHERE state = $1",
        &[&state],
    )
    .await
    .expect("archive")
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserts_updates_and_deletes_reach_salesforce_and_the_sfid_comes_back() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;

    let id = insert_account(&app, "Writer Insert Co").await;
    writer.drain(DRAIN).await.expect("drain");
    let (sfid, lastop, err) = row(&app, "account", id).await;
    let sfid = sfid.expect("the sfid is written back");
    assert_eq!(lastop.as_deref(), Some("INSERTED"));
    assert_eq!(err, None);
    let found = env
        .records("Account", "Name, Phone", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Name"], "Writer Insert Co");

    app.execute(
        "UPDATE salesforce.account SET phone = '555-0100' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    writer.drain(DRAIN).await.expect("drain");
    let found = env
        .records("Account", "Phone", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Phone"], "555-0100");
    assert_eq!(row(&app, "account", id).await.1.as_deref(), Some("UPDATED"));

    app.execute("DELETE FROM salesforce.account WHERE id = $1", &[&id])
        .await
        .unwrap();
    writer.drain(DRAIN).await.expect("drain");
    assert!(env
        .records("Account", "Name", &format!("Id = '{sfid}'"))
        .await
        .is_empty());
    let left: i64 = app
        .query_one("SELECT count(*) FROM salesforce._trigger_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "every entry is archived");
    assert_eq!(archived(&app, "SUCCESS").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_batches_in_a_row_are_each_sent_once_with_their_sfids_written_back() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    // Small batches: each is claimed while the one before is in flight, and sent while the one
    // before is settled.
    let mut config = writer_config();
    config.max_batch = 7;
    let mut writer = env.writer(&[&account::MAPPING], config).await;
    app.execute(
        "INSERT INTO salesforce.account (name) SELECT 'Batch ' || lpad(g::text, 2, '0') FROM generate_series(1, 60) g",
        &[],
    )
    .await
    .unwrap();
    app.execute(
        "UPDATE salesforce.account SET phone = 'updated' WHERE name IN ('Batch 03', 'Batch 59')",
        &[],
    )
    .await
    .unwrap();
    let report = writer.drain(DRAIN).await.expect("drain");
    assert_eq!(report.failed, 0, "{report:?}");
    let unsynced: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce.account WHERE sfid IS NULL OR _hc_lastop NOT IN ('INSERTED', 'UPDATED')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unsynced, 0, "every row has its sfid and its outcome");
    assert_eq!(
        archived(&app, "SUCCESS").await,
        62,
        "every entry archived once"
    );
    let created = env
        .records("Account", "Name, Phone", "Name LIKE 'Batch %'")
        .await;
    assert_eq!(created.len(), 60, "each row created once");
    for name in ["Batch 03", "Batch 59"] {
        let record = created.iter().find(|r| r["Name"] == name).expect(name);
        assert_eq!(
            record["Phone"], "updated",
            "{name}'s update follows its create"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_draining_one_database_without_leases_send_every_row_once() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut config = writer_config();
    config.max_batch = 5;
    let mut one = env.writer(&[&account::MAPPING], config.clone()).await;
    let mut two = env.writer(&[&account::MAPPING], config).await;
    app.execute(
        "INSERT INTO salesforce.account (name) SELECT 'Twice ' || g FROM generate_series(1, 80) g",
        &[],
    )
    .await
    .unwrap();
    let (a, b) = tokio::join!(one.drain(DRAIN), two.drain(DRAIN));
    let (a, b) = (a.expect("drain"), b.expect("drain"));
    assert_eq!(a.sent + b.sent, 80, "{a:?} {b:?}");
    let created = env.records("Account", "Name", "Name LIKE 'Twice %'").await;
    assert_eq!(created.len(), 80, "no row sent by both writers");
    assert_eq!(archived(&app, "SUCCESS").await, 80);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_sends_only_changed_fields_so_a_salesforce_edit_survives() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    let id = insert_account(&app, "Concurrent Edit Co").await;
    writer.drain(DRAIN).await.unwrap();
    let sfid = row(&app, "account", id).await.0.unwrap();

    env.client()
        .update(
            "Account",
            &sfid,
            &json!({"Website": "https://edited.in.salesforce"}),
        )
        .await
        .unwrap();
    app.execute(
        "UPDATE salesforce.account SET phone = '777' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    writer.drain(DRAIN).await.unwrap();
    let found = env
        .records("Account", "Phone, Website", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Phone"], "777");
    assert_eq!(found[0]["Website"], "https://edited.in.salesforce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_row_is_failed_with_hc_err_and_succeeds_after_a_fix_or_a_retry() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    env.control_ok(
        reqwest::Method::POST,
        "validation-rules",
        Some(
            json!({"object": "Account", "field": "Name", "op": "contains", "value": "test",
                    "message": "Test accounts are not allowed", "errorDisplayField": "Name"}),
        ),
    )
    .await;

    let fixed = insert_account(&app, "a test account").await;
    let retried = insert_account(&app, "another test account").await;
    let good = insert_account(&app, "A Good Account").await;
    writer.drain(DRAIN).await.unwrap();

    let (sfid, lastop, err) = row(&app, "account", fixed).await;
    assert_eq!(sfid, None);
    assert_eq!(lastop.as_deref(), Some("FAILED"));
    let err: Value = serde_json::from_str(&err.expect("_hc_err")).unwrap();
    assert_eq!(err["errorCode"], "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert_eq!(err["message"], "Test accounts are not allowed");
    assert_eq!(err["fields"], json!(["Name"]));
    let name: String = app
        .query_one(
            "SELECT name FROM salesforce.account WHERE id = $1",
            &[&fixed],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        name, "a test account",
        "the row is kept as the app wrote it"
    );
    assert_eq!(archived(&app, "FAILED").await, 2);
    assert!(
        row(&app, "account", good).await.0.is_some(),
        "other records go on"
    );

    // Not retried by itself.
    writer.drain(DRAIN).await.unwrap();
    assert_eq!(
        row(&app, "account", fixed).await.1.as_deref(),
        Some("FAILED")
    );

    // The app fixes the row with an ordinary write: sent as an insert of its current values.
    app.execute(
        "UPDATE salesforce.account SET name = 'A Fixed Account' WHERE id = $1",
        &[&fixed],
    )
    .await
    .unwrap();
    writer.drain(DRAIN).await.unwrap();
    let (sfid, lastop, err) = row(&app, "account", fixed).await;
    assert!(sfid.is_some());
    assert_eq!((lastop.as_deref(), err), (Some("INSERTED"), None));

    // The rule goes away in Salesforce; `retry` requeues the failed entry as it was.
    env.control_ok(reqwest::Method::DELETE, "validation-rules", None)
        .await;
    let mut db = env.pg().await;
    let requeued = admin::act(
        &mut db,
        SCHEMA,
        &[&account::MAPPING],
        &Selection::All,
        Action::Retry,
    )
    .await
    .unwrap();
    assert_eq!(requeued, 1);
    writer.drain(DRAIN).await.unwrap();
    let (sfid, lastop, err) = row(&app, "account", retried).await;
    let sfid = sfid.expect("created after retry");
    assert_eq!((lastop.as_deref(), err), (Some("INSERTED"), None));
    let found = env
        .records("Account", "Name", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Name"], "another test account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_marks_failed_entries_handled() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    env.control_ok(
        reqwest::Method::POST,
        "validation-rules",
        Some(
            json!({"object": "Account", "field": "Name", "op": "contains", "value": "test",
                    "message": "no"}),
        ),
    )
    .await;
    let id = insert_account(&app, "test ignored").await;
    writer.drain(DRAIN).await.unwrap();
    let mut db = env.pg().await;
    let n = admin::act(
        &mut db,
        SCHEMA,
        &[&account::MAPPING],
        &Selection::All,
        Action::Ignore,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert_eq!(archived(&app, "IGNORED").await, 1);
    let (_, lastop, err) = row(&app, "account", id).await;
    assert_eq!((lastop.as_deref(), err), (Some("IGNORED"), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_errors_and_503_storms_are_retried_without_duplicates() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut config = writer_config();
    config.plan.chunk_size = 5;
    let mut writer = env.writer(&[&account::MAPPING], config).await;
    env.faults(
        json!({"unable_to_lock_row": 7, "share_503": 0.6, "seed": 11,
                      "paths": ["/services/data"]}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..30 {
        ids.push(insert_account(&app, &format!("Storm {i:02}")).await);
    }
    let report = writer.drain(DRAIN).await.unwrap();
    env.control_ok(reqwest::Method::DELETE, "faults", None)
        .await;
    writer.drain(DRAIN).await.unwrap();
    assert!(report.retried > 0, "some writes were retried: {report:?}");
    for id in &ids {
        assert!(
            row(&app, "account", *id).await.0.is_some(),
            "row {id} synced"
        );
    }
    let created = env.records("Account", "Name", "Name LIKE 'Storm %'").await;
    assert_eq!(created.len(), 30, "each row created exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_postgres_connections_are_closed_reconnects_and_goes_on() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let running = env.run_writer(&[&account::MAPPING], writer_config()).await;
    let first = insert_account(&app, "Before The Cut").await;
    let synced = |id: i32| {
        let app = &app;
        move || async move { row(app, "account", id).await.0.is_some() }
    };
    eventually(DRAIN, "the first row is sent", synced(first)).await;

    // Postgres closes every other session (as a restart or a dropped socket would).
    app.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .await
    .unwrap();
    let second = insert_account(&app, "After The Cut").await;
    eventually(DRAIN, "the row after the cut is sent", synced(second)).await;
    running.stop().await;
    let created = env
        .records("Account", "Name", "Name LIKE '% The Cut'")
        .await;
    assert_eq!(created.len(), 2, "each row sent once");
}

/// Housekeeping (pruning the archive) runs beside the writer's rounds, never in their way: here
/// the prune waits on an archived entry another session holds locked, and rows are still sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_archive_prune_does_not_hold_up_sending() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    app.batch_execute(
        "INSERT INTO salesforce._trigger_log_archive
             (id, created_at, updated_at, processed_at, state, action, table_name, record_id)
         VALUES (900000, now() - interval '90 days', now() - interval '90 days',
                 now() - interval '90 days', 'SUCCESS', 'INSERT', 'account', 1)",
    )
    .await
    .unwrap();
    let mut holder = env.pg().await;
    let lock = holder.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM salesforce._trigger_log_archive WHERE id = 900000 FOR UPDATE",
        &[],
    )
    .await
    .unwrap();

    let running = env.run_writer(&[&account::MAPPING], writer_config()).await;
    eventually(
        Duration::from_secs(10),
        "the prune waits on the lock",
        || async {
            let waiting: i64 = app
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM%_trigger_log_archive%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            waiting > 0
        },
    )
    .await;
    let id = insert_account(&app, "Sent While Pruning").await;
    eventually(
        Duration::from_secs(10),
        "the row is sent while the prune waits",
        || async { row(&app, "account", id).await.0.is_some() },
    )
    .await;

    lock.commit().await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the old entry is pruned",
        || async {
            app.query(
                "SELECT 1 FROM salesforce._trigger_log_archive WHERE id = 900000",
                &[],
            )
            .await
            .unwrap()
            .is_empty()
        },
    )
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_repeated_updates_end_with_salesforce_holding_the_last_value() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let running = env.run_writer(&[&account::MAPPING], writer_config()).await;

    let id = insert_account(&app, "Flip Flop Co").await;
    for i in 0..60 {
        app.execute(
            "UPDATE salesforce.account SET phone = $2 WHERE id = $1",
            &[&id, &format!("v{i}")],
        )
        .await
        .unwrap();
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    let check = env.writer(&[&account::MAPPING], writer_config()).await;
    let deadline = std::time::Instant::now() + DRAIN;
    loop {
        let (new, journaled) = check.pending().await.unwrap();
        if new == 0 && journaled == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the writer keeps up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await;
    let sfid = row(&app, "account", id).await.0.expect("synced");
    let found = env
        .records("Account", "Phone", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Phone"], "v59");
    let created = env
        .records("Account", "Name", "Name = 'Flip Flop Co'")
        .await;
    assert_eq!(created.len(), 1);
}

/// Kills the writer at random points (the task is aborted: whatever was in flight is lost, the
/// open Postgres transaction rolls back) and restarts it, many times; then checks every row is
/// in Salesforce exactly once.
async fn crash_and_restart(with_upsert_key: bool) {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let parent = env
        .client()
        .create("Account", &json!({"Name": "Invoice Parent"}))
        .await
        .unwrap();
    let mapping: &'static MappingDescriptor = if with_upsert_key {
        &invoice::MAPPING
    } else {
        &account::MAPPING
    };
    let mut ids = Vec::new();
    let mut seed: u64 = if with_upsert_key { 17 } else { 5 };
    let mut kills = 0;
    for round in 0..25 {
        for k in 0..4 {
            let name = format!("Crash {round:02}-{k}");
            let id: i32 = if with_upsert_key {
                app.query_one(
                    "INSERT INTO salesforce.invoice__c (name, external_id__c, account__c, amount__c)
                     VALUES ($1, $2, $3, 10) RETURNING id",
                    &[&name, &format!("EXT-{round}-{k}"), &parent],
                )
                .await
                .unwrap()
                .get(0)
            } else {
                insert_account(&app, &name).await
            };
            ids.push(id);
        }
        let mut writer = env.writer(&[mapping], writer_config()).await;
        let task = tokio::spawn(async move {
            writer.recover().await?;
            writer.drain(DRAIN).await
        });
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let after = Duration::from_micros((seed >> 33) % 40_000);
        tokio::time::sleep(after).await;
        if !task.is_finished() {
            kills += 1;
        }
        task.abort();
        let _ = task.await;
    }
    let mut writer = env.writer(&[mapping], writer_config()).await;
    writer.recover().await.unwrap();
    writer.drain(DRAIN).await.unwrap();
    assert!(kills > 5, "the writer was killed mid-work {kills} times");

    for id in &ids {
        let (sfid, _, err) = row(&app, mapping.table, *id).await;
        assert!(sfid.is_some(), "row {id} reached Salesforce ({err:?})");
    }
    // Invoice names are auto-numbers; invoices are told apart by their external ID.
    let condition = if with_upsert_key {
        "External_Id__c LIKE 'EXT-%'"
    } else {
        "Name LIKE 'Crash %'"
    };
    let created = env.records(mapping.object, "Name", condition).await;
    assert_eq!(
        created.len(),
        ids.len(),
        "no duplicate, nothing lost after {kills} kills"
    );
    let sfids: std::collections::HashSet<String> = app
        .query(
            &format!(
                "SELECT sfid FROM salesforce.{} WHERE sfid IS NOT NULL",
                mapping.table
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(sfids.len(), ids.len(), "each row holds its own record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_without_an_upsert_key_creates_no_duplicate() {
    crash_and_restart(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_with_an_upsert_key_creates_no_duplicate() {
    crash_and_restart(true).await;
}

/// A create journaled by a build whose journal kept bodies as `jsonb` (before the system
/// migration `0009_journal_body_json`) and left in flight by a crash is reconciled after the
/// upgrade: the record Salesforce created for it is adopted, not created a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_journaled_before_the_journal_kept_json_is_reconciled_after_the_upgrade() {
    let env = Harness::start_empty().await;
    let mut app = env.pg().await;
    app.batch_execute(
        "ALTER TABLE salesforce._forcesync_write_journal ALTER COLUMN body TYPE jsonb USING body::jsonb;
         DELETE FROM salesforce._forcesync_system_migrations WHERE name = '0009_journal_body_json'",
    )
    .await
    .unwrap();
    let name = "Journaled Before The Upgrade";
    let id = insert_account(&app, name).await;
    let entry = new_entry(&app, id).await;
    app.execute(
        "INSERT INTO salesforce._forcesync_write_journal
             (mapping, table_name, record_id, kind, entry_ids, body, state)
         VALUES ('Account', 'account', $1, 'create', ARRAY[$2::int],
                 jsonb_build_object('Name', $3::text, 'Phone', '1'), 'SENDING')",
        &[&id, &entry, &name],
    )
    .await
    .unwrap();
    // The create reached Salesforce; the process died before its answer was stored.
    let sfid = env
        .client()
        .create("Account", &json!({"Name": name, "Phone": "1"}))
        .await
        .unwrap();

    let applied = sync_runtime::engine::system::migrate(&mut app, SCHEMA)
        .await
        .unwrap();
    assert_eq!(applied, ["0009_journal_body_json"]);
    let body_type: String = app
        .query_one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = 'salesforce._forcesync_write_journal'::regclass AND attname = 'body'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(body_type, "json");

    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    writer.recover().await.unwrap();
    writer.drain(DRAIN).await.unwrap();
    let (row_sfid, _, err) = row(&app, "account", id).await;
    assert_eq!(row_sfid, Some(sfid), "the record adopted ({err:?})");
    let records = env
        .records("Account", "Name", &format!("Name = '{name}'"))
        .await;
    assert_eq!(records.len(), 1, "not created a second time");
}

/// New writes are journaled a call's worth a row (`_forcesync_write_batch`). A crash after the
/// call leaves that row: its records stay taken until the restart, which journals each of its
/// writes on its own: the create that reached Salesforce is adopted, not made twice; the update
/// that did not is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_a_crash_left_in_a_batch_row_are_reconciled_or_sent_again_once_each() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    // An Account already in Salesforce, then changed by the app.
    let updated = insert_account(&app, "Batch Updated").await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    writer.drain(DRAIN).await.unwrap();
    let (updated_sfid, _, _) = row(&app, "account", updated).await;
    let updated_sfid = updated_sfid.expect("synced");
    app.execute(
        "UPDATE salesforce.account SET phone = '2' WHERE id = $1",
        &[&updated],
    )
    .await
    .unwrap();
    let created = insert_account(&app, "Batch Created").await;
    let (created_entry, updated_entry) = (
        new_entry(&app, created).await,
        new_entry(&app, updated).await,
    );
    // The batch row of a call with both writes, as the process that sent it left it.
    app.execute(
        "INSERT INTO salesforce._forcesync_write_batch (mapping, table_name, record_ids, creates, writes)
         VALUES ('Account', 'account', ARRAY[$1::int, $2::int], true,
                 json_build_array(
                     json_build_object('record_id', $1::int, 'kind', 'create', 'entry_ids', ARRAY[$3::int],
                                       'sfid', NULL, 'external_id', NULL,
                                       'body', json_build_object('Name', 'Batch Created', 'Phone', '1')),
                     json_build_object('record_id', $2::int, 'kind', 'update', 'entry_ids', ARRAY[$4::int],
                                       'sfid', $5::text, 'external_id', NULL,
                                       'body', json_build_object('Phone', '2'))))",
        &[&created, &updated, &created_entry, &updated_entry, &updated_sfid],
    )
    .await
    .unwrap();
    // The create reached Salesforce; the update did not.
    let sfid = env
        .client()
        .create("Account", &json!({"Name": "Batch Created", "Phone": "1"}))
        .await
        .unwrap();

    // Until the restart, the batch row keeps both records taken.
    let report = writer.round().await.unwrap();
    assert_eq!(report.claimed, 0, "records in a batch row are not claimed");

    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    assert_eq!(writer.recover().await.unwrap(), 2, "both writes recovered");
    writer.drain(DRAIN).await.unwrap();
    let (row_sfid, _, err) = row(&app, "account", created).await;
    assert_eq!(row_sfid, Some(sfid), "the record adopted ({err:?})");
    let records = env
        .records("Account", "Name", "Name = 'Batch Created'")
        .await;
    assert_eq!(records.len(), 1, "not created a second time");
    let phone = env
        .records("Account", "Phone", &format!("Id = '{updated_sfid}'"))
        .await;
    assert_eq!(phone[0]["Phone"], "2", "the update sent again");
    let left: i64 = app
        .query_one(
            "SELECT (SELECT count(*) FROM salesforce._forcesync_write_batch)
                  + (SELECT count(*) FROM salesforce._forcesync_write_journal)
                  + (SELECT count(*) FROM salesforce._trigger_log WHERE state = 'NEW')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "nothing left in flight");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_returns_the_sfid_or_salesforces_error() {
    let env = Harness::start_empty().await;
    let mut db = env.pg().await;
    let values = json!({"name": "Through Co", "phone": "42"});
    let stored = through::create(
        &env.client(),
        &mut db,
        &account::MAPPING,
        values.as_object().unwrap(),
    )
    .await
    .expect("created");
    let (sfid, lastop, _) = row(&db, "account", stored.id).await;
    assert_eq!(sfid.as_deref(), Some(stored.sfid.as_str()));
    assert_eq!(lastop.as_deref(), Some("INSERTED"));
    let found = env
        .records("Account", "Name", &format!("Id = '{}'", stored.sfid))
        .await;
    assert_eq!(found[0]["Name"], "Through Co");

    let changes = json!({"phone": "43"});
    through::update(
        &env.client(),
        &mut db,
        &account::MAPPING,
        stored.id,
        changes.as_object().unwrap(),
    )
    .await
    .expect("updated");
    let found = env
        .records("Account", "Phone", &format!("Id = '{}'", stored.sfid))
        .await;
    assert_eq!(found[0]["Phone"], "43");

    // Nothing was captured for the writer to send again.
    let captured: i64 = db
        .query_one("SELECT count(*) FROM salesforce._trigger_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(captured, 0);

    let missing = json!({"phone": "1"});
    let error = through::create(
        &env.client(),
        &mut db,
        &account::MAPPING,
        missing.as_object().unwrap(),
    )
    .await
    .expect_err("Name is required");
    match error {
        through::ThroughError::Salesforce(e) => assert_eq!(e.code, "REQUIRED_FIELD_MISSING"),
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_insert_goes_through_the_bulk_api_and_one_bad_row_fails_alone() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    env.control_ok(
        reqwest::Method::POST,
        "validation-rules",
        Some(
            json!({"object": "Account", "field": "Name", "op": "equals", "value": "Bulk bad",
                    "message": "bad row"}),
        ),
    )
    .await;
    app.execute(
        "INSERT INTO salesforce.account (name)
         SELECT CASE WHEN g = 777 THEN 'Bulk bad' ELSE 'Bulk ' || g END FROM generate_series(1, 10000) g",
        &[],
    )
    .await
    .unwrap();
    // The mapping's state row, as the engine creates it when it starts (the counters live there).
    sync_runtime::engine::state::StateStore::new(SCHEMA)
        .ensure(&app, "Account", "account")
        .await
        .unwrap();
    let mut config = writer_config();
    config.plan.bulk_threshold = 2_000;
    let mut writer = env.writer(&[&account::MAPPING], config).await;
    let report = writer.drain(Duration::from_secs(300)).await.unwrap();
    assert_eq!(report.succeeded, 9_999, "{report:?}");
    assert_eq!(report.failed, 1);
    let unsynced: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce.account WHERE sfid IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unsynced, 1);
    let failed: Option<String> = app
        .query_one(
            "SELECT _hc_err FROM salesforce.account WHERE name = 'Bulk bad'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(failed
        .unwrap()
        .contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"));
    let n = env
        .client()
        .count("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk %'")
        .await
        .unwrap();
    assert_eq!(n, 9_999);
    // The step of 10,000 answers was settled in two transactions at once (the writer's settle
    // connection): together they archived every entry, emptied the log, the journal and the
    // batch rows (the job's two halves, one a transaction), and both added to the mapping's
    // counters.
    let settled = app
        .query_one(
            "SELECT (SELECT count(*) FROM salesforce._trigger_log) AS log,
                    (SELECT count(*) FROM salesforce._forcesync_write_journal)
                    + (SELECT count(*) FROM salesforce._forcesync_write_batch) AS journal,
                    (SELECT count(*) FILTER (WHERE state = 'SUCCESS') FROM salesforce._trigger_log_archive) AS ok,
                    (SELECT count(*) FILTER (WHERE state = 'FAILED') FROM salesforce._trigger_log_archive) AS bad,
                    (SELECT records_written FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account') AS written,
                    (SELECT write_errors FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account') AS errors",
            &[],
        )
        .await
        .unwrap();
    let count = |c: &str| settled.get::<_, i64>(c);
    assert_eq!(
        [count("log"), count("journal"), count("ok"), count("bad")],
        [0, 0, 9_999, 1]
    );
    assert_eq!([count("written"), count("errors")], [9_999, 1]);
}

/// One engine: takes the Account mapping's lease when it can, then runs writer rounds until
/// stopped (or killed).
fn engine(
    number: usize,
    holder: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    url: String,
    sf: Client,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<bool> {
    tokio::spawn(async move {
        loop {
            if *stop.borrow() {
                return false;
            }
            let lease = sync_runtime::engine::lease::Lease::try_acquire(&url, SCHEMA, "Account")
                .await
                .expect("lease");
            if let Some(_lease) = lease {
                holder.store(number, std::sync::atomic::Ordering::SeqCst);
                let db = sync_runtime::engine::connect(&url).await.expect("postgres");
                let target = Target {
                    mapping: &account::MAPPING,
                    client: sf.clone(),
                };
                let mut writer = Writer::new(db, SCHEMA, vec![target], writer_config());
                writer.recover().await.expect("recover");
                while !*stop.borrow() {
                    writer.round().await.expect("round");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_database_send_every_change_once() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let holder = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let engines = [
        engine(
            1,
            holder.clone(),
            env.db.url.clone(),
            env.client(),
            stopped.clone(),
        ),
        engine(
            2,
            holder.clone(),
            env.db.url.clone(),
            env.client(),
            stopped.clone(),
        ),
    ];
    let mut ids = Vec::new();
    let mut killed = 0;
    for i in 0..40 {
        ids.push(insert_account(&app, &format!("Shared {i:02}")).await);
        if i == 20 {
            // The engine holding the mapping dies; the other takes over.
            while holder.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            killed = holder.load(std::sync::atomic::Ordering::SeqCst);
            engines[killed - 1].abort();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let check = env.writer(&[&account::MAPPING], writer_config()).await;
    let deadline = std::time::Instant::now() + DRAIN;
    loop {
        let (new, journaled) = check.pending().await.unwrap();
        if new == 0 && journaled == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the surviving engine sends everything"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    let [one, two] = engines;
    let (one, two) = (one.await, two.await);
    let survivor = if killed == 1 { two } else { one };
    assert!(survivor.unwrap(), "the other engine took the mapping over");
    for id in &ids {
        assert!(
            row(&app, "account", *id).await.0.is_some(),
            "row {id} synced"
        );
    }
    let created = env.records("Account", "Name", "Name LIKE 'Shared %'").await;
    assert_eq!(created.len(), ids.len(), "every change sent once");
}

/// An engine syncing some mappings (read loops and writer) until stopped.
struct Syncing {
    engine: std::sync::Arc<sync_runtime::engine::Engine>,
    running: Running,
}

/// An engine syncing only `objects`, with its writer sending what it holds.
async fn syncing(h: &Harness, objects: &[&str], writer: WriterConfig) -> Syncing {
    // The writer needs the engine's tables before the read loops create them.
    sync_runtime::engine::system::migrate(&mut h.pg().await, SCHEMA)
        .await
        .expect("system migrations");
    let mut config = h.engine_config();
    config.only = objects.iter().map(|o| (*o).to_owned()).collect();
    let engine = std::sync::Arc::new(h.engine(config));
    let targets = engine
        .mappings()
        .into_iter()
        .map(|mapping| Target {
            mapping,
            client: engine.client.clone(),
        })
        .collect();
    let db = sync_runtime::engine::connect(&h.db.url).await.unwrap();
    let writer = Writer::new(db, SCHEMA, targets, writer).only_held(&engine.held);
    let mut running = Running::new();
    let read = engine.clone();
    running.spawn("the engine", move |shutdown| async move {
        read.run(shutdown).await
    });
    let url = h.db.url.clone();
    running.spawn("the writer", move |shutdown| async move {
        writer.run(&url, shutdown).await
    });
    Syncing { engine, running }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_and_its_children_inserted_in_one_transaction_reach_salesforce_linked() {
    parent_and_children_in_one_transaction(writer_config()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_sent_through_the_bulk_api_name_their_parent_by_external_id() {
    let mut config = writer_config();
    config.plan.bulk_threshold = 2;
    parent_and_children_in_one_transaction(config).await;
}

/// Invoices and their lines sent by two writers (two instances holding one mapping each): a
/// line naming an invoice that is not in Salesforce yet waits for it instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_whose_parent_another_writer_sends_waits_for_it() {
    let env = Harness::start_empty().await;
    let mut app = env.pg().await;
    let account = env
        .client()
        .create("Account", &json!({"Name": "Two Writers Co"}))
        .await
        .unwrap();
    let mut lines = env.writer(&[&invoice_line::MAPPING], writer_config()).await;
    let mut invoices = env.writer(&[&invoice::MAPPING], writer_config()).await;

    let tx = app.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO salesforce.invoice__c (external_id__c, account__c, amount__c) \
         VALUES ('INV-TWO-1', $1, 50)",
        &[&account],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO salesforce.invoice_line__c \
         (invoice__r__external_id__c, external_id__c, description__c) \
         VALUES ('INV-TWO-1', 'INV-TWO-1-L1', 'Line 1')",
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // The lines' writer runs first: the invoice is not in Salesforce, so the line waits.
    for _ in 0..3 {
        let report = lines.round().await.expect("round");
        assert_eq!(report.sent, 0, "{report:?}");
        assert_eq!((report.claimed, report.held), (0, 1), "{report:?}");
        assert!(!report.busy(), "a held child does not keep the writer busy");
    }
    assert_eq!(archived(&app, "FAILED").await, 0, "the line did not fail");
    let waiting: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce._trigger_log \
             WHERE table_name = 'invoice_line__c' AND state = 'NEW'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waiting, 1, "the line's entry waits");

    invoices.drain(DRAIN).await.expect("invoices");
    let report = lines.drain(DRAIN).await.expect("lines");
    assert_eq!((report.sent, report.failed), (1, 0), "{report:?}");
    let invoice = env
        .records("Invoice__c", "Name", "External_Id__c = 'INV-TWO-1'")
        .await;
    let line = env
        .records(
            "Invoice_Line__c",
            "Invoice__c",
            "External_Id__c = 'INV-TWO-1-L1'",
        )
        .await;
    assert_eq!(line.len(), 1);
    assert_eq!(
        line[0]["Invoice__c"], invoice[0]["Id"],
        "the line points at the invoice"
    );
    let lookup: Option<String> = app
        .query_one(
            "SELECT invoice__c FROM salesforce.invoice_line__c WHERE external_id__c = 'INV-TWO-1-L1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lookup.as_deref(), invoice[0]["Id"].as_str());

    // A parent whose insert failed holds nothing back: the child goes, and fails on its own.
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO salesforce.invoice__c (external_id__c, amount__c) VALUES ('INV-TWO-2', 5)",
        &[],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO salesforce.invoice_line__c (invoice__r__external_id__c, external_id__c) \
         VALUES ('INV-TWO-2', 'INV-TWO-2-L1')",
        &[],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let parent = invoices.drain(DRAIN).await.expect("invoices");
    assert_eq!(parent.failed, 1, "an invoice needs its account: {parent:?}");
    let child = lines.drain(DRAIN).await.expect("lines");
    assert_eq!((child.sent, child.failed), (1, 1), "{child:?}");
}

/// One Postgres transaction inserts an invoice (no sfid yet) and three lines naming it by its
/// external ID; all four reach Salesforce linked, the rows get their sfids and the lines' lookup
/// the invoice's. With a low `bulk_threshold` the lines go through a Bulk API 2.0 ingest job.
async fn parent_and_children_in_one_transaction(writer: WriterConfig) {
    let h = Harness::start().await;
    let account = h
        .create("Account", json!({"Name": "Relationship Co"}))
        .await;
    let via_bulk = writer.plan.bulk_threshold < 3;
    let sync = syncing(&h, &["Invoice__c", "Invoice_Line__c"], writer).await;
    eventually(DRAIN, "the engine holds invoices and lines", || async {
        sync.engine.held.contains("Invoice__c") && sync.engine.held.contains("Invoice_Line__c")
    })
    .await;

    let mut app = h.pg().await;
    eventually(DRAIN, "invoices and lines are loaded", || async {
        app.query_one(
            "SELECT count(*) FROM salesforce._forcesync_mapping_state \
             WHERE mapping IN ('Invoice__c', 'Invoice_Line__c') AND state IN ('STREAMING', 'POLLING')",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 2
    })
    .await;

    // The app writes an invoice (no sfid yet) and three lines naming it by its external ID, in
    // one transaction; the lines' lookup column stays empty.
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "INSERT INTO salesforce.invoice__c (external_id__c, account__c, amount__c) \
         VALUES ('INV-REL-1', $1, 120)",
        &[&account],
    )
    .await
    .unwrap();
    for (n, quantity) in [(1, 1.0f64), (2, 2.0), (3, 3.0)] {
        tx.execute(
            "INSERT INTO salesforce.invoice_line__c \
             (invoice__r__external_id__c, external_id__c, description__c, quantity__c) \
             VALUES ('INV-REL-1', $1, $2, $3)",
            &[&format!("INV-REL-1-L{n}"), &format!("Line {n}"), &quantity],
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let linked = || async {
        let rows = app
            .query(
                "SELECT l.sfid, l.invoice__c, i.sfid FROM salesforce.invoice_line__c l \
                 JOIN salesforce.invoice__c i ON i.external_id__c = l.invoice__r__external_id__c \
                 WHERE i.external_id__c = 'INV-REL-1'",
                &[],
            )
            .await
            .unwrap();
        rows.len() == 3
            && rows.iter().all(|r| {
                let (line, lookup, invoice): (Option<String>, Option<String>, Option<String>) =
                    (r.get(0), r.get(1), r.get(2));
                line.is_some() && invoice.is_some() && lookup == invoice
            })
    };
    eventually(
        DRAIN,
        "every row has its sfid and the lines point at the invoice's",
        linked,
    )
    .await;

    // Salesforce holds one invoice and its three lines, each pointing at it.
    let invoices = h
        .query("SELECT Id FROM Invoice__c WHERE External_Id__c = 'INV-REL-1'")
        .await;
    assert_eq!(invoices.len(), 1, "{invoices:?}");
    let invoice = invoices[0]["Id"].as_str().unwrap().to_owned();
    let lines = h
        .query(
            "SELECT Id, Invoice__c, Description__c FROM Invoice_Line__c \
             WHERE Invoice__r.External_Id__c = 'INV-REL-1'",
        )
        .await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines.iter().all(|l| l["Invoice__c"] == json!(invoice)));
    let bulk_calls = sync
        .engine
        .client
        .call_counts()
        .get(sync_runtime::salesforce::CallKind::Bulk);
    assert_eq!(bulk_calls > 0, via_bulk, "Bulk API calls: {bulk_calls}");

    // A line a Salesforce user adds by the invoice's Id arrives with the invoice's external ID.
    let added = h
        .create(
            "Invoice_Line__c",
            json!({"Invoice__c": invoice, "Description__c": "Added in Salesforce"}),
        )
        .await;
    eventually(
        DRAIN,
        "the user's line arrives with the relationship column filled",
        || async {
            app.query(
                "SELECT 1 FROM salesforce.invoice_line__c \
                 WHERE sfid = $1 AND invoice__r__external_id__c = 'INV-REL-1'",
                &[&added],
            )
            .await
            .unwrap()
            .len()
                == 1
        },
    )
    .await;

    // The invoice's external ID changes in Salesforce: the lines' relationship column follows
    // (Salesforce sends no event for the lines), as an engine write that is not sent back.
    h.update(
        "Invoice__c",
        &invoice,
        json!({"External_Id__c": "INV-REL-1-RENAMED"}),
    )
    .await;
    eventually(
        DRAIN,
        "every line names the invoice by its new external ID",
        || async {
            app.query_one(
                "SELECT count(*) FILTER (WHERE invoice__r__external_id__c = 'INV-REL-1-RENAMED'), \
                        count(*) \
                 FROM salesforce.invoice_line__c WHERE invoice__c = $1",
                &[&invoice],
            )
            .await
            .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)) == (4, 4))
            .unwrap()
        },
    )
    .await;
    let captured: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce._trigger_log WHERE table_name = 'invoice_line__c'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        captured, 0,
        "the followed key is not sent back to Salesforce"
    );

    sync.running.stop().await;
}

/// Salesforce publishes a create's change event when it commits, before the writer has its
/// answer: the event usually arrives before the `sfid` is written back. The app's row still ends
/// with what only Salesforce sets on create, and stays one row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_app_inserted_gets_what_salesforce_set_even_when_the_create_event_comes_first() {
    let h = Harness::start().await;
    let sync = syncing(&h, &["Account"], writer_config()).await;
    let app = h.pg().await;
    eventually(DRAIN, "the engine streams accounts", || async {
        app.query_one(
            "SELECT count(*) FROM salesforce._forcesync_mapping_state \
             WHERE mapping = 'Account' AND state = 'STREAMING'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0)
            == 1
    })
    .await;
    // The writer's write-back of a new sfid takes half a second: the create's event is applied
    // first, every time.
    app.batch_execute(
        "CREATE FUNCTION salesforce.slow_write_back() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('forcesync.engine', true) = 'on' AND OLD.sfid IS NULL
              AND NEW.sfid IS NOT NULL THEN
             PERFORM pg_sleep(0.5);
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER slow_write_back BEFORE UPDATE ON salesforce.account
           FOR EACH ROW EXECUTE FUNCTION salesforce.slow_write_back();",
    )
    .await
    .unwrap();
    let id = insert_account(&app, "Event First Co").await;
    eventually(
        DRAIN,
        "the row has the sfid and Salesforce's own fields",
        || async {
            app.query_one(
                "SELECT sfid IS NOT NULL AND systemmodstamp IS NOT NULL AND createddate IS NOT NULL \
                 FROM salesforce.account WHERE id = $1",
                &[&id],
            )
            .await
            .unwrap()
            .get::<_, bool>(0)
        },
    )
    .await;
    let rows: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce.account WHERE name = 'Event First Co'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "one row for the record");
    sync.running.stop().await;
}

/// A client whose calls give up after `timeout` (a request Salesforce is slow to answer ends
/// ambiguous: it may have been applied).
fn impatient_client(h: &Harness, timeout: Duration) -> Client {
    let mut config = h.salesforce();
    config.org_reserve = 0;
    config.request_timeout = timeout;
    Client::new(config).expect("client")
}

/// Salesforce applies the writer's create, but its answer never comes: the request times out.
/// The writer must find the records it created instead of sending them again.
async fn timed_out_after_salesforce_applied_it(with_upsert_key: bool, read_path_copies: bool) {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mapping: &'static MappingDescriptor = if with_upsert_key {
        &invoice::MAPPING
    } else {
        &account::MAPPING
    };
    let parent = env
        .client()
        .create("Account", &json!({"Name": "Parent of the timed-out"}))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let id: i32 = if with_upsert_key {
            app.query_one(
                "INSERT INTO salesforce.invoice__c (name, external_id__c, account__c, amount__c)
                 VALUES ($1, $2, $3, 10) RETURNING id",
                &[&format!("Timeout {i}"), &format!("TIMEOUT-{i}"), &parent],
            )
            .await
            .unwrap()
            .get(0)
        } else {
            insert_account(&app, &format!("Timeout {i}")).await
        };
        ids.push(id);
    }
    // The next write is applied, then its answer hangs past the client's timeout.
    env.faults(
        json!({"ambiguous_writes": {"count": 1, "mode": "hang", "paths": ["/services/data"]},
                      "hang_ms": 3_000}),
    )
    .await;
    let sf = impatient_client(&env, Duration::from_millis(700));
    let target = Target {
        mapping,
        client: sf.clone(),
    };
    let mut writer = Writer::new(env.pg().await, SCHEMA, vec![target], writer_config());
    let first = writer.round().await.expect("round");
    assert_eq!(first.sent, 3, "{first:?}");
    assert_eq!(
        (first.succeeded, first.failed, first.retried),
        (0, 0, 0),
        "the outcome is unknown: {first:?}"
    );
    // Their batch row ended with the settle, and each write has a journal row of its own, to be
    // reconciled.
    let journaled = app
        .query_one(
            "SELECT (SELECT count(*) FROM salesforce._forcesync_write_batch) AS batches,
                    (SELECT count(*) FROM salesforce._forcesync_write_journal
                     WHERE state = 'RECONCILE') AS reconciles",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (
            journaled.get::<_, i64>("batches"),
            journaled.get::<_, i64>("reconciles")
        ),
        (0, 3)
    );
    let condition = if with_upsert_key {
        "External_Id__c LIKE 'TIMEOUT-%'"
    } else {
        "Name LIKE 'Timeout %'"
    };
    assert_eq!(
        env.records(mapping.object, "Name", condition).await.len(),
        3,
        "Salesforce applied the timed-out request"
    );

    if read_path_copies {
        // Before the writer finds out, the read path stores the new records as rows of their
        // own (a poll or a load read them): copies of what the app's rows are about to hold,
        // with what Salesforce set (its stamp).
        for record in env
            .records(mapping.object, "Id, Name, Phone, SystemModstamp", condition)
            .await
        {
            app.batch_execute(&format!(
                "BEGIN; SET LOCAL forcesync.engine = 'on';
                 INSERT INTO salesforce.account (name, sfid, phone, systemmodstamp)
                 VALUES ('{}', '{}', '{}', '{}');
                 COMMIT",
                record["Name"].as_str().unwrap(),
                record["Id"].as_str().unwrap(),
                record["Phone"].as_str().unwrap(),
                record["SystemModstamp"].as_str().unwrap()
            ))
            .await
            .unwrap();
        }
        // The app, seeing a row with an sfid, changes it, and the change goes out (a writer
        // whose reconciliation is not due yet sends it) before the lost creates are reconciled.
        app.execute(
            "UPDATE salesforce.account SET phone = 'changed on the copy'
             WHERE name = 'Timeout 0' AND sfid IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
        let mut patient = writer_config();
        patient.reconcile_after = Duration::from_secs(3_600);
        let target = Target {
            mapping,
            client: env.client(),
        };
        let mut other = Writer::new(env.pg().await, SCHEMA, vec![target], patient);
        let sent = other.round().await.expect("round");
        assert_eq!(
            (sent.succeeded, sent.adopted),
            (1, 0),
            "the copy's change is in Salesforce: {sent:?}"
        );
    }

    let rest = writer.drain(DRAIN).await.expect("drain");
    assert_eq!(rest.adopted, 3, "reconciled, not sent again: {rest:?}");
    assert_eq!(rest.resent, 0, "{rest:?}");
    let created = env.records(mapping.object, "Name", condition).await;
    assert_eq!(created.len(), 3, "exactly one record each");
    let mut held = std::collections::HashSet::new();
    for id in &ids {
        let (sfid, lastop, err) = row(&app, mapping.table, *id).await;
        let sfid = sfid.unwrap_or_else(|| panic!("row {id} has its sfid ({err:?})"));
        assert_eq!(lastop.as_deref(), Some("INSERTED"));
        assert!(
            created.iter().any(|r| r["Id"] == sfid.as_str()),
            "row {id} holds a record Salesforce has"
        );
        held.insert(sfid);
    }
    assert_eq!(held.len(), 3, "each row holds its own record");
    assert_eq!(writer.pending().await.unwrap(), (0, 0));
    let rows: i64 = app
        .query_one(
            &format!("SELECT count(*) FROM salesforce.{}", mapping.table),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 3,
        "one row per record: the read path's copies gave way"
    );
    if read_path_copies {
        let changed = env
            .records(mapping.object, "Id, Phone", "Name = 'Timeout 0'")
            .await;
        assert_eq!(changed[0]["Phone"], "changed on the copy");
        let app_rows = app
            .query(
                "SELECT name, phone, systemmodstamp IS NOT NULL AS stamped
                 FROM salesforce.account WHERE id = ANY($1) ORDER BY name",
                &[&ids],
            )
            .await
            .unwrap();
        let seen: Vec<(String, String, bool)> = app_rows
            .iter()
            .map(|r| (r.get("name"), r.get("phone"), r.get("stamped")))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("Timeout 0".into(), "changed on the copy".into(), true),
                ("Timeout 1".into(), "1".into(), true),
                ("Timeout 2".into(), "1".into(), true),
            ],
            "the app's rows hold what the copies held: what Salesforce set, and the app's change"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_times_out_after_salesforce_applied_it_is_not_duplicated_without_an_upsert_key(
) {
    timed_out_after_salesforce_applied_it(false, false).await;
}

/// As above, and the read path stored the records as rows of their own before the writer found
/// out: the writer still adopts them (its own user created them since the send) and the copies
/// give way to the app's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_create_the_read_path_stored_meanwhile_is_adopted_not_sent_again() {
    timed_out_after_salesforce_applied_it(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_times_out_after_salesforce_applied_it_is_not_duplicated_with_an_upsert_key()
{
    timed_out_after_salesforce_applied_it(true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_on_a_generated_model_returns_the_sfid_or_salesforces_error() {
    use diesel::prelude::*;
    use sync_runtime::engine::writer::through::{ThroughError, WriteThrough};

    let env = Harness::start_empty().await;
    let mut db = env.pg().await;
    // A model built by the app (here from JSON, as an API handler would), not yet stored.
    let new: account::Account =
        serde_json::from_value(json!({"id": 0, "name": "Model Through Co", "phone": "42"}))
            .unwrap();
    let sfid = new
        .write_through(&env.client(), &mut db)
        .await
        .expect("created");
    let found = env
        .records("Account", "Name, Phone", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(
        (&found[0]["Name"], &found[0]["Phone"]),
        (&json!("Model Through Co"), &json!("42"))
    );

    // The stored row, read back through Diesel, changed and written through again.
    let mut conn = env.db.conn();
    let mut stored: account::Account = account::account::table
        .filter(account::account::sfid.eq(&sfid))
        .select(account::Account::as_select())
        .first(&mut conn)
        .expect("the row is stored with its sfid");
    assert_eq!(stored.hc_lastop.as_deref(), Some("INSERTED"));
    let history: Vec<(String, String, String)> = db
        .query(
            "SELECT state, action, sf_message FROM salesforce._trigger_log_archive
             WHERE table_name = 'account' AND record_id = $1 AND sfid = $2",
            &[&stored.id, &sfid],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        history,
        vec![(
            "SUCCESS".to_owned(),
            "INSERT".to_owned(),
            "written through".to_owned()
        )],
        "the write's history is archived as the writer's is"
    );
    stored.phone = Some("43".to_owned());
    assert_eq!(
        stored
            .write_through(&env.client(), &mut db)
            .await
            .expect("updated"),
        sfid
    );
    let found = env
        .records("Account", "Phone", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Phone"], "43");
    let (_, lastop, _) = row(&db, "account", stored.id).await;
    assert_eq!(lastop.as_deref(), Some("UPDATED"));

    // Salesforce refuses: its error comes back, Postgres keeps what it had.
    env.control_ok(
        reqwest::Method::POST,
        "validation-rules",
        Some(json!({"object": "Account", "field": "Name", "op": "equals",
                    "value": "Refused Co", "message": "not that name"})),
    )
    .await;
    let mut refused = stored.clone();
    refused.name = Some("Refused Co".to_owned());
    match refused.write_through(&env.client(), &mut db).await {
        Err(ThroughError::Salesforce(e)) => {
            assert_eq!(e.code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
            assert!(e.message.contains("not that name"), "{e}");
        }
        other => panic!("expected Salesforce's validation error, got {other:?}"),
    }
    let name: Option<String> = db
        .query_one(
            "SELECT name FROM salesforce.account WHERE id = $1",
            &[&stored.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(name.as_deref(), Some("Model Through Co"));

    // Nothing was captured: the writer has nothing to send again.
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    let report = writer.drain(DRAIN).await.unwrap();
    assert_eq!((report.claimed, report.sent), (0, 0), "{report:?}");
    let created = env
        .records("Account", "Name", "Name = 'Model Through Co'")
        .await;
    assert_eq!(created.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_send_a_mapping_only_from_the_one_holding_it() {
    use sync_runtime::salesforce::CallKind;

    let h = Harness::start().await;
    let app = h.pg().await;
    let one = syncing(&h, &["Account"], writer_config()).await;
    let two = syncing(&h, &["Account"], writer_config()).await;
    eventually(DRAIN, "one instance holds Account", || async {
        one.engine.held.contains("Account") || two.engine.held.contains("Account")
    })
    .await;
    let (holder, other) = if one.engine.held.contains("Account") {
        (one, two)
    } else {
        (two, one)
    };
    assert!(!other.engine.held.contains("Account"));
    let synced = |names: &'static str, n: i64| {
        let app = &app;
        move || async move {
            app.query_one(
                "SELECT count(*) FROM salesforce.account WHERE name LIKE $1 AND sfid IS NOT NULL",
                &[&names],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
                == n
        }
    };
    for i in 0..10 {
        insert_account(&app, &format!("Held A{i}")).await;
    }
    eventually(DRAIN, "the holder sends every row", synced("Held A%", 10)).await;
    let collections = |s: &Syncing| s.engine.client.call_counts().get(CallKind::Collections);
    assert!(collections(&holder) > 0);
    assert_eq!(collections(&other), 0, "the other instance sent nothing");

    // The holder stops; the other takes the mapping over and sends from then on.
    holder.running.stop().await;
    eventually(DRAIN, "the other instance takes Account over", || async {
        other.engine.held.contains("Account")
    })
    .await;
    for i in 0..10 {
        insert_account(&app, &format!("Held B{i}")).await;
    }
    eventually(
        DRAIN,
        "the new holder sends every row",
        synced("Held B%", 10),
    )
    .await;
    assert!(collections(&other) > 0);
    other.running.stop().await;
    let sf = h.client();
    let created = sf
        .query("SELECT Id FROM Account WHERE Name LIKE 'Held %'")
        .await
        .unwrap()
        .records;
    assert_eq!(created.len(), 20, "every row sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_error_says_what_postgres_said() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    app.execute(
        "INSERT INTO salesforce.account (name, sfid) VALUES ('One', '001000000000001AAA')",
        &[],
    )
    .await
    .unwrap();
    let e = app
        .execute(
            "INSERT INTO salesforce.account (name, sfid) VALUES ('Two', '001000000000001AAA')",
            &[],
        )
        .await
        .unwrap_err();
    let text = sync_runtime::engine::writer::WriteError::from(e).to_string();
    assert!(
        text.starts_with(
            "Postgres: db error: ERROR: duplicate key value violates unique constraint"
        ) && text.contains("(001000000000001AAA) already exists"),
        "{text}"
    );
}

/// Entries written into `_trigger_log` by hand that name no row, an action the trigger never
/// writes, or values that are not Heroku Connect's hstore text, are archived `FAILED` with the
/// reason; they do not stay `NEW` for ever, and the writes around them go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_log_entries_that_cannot_be_sent_fail_visibly_and_block_nothing() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    app.batch_execute(
        "INSERT INTO salesforce._trigger_log (txid, state, action, table_name, record_id, \"values\")
         VALUES (txid_current(), 'NEW', 'INSERT', 'account', NULL, NULL),
                (txid_current(), 'NEW', 'MERGE', 'account', 999999, NULL),
                (txid_current(), 'NEW', 'UPDATE', 'account', 999998, '{\"name\": \"JSON, not hstore\"}')",
    )
    .await
    .unwrap();
    let id = insert_account(&app, "Beside Hand Written").await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    writer.drain(DRAIN).await.unwrap();

    let (sfid, lastop, _) = row(&app, "account", id).await;
    assert!(sfid.is_some(), "the ordinary insert is sent");
    assert_eq!(lastop.as_deref(), Some("INSERTED"));
    let pending: i64 = app
        .query_one("SELECT count(*) FROM salesforce._trigger_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, 0, "nothing is left in the log");
    let failed: Vec<(String, String)> = app
        .query(
            "SELECT action, sf_message FROM salesforce._trigger_log_archive
             WHERE state = 'FAILED' ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed[0].1.contains("names no row"), "{failed:?}");
    assert!(
        failed[1].0 == "MERGE" && failed[1].1.contains("unknown action \"MERGE\""),
        "{failed:?}"
    );
    assert!(
        failed[2]
            .1
            .contains("values are not hstore text: expected `=>` at byte"),
        "values that are not Heroku Connect's format say so: {failed:?}"
    );
}

/// The read path can store a record the writer has just created (an initial load or a poll that
/// read it) before the writer writes Salesforce's answer back: the app's row keeps the record,
/// the copy gives way, and the writer goes on instead of failing on the unique `sfid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_record_the_read_path_stored_first_ends_on_the_apps_row() {
    use sync_runtime::engine::writer::store::{Settle, Store};

    let env = Harness::start_empty().await;
    let mut app = env.pg().await;
    let mine = insert_account(&app, "Raced Co").await;
    let other = insert_account(&app, "Other Co").await;
    let sfid = "001EM00000RACEDAAA";
    // What an engine-mode insert by the read path leaves: the record's own row, not logged.
    app.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on';
         INSERT INTO salesforce.account (name, sfid) VALUES ('Raced Co', '{sfid}');
         COMMIT"
    ))
    .await
    .unwrap();
    let settle = |record_id: i32, sfid: &str| Settle {
        table: "account".to_owned(),
        record_id,
        entry_ids: vec![],
        state: "SUCCESS",
        sfid: Some(sfid.to_owned()),
        lastop: Some("INSERTED"),
        hc_err: None,
        message: None,
        created: true,
    };
    let tx = app.transaction().await.unwrap();
    Store::new("salesforce")
        .settle(
            &tx,
            &account::MAPPING,
            &[settle(mine, sfid), settle(other, "001EM00000OTHERAAA")],
            &[],
        )
        .await
        .expect("the write-back succeeds");
    tx.commit().await.unwrap();

    let rows: Vec<(i32, Option<String>, Option<String>)> = app
        .query(
            "SELECT id, sfid, _hc_lastop FROM salesforce.account ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (mine, Some(sfid.to_owned()), Some("INSERTED".to_owned())),
            (
                other,
                Some("001EM00000OTHERAAA".to_owned()),
                Some("INSERTED".to_owned())
            ),
        ],
        "the copy is gone and both rows hold their records"
    );
    let logged: i64 = app
        .query_one(
            "SELECT count(*) FROM salesforce._trigger_log WHERE action = 'DELETE'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(logged, 0, "removing the copy is not a change to send");
}

/// Runs `sql` as the sync engine does (not captured): a row the app holds without a pending
/// entry, as after a write that was never captured.
async fn engine_write(db: &tokio_postgres::Client, sql: &str) {
    db.batch_execute(&format!(
        "BEGIN; SET LOCAL forcesync.engine = 'on'; {sql}; COMMIT"
    ))
    .await
    .expect(sql);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_values_captured_as_hstore_text_reach_salesforce_unchanged() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    let names = [
        "O\"Brien",
        "back\\slash\\",
        "a=>b",
        "one, two",
        "Zoë · 東京 · 🚀",
        "NULL",
        "\\\"=>\"\\",
    ];
    let descriptions = [
        "line one\nline two\n\tindented",
        "\"quoted\" and \\escaped\\",
        "key=>value, other=>NULL",
    ];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let description = descriptions[i % descriptions.len()];
        let id: i32 = app
            .query_one(
                "INSERT INTO salesforce.account (name, description, phone) VALUES ($1, $2, '1')
                 RETURNING id",
                &[name, &description],
            )
            .await
            .unwrap()
            .get(0);
        ids.push(id);
    }
    writer.drain(DRAIN).await.expect("drain");
    let mut sfids = Vec::new();
    for (i, (id, name)) in ids.iter().zip(names).enumerate() {
        let (sfid, lastop, err) = row(&app, "account", *id).await;
        let sfid = sfid.unwrap_or_else(|| panic!("{name:?} was not created: {err:?}"));
        assert_eq!(lastop.as_deref(), Some("INSERTED"));
        let found = env
            .records(
                "Account",
                "Name, Description, Phone",
                &format!("Id = '{sfid}'"),
            )
            .await;
        assert_eq!(found[0]["Name"], name);
        assert_eq!(
            found[0]["Description"],
            descriptions[i % descriptions.len()]
        );
        assert_eq!(found[0]["Phone"], "1");
        sfids.push(sfid);
    }

    // Updates: awkward values again, and a field cleared (NULL in the hstore text).
    for (id, name) in ids.iter().zip(names) {
        app.execute(
            "UPDATE salesforce.account SET description = $2 || E'\\n' || $2, phone = NULL
             WHERE id = $1",
            &[id, &name],
        )
        .await
        .unwrap();
    }
    writer.drain(DRAIN).await.expect("drain");
    for (sfid, name) in sfids.iter().zip(names) {
        let found = env
            .records(
                "Account",
                "Name, Description, Phone",
                &format!("Id = '{sfid}'"),
            )
            .await;
        assert_eq!(found[0]["Description"], format!("{name}\n{name}"));
        assert_eq!(
            found[0]["Phone"],
            Value::Null,
            "the cleared field is cleared"
        );
        assert_eq!(found[0]["Name"], name, "an unchanged field is left alone");
    }
    assert_eq!(archived(&app, "SUCCESS").await, 2 * names.len() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heroku_connects_capture_functions_enqueue_writes_that_reach_salesforce() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    engine_write(
        &app,
        "INSERT INTO salesforce.account (name, phone, website)
         VALUES ('Captured Again Co', '100', 'https://before.example.com')",
    )
    .await;
    let id: i32 = app
        .query_one(
            "SELECT id FROM salesforce.account WHERE name = 'Captured Again Co'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    writer.drain(DRAIN).await.expect("drain");
    assert_eq!(
        row(&app, "account", id).await.0,
        None,
        "nothing was captured"
    );

    // As Heroku Connect's libraries re-queue a row: hstore(t.*), the table, the columns.
    let entry: Option<i32> = app
        .query_one(
            "SELECT salesforce.hc_capture_insert_from_row(hstore(a.*), 'account')
             FROM salesforce.account a WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(entry.is_some(), "the new entry's id");
    writer.drain(DRAIN).await.expect("drain");
    let (sfid, lastop, err) = row(&app, "account", id).await;
    let sfid = sfid.unwrap_or_else(|| panic!("created: {err:?}"));
    assert_eq!(lastop.as_deref(), Some("INSERTED"));
    let found = env
        .records("Account", "Name, Phone, Website", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(
        (&found[0]["Name"], &found[0]["Phone"]),
        (&json!("Captured Again Co"), &json!("100"))
    );

    // Two columns change without capture; only the included one is sent.
    engine_write(
        &app,
        &format!(
            "UPDATE salesforce.account SET phone = '200', website = 'https://after.example.com'
             WHERE id = {id}"
        ),
    )
    .await;
    let entry: Option<i32> = app
        .query_one(
            "SELECT salesforce.hc_capture_update_from_row(hstore(a.*), 'account', ARRAY['phone'])
             FROM salesforce.account a WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(entry.is_some());
    writer.drain(DRAIN).await.expect("drain");
    let found = env
        .records("Account", "Phone, Website", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Phone"], "200");
    assert_eq!(
        found[0]["Website"], "https://before.example.com",
        "only the included columns are sent"
    );
    assert_eq!(row(&app, "account", id).await.1.as_deref(), Some("UPDATED"));
    assert_eq!(archived(&app, "SUCCESS").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_failed_entry_copied_back_as_new_is_sent_and_succeeds_once_fixed() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    env.control_ok(
        reqwest::Method::POST,
        "validation-rules",
        Some(
            json!({"object": "Account", "field": "Name", "op": "contains", "value": "test",
                    "message": "Test accounts are not allowed"}),
        ),
    )
    .await;
    let id = insert_account(&app, "a test \"quoted\" account").await;
    writer.drain(DRAIN).await.expect("drain");
    assert_eq!(row(&app, "account", id).await.1.as_deref(), Some("FAILED"));
    assert_eq!(archived(&app, "FAILED").await, 1);

    // The cause is fixed in Salesforce; the app (as Heroku Connect's libraries do) copies the
    // archived entry back into the log as NEW, keeping its id.
    env.control_ok(reqwest::Method::DELETE, "validation-rules", None)
        .await;
    let copied = app
        .execute(
            "INSERT INTO salesforce._trigger_log
                 (id, txid, created_at, updated_at, state, action, table_name, record_id, sfid, old, \"values\")
             SELECT id, txid, created_at, now(), 'NEW', action, table_name, record_id, sfid, old, \"values\"
             FROM salesforce._trigger_log_archive WHERE state = 'FAILED'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(copied, 1);
    writer.drain(DRAIN).await.expect("drain");
    let (sfid, lastop, err) = row(&app, "account", id).await;
    let sfid = sfid.expect("created once the cause is fixed");
    assert_eq!((lastop.as_deref(), err), (Some("INSERTED"), None));
    let found = env
        .records("Account", "Name", &format!("Id = '{sfid}'"))
        .await;
    assert_eq!(found[0]["Name"], "a test \"quoted\" account");
    assert_eq!(archived(&app, "FAILED").await, 0);
    assert_eq!(
        archived(&app, "SUCCESS").await,
        1,
        "the entry's archive row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readonly_entries_are_never_sent_and_requeue_marks_in_the_archive_are_left_alone() {
    let env = Harness::start_empty().await;
    let app = env.pg().await;
    let mut writer = env.writer(&[&account::MAPPING], writer_config()).await;
    engine_write(
        &app,
        "INSERT INTO salesforce.account (name) VALUES ('Read Only Entry Co')",
    )
    .await;
    app.batch_execute(
        "INSERT INTO salesforce._trigger_log (txid, state, action, table_name, record_id, \"values\")
         SELECT txid_current(), 'READONLY', 'INSERT', 'account', a.id,
                (hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'])::text
         FROM salesforce.account a;
         INSERT INTO salesforce._trigger_log_archive
             (id, created_at, updated_at, processed_at, state, action, table_name, record_id, \"values\")
         SELECT 100000 + n, now() - interval '90 days', now() - interval '90 days', now() - interval '90 days',
                s, 'INSERT', 'account', a.id, (hstore(a.*) - ARRAY['_hc_lastop', '_hc_err'])::text
         FROM salesforce.account a, (VALUES (1, 'REQUEUE'), (2, 'REQUEUED')) AS v(n, s);",
    )
    .await
    .unwrap();
    writer.drain(DRAIN).await.expect("drain");
    writer.housekeeping().await.expect("housekeeping");
    assert!(env
        .records("Account", "Name", "Name = 'Read Only Entry Co'")
        .await
        .is_empty());
    let log: Vec<String> = app
        .query("SELECT state FROM salesforce._trigger_log", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(log, ["READONLY"], "the entry stays as it was");
    let requeue: Vec<String> = app
        .query(
            "SELECT state FROM salesforce._trigger_log_archive WHERE id > 100000 ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        requeue,
        ["REQUEUE", "REQUEUED"],
        "left as they are, even past the archive's retention"
    );
}

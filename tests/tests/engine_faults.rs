//! The read half under Salesforce's harsher behaviours and injected faults (the emulator's control
//! plane): gap and overflow events, lost replay positions, expired sessions, 503 storms, duplicated
//! and reordered events, budgets, ties on SystemModstamp, changes during the initial load. The
//! streaming scenarios run over both transports (`name::cometd`, `name::pubsub`).

use std::time::Duration;

use forcesync_tests::engine::{eventually, Harness};
use forcesync_tests::over_both_transports;
use serde_json::json;
use sync_runtime::engine::hub::Transport;
use sync_runtime::engine::{self, state::SyncState, EngineConfig};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(30);

async fn text(pg: &tokio_postgres::Client, sql: &str, sfid: &str) -> Option<String> {
    pg.query_opt(sql, &[&sfid])
        .await
        .unwrap()
        .and_then(|row| row.get(0))
}

async fn phone(pg: &tokio_postgres::Client, sfid: &str) -> Option<String> {
    text(
        pg,
        "SELECT phone FROM salesforce.account WHERE sfid = $1",
        sfid,
    )
    .await
}

fn accounts_only(h: &Harness) -> EngineConfig {
    accounts_over(h, Transport::Cometd)
}

/// The Account mapping alone, streaming over `transport`.
fn accounts_over(h: &Harness, transport: Transport) -> EngineConfig {
    h.engine_config_over(&["Account"], transport)
}

async fn state_of(
    pg: &tokio_postgres::Client,
    object: &str,
) -> Option<(SyncState, Option<String>)> {
    engine::state::StateStore::new("salesforce")
        .get(pg, object)
        .await
        .ok()
        .flatten()
        .map(|s| (s.state, s.message))
}

async fn wait_streaming(pg: &tokio_postgres::Client) {
    eventually(WAIT, "Account streams", || async {
        state_of(pg, "Account")
            .await
            .is_some_and(|(s, _)| s == SyncState::Streaming)
    })
    .await;
}

/// Forgets every CometD client and ends every Pub/Sub subscription with `UNAVAILABLE`.
async fn drop_streams(h: &Harness) {
    h.control(reqwest::Method::POST, "faults/streaming/drop", json!({}))
        .await;
}

async fn records_read(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one(
        "SELECT records_read FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

async fn some_account(h: &Harness) -> String {
    h.query("SELECT Id FROM Account WHERE Type != 'Competitor' ORDER BY Name LIMIT 1")
        .await[0]["Id"]
        .as_str()
        .unwrap()
        .to_owned()
}

over_both_transports!(
    gap_events_and_overflow_are_repaired_by_reading_salesforce,
    a_replay_id_past_retention_recovers_by_catching_up,
    expired_sessions_503_storms_and_dropped_clients_lose_nothing,
    duplicated_and_reordered_events_end_with_the_latest_state,
);

/// Bursts of creates with the Pub/Sub stream ended by `UNAVAILABLE` between them, while events are
/// owed: every record arrives, once, and the engine applies each change once (its `records_read`
/// grows by exactly the changes made: nothing was delivered again after a reconnect, and the
/// mapping never fell back to polling, which would read records again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_unavailable_mid_stream_loses_nothing_and_applies_nothing_twice() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 100;
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_over(&h, Transport::PubSub));
    // Subscribed after the load and its catch-up poll: the counters move only with streaming.
    eventually(WAIT, "Account is subscribed", || async {
        engine::state::StateStore::new("salesforce")
            .get(&pg, "Account")
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s.state == SyncState::Streaming && s.streaming_transport.is_some())
    })
    .await;
    let count = |sql: &'static str| {
        let pg = &pg;
        async move { pg.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let all_before = count("SELECT count(*) FROM salesforce.account").await;
    let read_before = records_read(&pg).await;
    for round in 0..ROUNDS {
        let records: Vec<serde_json::Value> = (0..PER_ROUND)
            .map(|i| json!({"Name": format!("Dropped mid-burst {round}-{i}")}))
            .collect();
        h.create_many("Account", &records).await;
        drop_streams(&h).await;
    }
    let expected = (ROUNDS * PER_ROUND) as i64;
    eventually(WAIT, "every record of the bursts arrives", || async {
        count("SELECT count(*) FROM salesforce.account WHERE name LIKE 'Dropped mid-burst %'").await
            == expected
    })
    .await;
    // Time for anything delivered again after a reconnect to be (wrongly) applied.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count("SELECT count(*) FROM salesforce.account").await,
        all_before + expected,
        "no record twice"
    );
    assert_eq!(
        records_read(&pg).await - read_before,
        expected,
        "each change applied once"
    );
    running.stop().await;
}

async fn gap_events_and_overflow_are_repaired_by_reading_salesforce(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_over(&h, transport));
    wait_streaming(&pg).await;

    // A gap event stands for a change whose fields we never see: the engine re-reads the record.
    let id = some_account(&h).await;
    h.faults(json!({"cdc_gap_next": 1})).await;
    h.update("Account", &id, json!({"Phone": "gap-repaired"}))
        .await;
    eventually(WAIT, "the gap is repaired", || async {
        phone(&pg, &id).await.as_deref() == Some("gap-repaired")
    })
    .await;

    // Overflow: after 2 changes of one transaction only GAP_OVERFLOW comes; the window is re-polled.
    h.clear_faults().await;
    h.faults(json!({"cdc_overflow_after": 2})).await;
    let ids: Vec<String> = h
        .query("SELECT Id FROM Account WHERE Type != 'Competitor' ORDER BY Id LIMIT 6")
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    h.update_many("Account", &ids, json!({"Phone": "overflow"}))
        .await;
    eventually(WAIT, "every record of the overflowing transaction", || async {
        let n: i64 = pg
            .query_one(
                "SELECT count(*) FROM salesforce.account WHERE sfid = ANY($1) AND phone = 'overflow'",
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

async fn a_replay_id_past_retention_recovers_by_catching_up(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_over(&h, transport));
    wait_streaming(&pg).await;
    let id = some_account(&h).await;
    h.update("Account", &id, json!({"Phone": "before"})).await;
    eventually(WAIT, "first change", || async {
        phone(&pg, &id).await.as_deref() == Some("before")
    })
    .await;
    running.stop().await;

    // While the engine is down, changes happen and the org forgets the events.
    h.update("Account", &id, json!({"Phone": "while-down"}))
        .await;
    h.faults(json!({"cdc_shrink_retention": 0})).await;
    h.clear_faults().await;

    let running = h.run(accounts_over(&h, transport));
    eventually(WAIT, "the change is caught up by polling", || async {
        phone(&pg, &id).await.as_deref() == Some("while-down")
    })
    .await;
    wait_streaming(&pg).await;
    h.update("Account", &id, json!({"Phone": "streaming-again"}))
        .await;
    eventually(WAIT, "streaming resumes", || async {
        phone(&pg, &id).await.as_deref() == Some("streaming-again")
    })
    .await;
    running.stop().await;
}

async fn expired_sessions_503_storms_and_dropped_clients_lose_nothing(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_over(&h, transport));
    wait_streaming(&pg).await;
    let id = some_account(&h).await;

    h.faults(json!({"expire_sessions": true})).await;
    h.clear_faults().await;
    h.update("Account", &id, json!({"Phone": "after-expiry"}))
        .await;
    eventually(WAIT, "a change after the session expired", || async {
        phone(&pg, &id).await.as_deref() == Some("after-expiry")
    })
    .await;

    drop_streams(&h).await;
    h.update("Account", &id, json!({"Phone": "after-drop"}))
        .await;
    eventually(WAIT, "a change after the client was dropped", || async {
        phone(&pg, &id).await.as_deref() == Some("after-drop")
    })
    .await;

    h.faults(json!({"share_503": 0.4, "seed": 7, "streaming_503_next": 3}))
        .await;
    h.update("Account", &id, json!({"Phone": "storm"})).await;
    let created = h.create("Account", json!({"Name": "Storm Co"})).await;
    h.clear_faults().await;
    eventually(WAIT, "changes made during a 503 storm", || async {
        phone(&pg, &id).await.as_deref() == Some("storm")
            && text(
                &pg,
                "SELECT name FROM salesforce.account WHERE sfid = $1",
                &created,
            )
            .await
            .is_some()
    })
    .await;
    running.stop().await;
}

async fn duplicated_and_reordered_events_end_with_the_latest_state(transport: Transport) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_over(&h, transport));
    wait_streaming(&pg).await;
    let id = some_account(&h).await;
    let rows: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);

    h.faults(json!({"cdc_reorder_next": 2})).await;
    h.update("Account", &id, json!({"Phone": "first"})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    h.update("Account", &id, json!({"Phone": "second"})).await;
    h.clear_faults().await;
    h.faults(json!({"cdc_duplicate_next": 1})).await;
    let created = h
        .create("Account", json!({"Name": "Twice Published"}))
        .await;
    h.clear_faults().await;
    eventually(WAIT, "the created record arrives", || async {
        text(
            &pg,
            "SELECT name FROM salesforce.account WHERE sfid = $1",
            &created,
        )
        .await
        .is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phone(&pg, &id).await.as_deref(),
        Some("second"),
        "an older event never overwrites a newer state"
    );
    let after: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, rows + 1, "a duplicated event creates nothing twice");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_records_sharing_one_systemmodstamp_across_a_page_boundary_all_arrive() {
    let h = Harness::start().await;
    let mut config = h.engine_config();
    config.poll_page = 5;
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Opportunity", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let ids: Vec<String> = h
        .query("SELECT Id FROM Opportunity ORDER BY Id LIMIT 23")
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 23);
    h.update_many("Opportunity", &ids, json!({"NextStep": "same stamp"}))
        .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    let pg = h.pg().await;
    let n: i64 = pg
        .query_one(
            "SELECT count(*) FROM salesforce.opportunity WHERE sfid = ANY($1) AND nextstep = 'same stamp'",
            &[&ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 23);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_during_the_initial_load_is_not_lost() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = accounts_only(&h);
    config.bulk_threshold = 0;
    // The Bulk job takes a while: changes land while the engine is loading.
    h.faults(json!({"bulk_slow_ms": 1500})).await;
    let running = h.run(config);
    eventually(WAIT, "the load starts", || async {
        state_of(&pg, "Account")
            .await
            .is_some_and(|(s, _)| s == SyncState::Loading)
    })
    .await;
    let id = some_account(&h).await;
    h.update("Account", &id, json!({"Phone": "during-load"}))
        .await;
    let created = h
        .create("Account", json!({"Name": "Created During Load"}))
        .await;
    wait_streaming(&pg).await;
    h.clear_faults().await;
    eventually(WAIT, "both changes are in Postgres", || async {
        phone(&pg, &id).await.as_deref() == Some("during-load")
            && text(
                &pg,
                "SELECT name FROM salesforce.account WHERE sfid = $1",
                &created,
            )
            .await
            .is_some()
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_stops_the_mapping_visibly_and_it_resumes_when_budget_returns() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut starved = h.salesforce();
    starved.org_reserve = u64::MAX;
    let running = h.run_with(accounts_only(&h), starved);
    eventually(WAIT, "the mapping says its budget is exhausted", || async {
        state_of(&pg, "Account")
            .await
            .is_some_and(|(s, m)| s == SyncState::BudgetExhausted && m.is_some())
    })
    .await;
    running.stop().await;
    let rows: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);

    let running = h.run(accounts_only(&h));
    wait_streaming(&pg).await;
    let rows: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 0, "the load ran once the budget returned");
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeleted_account_comes_back() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_only(&h));
    wait_streaming(&pg).await;
    let id = h
        .create("Account", json!({"Name": "Lazarus", "Phone": "42"}))
        .await;
    eventually(WAIT, "created", || async {
        phone(&pg, &id).await.is_some()
    })
    .await;
    h.delete("Account", &id).await;
    eventually(WAIT, "deleted", || async {
        text(
            &pg,
            "SELECT sfid FROM salesforce.account WHERE sfid = $1",
            &id,
        )
        .await
        .is_none()
    })
    .await;
    h.undelete(&id).await;
    eventually(WAIT, "undeleted", || async {
        phone(&pg, &id).await.as_deref() == Some("42")
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapped_field_gone_from_salesforce_stops_only_its_mapping_and_names_the_fix() {
    // An org whose Account lost the `Rating` field the mapping syncs.
    let (h, _describe) = Harness::start_edited("Account", |describe| {
        describe["fields"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "Rating");
    })
    .await;
    let pg = h.pg().await;
    let mut config = h.engine_config();
    config.only = vec!["Account".into(), "Contact".into()];
    let running = h.run(config);
    eventually(WAIT, "Account reports SCHEMA_CHANGED", || async {
        state_of(&pg, "Account").await.is_some_and(|(s, m)| {
            s == SyncState::SchemaChanged
                && m.is_some_and(|m| m.contains("forcesync describe pull"))
        })
    })
    .await;
    eventually(WAIT, "Contact keeps syncing", || async {
        state_of(&pg, "Contact")
            .await
            .is_some_and(|(s, _)| s == SyncState::Streaming)
    })
    .await;
    let (_, message) = state_of(&pg, "Account").await.unwrap();
    assert!(
        message.unwrap().contains("Rating"),
        "the message names the field"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_without_change_events_are_found_through_deleted_and_a_full_id_reconciliation() {
    let h = Harness::start().await;
    let mut config = h.engine_config();
    config.bulk_threshold = u64::MAX;
    h.engine(config.clone()).migrate().await.unwrap();
    let ctx = h.ctx("Account", config);
    engine::driver::load(&ctx, false).await.unwrap();
    let pg = h.pg().await;
    let ids: Vec<String> = h
        .query("SELECT Id FROM Account WHERE Type != 'Competitor' ORDER BY Id LIMIT 2")
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();

    // A data fix deletes a record without a change event and the recycle bin is purged:
    // queryAll no longer shows it, `/deleted` still does.
    h.control(
        reqwest::Method::POST,
        "data/delete",
        json!({"ids": [ids[0]]}),
    )
    .await;
    h.control(reqwest::Method::POST, "recycle-bin/purge", json!({}))
        .await;
    engine::poll::poll_once(&ctx, None).await.unwrap();
    // `/deleted` covers whole minutes only: the delete shows once its minute is over.
    let into_minute = chrono::Utc::now().timestamp_millis().rem_euclid(60_000) as u64;
    tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 500)).await;
    engine::deletes::reconcile_deleted(&ctx).await.unwrap();
    assert!(
        text(
            &pg,
            "SELECT sfid FROM salesforce.account WHERE sfid = $1",
            &ids[0]
        )
        .await
        .is_none(),
        "the purged delete came from /deleted"
    );

    // Deletes older than /deleted's 15-day window: a full Id reconciliation finds them.
    h.control(
        reqwest::Method::POST,
        "data/delete",
        json!({"ids": [ids[1]]}),
    )
    .await;
    h.control(reqwest::Method::POST, "recycle-bin/purge", json!({}))
        .await;
    pg.execute(
        "UPDATE salesforce._forcesync_mapping_state SET deleted_checked_until = now() - interval '20 days' WHERE mapping = 'Account'",
        &[],
    )
    .await
    .unwrap();
    let removed = engine::deletes::reconcile_deleted(&ctx).await.unwrap();
    assert_eq!(removed, 1);
    assert!(text(
        &pg,
        "SELECT sfid FROM salesforce.account WHERE sfid = $1",
        &ids[1]
    )
    .await
    .is_none());
    let reconciled: bool = pg
        .query_one(
            "SELECT full_reconcile_at IS NOT NULL FROM salesforce._forcesync_mapping_state WHERE mapping = 'Account'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reconciled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mapping_stopped_by_a_missing_field_resumes_by_itself_when_the_field_is_back() {
    let (h, _describe) = Harness::start_edited("Account", |describe| {
        describe["fields"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "Rating");
    })
    .await;
    let pg = h.pg().await;
    let mut config = accounts_only(&h);
    config.schema_retry = Duration::from_millis(300);
    let running = h.run(config);
    eventually(WAIT, "Account reports SCHEMA_CHANGED", || async {
        state_of(&pg, "Account")
            .await
            .is_some_and(|(s, _)| s == SyncState::SchemaChanged)
    })
    .await;

    // An admin restores the field; nobody touches forcesync.
    let h = h
        .with_org_restarted(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../mappings/describe"
        )))
        .await;
    wait_streaming(&pg).await;
    let loaded: i64 = pg
        .query_one("SELECT count(*) FROM salesforce.account", &[])
        .await
        .unwrap()
        .get(0);
    assert!(loaded > 0, "the load ran once the field was back");
    let (_, message) = state_of(&pg, "Account").await.unwrap();
    assert!(message.is_none(), "{message:?}");
    // And it follows Salesforce again, the restored field included.
    let id = some_account(&h).await;
    h.update("Account", &id, json!({"Rating": "Hot", "Phone": "back"}))
        .await;
    eventually(WAIT, "the change arrives", || async {
        text(
            &pg,
            "SELECT rating FROM salesforce.account WHERE sfid = $1 AND phone = 'back'",
            &id,
        )
        .await
        .as_deref()
            == Some("Hot")
    })
    .await;
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_streamed_during_a_reload_are_never_undone_and_none_is_lost() {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let running = h.run(accounts_only(&h));
    wait_streaming(&pg).await;
    let ids: Vec<String> = h
        .query("SELECT Id FROM Account WHERE Type != 'Competitor' ORDER BY Id LIMIT 12")
        .await
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    let (updated, to_delete) = (ids[0].clone(), ids[1..].to_vec());

    // The reload reads through a slow Bulk API: change events keep reaching the old table
    // between its snapshot and the swap.
    let api = generated::salesforce::REGISTRY.api_version;
    h.faults(json!({"latency_ms": 600, "paths": [format!("/services/data/v{api}/jobs/query")]}))
        .await;
    let mut config = accounts_only(&h);
    config.bulk_threshold = 0;
    let ctx = h.ctx("Account", config);
    let reload = tokio::spawn(async move { engine::driver::load(&ctx, true).await.unwrap() });

    // The app reads all along: what it has seen of those changes never goes back.
    let (done, finished) = watch::channel(false);
    let watcher = {
        let url = h.db.url.clone();
        let (updated, to_delete) = (updated.clone(), to_delete.clone());
        tokio::spawn(async move {
            let pg = engine::connect(&url).await.unwrap();
            let (mut phone, mut created, mut deleted) = (-1i64, 0i64, 0i64);
            let mut undone = Vec::new();
            while !*finished.borrow() {
                let now: i64 = pg
                    .query_one(
                        "SELECT coalesce(max(substr(phone, 8)::bigint), -1) FROM salesforce.account \
                         WHERE sfid = $1 AND phone LIKE 'during %'",
                        &[&updated],
                    )
                    .await
                    .unwrap()
                    .get(0);
                let made: i64 = pg
                    .query_one(
                        "SELECT count(*) FROM salesforce.account WHERE name LIKE 'Made during the reload %'",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                let present: i64 = pg
                    .query_one(
                        "SELECT count(*) FROM salesforce.account WHERE sfid = ANY($1)",
                        &[&to_delete],
                    )
                    .await
                    .unwrap()
                    .get(0);
                let gone = to_delete.len() as i64 - present;
                if now < phone || made < created || gone < deleted {
                    undone.push(format!(
                        "phone {phone} -> {now}, created {created} -> {made}, deleted {deleted} -> {gone}"
                    ));
                }
                (phone, created, deleted) = (now, made, gone);
            }
            undone
        })
    };
    let mut i = 0;
    while !reload.is_finished() && i < to_delete.len() {
        h.update(
            "Account",
            &updated,
            json!({ "Phone": format!("during {i}") }),
        )
        .await;
        h.create(
            "Account",
            json!({"Name": format!("Made during the reload {i}"), "Type": "Customer"}),
        )
        .await;
        h.delete("Account", &to_delete[i]).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let report = reload.await.unwrap();
    assert!(report.bulk);
    assert!(i >= 2, "changes were made while the reload ran ({i})");
    h.clear_faults().await;

    // Everything made meanwhile is there in the end.
    let last = format!("during {}", i - 1);
    eventually(WAIT, "every change made during the reload is applied", || async {
        let made: i64 = pg
            .query_one(
                "SELECT count(*) FROM salesforce.account WHERE name LIKE 'Made during the reload %'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let left: i64 = pg
            .query_one(
                "SELECT count(*) FROM salesforce.account WHERE sfid = ANY($1)",
                &[&&to_delete[..i]],
            )
            .await
            .unwrap()
            .get(0);
        phone(&pg, &updated).await.as_deref() == Some(last.as_str())
            && made == i as i64
            && left == 0
    })
    .await;
    done.send(true).unwrap();
    let undone = watcher.await.unwrap();
    assert!(undone.is_empty(), "the app saw changes undone: {undone:?}");
    running.stop().await;
}

async fn account_oid(pg: &tokio_postgres::Client) -> u32 {
    pg.query_one("SELECT 'salesforce.account'::regclass::oid", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_initial_load_killed_midway_leaves_nothing_partial_and_the_restarted_load_swaps_in_the_whole_table(
) {
    let h = Harness::start().await;
    let pg = h.pg().await;
    let mut config = accounts_only(&h);
    config.bulk_threshold = 0;
    h.engine(config.clone()).migrate().await.unwrap();
    // What the app and its operator set up on the table before the first load.
    pg.batch_execute(
        "GRANT SELECT ON salesforce.account TO PUBLIC; \
         COMMENT ON TABLE salesforce.account IS 'Accounts, synced by forcesync'; \
         COMMENT ON COLUMN salesforce.account.name IS 'the name'; \
         CREATE INDEX app_idx_account_lower_name ON salesforce.account (lower(name))",
    )
    .await
    .unwrap();
    let local: i32 = pg
        .query_one(
            "INSERT INTO salesforce.account (name) VALUES ('Only in Postgres') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let catalog = "SELECT concat_ws(' | ', \
           (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
            WHERE schemaname = 'salesforce' AND tablename = 'account'), \
           (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger \
            WHERE tgrelid = 'salesforce.account'::regclass AND NOT tgisinternal), \
           obj_description('salesforce.account'::regclass, 'pg_class'), \
           (SELECT col_description('salesforce.account'::regclass, attnum) FROM pg_attribute \
            WHERE attrelid = 'salesforce.account'::regclass AND attname = 'name'), \
           has_table_privilege('public', 'salesforce.account', 'SELECT')::text)";
    let before: String = pg.query_one(catalog, &[]).await.unwrap().get(0);
    assert!(before.contains("app_idx_account_lower_name"), "{before}");
    let oid_before = account_oid(&pg).await;
    // (The writer may send the app's row meanwhile: it is not the load's.)
    let synced = "SELECT count(*) FROM salesforce.account \
                  WHERE sfid IS NOT NULL AND name IS DISTINCT FROM 'Only in Postgres'";

    // The first run is killed while it loads (a slow Bulk job).
    h.faults(json!({"bulk_slow_ms": 1500})).await;
    let running = h.run(config.clone());
    eventually(WAIT, "the load starts", || async {
        state_of(&pg, "Account")
            .await
            .is_some_and(|(s, _)| s == SyncState::Loading)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.kill();
    let count = |sql: &'static str| {
        let pg = &pg;
        async move {
            let n: i64 = pg.query_one(sql, &[]).await.unwrap().get(0);
            n
        }
    };
    assert_eq!(count(synced).await, 0, "no partial load is visible");
    // The killed load's transaction ends with its connection: no shadow table is left.
    eventually(WAIT, "the killed load's shadow table is gone", || async {
        count("SELECT count(*) FROM pg_class WHERE relname = 'account_reload'").await == 0
    })
    .await;
    assert_eq!(count(synced).await, 0, "no partial load is visible");
    h.clear_faults().await;

    let running = h.run(config);
    wait_streaming(&pg).await;
    let expected = h
        .query(
            "SELECT Id FROM Account WHERE IsDeleted = false AND Type != 'Competitor' \
             AND Name != 'Only in Postgres'",
        )
        .await
        .len() as i64;
    assert_eq!(count(synced).await, expected, "every record, once");
    assert_eq!(
        count(
            "SELECT count(DISTINCT sfid) FROM salesforce.account \
             WHERE name IS DISTINCT FROM 'Only in Postgres'"
        )
        .await,
        expected
    );
    assert_eq!(
        count("SELECT count(*) FROM salesforce.account WHERE sfid IS NOT NULL AND _hc_lastop IS DISTINCT FROM 'SYNCED'").await,
        0,
        "loaded rows are synced"
    );
    assert_ne!(
        account_oid(&pg).await,
        oid_before,
        "the table was swapped in"
    );
    let after: String = pg.query_one(catalog, &[]).await.unwrap().get(0);
    assert_eq!(
        after, before,
        "every index, trigger, comment and grant stays"
    );
    let kept: Option<String> = pg
        .query_opt(
            "SELECT name FROM salesforce.account WHERE id = $1",
            &[&local],
        )
        .await
        .unwrap()
        .map(|r| r.get(0));
    assert_eq!(
        kept.as_deref(),
        Some("Only in Postgres"),
        "the app's row keeps its id"
    );
    let next: i32 = pg
        .query_one(
            "INSERT INTO salesforce.account (name) VALUES ('After the load') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(next > local, "ids continue from the same sequence");
    let captured: i64 = pg
        .query_one(
            "SELECT count(*) FROM salesforce._trigger_log WHERE table_name = 'account' \
             AND action = 'INSERT' AND record_id = ANY($1)",
            &[&vec![local, next]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        captured, 2,
        "application writes are captured before and after"
    );
    running.stop().await;
}

//! Moving off Heroku Connect without a reload (issue 19), end to end: a database built as
//! Heroku Connect makes and fills it (`forcesync_tests::heroku_connect`, from the documented
//! layout), with what it leaves behind when paused (`NEW` inserts and updates, a `PENDING`
//! insert Salesforce already holds, archived `FAILED` entries, `READONLY` entries), an app
//! table with a foreign key to `salesforce.account(id)`, and records changed in Salesforce
//! since; then `forcesync adopt`, `forcesync run`, `forcesync verify`.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use forcesync_tests::engine::Harness;
use forcesync_tests::heroku_connect::{self, HcTable};
use forcesync_tests::pg::TestDb;
use serde_json::{json, Value};

const SETTINGS: [&str; 8] = [
    "SF_LOGIN_URL",
    "SF_CLIENT_ID",
    "SF_CLIENT_SECRET",
    "SF_USERNAME",
    "SF_PASSWORD",
    "SF_JWT_KEY_FILE",
    "SF_REFRESH_TOKEN",
    "DATABASE_URL",
];

fn forcesync(args: &[&str], env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_forcesync"));
    command.args(args);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command.env_remove("RUST_LOG");
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command
}

fn output(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = forcesync(args, env).output().expect("the binary runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn env_for(harness: &Harness, db: &TestDb) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", db.url.as_str()),
        ("SF_LOGIN_URL", harness.emulator.base_url.as_str()),
        ("SF_CLIENT_ID", "forcesync"),
        ("SF_CLIENT_SECRET", "forcesync"),
        ("SF_USERNAME", "admin@example.com"),
        ("SF_PASSWORD", "forcesync"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

/// The emulator's org Id, which Heroku Connect records in `_hcmeta.org_id`.
fn org_id(harness: &Harness) -> String {
    harness.emulator.org.org_id().to_string()
}

/// Every object of this repository's mappings, as Heroku Connect would hold it.
fn hc_tables() -> Vec<HcTable> {
    generated::salesforce::REGISTRY
        .mappings
        .iter()
        .map(|m| HcTable::like(m))
        .collect()
}

/// Builds the Heroku Connect database: layout, then every record the mapping selects, stored
/// as Heroku Connect's load stores them.
async fn heroku_connect_database(harness: &Harness, db: &TestDb, tables: &[HcTable]) {
    let mut pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    heroku_connect::create(&pg, "salesforce", &org_id(harness), tables)
        .await
        .unwrap();
    for mapping in generated::salesforce::REGISTRY.mappings {
        let fields: Vec<&str> = mapping.soql_fields().collect();
        let mut soql = format!("SELECT {} FROM {}", fields.join(", "), mapping.object);
        if let Some(filter) = mapping.filter {
            soql.push_str(&format!(" WHERE {filter}"));
        }
        let records = harness.query(&soql).await;
        heroku_connect::store_synced(&mut pg, "salesforce", mapping.table, &records)
            .await
            .unwrap();
    }
}

/// Every table's rows (as text, in id order) and the schema's definitions: equal fingerprints
/// mean nothing changed.
async fn fingerprint(pg: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for row in pg
        .query(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname IN ('salesforce', 'public') AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
    {
        let table: String = row.get(0);
        let rows: Option<String> = pg
            .query_one(
                &format!("SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        out.push(format!("{table}: {rows:?}"));
    }
    for query in [
        "SELECT p.proname || ' ' || pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'salesforce' ORDER BY 1",
        "SELECT pg_get_triggerdef(g.oid) FROM pg_trigger g WHERE NOT g.tgisinternal ORDER BY 1",
        "SELECT indexdef FROM pg_indexes WHERE schemaname IN ('salesforce', 'public') ORDER BY 1",
        "SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type FROM information_schema.columns WHERE table_schema IN ('salesforce', 'public') ORDER BY 1",
        "SELECT nspname::text FROM pg_namespace ORDER BY 1",
        "SELECT sequencename || ' ' || coalesce(last_value, 0) FROM pg_sequences ORDER BY 1",
    ] {
        for row in pg.query(query, &[]).await.unwrap() {
            out.push(row.get(0));
        }
    }
    out
}

fn status_json(env: &[(String, String)]) -> Vec<Value> {
    let (code, out, err) = output(&["status", "--json"], env);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("status --json is JSON ({e}): {out}"))
        .as_array()
        .cloned()
        .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(90) {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for: {what}");
}

async fn one<T: for<'a> tokio_postgres::types::FromSql<'a>>(
    pg: &tokio_postgres::Client,
    sql: &str,
) -> T {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heroku_connect_database_is_adopted_in_place_and_syncs_without_a_reload() {
    let harness = Harness::start().await;
    let db = TestDb::new();
    let env = env_for(&harness, &db);
    heroku_connect_database(&harness, &db, &hc_tables()).await;
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();

    // The app's own table, referencing Heroku Connect's ids.
    pg.batch_execute(
        "CREATE TABLE public.orders (id serial PRIMARY KEY,
                                     account_id integer NOT NULL REFERENCES salesforce.account (id),
                                     total numeric);
         INSERT INTO public.orders (account_id, total)
             SELECT id, 100 FROM salesforce.account ORDER BY id LIMIT 3;
         ALTER TABLE salesforce.account ADD COLUMN app_score integer;",
    )
    .await
    .unwrap();
    let accounts_before: Vec<(i32, String)> = pg
        .query("SELECT id, sfid FROM salesforce.account ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(accounts_before.len() >= 3, "the demo org has accounts");
    let (edited_id, edited_sfid) = accounts_before[0].clone();
    let (changed_id, changed_sfid) = accounts_before[1].clone();

    // What Heroku Connect left behind when it was paused. The app's writes (user sessions).
    pg.batch_execute(&format!(
        "INSERT INTO salesforce.account (name, industry) VALUES ('Adopted New Co', 'Energy');
         UPDATE salesforce.account SET phone = '+1 555 0101' WHERE id = {edited_id};
         INSERT INTO salesforce.account (name) VALUES ('Adopted Pending Co');
         UPDATE salesforce.opportunity SET nextstep = 'Call back' WHERE id = (SELECT min(id) FROM salesforce.opportunity);"
    ))
    .await
    .unwrap();
    // Heroku Connect had sent the second insert when it stopped: Salesforce holds the record,
    // the row has no sfid, the entry is PENDING.
    pg.batch_execute(
        "UPDATE salesforce._trigger_log SET state = 'PENDING', updated_at = now() - interval '1 hour'
         WHERE action = 'INSERT' AND \"values\"::hstore -> 'name' = 'Adopted Pending Co'",
    )
    .await
    .unwrap();
    let pending_sfid = harness
        .create("Account", json!({"Name": "Adopted Pending Co"}))
        .await;
    // A write Salesforce refused long ago, archived FAILED (processed over 10 minutes ago).
    pg.batch_execute(&format!(
        "INSERT INTO salesforce._trigger_log_archive
             (id, txid, created_at, updated_at, processed_at, state, action, table_name, record_id, sfid, old, \"values\", sf_message)
         VALUES (nextval('salesforce._trigger_log_id_seq'), 1, now() - interval '2 days', now() - interval '2 days',
                 now() - interval '2 days', 'FAILED', 'UPDATE', 'account', {changed_id}, '{changed_sfid}',
                 '\"name\"=>\"old\"', '\"rating\"=>\"Hot\"', 'FIELD_CUSTOM_VALIDATION_EXCEPTION: Rating is locked');"
    ))
    .await
    .unwrap();
    let states: Vec<(String, i64)> = pg
        .query(
            "SELECT state::text, count(*) FROM salesforce._trigger_log GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        states,
        [
            ("NEW".to_owned(), 2),
            ("PENDING".to_owned(), 1),
            ("READONLY".to_owned(), 1)
        ],
        "Heroku Connect's triggers captured the app's writes"
    );
    // Salesforce moves on after Heroku Connect's last poll.
    harness
        .update(
            "Account",
            &changed_sfid,
            json!({"Description": "changed after the pause"}),
        )
        .await;

    // The plan, changing nothing.
    let before = fingerprint(&pg).await;
    let (code, out, err) = output(&["adopt", "--dry-run"], &env);
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "Adoption plan for schema salesforce:",
        "Account (salesforce.account): found",
        "columns kept (not in the mapping): app_score",
        "defaults to set: _hc_lastop 'PENDING'::character varying",
        "triggers to replace: hc_account_logtrigger, hc_account_status_trigger",
        "functions to drop: hc_account_logger, hc_account_status",
        "trigger-log entries: 2 NEW, 1 PENDING",
        "archived FAILED entries: 1",
        "left as it is: salesforce._hcmeta",
        "left as it is: salesforce._sf_event_log",
        "Dry run: nothing was changed.",
    ] {
        assert!(out.contains(expected), "{expected}:\n{out}");
    }
    // forcesync's own triggers, the pending trigger among them (Heroku Connect has none).
    let created = out
        .lines()
        .find(|line| line.contains("triggers to create"))
        .unwrap_or_default();
    assert!(created.contains("hc_account_pending_trigger"), "{out}");
    assert_eq!(fingerprint(&pg).await, before, "--dry-run changes nothing");
    let (code, out, err) = output(&["adopt", "--dry-run", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["applied"], false);
    let account = plan["plan"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "account")
        .unwrap();
    assert_eq!(account["found"], true);
    assert_eq!(account["archived_failed"], 1);
    assert_eq!(fingerprint(&pg).await, before);

    // Adopt.
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Adopted schema salesforce in one transaction"),
        "{out}"
    );
    assert!(out.contains("1 create(s) to reconcile"), "{out}");
    let accounts_after: Vec<(i32, String)> = pg
        .query(
            "SELECT id, sfid FROM salesforce.account WHERE sfid IS NOT NULL ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(accounts_after, accounts_before, "every id is kept");
    let orders: i64 = one(
        &pg,
        "SELECT count(*) FROM public.orders o JOIN salesforce.account a ON a.id = o.account_id",
    )
    .await;
    assert_eq!(orders, 3, "the app's foreign key still holds");
    let fk: i64 = one(&pg, "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND confrelid = 'salesforce.account'::regclass").await;
    assert_eq!(fk, 1);
    let hc_functions: i64 = one(&pg, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'salesforce' AND p.proname ~ '^hc_.*_(logger|status)$'").await;
    assert_eq!(
        hc_functions, 0,
        "Heroku Connect's capture functions are gone"
    );
    let capture: i64 = one(&pg, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'salesforce' AND p.proname IN ('hc_capture_insert_from_row', 'hc_capture_update_from_row')").await;
    assert_eq!(capture, 2, "the requeue functions keep working");
    let hcmeta: i64 = one(&pg, "SELECT count(*) FROM salesforce._hcmeta").await;
    assert_eq!(hcmeta, 1);
    // A plain app insert is PENDING by the column's default, without a status-trigger call.
    let lastop_default: String = one(
        &pg,
        "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a \
         ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
         WHERE d.adrelid = 'salesforce.account'::regclass AND a.attname = '_hc_lastop'",
    )
    .await;
    assert_eq!(lastop_default, "'PENDING'::character varying");

    // A second run is a no-op that says so.
    let after_adopt = fingerprint(&pg).await;
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Already adopted"), "{out}");
    assert_eq!(fingerprint(&pg).await, after_adopt);

    // The archived FAILED entry is an error forcesync shows.
    let (code, out, _) = output(&["errors", "Account", "--json"], &env);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("Rating is locked"), "{out}");

    // Run: no reload, a handful of calls.
    harness
        .control(reqwest::Method::DELETE, "counters", Value::Null)
        .await;
    let logs = tempfile::tempdir().unwrap();
    let mut daemon = forcesync(&["run", "--listen", "127.0.0.1:0"], &env)
        .stdout(Stdio::from(
            std::fs::File::create(logs.path().join("out")).unwrap(),
        ))
        .stderr(Stdio::from(
            std::fs::File::create(logs.path().join("err")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(logs.path().join("err")).unwrap_or_default();
    eventually("every mapping streams or polls", || async {
        status_json(&env).iter().all(|m| {
            m["state"] == "STREAMING" || (m["mapping"] == "Opportunity" && m["state"] == "POLLING")
        })
    })
    .await;
    let counters = harness
        .control(reqwest::Method::GET, "counters", Value::Null)
        .await;
    let endpoints = counters["endpoints"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !endpoints.keys().any(|k| k.contains("jobs/query")),
        "no Bulk reload: {counters}"
    );
    let used = counters["DailyApiRequests"]["Used"].as_i64().unwrap();
    assert!(
        used <= 40,
        "catching up takes a few calls, not a reload: {counters}"
    );

    // The NEW insert reaches Salesforce once; the PENDING one is adopted, not duplicated.
    eventually("the app's insert reaches Salesforce", || async {
        let n: i64 = one(&pg, "SELECT count(*) FROM salesforce.account WHERE name = 'Adopted New Co' AND sfid IS NOT NULL").await;
        n == 1
    })
    .await;
    eventually(
        "the PENDING insert gets the record Salesforce holds",
        || async {
            // One row: the app's, with the record's Id (a copy the catch-up poll stored gives way).
            let rows: Vec<Option<String>> = one(
                &pg,
                "SELECT array_agg(sfid) FROM salesforce.account WHERE name = 'Adopted Pending Co'",
            )
            .await;
            rows == [Some(pending_sfid.clone())]
        },
    )
    .await;
    assert_eq!(
        harness
            .query("SELECT Id FROM Account WHERE Name = 'Adopted New Co'")
            .await
            .len(),
        1
    );
    assert_eq!(
        harness
            .query("SELECT Id FROM Account WHERE Name = 'Adopted Pending Co'")
            .await
            .len(),
        1,
        "not duplicated"
    );
    eventually("the NEW update reaches Salesforce", || async {
        let phone = harness
            .query(&format!(
                "SELECT Phone FROM Account WHERE Id = '{edited_sfid}'"
            ))
            .await;
        phone[0]["Phone"] == "+1 555 0101"
    })
    .await;
    // The Salesforce change made after Heroku Connect's last poll arrives.
    eventually("the later Salesforce change arrives", || async {
        let d: Option<String> = one(
            &pg,
            &format!("SELECT description FROM salesforce.account WHERE id = {changed_id}"),
        )
        .await;
        d.as_deref() == Some("changed after the pause")
    })
    .await;
    // The READONLY entry is not sent.
    let readonly: i64 = one(
        &pg,
        "SELECT count(*) FROM salesforce._trigger_log WHERE state = 'READONLY'",
    )
    .await;
    assert_eq!(readonly, 1);

    // The app's writes after adoption are captured and sent.
    pg.batch_execute("INSERT INTO salesforce.account (name) VALUES ('Written After Adoption')")
        .await
        .unwrap();
    eventually("a write after adoption reaches Salesforce", || async {
        harness
            .query("SELECT Id FROM Account WHERE Name = 'Written After Adoption'")
            .await
            .len()
            == 1
    })
    .await;
    // Heroku Connect's requeue function still works, in forcesync's writer.
    pg.batch_execute(&format!(
        "UPDATE salesforce.account SET app_score = 7 WHERE id = {edited_id};
         SELECT salesforce.hc_capture_update_from_row(hstore(a.*), 'account', ARRAY['rating'])
         FROM (SELECT id, sfid, 'Warm'::text AS rating FROM salesforce.account WHERE id = {edited_id}) a;"
    ))
    .await
    .unwrap();
    eventually("a requeued update reaches Salesforce", || async {
        let r = harness
            .query(&format!(
                "SELECT Rating FROM Account WHERE Id = '{edited_sfid}'"
            ))
            .await;
        r[0]["Rating"] == "Warm"
    })
    .await;

    // The archived failure can be sent again.
    let (code, out, err) = output(&["retry", "Account", "--all"], &env);
    assert_eq!(code, 0, "{out}{err}");
    // Sent at once (the requeue wakes the writer) and settled: Salesforce's Rating alone does
    // not tell the retried write from an earlier one.
    eventually("the retried write reaches Salesforce", || async {
        let r = harness
            .query(&format!(
                "SELECT Rating FROM Account WHERE Id = '{changed_sfid}'"
            ))
            .await;
        let unsettled: i64 = one(
            &pg,
            &format!("SELECT count(*) FROM salesforce._trigger_log WHERE record_id = {changed_id}"),
        )
        .await;
        r[0]["Rating"] == "Hot" && unsettled == 0
    })
    .await;
    // The change events of those updates bring Salesforce's new stamp back before the engine
    // stops (verify below tells a row that lags from one that is wrong).
    for sfid in [&edited_sfid, &changed_sfid] {
        eventually(
            "the writer's updates come back with Salesforce's stamp",
            || async {
                let sf = harness
                    .query(&format!(
                        "SELECT SystemModstamp FROM Account WHERE Id = '{sfid}'"
                    ))
                    .await;
                let pg_stamp: Option<String> = one(
                    &pg,
                    &format!(
                        "SELECT to_char(systemmodstamp, 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') \
                     FROM salesforce.account WHERE sfid = '{sfid}'"
                    ),
                )
                .await;
                // Not older than Salesforce's (a change event's commit time can be later), as
                // verify compares them: to the millisecond, here in one text format.
                let sf_stamp = sf[0]["SystemModstamp"].as_str().unwrap_or_default();
                pg_stamp.is_some_and(|p| p.as_str() >= sf_stamp.get(..23).unwrap_or(sf_stamp))
            },
        )
        .await;
    }

    // Nothing differs but the records the writer created without an upsert key, whose own
    // change event the read side skips while the create is in flight: their `systemmodstamp`
    // arrives with the next repair poll (the mapping's poll_seconds), or now with --repair.
    let _ = daemon.kill();
    let _ = daemon.wait();
    let (code, out, err) = output(&["verify", "--json"], &env);
    let reports: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("verify --json is JSON ({e}): {out}{err}\n{}", log()));
    let inserted: Vec<Option<String>> = one(
        &pg,
        "SELECT array_agg(sfid ORDER BY sfid) FROM salesforce.account WHERE _hc_lastop = 'INSERTED'",
    )
    .await;
    for report in reports.as_array().unwrap() {
        assert_eq!(report["missing_ids"], json!([]), "{report}");
        assert_eq!(report["extra_ids"], json!([]), "{report}");
        for stale in report["stale_ids"].as_array().unwrap() {
            assert!(
                report["mapping"] == "Account"
                    && inserted.contains(&stale.as_str().map(str::to_owned)),
                "only the writer's fresh creates may lag: {report}"
            );
        }
    }
    if code != 0 {
        let (code, out, err) = output(&["verify", "--repair"], &env);
        assert_eq!(code, 0, "{out}{err}");
    }
    let (code, out, err) = output(&["verify"], &env);
    assert_eq!(code, 0, "verify finds no difference:\n{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incompatible_column_type_is_refused_with_its_name_and_nothing_changes() {
    let harness = Harness::start().await;
    let db = TestDb::new();
    let env = env_for(&harness, &db);
    let mut tables = hc_tables();
    let account = tables.iter_mut().find(|t| t.table == "account").unwrap();
    let employees = account
        .columns
        .iter_mut()
        .find(|(c, _)| c == "numberofemployees")
        .unwrap();
    employees.1 = "timestamp without time zone".into();
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    heroku_connect::create(&pg, "salesforce", &org_id(&harness), &tables)
        .await
        .unwrap();
    let before = fingerprint(&pg).await;
    let (code, out, err) = output(&["adopt", "--dry-run", "--json"], &env);
    assert_eq!(code, 2, "{out}{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let account = plan["plan"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "account")
        .unwrap()
        .clone();
    assert_eq!(
        account["incompatible"],
        json!([[
            "numberofemployees",
            "timestamp without time zone",
            "integer"
        ]]),
        "{account}"
    );
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("salesforce.account.numberofemployees is timestamp without time zone, forcesync's mapping needs integer"),
        "{err}"
    );
    assert_eq!(fingerprint(&pg).await, before);
    // Heroku Connect active: refused unless forced.
    let mut tables = hc_tables();
    tables.retain(|t| t.table != "invoice_line__c");
    let db2 = TestDb::new();
    let env2 = env_for(&harness, &db2);
    let pg2 = sync_runtime::engine::connect(&db2.url).await.unwrap();
    heroku_connect::create(&pg2, "salesforce", &org_id(&harness), &tables)
        .await
        .unwrap();
    pg2.batch_execute(
        "INSERT INTO salesforce._trigger_log_archive (id, created_at, processed_at, state, action, table_name)
         VALUES (1, now(), now() - interval '1 minute', 'SUCCESS', 'UPDATE', 'account')",
    )
    .await
    .unwrap();
    let (code, out, err) = output(&["adopt"], &env2);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("Heroku Connect looks active"), "{err}");
    assert!(err.contains("Pause the connection first"), "{err}");
    let (code, out, err) = output(&["adopt", "--force"], &env2);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Invoice_Line__c (salesforce.invoice_line__c): missing; created as `forcesync migrate` would"),
        "{out}"
    );
    let created: bool = one(
        &pg2,
        "SELECT to_regclass('salesforce.invoice_line__c') IS NOT NULL",
    )
    .await;
    assert!(created);
    let (code, out, err) = output(&["migrate"], &env2);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("the database is up to date"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_for_another_org_or_failing_midway_changes_nothing() {
    let harness = Harness::start().await;
    let db = TestDb::new();
    let env = env_for(&harness, &db);
    let pg = sync_runtime::engine::connect(&db.url).await.unwrap();
    // Heroku Connect synced another org than the one the Salesforce settings log in to.
    heroku_connect::create(&pg, "salesforce", "00D5e000000abcdEAA", &hc_tables())
        .await
        .unwrap();
    let before = fingerprint(&pg).await;
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 2, "{out}{err}");
    let ours = org_id(&harness);
    assert!(
        err.contains(&format!(
            "this database belongs to org 00D5e000000abcdEAA (Heroku Connect's \
             salesforce._hcmeta.org_id), but the Salesforce settings log in to org {ours}"
        )),
        "{err}"
    );
    assert_eq!(fingerprint(&pg).await, before);
    pg.execute("UPDATE salesforce._hcmeta SET org_id = $1", &[&ours])
        .await
        .unwrap();
    let before = fingerprint(&pg).await;

    // A failure midway — here an event trigger refusing the first CREATE TRIGGER in the
    // schema, after its columns, indexes and functions were already changed — leaves the
    // database as it was.
    pg.batch_execute(
        "CREATE FUNCTION public.refuse_triggers() RETURNS event_trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                      WHERE object_identity LIKE '% on salesforce.%') THEN
             RAISE EXCEPTION 'injected failure';
           END IF;
         END $$;
         CREATE EVENT TRIGGER refuse_triggers ON ddl_command_end
           WHEN TAG IN ('CREATE TRIGGER') EXECUTE FUNCTION public.refuse_triggers();",
    )
    .await
    .unwrap();
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("injected failure"), "{err}");
    assert!(
        err.contains("nothing was changed (adoption runs in one transaction)"),
        "{err}"
    );
    assert_eq!(fingerprint(&pg).await, before);

    // Without the failure, the same database adopts.
    pg.batch_execute("DROP EVENT TRIGGER refuse_triggers")
        .await
        .unwrap();
    let (code, out, err) = output(&["adopt"], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Adopted schema salesforce"), "{out}");
}

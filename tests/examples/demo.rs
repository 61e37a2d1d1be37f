//! The embedded default, end to end: an in-process Salesforce org (sf-emulator, seeded with the
//! `demo` data set) and a throwaway Postgres cluster, joined by this repository's generated code.
//!
//! 1. applies the generated migrations (`generated::MIGRATIONS`);
//! 2. logs in with the OAuth password grant and loads every Account that passes the mapping's
//!    filter through the REST query API, converting each record with the generated adapter
//!    (`Account::new_from_sf`) and writing the rows as the engine (not captured by the triggers);
//! 3. inserts an Account as an application would, shows what the triggers captured, and sends the
//!    row to Salesforce with the adapter's `create_body`, writing the new `sfid` back.
//!
//! This shows the generated parts the engine is built from working together, by hand; the
//! continuous sync (CDC, polling, the trigger-log writer) is `forcesync demo`. Run: `cargo run -p forcesync-tests --example demo`.

use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_migrations::MigrationHarness;
use forcesync_tests::pg::TestDb;
use generated::salesforce::account::{self, Account, NewAccount};
use generated::salesforce::REGISTRY;
use serde_json::Value;
use sync_runtime::adapter::{SfRecord, SyncAdapter, WriteBack};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let emulator = sf_emulator::server::start(sf_emulator::server::Config {
        listen: "127.0.0.1:0".parse()?,
        seed: Some("demo".to_owned()),
        ..Default::default()
    })
    .await?;
    println!("Salesforce org (sf-emulator): {}", emulator.base_url);

    let db = TestDb::new();
    let mut conn = db.conn();
    let applied = conn.run_pending_migrations(generated::MIGRATIONS)?;
    println!(
        "Postgres: throwaway cluster, {} migration(s) applied",
        applied.len()
    );

    sync_runtime::salesforce::http::install_crypto_provider();
    let http = reqwest::Client::new();
    let token = login(&http, &emulator.base_url).await?;

    // Salesforce -> Postgres: the initial load of one mapping.
    let started = Instant::now();
    let records = query_all(&http, &emulator.base_url, &token, &soql(&account::MAPPING)).await?;
    let rows = records
        .iter()
        .map(|r| Account::new_from_sf(&SfRecord::rest(r)?))
        .collect::<Result<Vec<NewAccount>, _>>()?;
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        diesel::sql_query("SET LOCAL forcesync.engine = 'on'").execute(conn)?;
        for chunk in rows.chunks(500) {
            diesel::insert_into(account::account::table)
                .values(chunk)
                .execute(conn)?;
        }
        Ok(())
    })?;
    let loaded: i64 = account::account::table.count().get_result(&mut conn)?;
    println!(
        "loaded {loaded} Accounts (filter: {}) into salesforce.account in {} ms",
        account::MAPPING.filter.unwrap_or("none"),
        started.elapsed().as_millis()
    );

    // Postgres -> Salesforce: an application insert, captured by the triggers.
    let mut new = NewAccount::new("Acme Robotics".to_owned());
    new.account_number = Some("ACME-0001".to_owned());
    new.phone = Some("+1 415 555 0100".to_owned());
    let row: Account = diesel::insert_into(account::account::table)
        .values(&new)
        .returning(Account::as_returning())
        .get_result(&mut conn)?;
    let captured: Vec<Captured> = diesel::sql_query(
        "SELECT action, state, \"values\"::text AS values FROM salesforce._trigger_log ORDER BY id",
    )
    .load(&mut conn)?;
    println!(
        "application insert of row {}: _hc_lastop = {}",
        row.id,
        row.hc_lastop.as_deref().unwrap_or("NULL")
    );
    for c in &captured {
        println!(
            "  _trigger_log: {} {} {}",
            c.action,
            c.state,
            c.values.as_deref().unwrap_or("")
        );
    }

    let body = row.create_body().into_json();
    let created: Value = http
        .post(format!(
            "{}/services/data/v{}/sobjects/Account",
            emulator.base_url, REGISTRY.api_version
        ))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sfid = created["id"]
        .as_str()
        .ok_or("create returned no id")?
        .to_owned();
    conn.transaction::<_, diesel::result::Error, _>(|conn| {
        diesel::sql_query("SET LOCAL forcesync.engine = 'on'").execute(conn)?;
        diesel::update(account::account::table.find(row.id))
            .set(account::account::sfid.eq(&sfid))
            .execute(conn)
    })?;
    let (sfid_back, lastop): (Option<String>, Option<String>) = account::account::table
        .find(row.id)
        .select((account::account::sfid, account::account::hc_lastop))
        .first(&mut conn)?;
    let in_salesforce = query_all(
        &http,
        &emulator.base_url,
        &token,
        &format!("SELECT Id, Name, AccountNumber FROM Account WHERE Id = '{sfid}'"),
    )
    .await?;
    println!(
        "sent to Salesforce as {} ({}); row {} now has sfid = {}, _hc_lastop = {}",
        sfid,
        in_salesforce
            .first()
            .and_then(|r| r["Name"].as_str())
            .unwrap_or("not found"),
        row.id,
        sfid_back.as_deref().unwrap_or("NULL"),
        lastop.as_deref().unwrap_or("NULL"),
    );
    Ok(())
}

#[derive(QueryableByName)]
struct Captured {
    #[diesel(sql_type = Text)]
    action: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    values: Option<String>,
}

/// The SOQL an initial load runs: every mapped field, restricted by the mapping's filter.
fn soql(mapping: &sync_runtime::adapter::MappingDescriptor) -> String {
    let fields: Vec<&str> = mapping.fields.iter().map(|f| f.sf_name).collect();
    let mut q = format!("SELECT {} FROM {}", fields.join(", "), mapping.object);
    if let Some(filter) = mapping.filter {
        q.push_str(" WHERE ");
        q.push_str(filter);
    }
    q
}

/// OAuth 2.0 password grant with the emulator's documented default credentials.
async fn login(http: &reqwest::Client, base: &str) -> Result<String, Error> {
    let form = [
        ("grant_type", "password"),
        ("client_id", "forcesync"),
        ("client_secret", "forcesync"),
        ("username", "admin@example.com"),
        ("password", "forcesync"),
    ];
    let token: Value = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(token["access_token"]
        .as_str()
        .ok_or("no access_token in the token response")?
        .to_owned())
}

/// Runs a REST query and follows `nextRecordsUrl` to the last page.
async fn query_all(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    soql: &str,
) -> Result<Vec<Value>, Error> {
    let mut page: Value = http
        .get(format!(
            "{base}/services/data/v{}/query",
            REGISTRY.api_version
        ))
        .query(&[("q", soql)])
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut records = Vec::new();
    loop {
        if let Some(batch) = page["records"].as_array() {
            records.extend(batch.iter().cloned());
        }
        let Some(next) = page["nextRecordsUrl"].as_str() else {
            return Ok(records);
        };
        page = http
            .get(format!("{base}{next}"))
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
    }
}

//! `--data-file` persistence: records, Ids, the recycle bin, Id counters and the CDC replay
//! position survive a restart; periodic and on-demand saves; damaged files are refused with a
//! clear error.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sf_emulator::cdc::{ChannelFilter, ReplayError};
use sf_emulator::{Config, WriteContext, WriteOp};

use common::status_json;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p =
            std::env::temp_dir().join(format!("sf-emulator-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn file(&self) -> PathBuf {
        self.0.join("org.sfemu")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(file: PathBuf) -> Config {
    Config {
        data_file: Some(file),
        ..Config::ephemeral()
    }
}

async fn ctl(e: &common::Emu, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = e.client.post(e.url(&format!("/__emulator{path}")));
    if let Some(b) = body {
        r = r.json(&b);
    }
    status_json(r.send().await.unwrap()).await
}

#[tokio::test]
async fn records_ids_and_recycle_bin_survive_a_restart() {
    let dir = TempDir::new("restart");
    let e = common::start_with(config(dir.file())).await;
    let mut ids = Vec::new();
    for name in ["Alpha", "Beta", "Gamma", "Delta"] {
        let (s, v) = e
            .post(
                &e.data("/sobjects/Account"),
                json!({"Name": name, "Industry": "Energy", "AnnualRevenue": 12.5,
                       "NumberOfEmployees": 7}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let (s, c) = e
        .post(
            &e.data("/sobjects/Contact"),
            json!({"LastName": "Smith", "FirstName": "Ann", "AccountId": ids[0],
                   "Birthdate": "1980-02-29"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let contact = c["id"].as_str().unwrap().to_string();
    let (s, _) = e
        .delete(&e.data(&format!("/sobjects/Account/{}", ids[1])))
        .await;
    assert_eq!(s, 204);
    // Purge the newest Account: its Id must never be handed out again.
    let org = e.running.org.clone();
    let r = org.write(
        &WriteContext::rest(&org, "59.0"),
        vec![WriteOp::HardDelete { id: ids[3].clone() }],
        false,
    );
    assert!(r[0].is_ok(), "{r:?}");
    let (s, v) = ctl(
        &e,
        "/seed",
        Some(json!({"object": "Opportunity", "count": 300})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, before) = e
        .get(&e.data(&format!("/sobjects/Account/{}", ids[0])))
        .await;
    let (_, before_contact) = e
        .get(&e.data(&format!("/sobjects/Contact/{contact}")))
        .await;
    let replay_before = org.cdc().latest_replay_id();
    e.running.stop().await;
    assert!(dir.file().exists());

    let e = common::start_with(config(dir.file())).await;
    let (s, after) = e
        .get(&e.data(&format!("/sobjects/Account/{}", ids[0])))
        .await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(after, before);
    let (_, after_contact) = e
        .get(&e.data(&format!("/sobjects/Contact/{contact}")))
        .await;
    assert_eq!(after_contact, before_contact);
    assert_eq!(after_contact["Birthdate"], "1980-02-29");
    // The recycle bin survived: the record is still deleted, and can be undeleted.
    let (s, v) = e
        .get(&e.data(&format!("/sobjects/Account/{}", ids[1])))
        .await;
    assert_eq!(s, 404, "{v}");
    let org = e.running.org.clone();
    let r = org.write(
        &WriteContext::rest(&org, "59.0"),
        vec![WriteOp::Undelete { id: ids[1].clone() }],
        false,
    );
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(
        org.read()
            .tables
            .iter()
            .map(|t| t.live_count())
            .sum::<usize>(),
        3 + 1 + 300
    );

    // New Ids continue after every Id ever handed out, purged ones included.
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Epsilon"}))
        .await;
    assert_eq!(s, 201);
    let new_id = v["id"].as_str().unwrap().to_string();
    assert!(!ids.contains(&new_id));
    let counter = |id: &str| sf_emulator::SfId::parse(id).unwrap().counter().unwrap();
    assert!(ids.iter().all(|i| counter(i) < counter(&new_id)));

    // CDC replay ids continue; the old position is acknowledged, older ones are too old.
    let now = org.now_ms();
    assert!(org.cdc().latest_replay_id() > replay_before);
    assert!(org
        .cdc()
        .read_after(replay_before, &ChannelFilter::All, now)
        .is_ok());
    assert!(matches!(
        org.cdc()
            .read_after(replay_before - 1, &ChannelFilter::All, now),
        Err(ReplayError::TooOld { .. })
    ));
    e.running.stop().await;
}

#[tokio::test]
async fn data_is_saved_periodically_and_on_demand() {
    let dir = TempDir::new("periodic");
    let e = common::start_with(Config {
        save_interval_ms: 100,
        ..config(dir.file())
    })
    .await;
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Saved soon"}))
        .await;
    assert_eq!(s, 201);
    let id = v["id"].as_str().unwrap().to_string();
    let loaded = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if dir.file().exists() {
                let org = sf_emulator::server::build_org(&config(dir.file())).unwrap();
                let found = org
                    .read()
                    .find(&sf_emulator::SfId::parse(&id).unwrap())
                    .is_some();
                if found {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), loaded)
        .await
        .expect("the periodic save wrote the record");

    let (s, v) = ctl(&e, "/seed", Some(json!({"object": "Lead", "count": 50}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = ctl(&e, "/save", None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["records"], 51);
    assert!(v["bytes"].as_u64().unwrap() > 0);

    // Without a data file there is nothing to save to.
    let plain = common::start().await;
    let (s, v) = ctl(&plain, "/save", None).await;
    assert_eq!(s, 400);
    assert!(v[0]["message"].as_str().unwrap().contains("--data-file"));
    e.running.stop().await;
}

#[tokio::test]
async fn a_data_file_wins_over_seeding() {
    let dir = TempDir::new("seed");
    let seeded = Config {
        seed: Some("demo".into()),
        ..config(dir.file())
    };
    let e = common::start_with(seeded.clone()).await;
    let count = |e: &common::Emu| {
        e.running
            .org
            .read()
            .tables
            .iter()
            .map(|t| t.total_count())
            .sum::<usize>()
    };
    assert!(count(&e) > 0);
    let (s, _) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Mine"}))
        .await;
    assert_eq!(s, 201);
    let n = count(&e);
    e.running.stop().await;
    assert!(dir.file().exists());
    // Loaded from the file, not seeded again on top.
    let e = common::start_with(seeded).await;
    assert_eq!(count(&e), n);
    e.running.stop().await;
}

#[tokio::test]
async fn damaged_files_are_refused_with_a_clear_error() {
    let dir = TempDir::new("damaged");
    std::fs::write(dir.file(), b"hello, not a data file").unwrap();
    let err = sf_emulator::start(config(dir.file())).await.unwrap_err();
    assert!(
        err.to_string().contains("is not an sf-emulator data file"),
        "{err}"
    );

    // A real file cut short.
    let e = common::start_with(config(dir.file().with_extension("good"))).await;
    let (s, _) = ctl(
        &e,
        "/seed",
        Some(json!({"object": "Account", "count": 100})),
    )
    .await;
    assert_eq!(s, 200);
    e.running.stop().await;
    let bytes = std::fs::read(dir.file().with_extension("good")).unwrap();
    std::fs::write(dir.file(), &bytes[..bytes.len() / 2]).unwrap();
    let err = sf_emulator::start(config(dir.file())).await.unwrap_err();
    assert!(err.to_string().contains("is damaged"), "{err}");

    let mut other_version = bytes.clone();
    other_version[8] = 9;
    std::fs::write(dir.file(), &other_version).unwrap();
    let err = sf_emulator::start(config(dir.file())).await.unwrap_err();
    assert!(err.to_string().contains("version 9"), "{err}");
}

#[tokio::test]
async fn requests_after_a_restart_need_a_new_login() {
    let dir = TempDir::new("login");
    let e = common::start_with(config(dir.file())).await;
    let token = e.token.clone();
    e.running.stop().await;
    let e = common::start_with(config(dir.file())).await;
    let r = e
        .client
        .request(Method::GET, e.data("/limits"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    e.running.stop().await;
}

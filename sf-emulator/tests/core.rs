//! The org core through its public API and the control plane: CDC payloads, transactions,
//! validation rules, after-save updates, faults, recycle bin, seeding, Id checksums.

mod common;

use serde_json::{json, Value as Json};
use sf_emulator::cdc::ChannelFilter;
use sf_emulator::rules::{AfterSave, CondOp, Condition, Trigger, ValidationRule};
use sf_emulator::{FieldInput, SfId, WriteContext, WriteOp, WriteResult};

fn j(pairs: Json) -> Vec<(String, FieldInput)> {
    pairs
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), FieldInput::Json(v.clone())))
        .collect()
}

#[tokio::test]
async fn cdc_events_follow_the_reference_shapes() {
    let e = common::start().await;
    let org = &e.running.org;
    let ctx = WriteContext::rest(org, "59.0");
    let res = org.write(
        &ctx,
        vec![
            WriteOp::Create {
                object: "Account".into(),
                fields: j(
                    json!({"Name": "Acme", "BillingCity": "Paris", "BillingCountry": "France"}),
                ),
            },
            WriteOp::Create {
                object: "Contact".into(),
                fields: j(json!({"FirstName": "Ann", "LastName": "Lee"})),
            },
        ],
        false,
    );
    let acc = res[0].id().unwrap();
    let events = org
        .cdc()
        .read_after(-2, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(events.len(), 2);
    let p = &events[0].payload;
    let h = &p["ChangeEventHeader"];
    assert_eq!(h["entityName"], "Account");
    assert_eq!(h["changeType"], "CREATE");
    assert_eq!(h["changedFields"], json!([]));
    assert_eq!(h["recordIds"], json!([acc.to_string()]));
    assert_eq!(h["changeOrigin"], "com/salesforce/api/rest/59.0");
    assert_eq!(h["sequenceNumber"], 1);
    assert_eq!(h["commitUser"], org.user_id().to_string());
    assert!(h["commitTimestamp"].is_i64());
    // One request = one transaction.
    assert_eq!(
        h["transactionKey"],
        events[1].payload["ChangeEventHeader"]["transactionKey"]
    );
    assert_eq!(events[1].payload["ChangeEventHeader"]["sequenceNumber"], 2);
    assert_eq!(p["Name"], "Acme");
    assert_eq!(
        p["BillingAddress"],
        json!({"City": "Paris", "Country": "France"})
    );
    assert!(p.get("BillingCity").is_none());
    assert!(p.get("IsDeleted").is_none());
    assert!(p.get("SystemModstamp").is_none());
    assert!(p.get("Id").is_none());
    assert!(p["CreatedDate"].as_str().unwrap().ends_with(".000Z"));
    assert_eq!(p["OwnerId"], org.user_id().to_string());
    assert_eq!(
        events[1].payload["Name"],
        json!({"FirstName": "Ann", "LastName": "Lee"})
    );
    assert_eq!(events[0].channel, "/data/AccountChangeEvent");
    let msg = events[0].message("/data/ChangeEvents");
    assert_eq!(msg["data"]["event"]["replayId"], events[0].replay_id);
    assert_eq!(msg["channel"], "/data/ChangeEvents");

    let last = events[1].replay_id;
    org.write(
        &ctx,
        vec![WriteOp::Update {
            object: None,
            id: acc.to_string(),
            fields: j(json!({"Phone": "555", "BillingCity": "Lyon"})),
        }],
        false,
    );
    let ev = org
        .cdc()
        .read_after(last, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(ev.len(), 1);
    let p = &ev[0].payload;
    assert_eq!(p["ChangeEventHeader"]["changeType"], "UPDATE");
    assert_eq!(
        p["ChangeEventHeader"]["changedFields"],
        json!(["BillingAddress.City", "Phone", "LastModifiedDate"])
    );
    assert_eq!(p["Phone"], "555");
    assert_eq!(p["BillingAddress"], json!({"City": "Lyon"}));
    assert!(p.get("Name").is_none());
    assert!(p["LastModifiedDate"].is_string());
    // Setting a field to null sends it as null.
    org.write(
        &ctx,
        vec![WriteOp::Update {
            object: None,
            id: acc.to_string(),
            fields: j(json!({"Phone": null})),
        }],
        false,
    );
    let last = ev[0].replay_id;
    let ev = org
        .cdc()
        .read_after(last, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(ev[0].payload["Phone"], Json::Null);

    let last = ev[0].replay_id;
    org.write(
        &ctx,
        vec![WriteOp::Delete {
            id: acc.to_string(),
        }],
        false,
    );
    org.write(
        &ctx,
        vec![WriteOp::Undelete {
            id: acc.to_string(),
        }],
        false,
    );
    let ev = org
        .cdc()
        .read_after(last, &ChannelFilter::Entity("Account".into()), org.now_ms())
        .unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].payload["ChangeEventHeader"]["changeType"], "DELETE");
    assert_eq!(ev[0].payload.as_object().unwrap().len(), 1);
    assert_eq!(ev[1].payload["ChangeEventHeader"]["changeType"], "UNDELETE");
    assert_eq!(ev[1].payload["Name"], "Acme");
    // Contact events are filtered out of the Account channel.
    let only_contacts = org
        .cdc()
        .read_after(
            -2,
            &ChannelFilter::parse("/data/ContactChangeEvent", ["Account", "Contact"]).unwrap(),
            org.now_ms(),
        )
        .unwrap();
    assert_eq!(only_contacts.len(), 1);
}

#[tokio::test]
async fn cdc_retention_by_age_and_injected_gaps() {
    let e = common::start().await;
    let org = &e.running.org;
    let ctx = WriteContext::rest(org, "59.0");
    org.write(
        &ctx,
        vec![WriteOp::Create {
            object: "Account".into(),
            fields: j(json!({"Name": "a"})),
        }],
        false,
    );
    let first = org.cdc().latest_replay_id();
    org.write(
        &ctx,
        vec![WriteOp::Create {
            object: "Account".into(),
            fields: j(json!({"Name": "b"})),
        }],
        false,
    );
    assert_eq!(
        org.cdc()
            .read_after(first, &ChannelFilter::All, org.now_ms())
            .unwrap()
            .len(),
        1
    );
    let before_gap = org.cdc().latest_replay_id();
    let gap = org
        .cdc()
        .inject_gap(
            "Account",
            "UPDATE",
            vec!["001EM0000000001AAA".into()],
            &org.user_id().to_string(),
            org.now_ms(),
        )
        .expect("published");
    let ev = org
        .cdc()
        .read_after(before_gap, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].replay_id, gap);
    assert_eq!(
        ev[0].payload["ChangeEventHeader"]["changeType"],
        "GAP_UPDATE"
    );
    assert_eq!(
        ev[0].payload.as_object().unwrap().len(),
        1,
        "header only: {}",
        ev[0].payload
    );
    // 73 emulated hours later everything has expired; the old replay id is too old.
    org.advance_clock(73 * 3600 * 1000);
    let err = org
        .cdc()
        .read_after(first, &ChannelFilter::All, org.now_ms())
        .unwrap_err();
    assert!(matches!(err, sf_emulator::cdc::ReplayError::TooOld { .. }));
    assert!(org
        .cdc()
        .read_after(-2, &ChannelFilter::All, org.now_ms())
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn validation_rules_after_save_and_lock_faults() {
    let e = common::start().await;
    let org = &e.running.org;
    org.add_validation_rule(ValidationRule {
        object: "Account".into(),
        name: "no_test".into(),
        when: vec![Condition {
            field: "Name".into(),
            op: CondOp::StartsWith,
            value: json!("TEST"),
        }],
        message: "Test accounts are not allowed".into(),
        error_field: Some("Name".into()),
    });
    org.add_after_save(AfterSave {
        object: "Account".into(),
        name: "rate".into(),
        on: Trigger::Create,
        when: vec![Condition {
            field: "AnnualRevenue".into(),
            op: CondOp::Gt,
            value: json!(1_000_000),
        }],
        set: json!({"Rating": "Hot"}).as_object().unwrap().clone(),
    });
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "TEST 1"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v,
        json!([{"message": "Test accounts are not allowed", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": ["Name"]}])
    );
    let (s, v) = e
        .post(
            &e.data("/sobjects/Account"),
            json!({"Name": "Big", "AnnualRevenue": 5_000_000}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, rec) = e
        .get(&e.data(&format!("/sobjects/Account/{}", v["id"].as_str().unwrap())))
        .await;
    assert_eq!(rec["Rating"], "Hot");
    let ev = org
        .cdc()
        .read_after(-2, &ChannelFilter::All, org.now_ms())
        .unwrap();
    assert_eq!(ev.last().unwrap().payload["Rating"], "Hot");

    org.fail_next_writes(1);
    let (s, v) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Locked"}))
        .await;
    assert_eq!(s, 400);
    assert_eq!(v[0]["errorCode"], "UNABLE_TO_LOCK_ROW");
    let (s, _) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "Unlocked"}))
        .await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn recycle_bin_undelete_and_purge() {
    let e = common::start().await;
    let org = &e.running.org;
    let ctx = WriteContext::rest(org, "59.0");
    let id = org.write(
        &ctx,
        vec![WriteOp::Create {
            object: "Lead".into(),
            fields: j(json!({"LastName": "L", "Company": "C"})),
        }],
        false,
    )[0]
    .id()
    .unwrap();
    let r = org.write(&ctx, vec![WriteOp::Undelete { id: id.to_string() }], false);
    assert_eq!(r[0].errors()[0].status_code, "UNDELETE_FAILED");
    assert!(org.write(&ctx, vec![WriteOp::Delete { id: id.to_string() }], false)[0].is_ok());
    {
        let st = org.read();
        let (oi, rec) = st.find(&id).unwrap();
        assert!(st.table(oi).is_deleted(rec));
        assert_eq!(st.table(oi).live_count(), 0);
    }
    assert!(org.write(&ctx, vec![WriteOp::Undelete { id: id.to_string() }], false)[0].is_ok());
    assert!(org.write(
        &ctx,
        vec![WriteOp::HardDelete { id: id.to_string() }],
        false
    )[0]
    .is_ok());
    assert!(org.read().find(&id).is_none());
    let r = org.write(&ctx, vec![WriteOp::Delete { id: id.to_string() }], false);
    assert_eq!(
        r[0],
        WriteResult::Err(vec![sf_emulator::FieldError::new(
            "ENTITY_IS_DELETED",
            "entity is deleted"
        )])
    );
    // Lead defaults from describe.
    let id = org.write(
        &ctx,
        vec![WriteOp::Create {
            object: "Lead".into(),
            fields: j(json!({"LastName": "L", "Company": "C"})),
        }],
        false,
    )[0]
    .id()
    .unwrap();
    let st = org.read();
    let (oi, rec) = st.find(&id).unwrap();
    let o = &org.schema().objects[oi];
    assert_eq!(
        rec.get(o.field_index("Status").unwrap()).as_str(),
        Some("Open - Not Contacted")
    );
}

#[tokio::test]
async fn control_plane_reset_and_fast_seed() {
    let e = common::start().await;
    let r = e
        .client
        .post(e.url("/__emulator/seed"))
        .json(&json!({"object": "Account", "count": 20000, "seed": 7}))
        .send()
        .await
        .unwrap();
    let (s, v) = common::status_json(r).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["created"], 20000);
    assert_eq!(e.running.org.read().table(0).live_count(), 20000);
    assert!(e.running.org.cdc().is_empty(), "seeding publishes no CDC");
    let r = e
        .client
        .post(e.url("/__emulator/seed"))
        .json(&json!({"object": "Invoice__c", "count": 100, "seed": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let first = SfId::parse(v["firstId"].as_str().unwrap()).unwrap();
    let (s, rec) = e.get(&e.data(&format!("/sobjects/Account/{first}"))).await;
    assert_eq!(s, 200);
    assert!(rec["Name"].as_str().unwrap().len() > 3);
    assert!(rec["Industry"].is_string());
    let r = e
        .client
        .post(e.url("/__emulator/seed"))
        .json(&json!({"object": "Nope", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = e
        .client
        .post(e.url("/__emulator/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(e.running.org.read().table(0).total_count(), 0);
}

/// Every 18-character Id in the real fixtures has the suffix our algorithm computes.
#[test]
fn checksum_matches_ids_in_real_fixtures() {
    // demo-org/ holds byte-exact copies of the real describe fixtures.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo-org");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for tok in text.split(|c: char| !c.is_ascii_alphanumeric()) {
            let looks_like_id = tok.len() == 18
                && tok.starts_with(|c: char| c.is_ascii_digit() || c.is_ascii_alphabetic())
                && tok[..3].chars().all(|c| c.is_ascii_alphanumeric())
                && tok[15..]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || ('0'..='5').contains(&c))
                && tok.chars().any(|c| c.is_ascii_digit())
                && tok[..15].chars().filter(|c| c.is_ascii_digit()).count() >= 5;
            if looks_like_id {
                let id = SfId::parse(&tok[..15]).unwrap();
                assert_eq!(id.as_str(), tok, "in {}", p.display());
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "found only {checked} ids");
}

#[tokio::test]
async fn deleting_a_parent_cascades_and_respects_restrictions() {
    let e = common::start().await;
    let org = &e.running.org;
    let ctx = WriteContext::rest(org, "59.0");
    let acc = org.write(
        &ctx,
        vec![WriteOp::Create {
            object: "Account".into(),
            fields: j(json!({"Name": "P"})),
        }],
        false,
    )[0]
    .id()
    .unwrap();
    let kids = org.write(
        &ctx,
        vec![
            WriteOp::Create {
                object: "Contact".into(),
                fields: j(json!({"LastName": "K", "AccountId": acc.to_string()})),
            },
            WriteOp::Create {
                object: "Invoice__c".into(),
                fields: j(json!({"Account__c": acc.to_string(), "Amount__c": 1})),
            },
            WriteOp::Create {
                object: "Case".into(),
                fields: j(json!({"AccountId": acc.to_string()})),
            },
        ],
        true,
    );
    assert!(kids.iter().all(|r| r.is_ok()), "{kids:?}");
    // Cases restrict deleting their account.
    let r = org.write(
        &ctx,
        vec![WriteOp::Delete {
            id: acc.to_string(),
        }],
        false,
    );
    assert_eq!(r[0].errors()[0].status_code, "DELETE_FAILED");
    let case = kids[2].id().unwrap();
    assert!(org.write(
        &ctx,
        vec![WriteOp::Delete {
            id: case.to_string()
        }],
        false
    )[0]
    .is_ok());
    let before = org.cdc().latest_replay_id();
    assert!(org.write(
        &ctx,
        vec![WriteOp::Delete {
            id: acc.to_string()
        }],
        false
    )[0]
    .is_ok());
    let st = org.read();
    for k in &kids[..2] {
        let (oi, rec) = st.find(&k.id().unwrap()).unwrap();
        assert!(
            st.table(oi).is_deleted(rec),
            "child deleted with its parent"
        );
    }
    drop(st);
    let ev = org
        .cdc()
        .read_after(before, &ChannelFilter::All, org.now_ms())
        .unwrap();
    let kinds: Vec<_> = ev
        .iter()
        .map(|e| {
            (
                e.entity.clone(),
                e.payload["ChangeEventHeader"]["changeType"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert!(kinds.iter().all(|(_, k)| k == "DELETE"));
    assert_eq!(kinds[2].0, "Account");
    // Undeleting the parent restores the children its delete took along.
    assert!(org.write(
        &ctx,
        vec![WriteOp::Undelete {
            id: acc.to_string()
        }],
        false
    )[0]
    .is_ok());
    let st = org.read();
    for k in &kids[..2] {
        let (oi, rec) = st.find(&k.id().unwrap()).unwrap();
        assert!(
            !st.table(oi).is_deleted(rec),
            "child restored with its parent"
        );
    }
    let (ci, case_rec) = st.find(&case).unwrap();
    assert!(
        st.table(ci).is_deleted(case_rec),
        "separately deleted case stays deleted"
    );
}

/// A describe directory (`--describe`) with a non-unique external ID: several matches answer
/// 300 Multiple Choices on REST and DUPLICATE_EXTERNAL_ID in collections.
#[tokio::test]
async fn describe_dir_and_ambiguous_external_ids() {
    let dir = std::env::temp_dir().join(format!("emu-describe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("demo-org");
    std::fs::copy(src.join("account.describe.json"), dir.join("Account.json")).unwrap();
    let mut inv: Json = serde_json::from_str(
        &std::fs::read_to_string(src.join("invoice__c.describe.json")).unwrap(),
    )
    .unwrap();
    for f in inv["fields"].as_array_mut().unwrap() {
        if f["name"] == "External_Id__c" {
            f["unique"] = json!(false);
        }
    }
    std::fs::write(dir.join("Invoice__c.json"), inv.to_string()).unwrap();
    let config = sf_emulator::Config {
        describe: Some(dir.clone()),
        ..sf_emulator::Config::ephemeral()
    };
    let e = common::start_with(config).await;
    let (_, g) = e.get(&e.data("/sobjects")).await;
    assert_eq!(g["sobjects"].as_array().unwrap().len(), 2);
    let (_, a) = e
        .post(&e.data("/sobjects/Account"), json!({"Name": "A"}))
        .await;
    let acc = a["id"].as_str().unwrap();
    for _ in 0..2 {
        let (s, v) = e
            .post(
                &e.data("/sobjects/Invoice__c"),
                json!({"Account__c": acc, "Amount__c": 1, "External_Id__c": "X"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }
    let (s, v) = e
        .get(&e.data("/sobjects/Invoice__c/External_Id__c/X"))
        .await;
    assert_eq!(s, 300);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert!(v[0]
        .as_str()
        .unwrap()
        .starts_with("/services/data/v59.0/sobjects/Invoice__c/a01"));
    let (s, _) = e
        .patch(
            &e.data("/sobjects/Invoice__c/External_Id__c/X"),
            json!({"Amount__c": 2}),
        )
        .await;
    assert_eq!(s, 300);
    let (_, v) = e
        .patch(
            &e.data("/composite/sobjects/Invoice__c/External_Id__c"),
            json!({"records": [{"attributes": {"type": "Invoice__c"}, "External_Id__c": "X", "Amount__c": 3}]}),
        )
        .await;
    assert_eq!(v[0]["errors"][0]["statusCode"], "DUPLICATE_EXTERNAL_ID");
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The Pub/Sub API over real gRPC (HTTP/2), with a tonic client generated from the same
//! interface definition: auth from metadata, topics and Avro schemas, subscriptions with
//! replay presets and flow control, keepalives, the documented error trailers, the allocations
//! and the fault knobs shared with CometD.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use serde_json::json;
use sf_emulator::routes::pubsub::proto::pub_sub_client::PubSubClient;
use sf_emulator::routes::pubsub::proto::{
    FetchRequest, FetchResponse, ReplayPreset, SchemaRequest, TopicRequest,
};
use sf_emulator::Config;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status, Streaming};

type Auth = Box<dyn FnMut(Request<()>) -> Result<Request<()>, Status> + Send>;
type Client = PubSubClient<InterceptedService<Channel, Auth>>;

/// A client sending `accesstoken`, `instanceurl` and `tenantid` as a Pub/Sub client does,
/// the tenant read from the token (`<15-character org id>!…`).
async fn client_with(channel: Channel, token: &str, instance: &str) -> Client {
    let tenant = token.split('!').next().unwrap_or_default().to_string();
    let (token, instance) = (token.to_string(), instance.to_string());
    let auth: Auth = Box::new(move |mut r: Request<()>| {
        let md = r.metadata_mut();
        md.insert("accesstoken", token.parse().unwrap());
        md.insert("instanceurl", instance.parse().unwrap());
        md.insert("tenantid", tenant.parse().unwrap());
        Ok(r)
    });
    PubSubClient::with_interceptor(channel, auth)
}

async fn client(emu: &common::Emu) -> Client {
    let url = emu
        .running
        .pubsub_url
        .clone()
        .expect("the Pub/Sub API is served");
    let channel = Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    client_with(channel, &emu.token, &emu.base).await
}

/// An open subscription: the request side and the response stream.
struct Sub {
    requests: mpsc::Sender<FetchRequest>,
    responses: Streaming<FetchResponse>,
}

impl Sub {
    async fn open(
        client: &mut Client,
        topic: &str,
        preset: ReplayPreset,
        replay_id: Vec<u8>,
        num_requested: i32,
    ) -> Result<Sub, Status> {
        let (requests, rx) = mpsc::channel(16);
        requests
            .send(FetchRequest {
                topic_name: topic.into(),
                replay_preset: preset as i32,
                replay_id,
                num_requested,
                auth_refresh: String::new(),
            })
            .await
            .unwrap();
        let responses = client
            .subscribe(ReceiverStream::new(rx))
            .await?
            .into_inner();
        Ok(Sub {
            requests,
            responses,
        })
    }

    async fn request(&self, n: i32) {
        self.requests
            .send(FetchRequest {
                num_requested: n,
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// The next response within `wait` (None when none came).
    async fn next(&mut self, wait: Duration) -> Option<Result<FetchResponse, Status>> {
        match tokio::time::timeout(wait, self.responses.message()).await {
            Ok(Ok(Some(r))) => Some(Ok(r)),
            Ok(Ok(None)) => None,
            Ok(Err(status)) => Some(Err(status)),
            Err(_) => None,
        }
    }

    /// Responses until `count` events arrived.
    async fn events(&mut self, count: usize) -> Vec<FetchResponse> {
        let mut got = Vec::new();
        let mut n = 0;
        while n < count {
            let r = self
                .next(Duration::from_secs(10))
                .await
                .unwrap_or_else(|| panic!("{n} of {count} events arrived"))
                .expect("a response");
            n += r.events.len();
            got.push(r);
        }
        assert_eq!(n, count, "no more than asked for");
        got
    }
}

fn error_code(status: &Status) -> String {
    status
        .metadata()
        .get("error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn create_accounts(emu: &common::Emu, names: &[&str]) -> Vec<String> {
    let records: Vec<_> = names
        .iter()
        .map(|n| json!({"attributes": {"type": "Account"}, "Name": n}))
        .collect();
    let (status, body) = emu
        .post(
            &emu.data("/composite/sobjects"),
            json!({"allOrNone": true, "records": records}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// A decoded event: its record fields by name, and the schema's field names by position.
struct Decoded {
    fields: Vec<(String, Avro)>,
}

impl Decoded {
    fn get(&self, name: &str) -> &Avro {
        &self.fields.iter().find(|(k, _)| k == name).unwrap().1
    }

    fn header(&self, name: &str) -> Avro {
        let Avro::Record(h) = self.get("ChangeEventHeader") else {
            panic!("the header is a record")
        };
        h.iter().find(|(k, _)| k == name).unwrap().1.clone()
    }

    fn strings(&self, name: &str) -> Vec<String> {
        match self.header(name) {
            Avro::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Avro::String(s) => s,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    /// Names of the top-level fields a bitmap list sets (`Parent.Child` for nested entries).
    fn bitmap_names(&self, name: &str, schema: &serde_json::Value) -> BTreeSet<String> {
        let fields = schema["fields"].as_array().unwrap();
        let bits = |hex: &str| -> Vec<usize> {
            let digits = hex.trim_start_matches("0x");
            let bytes: Vec<u8> = (0..digits.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
                .collect();
            (0..bytes.len() * 8)
                .filter(|b| bytes[bytes.len() - 1 - b / 8] & (1 << (b % 8)) != 0)
                .collect()
        };
        let mut out = BTreeSet::new();
        for entry in self.strings(name) {
            match entry.split_once('-') {
                Some((pos, hex)) => {
                    let parent = &fields[pos.parse::<usize>().unwrap()];
                    let sub = parent["type"][1]["fields"].as_array().unwrap();
                    for b in bits(hex) {
                        out.insert(format!(
                            "{}.{}",
                            parent["name"].as_str().unwrap(),
                            sub[b]["name"].as_str().unwrap()
                        ));
                    }
                }
                None => {
                    assert!(entry.starts_with("0x") && entry.len() % 2 == 0, "{entry}");
                    assert_eq!(entry, entry.to_uppercase().replace("0X", "0x"));
                    for b in bits(&entry) {
                        out.insert(fields[b]["name"].as_str().unwrap().to_string());
                    }
                }
            }
        }
        out
    }
}

async fn schema_of(client: &mut Client, id: &str) -> (Schema, serde_json::Value) {
    let info = client
        .get_schema(SchemaRequest {
            schema_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.schema_id, id);
    (
        Schema::parse_str(&info.schema_json).unwrap(),
        serde_json::from_str(&info.schema_json).unwrap(),
    )
}

fn decode(schema: &Schema, payload: &[u8]) -> Decoded {
    match apache_avro::from_avro_datum(schema, &mut &payload[..], None).unwrap() {
        Avro::Record(fields) => Decoded { fields },
        other => panic!("{other:?}"),
    }
}

fn some_string(s: &str) -> Avro {
    Avro::Union(1, Box::new(Avro::String(s.into())))
}

fn null() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}

#[tokio::test]
async fn topics_and_schemas_come_from_the_describe_and_bad_credentials_are_refused() {
    let emu = common::start().await;
    let mut c = client(&emu).await;
    let topic = c
        .get_topic(TopicRequest {
            topic_name: "/data/AccountChangeEvent".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(topic.can_subscribe && !topic.can_publish);
    assert_eq!(topic.tenant_guid, emu.running.org.org_id().to_string());
    assert!(!topic.rpc_id.is_empty());
    let (_, json) = schema_of(&mut c, &topic.schema_id).await;
    assert_eq!(json["name"], "AccountChangeEvent");
    assert_eq!(json["fields"][0]["name"], "ChangeEventHeader");
    let names: Vec<&str> = json["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Name") && names.contains(&"BillingAddress"));
    assert!(!names.contains(&"SystemModstamp") && !names.contains(&"IsDeleted"));

    let unknown = c
        .get_topic(TopicRequest {
            topic_name: "/data/NopeChangeEvent".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let no_schema = c
        .get_schema(SchemaRequest {
            schema_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(no_schema.code(), Code::NotFound);

    let url = emu.running.pubsub_url.clone().unwrap();
    let channel = Endpoint::from_shared(url).unwrap().connect().await.unwrap();
    let org15 = emu.token.split('!').next().unwrap().to_string();
    let mut bad = client_with(channel.clone(), &format!("{org15}!AQnottoken"), &emu.base).await;
    let refused = bad
        .get_topic(TopicRequest {
            topic_name: "/data/AccountChangeEvent".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    assert_eq!(
        error_code(&refused),
        "sfdc.platform.eventbus.grpc.service.auth.error"
    );
    assert!(refused.metadata().get("rpc-id").is_some());
    let mut elsewhere = client_with(channel, &emu.token, "https://other.my.salesforce.com").await;
    let refused = elsewhere
        .get_topic(TopicRequest {
            topic_name: "/data/ChangeEvents".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn changes_arrive_as_avro_datums_whose_bitmaps_tell_unchanged_from_nulled() {
    let emu = common::start().await;
    let mut c = client(&emu).await;
    let mut sub = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Latest,
        vec![],
        10,
    )
    .await
    .unwrap();
    let ids = create_accounts(&emu, &["Acme"]).await;
    let (status, _) = emu
        .patch(
            &emu.data(&format!("/sobjects/Account/{}", ids[0])),
            json!({"Name": "Acme Corp", "Phone": "555-0100", "BillingCity": "Lyon"}),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = emu
        .patch(
            &emu.data(&format!("/sobjects/Account/{}", ids[0])),
            json!({"Phone": null, "BillingCity": null}),
        )
        .await;
    assert_eq!(status, 204);
    let responses = sub.events(3).await;
    let events: Vec<_> = responses.iter().flat_map(|r| r.events.clone()).collect();
    let last = responses.last().unwrap();
    assert_eq!(
        last.latest_replay_id,
        events.last().unwrap().replay_id,
        "latest_replay_id is the last delivered"
    );
    assert_eq!(last.pending_num_requested, 7);

    let event = events[0].event.clone().unwrap();
    let (schema, json) = schema_of(&mut c, &event.schema_id).await;
    let create = decode(&schema, &event.payload);
    assert_eq!(create.header("changeType"), Avro::Enum(0, "CREATE".into()));
    assert_eq!(
        create.header("recordIds"),
        Avro::Array(vec![Avro::String(ids[0].clone())])
    );
    let Avro::Long(commit) = create.header("commitNumber") else {
        panic!()
    };
    assert!(commit > 1 << 53, "commit numbers exceed 2^53: {commit}");
    assert_eq!(*create.get("Name"), some_string("Acme"));
    assert!(matches!(create.get("CreatedDate"), Avro::Union(1, v) if matches!(**v, Avro::Long(_))));

    let update = decode(&schema, &events[1].event.clone().unwrap().payload);
    assert_eq!(update.header("changeType"), Avro::Enum(1, "UPDATE".into()));
    assert_eq!(
        update.bitmap_names("changedFields", &json),
        ["Name", "Phone", "BillingAddress.City", "LastModifiedDate"]
            .map(String::from)
            .into()
    );
    assert!(update.strings("nulledFields").is_empty());
    assert_eq!(*update.get("Website"), null(), "unchanged fields are null");

    let nulling = decode(&schema, &events[2].event.clone().unwrap().payload);
    assert_eq!(*nulling.get("Phone"), null());
    assert_eq!(*nulling.get("Name"), null());
    assert_eq!(
        nulling.bitmap_names("nulledFields", &json),
        ["Phone", "BillingAddress.City"].map(String::from).into()
    );
    assert!(!nulling
        .bitmap_names("changedFields", &json)
        .contains("Name"));

    // Gap events injected on the CometD fault knob reach Pub/Sub subscribers too.
    let (status, _) = emu
        .post(
            &emu.url("/__emulator/faults/cdc/gap"),
            json!({"object": "Account", "changeType": "GAP_UPDATE", "recordIds": [ids[0]]}),
        )
        .await;
    assert_eq!(status, 200);
    let gap = sub.events(1).await;
    let gap = decode(&schema, &gap[0].events[0].event.clone().unwrap().payload);
    assert_eq!(gap.header("changeType"), Avro::Enum(5, "GAP_UPDATE".into()));
}

#[tokio::test]
async fn flow_control_delivers_exactly_what_is_owed_at_most_100_at_a_time() {
    let emu = common::start().await;
    for chunk in 0..2 {
        let names: Vec<String> = (0..75).map(|i| format!("A{chunk}-{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        create_accounts(&emu, &names).await;
    }
    let mut c = client(&emu).await;
    // 250 asked: taken as 100.
    let mut sub = Sub::open(
        &mut c,
        "/data/AccountChangeEvent",
        ReplayPreset::Earliest,
        vec![],
        250,
    )
    .await
    .unwrap();
    let first = sub.events(100).await;
    assert_eq!(first.last().unwrap().pending_num_requested, 0);
    assert!(
        sub.next(Duration::from_millis(300)).await.is_none(),
        "nothing beyond what was asked"
    );
    // Requests add up: 30 + 100 owed, 50 left to deliver.
    sub.request(30).await;
    sub.events(30).await;
    sub.request(100).await;
    let rest = sub.events(20).await;
    assert_eq!(rest.last().unwrap().pending_num_requested, 80);
    // New events while owed arrive without another request.
    create_accounts(&emu, &["late"]).await;
    let late = sub.events(1).await;
    assert_eq!(late[0].pending_num_requested, 79);
}

#[tokio::test]
async fn custom_replay_resumes_after_an_event_and_corrupt_or_expired_ids_are_invalid() {
    let emu = common::start().await;
    create_accounts(&emu, &["one", "two", "three"]).await;
    let mut c = client(&emu).await;
    let mut all = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Earliest,
        vec![],
        3,
    )
    .await
    .unwrap();
    let events: Vec<_> = all
        .events(3)
        .await
        .into_iter()
        .flat_map(|r| r.events)
        .collect();
    let mut after_first = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Custom,
        events[0].replay_id.clone(),
        10,
    )
    .await
    .unwrap();
    let resumed: Vec<_> = after_first
        .events(2)
        .await
        .into_iter()
        .flat_map(|r| r.events)
        .map(|e| e.replay_id)
        .collect();
    assert_eq!(
        resumed,
        vec![events[1].replay_id.clone(), events[2].replay_id.clone()]
    );

    let corrupt = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Custom,
        b"not a replay id".to_vec(),
        10,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(corrupt.code(), Code::InvalidArgument);
    assert_eq!(
        error_code(&corrupt),
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    );
    assert!(corrupt.metadata().get("rpc-id").is_some());

    emu.running.org.cdc().shrink_retention(1);
    let expired = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Custom,
        events[0].replay_id.clone(),
        10,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(expired.code(), Code::InvalidArgument);
    assert_eq!(error_code(&expired), error_code(&corrupt));
}

#[tokio::test]
async fn keepalives_while_owed_and_an_idle_stream_is_closed() {
    let emu = common::start_with(Config {
        pubsub_keepalive_ms: 200,
        ..Config::ephemeral()
    })
    .await;
    emu.running
        .org
        .streaming()
        .pubsub
        .set_idle_close(Duration::from_millis(300));
    let mut c = client(&emu).await;
    let mut owed = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Latest,
        vec![],
        5,
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let keepalive = owed.next(Duration::from_secs(5)).await.unwrap().unwrap();
        assert!(keepalive.events.is_empty());
        assert_eq!(keepalive.pending_num_requested, 5);
        assert_eq!(keepalive.latest_replay_id.len(), 8);
    }
    let mut idle = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Latest,
        vec![],
        0,
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    assert!(idle.next(Duration::from_secs(5)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "closed, not timed out"
    );
}

#[tokio::test]
async fn subscriptions_share_cometd_allocations_and_faults() {
    let emu = common::start().await;
    let org = &emu.running.org;
    org.set_limit("DurableStreamingApiConcurrentClients", 1);
    let mut c = client(&emu).await;
    let mut first = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Latest,
        vec![],
        5,
    )
    .await
    .unwrap();
    let second = Sub::open(
        &mut c,
        "/data/ChangeEvents",
        ReplayPreset::Latest,
        vec![],
        5,
    )
    .await
    .err()
    .expect("over the cap");
    assert_eq!(second.code(), Code::ResourceExhausted);
    assert!(error_code(&second).contains("concurrent.client"));

    // A dropped server side ends the stream with UNAVAILABLE, and frees its place.
    let (status, body) = emu
        .post(&emu.url("/__emulator/faults/streaming/drop"), json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["droppedSubscriptions"], 1);
    let ended = first
        .next(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable);
    assert_eq!(
        error_code(&ended),
        "sfdc.platform.eventbus.grpc.service.unavailable"
    );

    // The daily delivery allocation: one event left, then the stream fails.
    org.set_limit("DailyDeliveredPlatformEvents", 1);
    let mut again = loop {
        match Sub::open(
            &mut c,
            "/data/ChangeEvents",
            ReplayPreset::Latest,
            vec![],
            5,
        )
        .await
        {
            Ok(sub) => break sub,
            // The dropped stream's place is freed as its task ends.
            Err(s) if s.code() == Code::ResourceExhausted => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(s) => panic!("{s}"),
        }
    };
    create_accounts(&emu, &["a", "b"]).await;
    let delivered = again.next(Duration::from_secs(5)).await.unwrap().unwrap();
    assert_eq!(delivered.events.len(), 1);
    let spent = again
        .next(Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(spent.code(), Code::ResourceExhausted);
}

#[tokio::test]
async fn served_over_tls_with_the_emulators_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let emu = common::start_with(Config {
        tls: true,
        ca_out: Some(ca.clone()),
        ..Config::ephemeral()
    })
    .await;
    let url = emu.running.pubsub_url.clone().unwrap();
    assert!(url.starts_with("https://"));
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).unwrap(),
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut c = client_with(channel, &emu.token, &emu.base).await;
    let topic = c
        .get_topic(TopicRequest {
            topic_name: "/data/ChangeEvents".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(topic.can_subscribe);
}

#[tokio::test]
async fn a_field_added_to_the_object_gets_a_new_schema_id_and_older_events_keep_theirs() {
    let emu = common::start().await;
    let mut c = client(&emu).await;
    async fn topic(c: &mut Client) -> String {
        c.get_topic(TopicRequest {
            topic_name: "/data/AccountChangeEvent".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id
    }
    let old_id = topic(&mut c).await;
    let ids = create_accounts(&emu, &["Before"]).await;

    let (status, added) = emu
        .post(
            &emu.url("/__emulator/schema/Account/fields"),
            json!({"name": "Tier__c", "type": "string", "length": 40}),
        )
        .await;
    assert_eq!(status, 201, "{added}");
    let new_id = topic(&mut c).await;
    assert_ne!(new_id, old_id, "the schema id changes with the fields");
    assert_eq!(added["schemaId"], new_id.as_str());

    let (status, body) = emu
        .patch(
            &emu.data(&format!("/sobjects/Account/{}", ids[0])),
            json!({"Tier__c": "Gold", "Phone": "555-0100"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = emu
        .patch(
            &emu.data(&format!("/sobjects/Account/{}", ids[0])),
            json!({"Tier__c": null}),
        )
        .await;
    assert_eq!(status, 204, "{body}");

    // A subscriber replaying from before the change gets each event with the schema it was
    // published with; both resolve by GetSchema.
    let mut sub = Sub::open(
        &mut c,
        "/data/AccountChangeEvent",
        ReplayPreset::Earliest,
        vec![],
        10,
    )
    .await
    .unwrap();
    let events: Vec<_> = sub
        .events(3)
        .await
        .into_iter()
        .flat_map(|r| r.events)
        .map(|e| e.event.unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .map(|e| e.schema_id.clone())
            .collect::<Vec<_>>(),
        vec![old_id.clone(), new_id.clone(), new_id.clone()]
    );
    let (old_schema, old_json) = schema_of(&mut c, &old_id).await;
    let (new_schema, new_json) = schema_of(&mut c, &new_id).await;
    let names = |j: &serde_json::Value| -> Vec<String> {
        j["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (old_names, new_names) = (names(&old_json), names(&new_json));
    assert!(!old_names.contains(&"Tier__c".to_string()));
    assert_eq!(
        new_names[..old_names.len()],
        old_names[..],
        "existing fields keep their positions"
    );
    assert_eq!(new_names[old_names.len()..], ["Tier__c".to_string()]);

    let create = decode(&old_schema, &events[0].payload);
    assert_eq!(*create.get("Name"), some_string("Before"));
    let update = decode(&new_schema, &events[1].payload);
    assert_eq!(*update.get("Tier__c"), some_string("Gold"));
    assert_eq!(
        update.bitmap_names("changedFields", &new_json),
        ["Tier__c", "Phone", "LastModifiedDate"]
            .map(String::from)
            .into()
    );
    let tier_bit = old_names.len();
    let first = &update.strings("changedFields")[0];
    let digits = first.trim_start_matches("0x");
    let top = u128::from_str_radix(digits, 16).unwrap();
    assert!(
        top & (1 << tier_bit) != 0,
        "{first} names position {tier_bit}"
    );
    let nulling = decode(&new_schema, &events[2].payload);
    assert_eq!(*nulling.get("Tier__c"), null());
    assert_eq!(
        nulling.bitmap_names("nulledFields", &new_json),
        ["Tier__c".to_string()].into()
    );
}

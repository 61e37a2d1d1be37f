"""The emulator's Pub/Sub API driven as Salesforce's own Python quick start drives Salesforce
(github.com/forcedotcom/pub-sub-api, python/): SOAP login parsed by element position, the
`accesstoken` / `instanceurl` / `tenantid` metadata, grpcio stubs generated from the
interface definition by grpc_tools.protoc, TLS trusting the emulator's CA, GetTopic,
GetSchema, Subscribe with FetchRequests, Apache avro decoding each payload with the schema
fetched by its own schema_id, and the header bitmaps read with bitstring as the quick start's
ChangeEventHeaderUtility does. Run by `cargo test -p sf-emulator --test pubsub_python`,
which starts the emulator and sets:
  SF_EMULATOR_URL          base URL (https://127.0.0.1:PORT)
  SF_EMULATOR_CA           the emulator's CA certificate (PEM)
  SF_EMULATOR_PUBSUB       the Pub/Sub API's host:port (TLS)
  SF_EMULATOR_PROTO_DIR    the directory holding pubsub_api.proto
"""

import importlib
import io
import os
import sys
import threading
import urllib.parse
import xml.etree.ElementTree as et

import avro.io
import avro.schema
import grpc
import pytest
import requests
from bitstring import BitArray
from grpc_tools import protoc

API_VERSION = "59.0"


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run this suite through `cargo test -p sf-emulator "
            "--test pubsub_python`, which starts the emulator and sets it"
        )
    return value


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """pubsub_api_pb2 and pubsub_api_pb2_grpc, generated now from the interface definition."""
    out = tmp_path_factory.mktemp("stubs")
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{env('SF_EMULATOR_PROTO_DIR')}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            "pubsub_api.proto",
        ]
    )
    assert status == 0, "grpc_tools.protoc compiles pubsub_api.proto"
    sys.path.insert(0, str(out))
    return (
        importlib.import_module("pubsub_api_pb2"),
        importlib.import_module("pubsub_api_pb2_grpc"),
    )


@pytest.fixture(scope="module")
def session():
    """SOAP login as the quick start does it: the result's children read by position."""
    base = env("SF_EMULATOR_URL").rstrip("/")
    xml = (
        "<soapenv:Envelope xmlns:soapenv='http://schemas.xmlsoap.org/soap/envelope/' "
        "xmlns:xsi='http://www.w3.org/2001/XMLSchema-instance' "
        "xmlns:urn='urn:partner.soap.sforce.com'><soapenv:Body>"
        "<urn:login><urn:username><![CDATA[admin@example.com]]></urn:username>"
        "<urn:password><![CDATA[forcesync]]></urn:password></urn:login>"
        "</soapenv:Body></soapenv:Envelope>"
    )
    res = requests.post(
        f"{base}/services/Soap/u/{API_VERSION}/",
        data=xml,
        headers={"content-type": "text/xml", "SOAPAction": "Login"},
        verify=env("SF_EMULATOR_CA"),
    )
    assert res.status_code == 200, res.text
    result = et.fromstring(res.content.decode("utf-8"))[0][0][0]
    parts = urllib.parse.urlparse(result[3].text)
    instance_url = f"{parts.scheme}://{parts.netloc}"
    session_id = result[4].text
    tenant_id = result[6][8].text
    assert instance_url == base
    assert tenant_id.startswith("00D") and session_id.startswith(tenant_id[:15] + "!")
    return {
        "url": instance_url,
        "token": session_id,
        "metadata": (
            ("accesstoken", session_id),
            ("instanceurl", instance_url),
            ("tenantid", tenant_id),
        ),
    }


@pytest.fixture(scope="module")
def stub(pb):
    with open(env("SF_EMULATOR_CA"), "rb") as f:
        credentials = grpc.ssl_channel_credentials(f.read())
    channel = grpc.secure_channel(env("SF_EMULATOR_PUBSUB"), credentials)
    yield pb[1].PubSubStub(channel)
    channel.close()


def rest(session, method, path, body=None):
    res = requests.request(
        method,
        f"{session['url']}/services/data/v{API_VERSION}{path}",
        json=body,
        headers={"Authorization": f"Bearer {session['token']}"},
        verify=env("SF_EMULATOR_CA"),
    )
    assert res.status_code < 300, res.text
    return res.json() if res.content else None


def decode(schema_json, payload):
    schema = avro.schema.parse(schema_json)
    reader = avro.io.DatumReader(schema)
    return schema, reader.read(avro.io.BinaryDecoder(io.BytesIO(payload)))


def bitmap_fields(schema, bitmaps):
    """Field names a header bitmap list names (top level and `Parent.Child`), read as the quick
    start's ChangeEventHeaderUtility reads them: hex → bits, least significant first."""

    def positions(hex_bits):
        bits = BitArray(hex=hex_bits[2:] if hex_bits.startswith("0x") else hex_bits).bin
        return [i for i, b in enumerate(bits[::-1]) if b == "1"]

    names = []
    for entry in bitmaps:
        if "-" in entry:
            parent_pos, hex_bits = entry.split("-")
            parent = schema.fields[int(parent_pos)]
            record = [s for s in parent.type.schemas if s.type == "record"][0]
            names += [f"{parent.name}.{record.fields[i].name}" for i in positions(hex_bits)]
        else:
            names += [schema.fields[i].name for i in positions(entry)]
    return set(names)


def fetch(stub, pb2, session, topic, preset, count, replay_id=b"", until_caught_up=False):
    """Subscribes and returns the first `count` events, asking for more after each response
    the way the quick start's semaphore-driven request stream does; with `until_caught_up`,
    also stops at the first keepalive (an empty response: no more events for now)."""
    more = threading.Semaphore(0)
    done = threading.Event()

    def requests_stream():
        yield pb2.FetchRequest(
            topic_name=topic, replay_preset=preset, replay_id=replay_id, num_requested=count
        )
        while not done.is_set():
            if more.acquire(timeout=0.2) and not done.is_set():
                yield pb2.FetchRequest(topic_name=topic, num_requested=count)

    call = stub.Subscribe(requests_stream(), metadata=session["metadata"], timeout=30)
    events = []
    try:
        for response in call:
            assert response.rpc_id
            if until_caught_up and not response.events:
                break
            events += list(response.events)
            if len(events) >= count:
                assert response.latest_replay_id == events[-1].replay_id
                break
            if response.pending_num_requested == 0:
                more.release()
    finally:
        done.set()
        call.cancel()
    return events[:count]


def test_change_events_reach_the_python_quick_start(pb, session, stub):
    pb2, _ = pb
    topic = stub.GetTopic(
        pb2.TopicRequest(topic_name="/data/AccountChangeEvent"), metadata=session["metadata"]
    )
    assert topic.can_subscribe and not topic.can_publish
    account = rest(session, "POST", "/sobjects/Account", {"Name": "Quickstart Co"})["id"]
    rest(session, "PATCH", f"/sobjects/Account/{account}", {"Phone": "555-0100", "Website": None})

    events = fetch(stub, pb2, session, "/data/AccountChangeEvent", pb2.ReplayPreset.EARLIEST, 2)
    schemas = {}
    decoded = []
    for e in events:
        assert e.event.schema_id == topic.schema_id
        if e.event.schema_id not in schemas:
            schemas[e.event.schema_id] = stub.GetSchema(
                pb2.SchemaRequest(schema_id=e.event.schema_id), metadata=session["metadata"]
            ).schema_json
        decoded.append(decode(schemas[e.event.schema_id], e.event.payload))

    schema, create = decoded[0]
    header = create["ChangeEventHeader"]
    assert header["entityName"] == "Account"
    assert header["changeType"] == "CREATE"
    assert header["recordIds"] == [account]
    assert header["commitNumber"] > 2**53
    assert create["Name"] == "Quickstart Co"
    assert isinstance(create["CreatedDate"], int)

    _, update = decoded[1]
    header = update["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE"
    assert bitmap_fields(schema, header["changedFields"]) == {"Phone", "LastModifiedDate"}
    assert update["Phone"] == "555-0100"
    assert update["Name"] is None, "unchanged fields are null"

    # Resuming after the first event's replay id delivers the second only.
    resumed = fetch(
        stub, pb2, session, "/data/AccountChangeEvent", pb2.ReplayPreset.CUSTOM, 1,
        replay_id=events[0].replay_id,
    )
    assert resumed[0].replay_id == events[1].replay_id


def test_a_field_added_mid_stream_comes_with_a_new_schema_the_client_fetches_by_id(
    pb, session, stub
):
    pb2, _ = pb
    before = stub.GetTopic(
        pb2.TopicRequest(topic_name="/data/AccountChangeEvent"), metadata=session["metadata"]
    ).schema_id
    account = rest(session, "POST", "/sobjects/Account", {"Name": "Schema Change Co"})["id"]
    res = requests.post(
        f"{session['url']}/__emulator/schema/Account/fields",
        json={"name": "Tier__c", "type": "string", "length": 40},
        verify=env("SF_EMULATOR_CA"),
    )
    assert res.status_code == 201, res.text
    rest(session, "PATCH", f"/sobjects/Account/{account}", {"Tier__c": "Gold"})

    events = fetch(
        stub, pb2, session, "/data/AccountChangeEvent", pb2.ReplayPreset.EARLIEST, 100,
        until_caught_up=True,
    )
    schemas = {}

    def decoded(event):
        schema_id = event.event.schema_id
        if schema_id not in schemas:
            schemas[schema_id] = stub.GetSchema(
                pb2.SchemaRequest(schema_id=schema_id), metadata=session["metadata"]
            ).schema_json
        return decode(schemas[schema_id], event.event.payload)

    mine = [e for e in events if decoded(e)[1]["ChangeEventHeader"]["recordIds"] == [account]]
    assert [e.event.schema_id == before for e in mine] == [True, False]
    assert before in schemas, "the old schema still resolves by id"
    new_json = stub.GetSchema(
        pb2.SchemaRequest(schema_id=mine[1].event.schema_id), metadata=session["metadata"]
    ).schema_json
    schema, update = decode(new_json, mine[1].event.payload)
    assert update["Tier__c"] == "Gold"
    assert schema.fields[-1].name == "Tier__c"
    assert "Tier__c" in bitmap_fields(schema, update["ChangeEventHeader"]["changedFields"])

"""The real simple-salesforce 1.12.10 `sf.bulk` (Bulk API 1.0, JSON jobs) against sf-emulator:
insert, update, upsert by external ID, delete, query and queryAll."""

import pytest
from simple_salesforce import Salesforce

from conftest import PASSWORD, USERNAME


@pytest.fixture
def sf(routed_session):
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token="", session=routed_session
    )


def test_bulk1_insert_update_delete_and_query(sf):
    records = [{"Name": f"B1 {i:03d}", "NumberOfEmployees": i} for i in range(45)]
    results = sf.bulk.Account.insert(records, batch_size=20)
    assert len(results) == 45
    assert all(r["success"] and r["created"] for r in results)
    ids = [r["id"] for r in results]
    assert all(len(i) == 18 and i.startswith("001") for i in ids)

    updated = sf.bulk.Account.update([{"Id": ids[0], "Name": "B1 renamed"}])
    assert updated[0]["success"] is True

    failed = sf.bulk.Account.insert([{"Industry": "Energy"}])
    assert failed[0]["success"] is False
    assert failed[0]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"

    rows = sf.bulk.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'B1%'")
    names = sorted(r["Name"] for r in rows)
    assert len(names) == 45 and "B1 renamed" in names

    deleted = sf.bulk.Account.delete([{"Id": ids[1]}])
    assert deleted[0]["success"] is True
    live = sf.bulk.Account.query(f"SELECT Id FROM Account WHERE Id = '{ids[1]}'")
    assert live == []
    everything = sf.bulk.Account.query_all(
        f"SELECT Id, IsDeleted FROM Account WHERE Id = '{ids[1]}'"
    )
    assert [r["IsDeleted"] for r in everything] == [True]


def test_bulk1_upsert_by_external_id(sf):
    account = sf.Account.create({"Name": "Invoice owner"})["id"]
    first = sf.bulk.Invoice__c.upsert(
        [{"External_Id__c": "B1-INV-1", "Account__c": account, "Amount__c": 10}],
        "External_Id__c",
    )
    assert first[0]["success"] and first[0]["created"]
    again = sf.bulk.Invoice__c.upsert(
        [{"External_Id__c": "B1-INV-1", "Amount__c": 12}], "External_Id__c"
    )
    assert again[0]["success"] and again[0]["created"] is False
    rows = sf.bulk.Invoice__c.query(
        "SELECT Amount__c FROM Invoice__c WHERE External_Id__c = 'B1-INV-1'"
    )
    assert [r["Amount__c"] for r in rows] == [12]

"""The real simple-salesforce 1.12.10 against sf-emulator: SOQL queries with paging, queryAll,
query errors and Bulk API 2.0 ingest and query jobs."""

import csv
import io

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from conftest import PASSWORD, USERNAME


@pytest.fixture
def sf(routed_session):
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token="", session=routed_session
    )


def test_query_all_sees_deleted_records(sf):
    account_id = sf.Account.create({"Name": "Gone soon"})["id"]
    assert sf.Account.delete(account_id) == 204
    live = sf.query(f"SELECT Id FROM Account WHERE Id = '{account_id}'")
    assert live["totalSize"] == 0
    deleted = sf.query_all(
        f"SELECT Id, IsDeleted FROM Account WHERE Id = '{account_id}'", include_deleted=True
    )
    assert [r["IsDeleted"] for r in deleted["records"]] == [True]


def test_unknown_fields_in_a_query_are_rejected(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.query("SELECT No_Such_Field__c FROM Account")
    assert failure.value.content[0]["errorCode"] == "INVALID_FIELD"


# ---- paging ------------------------------------------------------------------------------


def test_query_pages_and_query_all_past_2000_rows(sf, control):
    control("seed", {"object": "Account", "count": 2500, "seed": 7})

    first = sf.query("SELECT Id, Name FROM Account")
    assert first["totalSize"] == 2500
    assert first["done"] is False and len(first["records"]) == 2000
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 500
    assert "nextRecordsUrl" not in rest

    everything = sf.query_all("SELECT Id, Name FROM Account ORDER BY Name")
    assert everything["totalSize"] == 2500
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == 2500 and len(set(ids)) == 2500
    names = [r["Name"] for r in everything["records"]]
    # Salesforce sorts text case-insensitively.
    assert names == sorted(names, key=str.casefold)


# ---- Bulk API 2.0 -------------------------------------------------------------------------


def test_bulk2_insert_then_query(sf):
    records = [{"Name": f"Bulk {i:04d}", "NumberOfEmployees": str(i)} for i in range(300)]
    results = sf.bulk2.Account.insert(records=records, wait=0)
    assert sum(r["numberRecordsProcessed"] for r in results) == 300
    assert sum(r["numberRecordsFailed"] for r in results) == 0

    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, NumberOfEmployees FROM Account", max_records=120, wait=0
        )
    )
    assert len(pages) == 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(rows) == 300
    assert sorted(r["Name"] for r in rows) == [f"Bulk {i:04d}" for i in range(300)]
    assert all(len(r["Id"]) == 18 for r in rows)



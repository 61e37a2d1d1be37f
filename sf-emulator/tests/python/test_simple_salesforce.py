"""The real simple-salesforce 1.12.10 against sf-emulator: logins, CRUD, upsert and error
handling, exactly as an application would call them."""

import os

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from conftest import CONSUMER_KEY, CONSUMER_SECRET, PASSWORD, USERNAME


@pytest.fixture
def sf(routed_session):
    """Logged in with simple-salesforce's default: SOAP login with a security token."""
    return Salesforce(
        username=USERNAME, password=PASSWORD, security_token="", session=routed_session
    )


def _object_names(sf):
    return {o["name"] for o in sf.describe()["sobjects"]}


# ---- logins -------------------------------------------------------------------------------


def test_soap_login_gives_a_working_session(sf, instance):
    assert sf.auth_type == "password"
    assert sf.sf_instance == instance
    assert sf.session_id.startswith("00D")
    assert "Account" in _object_names(sf)


def test_soap_login_with_a_wrong_password_fails_with_invalid_login(routed_session):
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=USERNAME, password="wrong", security_token="", session=routed_session
        )
    assert failure.value.code == "INVALID_LOGIN"
    assert "Invalid username, password, security token" in failure.value.auth_message


def test_oauth_password_login(routed_session, instance):
    sf = Salesforce(
        username=USERNAME,
        password=PASSWORD,
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        session=routed_session,
    )
    assert sf.sf_instance == instance
    assert "Contact" in _object_names(sf)


def test_oauth_password_login_with_a_wrong_secret_or_password_fails(routed_session):
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=USERNAME,
            password=PASSWORD,
            consumer_key=CONSUMER_KEY,
            consumer_secret="not-the-secret",
            session=routed_session,
        )
    assert failure.value.code == "invalid_client"
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            username=USERNAME,
            password="wrong",
            consumer_key=CONSUMER_KEY,
            consumer_secret=CONSUMER_SECRET,
            session=routed_session,
        )
    assert failure.value.code == "invalid_grant"
    assert failure.value.auth_message == "authentication failure"


def test_client_credentials_login_on_a_my_domain(routed_session, instance):
    sf = Salesforce(
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        domain="forcesync-dev.my",
        session=routed_session,
    )
    assert sf.sf_instance == instance
    assert "Account" in _object_names(sf)


def test_jwt_bearer_login(routed_session, instance):
    key_path = os.environ.get("SF_EMULATOR_JWT_KEY")
    assert key_path, "SF_EMULATOR_JWT_KEY (the JWT signing key) is not set"
    sf = Salesforce(
        username=USERNAME,
        consumer_key=CONSUMER_KEY,
        privatekey_file=key_path,
        session=routed_session,
    )
    assert sf.sf_instance == instance
    assert "Account" in _object_names(sf)


# ---- records ------------------------------------------------------------------------------


def test_create_get_update_delete(sf):
    created = sf.Account.create({"Name": "Acme", "Industry": "Energy"})
    assert created["success"] is True and created["errors"] == []
    account_id = created["id"]
    assert len(account_id) == 18 and account_id.startswith("001")

    record = sf.Account.get(account_id)
    assert record["Name"] == "Acme" and record["Industry"] == "Energy"
    assert record["attributes"]["type"] == "Account"

    assert sf.Account.update(account_id, {"Name": "Acme Corp"}) == 204
    assert sf.Account.get(account_id)["Name"] == "Acme Corp"

    assert sf.Account.delete(account_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(account_id)


def test_upsert_by_external_id(sf):
    account_id = sf.Account.create({"Name": "Bill To"})["id"]
    assert (
        sf.Invoice__c.upsert(
            "External_Id__c/INV-0001", {"Account__c": account_id, "Amount__c": 120.5}
        )
        == 201
    )
    assert sf.Invoice__c.upsert("External_Id__c/INV-0001", {"Amount__c": 99}) == 200
    invoice = sf.Invoice__c.get_by_custom_id("External_Id__c", "INV-0001")
    assert invoice["Amount__c"] == 99
    assert invoice["Account__c"] == account_id


# ---- errors -------------------------------------------------------------------------------


def test_validation_rule_rejects_the_write(sf, control):
    control(
        "validation-rules",
        {
            "object": "Account",
            "when": [{"field": "Name", "op": "=", "value": "Blocked"}],
            "message": "Blocked accounts are not allowed",
        },
    )
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.create({"Name": "Blocked"})
    error = failure.value.content[0]
    assert error["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert error["message"] == "Blocked accounts are not allowed"
    assert sf.Account.create({"Name": "Allowed"})["success"] is True


def test_unknown_fields_are_rejected(sf):
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.create({"Name": "x", "No_Such_Field__c": 1})
    assert failure.value.content[0]["errorCode"] == "INVALID_FIELD"


def _end_session(routed_session, sf):
    """Ends the client's session the way Salesforce does: the OAuth revoke endpoint."""
    response = routed_session.post(
        f"https://{sf.sf_instance}/services/oauth2/revoke", data={"token": sf.session_id}
    )
    assert response.status_code == 200, response.text


def test_an_injected_expired_session_raises(sf, base_url, routed_session):
    injected = Salesforce(
        session_id=sf.session_id, instance_url=base_url, session=routed_session
    )
    assert "Account" in _object_names(injected)
    _end_session(routed_session, injected)
    with pytest.raises(SalesforceExpiredSession) as failure:
        injected.describe()
    assert failure.value.status == 401
    assert failure.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_a_logged_in_client_logs_in_again_after_its_session_expires(sf, routed_session):
    before = sf.session_id
    _end_session(routed_session, sf)
    assert "Account" in _object_names(sf)
    assert sf.session_id != before

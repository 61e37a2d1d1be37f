"""Fixtures driving sf-emulator with the real, unmodified simple-salesforce package.

The Rust test `sf-emulator/tests/simple_salesforce.rs` starts the emulator with TLS and sets:
  SF_EMULATOR_URL  base URL, e.g. https://127.0.0.1:PORT
  SF_EMULATOR_CA   the emulator's CA certificate (PEM); also exported as REQUESTS_CA_BUNDLE

simple-salesforce always logs in at https://{domain}.salesforce.com. The `routed_session`
fixture is a plain requests.Session whose transport adapter sends requests for
*.salesforce.com hosts to the emulator instead (the way a hosts-file entry would); the
emulator answers with its own URL as instance_url/serverUrl, so everything after login goes
to it directly. Only public parameters of simple-salesforce are used (`session=`, `domain=`,
`session_id=`/`instance_url=`).
"""

import os
import urllib.parse

import pytest
import requests
from requests.adapters import HTTPAdapter

USERNAME = "admin@example.com"
PASSWORD = "forcesync"
CONSUMER_KEY = "forcesync"
CONSUMER_SECRET = "forcesync"


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run this suite through `cargo test -p sf-emulator "
            "--test simple_salesforce`, which starts the emulator and sets it"
        )
    return value


@pytest.fixture(scope="session")
def base_url():
    return _env("SF_EMULATOR_URL").rstrip("/")


@pytest.fixture(scope="session")
def ca_path():
    return _env("SF_EMULATOR_CA")


@pytest.fixture(scope="session")
def instance(base_url):
    """host:port of the emulator, as simple-salesforce keeps it in `sf_instance`."""
    return urllib.parse.urlsplit(base_url).netloc


class _SalesforceHostsToEmulator(HTTPAdapter):
    """Sends requests addressed to *.salesforce.com to the emulator."""

    def __init__(self, emulator_netloc, **kwargs):
        self._emulator = emulator_netloc
        super().__init__(**kwargs)

    def send(self, request, **kwargs):
        parts = urllib.parse.urlsplit(request.url)
        if parts.hostname and parts.hostname.endswith(".salesforce.com"):
            request.url = urllib.parse.urlunsplit(parts._replace(netloc=self._emulator))
        return super().send(request, **kwargs)


@pytest.fixture
def routed_session(instance, ca_path):
    session = requests.Session()
    session.verify = ca_path
    session.mount("https://", _SalesforceHostsToEmulator(instance))
    return session


@pytest.fixture
def control(base_url, ca_path):
    """POST to the emulator's control plane (/__emulator/...)."""

    def post(path, payload=None):
        response = requests.post(
            f"{base_url}/__emulator/{path}", json=payload or {}, verify=ca_path, timeout=60
        )
        assert response.status_code < 300, (path, response.status_code, response.text)
        return response.json() if response.content else None

    return post


@pytest.fixture(autouse=True)
def fresh_org(control):
    """Every test starts from an empty org without automation or faults."""
    control("reset")
    yield

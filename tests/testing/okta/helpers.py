"""What the emulator's tests share: the org they serve, the SDK client, keys and client assertions."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.testing.okta import TOKEN_PATH, OktaEmulator

if TYPE_CHECKING:
    from okta.client import Client

API_TOKEN = "00emulator-test-token"
READ_SCOPES = ["okta.apps.read", "okta.users.read"]
OKTA_ID = re.compile(r"^(00u|00g|0oa)[A-Za-z0-9]{17}$")


@dataclass
class Org:
    emulator: OktaEmulator
    url: str
    app_id: str


@contextmanager
def http_check_disabled() -> Iterator[None]:
    """The SDK refuses an http:// org URL unless this variable is set while the client is built."""
    previous = os.environ.get("OKTA_TESTING_TESTINGDISABLEHTTPSCHECK")
    os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = "true"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"]
        else:
            os.environ["OKTA_TESTING_TESTINGDISABLEHTTPSCHECK"] = previous


def sdk_client(org_url: str, **config: Any) -> Client:
    """The SDK's whole client, imported on first use: the import costs ~2 s of CPU, which every test
    process (each xdist worker) would otherwise pay just to collect these tests."""
    from okta.client import Client

    with http_check_disabled():
        return Client({"orgUrl": org_url, "requestTimeout": 10, "rateLimit": {"maxRetries": 0}, **config})


def pem(private_key: rsa.RSAPrivateKey) -> str:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def page_links(response: aiohttp.ClientResponse) -> list[str]:
    return response.headers.getall("Link", [])


def assertion(private_key: rsa.RSAPrivateKey, client_id: str, audience: str, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 300}
    claims["jti"] = str(uuid.uuid4())
    return jwt.encode({**claims, **overrides}, private_key, algorithm="RS256")


async def post_token(url: str, client_assertion: str, scope: str = "okta.apps.read") -> tuple[int, dict[str, Any]]:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": client_assertion,
    }
    async with aiohttp.ClientSession() as session, session.post(url + TOKEN_PATH, data=form) as response:
        return response.status, await response.json()


def pem_public(private_key: rsa.RSAPrivateKey) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

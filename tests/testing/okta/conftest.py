"""Fixtures for the emulator's tests: an org served on 127.0.0.1, an HTTP session with its API token, a key."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from reconciler.testing.okta import OktaEmulator, run_okta_emulator
from tests.testing.okta.helpers import API_TOKEN, Org


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    emulator = OktaEmulator(seed=7, api_tokens=[API_TOKEN])
    app = emulator.create_app()
    async with run_okta_emulator(emulator) as url:
        yield Org(emulator, url, app.id)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": f"SSWS {API_TOKEN}"}) as session:
        yield session

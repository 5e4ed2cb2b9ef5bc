"""Fixtures of the SCIM tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import SCIM_TOKEN
from tests.support.django_peer_server import DjangoScimServer


@pytest.fixture
def peer(django_scim_server: DjangoScimServer) -> Iterator[httpx.Client]:
    """A plain client on the django-scim2 peer, emptied first."""
    django_scim_server.reset()
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    with httpx.Client(base_url=django_scim_server.base_url, headers=headers, timeout=10) as client:
        yield client

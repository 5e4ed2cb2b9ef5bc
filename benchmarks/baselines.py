"""What the reconciler is compared with: a naive client, and a bare client doing the minimum.

- :func:`naive` does what Okta itself does before each create: one
  ``GET /Users?filter=userName eq "…"&startIndex=1&count=100`` per desired user, after listing
  the Okta pages, with the same read concurrency as the reconciler.
- :func:`raw_floor` issues exactly the minimal requests of a run (the Okta pages, the SCIM
  discovery and pages, then the writes) with a bare httpx loop that reads each body and decodes
  only what it must to navigate (the ``Link`` header, the first SCIM page's ``totalResults``):
  the fastest a client can be against the same servers.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

_NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="next"')
OKTA_LIST = "/api/v1/apps/{app_id}/users?limit=500&expand=user"


@dataclass(frozen=True)
class Endpoints:
    """Where the servers are and how to authenticate."""

    okta_url: str
    okta_token: str
    app_id: str
    scim_url: str
    scim_token: str

    def okta_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers={"Authorization": f"SSWS {self.okta_token}"}, timeout=120)

    def scim_client(self, connections: int) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.scim_token}", "Accept": "application/scim+json"},
            limits=httpx.Limits(max_connections=connections),
            timeout=120,
        )


async def list_okta_pages(client: httpx.AsyncClient, endpoints: Endpoints) -> int:
    """Follow ``Link: rel="next"`` through the app's assignments; returns the pages read."""
    url: str | None = endpoints.okta_url + OKTA_LIST.format(app_id=endpoints.app_id)
    pages = 0
    while url is not None:
        response = await client.get(url)
        response.raise_for_status()
        pages += 1
        url = next((m[1] for link in response.headers.get_list("Link") if (m := _NEXT_LINK.search(link))), None)
    return pages


async def bounded(concurrency: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> None:
    """Run the jobs with at most ``concurrency`` in flight; the first failure propagates."""
    slots = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> None:
        async with slots:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


@dataclass(frozen=True)
class NaiveResult:
    okta_pages: int
    okta_s: float
    lookups: int
    lookups_s: float
    """Wall time of the lookups measured (``lookups`` of them)."""
    population: int
    """How many desired users a full naive run looks up."""

    @property
    def sampled(self) -> bool:
        return self.lookups < self.population

    @property
    def requests(self) -> int:
        """Exact either way: every page, one lookup per desired user, no discovery."""
        return self.okta_pages + self.population

    @property
    def wall_s(self) -> float:
        """Measured, or from a sample: the Okta listing + the lookups scaled linearly to the population."""
        return self.okta_s + self.lookups_s * (self.population / self.lookups if self.lookups else 0.0)


async def naive(endpoints: Endpoints, user_names: Sequence[str], sample: int | None, concurrency: int) -> NaiveResult:
    """List Okta, then look each desired user up by userName (the first ``sample`` of them, if given)."""
    chosen = list(user_names[:sample] if sample is not None else user_names)
    async with endpoints.okta_client() as okta, endpoints.scim_client(concurrency) as client:
        started = time.perf_counter()
        pages = await list_okta_pages(okta, endpoints)
        okta_s = time.perf_counter() - started

        def lookup(user_name: str) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                params = {"filter": f"userName eq {json.dumps(user_name)}", "startIndex": 1, "count": 100}
                (await client.get(f"{endpoints.scim_url}/Users", params=params)).raise_for_status()

            return send

        started = time.perf_counter()
        await bounded(concurrency, [lookup(name) for name in chosen])
        lookups_s = time.perf_counter() - started
    return NaiveResult(pages, okta_s, len(chosen), lookups_s, len(user_names))


@dataclass(frozen=True)
class RawResult:
    wall_s: float
    okta_pages: int
    scim_reads: int
    """Discovery + pages."""
    writes: int

    @property
    def requests(self) -> int:
        return self.okta_pages + self.scim_reads + self.writes


async def _read_scim(client: httpx.AsyncClient, scim_url: str, page: int, concurrency: int) -> int:
    """Discovery, the first page, then the others ``concurrency`` at a time; returns the requests."""
    (await client.get(f"{scim_url}/ServiceProviderConfig")).raise_for_status()
    first = await client.get(f"{scim_url}/Users", params={"startIndex": 1, "count": page})
    first.raise_for_status()
    total = int(first.json()["totalResults"])
    pages = max(1, math.ceil(total / page))

    def read(start: int) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            params = {"startIndex": start, "count": page}
            (await client.get(f"{scim_url}/Users", params=params)).raise_for_status()

        return send

    await bounded(concurrency, [read(1 + index * page) for index in range(1, pages)])
    return 1 + pages


async def raw_floor(
    endpoints: Endpoints,
    page: int,
    read_concurrency: int,
    writes: Sequence[dict[str, Any]] = (),
    write_concurrency: int = 1,
) -> RawResult:
    """The minimal run, bare: Okta and SCIM read side by side, then ``writes`` (method, path, body)."""
    connections = max(read_concurrency, write_concurrency)
    async with endpoints.okta_client() as okta, endpoints.scim_client(connections) as client:
        started = time.perf_counter()
        okta_pages, scim_reads = await asyncio.gather(
            list_okta_pages(okta, endpoints), _read_scim(client, endpoints.scim_url, page, read_concurrency)
        )
        base = httpx.URL(endpoints.scim_url)

        def write(request: dict[str, Any]) -> Callable[[], Awaitable[None]]:
            async def send() -> None:
                content = request["body"].encode() if request["body"] is not None else None
                headers = {"Content-Type": "application/scim+json"} if content is not None else None
                url = base.copy_with(raw_path=request["path"].encode())
                (await client.request(request["method"], url, content=content, headers=headers)).raise_for_status()

            return send

        await bounded(write_concurrency, [write(request) for request in writes])
        wall_s = time.perf_counter() - started
    return RawResult(wall_s, okta_pages, scim_reads, len(writes))

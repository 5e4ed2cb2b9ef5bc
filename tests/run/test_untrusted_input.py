"""What either side sends is untrusted: every hostile answer is a clear error, in bounded memory.

Oversized answers (declared, endless, or a compression bomb), absurd page
counts, non-JSON, a wrong content type and JSON nested 100,000 deep, from the
platform (the scripted SCIM server, tests/support/scim_fault_server.py) and from Okta
(a small scripted Okta here: the emulator serves well-formed answers only).
Each ends in a clear error, the run recorded failed with no write, and the
service goes on to its next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import re
import tracemalloc
import zlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from reconciler.cli.main import exit_code
from reconciler.config import load_config
from reconciler.errors import SourceError, TargetError
from reconciler.models.runs import RunStatus
from reconciler.net.retries import RetryPolicy
from reconciler.okta import connection as okta_connection
from reconciler.okta import source as okta_source
from reconciler.okta.source import OktaSource
from reconciler.run.reconcile import reconcile
from reconciler.scim.reader import ScimReader
from reconciler.secret import Secret
from reconciler.service.single import Service
from reconciler.store import Store
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.service.test_service import eventually, running, service_config
from tests.support.scim_clients import reader_on, writer_of
from tests.support.scim_fault_server import FaultServer, Reply, scim_user

MIB = 1024 * 1024
CAP = 1 * MIB
"""The response cap these tests set, so that oversized answers stay cheap to send."""
DEEP = 100_000
FAST_RETRY = RetryPolicy(attempts=3, backoff_multiplier_s=0.01, max_backoff_s=0.02, jitter_s=0.0)
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def nested(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


NESTED_ATTRIBUTE = (
    '{"totalResults": 1, "Resources": [{"id": "a", "userName": "a@example.com", "name": {"givenName": '
    + nested()
    + "}}]}"
)
"""One user whose (compared, hence kept) name holds JSON 100,000 deep."""


def listing(total: int, *users: dict) -> dict:
    return {"schemas": [LIST_RESPONSE_URN], "totalResults": total, "Resources": list(users)}


def reader_for(base_url: str, **options: object) -> ScimReader:
    return reader_on(base_url, Secret(SCIM_TOKEN), retry=FAST_RETRY, max_response_bytes=CAP, **options)  # type: ignore[arg-type]


# --- oversized answers: refused unread, in bounded memory ---------------------------------------


ENDLESS_CHUNK = b'{"id": "' + b"x" * 65_000 + b'"},'


@functools.cache
def gzip_bomb() -> bytes:
    """64 MiB of JSON gzipped to ~64 KiB: small on the wire, huge once decompressed (made once, before measuring)."""
    return gzip.compress(b'{"totalResults": 1, "Resources": [' + b" " * (64 * MIB) + b"]}", 9)


@dataclass
class Streamer:
    """Serves what a scripted reply cannot: a declared huge body, an endless one, a compression bomb.

    Each allocates next to nothing itself, so that tracemalloc, which sees the
    server too (it runs in this process), measures the client.
    """

    sent_bytes: int = 0
    requests: int = 0
    max_bytes: int = 64 * MIB
    """The endless body ends here all the same: a test must not run forever if the client keeps reading."""

    async def declared(self, request: web.Request) -> web.StreamResponse:
        """A Content-Length over the cap; a client that trusts it reads nothing more."""
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(2 * CAP)})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write(b"[")
            await asyncio.sleep(0.2)
        return response

    async def endless(self, request: web.Request) -> web.StreamResponse:
        """A chunked JSON-looking body with no Content-Length, that does not end."""
        self.requests += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write(b"[")
            while self.sent_bytes < self.max_bytes:
                await response.write(ENDLESS_CHUNK)
                self.sent_bytes += len(ENDLESS_CHUNK)
        return response

    async def bomb(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(body=gzip_bomb(), headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})


@asynccontextmanager
async def serving(routes: dict[str, object]) -> AsyncIterator[str]:
    """An aiohttp app on 127.0.0.1 in this event loop with GET ``routes``; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["declared", "endless", "bomb"])
async def test_an_oversized_scim_answer_is_refused_in_bounded_memory(kind: str) -> None:
    gzip_bomb()
    streamer = Streamer()
    async with serving({"/v2/Users": getattr(streamer, kind)}) as base_url:
        async with reader_for(base_url + "/v2") as reader:
            tracemalloc.start()
            try:
                with pytest.raises(TargetError) as raised:
                    await reader.list_users()
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert streamer.requests == 1, "not retried: it would be as large again"
    assert str(raised.value) == (
        "SCIM GET /Users: the answer is larger than 1 MiB, so it was not read: "
        "if the server's answers really are that large, raise scim.max_response_mb"
    )
    assert peak < 4 * CAP, f"{peak / MIB:.1f} MiB held for a 1 MiB cap"
    assert streamer.sent_bytes < 16 * MIB


@pytest.mark.parametrize("kind", ["declared", "endless", "bomb"])
async def test_an_oversized_okta_answer_is_refused_in_bounded_memory(kind: str) -> None:
    gzip_bomb()
    streamer = Streamer()
    async with serving({"/api/v1/apps/{app_id}/users": getattr(streamer, kind)}) as org_url:
        source = okta_source_for(org_url, max_response_bytes=CAP)
        tracemalloc.start()
        try:
            with pytest.raises(SourceError) as raised:
                await source.list_assignments()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert str(raised.value) == (
        "Okta's answer to page 1 of app 0oaAPP: the answer is larger than 1 MiB, so it was not read: "
        "if the server's answers really are that large, raise okta.max_response_mb"
    )
    assert peak < 4 * CAP, f"{peak / MIB:.1f} MiB held for a 1 MiB cap"
    assert streamer.sent_bytes < 16 * MIB
    assert streamer.requests == 1


# --- a scripted Okta -----------------------------------------------------------------------------


@dataclass
class ScriptedOkta:
    """Answers ``GET /api/v1/apps/{id}/users`` with scripted replies, then with an empty last page."""

    replies: deque[Reply] = field(default_factory=deque)
    endless_cursor: bool = False
    """Answer every page with a next link to a fresh cursor (and no user), forever."""
    requests: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.endless_cursor:
            link = f'<{request.url.with_query(after=str(self.requests))}>; rel="next"'
            return web.json_response([], headers={"Link": link})
        reply = self.replies.popleft() if self.replies else Reply(200, [], content_type="application/json")
        text = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        return web.Response(status=reply.status, text=text, content_type=reply.content_type, headers=reply.headers)


def okta_source_for(org_url: str, **options: object) -> OktaSource:
    return OktaSource(
        org_url=org_url, app_id="0oaAPP", auth="api_token", token=Secret(OKTA_TOKEN), timeout_s=5, **options
    )  # type: ignore[arg-type]


@asynccontextmanager
async def scripted_okta(okta: ScriptedOkta) -> AsyncIterator[str]:
    async with serving({"/api/v1/apps/{app_id}/users": okta.handle}) as org_url:
        yield org_url


OKTA_JSON = "application/json"


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply(200, "<html>Sign in</html>", content_type="text/html"), "not an Okta org: http"),
        (Reply(200, '[{"id": "00u1", ', content_type=OKTA_JSON), "page 1 of app 0oaAPP: the answer is not JSON ("),
        (Reply(200, "[]", content_type="text/plain"), "Content-Type 'text/plain"),
        (Reply(200, nested(), content_type=OKTA_JSON), "does not parse as app users (Expected `object`, got `array`"),
        (
            Reply(200, '[{"id": "00u1", "vendorField": ' + nested() + "}]", content_type=OKTA_JSON),
            "JSON nested too deeply to decode",
        ),
        (
            Reply(200, '[{"id": "00u1", "profile": {"x": ' + nested() + "}}]", content_type=OKTA_JSON),
            "JSON nested too deeply to decode",
        ),
        (Reply(400, nested(), content_type=OKTA_JSON), "HTTP 400: [[[["),
        (Reply(200, '{"errorCode": "E0000001"}', content_type=OKTA_JSON), "does not parse as app users"),
    ],
    ids=[
        "html",
        "malformed",
        "text-plain",
        "nested",
        "nested-skipped-field",
        "nested-profile",
        "nested-error",
        "object",
    ],
)
async def test_unusable_okta_answers_are_clear_errors(reply: Reply, says: str) -> None:
    okta = ScriptedOkta(deque([reply]))
    async with scripted_okta(okta) as org_url:
        with pytest.raises(SourceError) as raised:
            await okta_source_for(org_url).list_assignments()
    assert says in str(raised.value)
    assert "page 1 of app 0oaAPP" in str(raised.value)
    assert len(str(raised.value)) < 1000, "the answer is not pasted whole into the message"


async def test_an_okta_listing_that_never_ends_is_refused() -> None:
    okta = ScriptedOkta(endless_cursor=True)
    async with scripted_okta(okta) as org_url:
        with pytest.raises(SourceError, match=r"does not end: 11 empty pages in a row"):
            await okta_source_for(org_url).list_assignments()
    assert okta.requests <= okta_connection.MAX_EMPTY_PAGES_IN_A_ROW + 2


async def test_an_okta_listing_past_any_real_app_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of one user each, each linking to another: refused past MAX_ASSIGNMENTS (lowered here)."""
    monkeypatch.setattr(okta_source, "MAX_ASSIGNMENTS", 20)
    counter = iter(range(1, 10_000))

    async def one_user_per_page(request: web.Request) -> web.Response:
        n = next(counter)
        user = {
            "id": f"00u{n}",
            "status": "PROVISIONED",
            "credentials": {"userName": f"u{n}@example.com"},
            "profile": {},
            "_embedded": {"user": {"status": "ACTIVE", "profile": {}}},
        }
        link = f'<{request.url.with_query(limit=5, after=str(n))}>; rel="next"'
        return web.json_response([user], headers={"Link": link})

    async with serving({"/api/v1/apps/{app_id}/users": one_user_per_page}) as org_url:
        with pytest.raises(SourceError, match=r"keeps paging past 4 pages of 5: more than 20 assignments"):
            await okta_source_for(org_url, page_size=5).list_assignments()
    assert next(counter) <= 6


# --- the platform --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (Reply(200, "not json at all"), "malformed JSON"),
        (Reply(200, listing(1, scim_user(1)), content_type="text/plain"), "Content-Type 'text/plain"),
        (Reply(200, nested()), "a malformed ListResponse: Expected `object`, got `array`"),
        (Reply(200, '{"totalResults": 1, "Resources": ' + nested() + "}"), "JSON nested too deeply to decode"),
        (Reply(200, '{"totalResults": 1, "Resources": [' + nested() + "]}"), "JSON nested too deeply to decode"),
        (Reply(200, NESTED_ATTRIBUTE), "JSON nested too deeply to decode"),
        (Reply(400, nested()), "answered 400 Bad Request: [[[["),
    ],
    ids=["not-json", "text-plain", "nested", "nested-resources", "nested-resource", "nested-attribute", "nested-error"],
)
async def test_unusable_scim_listings_are_clear_errors(reply: Reply, says: str) -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", reply)
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError) as raised:
                await reader.list_users()
    assert says in str(raised.value)
    assert len(str(raised.value)) < 1000


async def test_a_scim_write_answered_with_hostile_json_is_a_clear_error() -> None:
    async with FaultServer() as server:
        server.script("POST", "/Users", Reply(201, nested()))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="POST /Users answered 201 with JSON nested too deeply"):
                await writer_of(reader).create_user({"userName": "a@example.com"})


async def test_a_nested_service_provider_config_falls_back_to_the_safe_defaults() -> None:
    async with FaultServer() as server:
        server.script("GET", "/ServiceProviderConfig", Reply(200, nested()))
        async with reader_for(server.base_url) as reader:
            capabilities = await reader.discover()
    assert capabilities.patch_supported and not capabilities.filter_supported


@pytest.mark.parametrize(
    ("first_page", "says"),
    [
        (listing(10**12, scim_user(1)), "totalResults=1000000000000 at startIndex=1: more than the 10,000,000 users"),
        (listing(5_000_000, scim_user(1)), "totalResults=5000000 in pages of 1: 5,000,000 requests, more than"),
    ],
    ids=["absurd-total", "absurd-page-count"],
)
async def test_absurd_page_counts_are_refused_before_the_second_request(first_page: dict, says: str) -> None:
    async with FaultServer() as server:
        server.script("GET", "/Users", Reply(200, first_page))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match=says):
                await reader.list_users()
        assert len(server.seen("GET", "/Users")) == 1


# --- a whole run: failed, recorded, no write; and the service carries on --------------------------


def one_user_listing(display_name_json: str) -> str:
    """A SCIM listing of one user (linked to Okta user 00uDEEP) whose compared displayName is this JSON."""
    user = '{"id": "s1", "userName": "deep@example.com", "externalId": "00uDEEP", "displayName": %s}'
    return '{"totalResults": 1, "Resources": [' + user % display_name_json + "]}"


def one_assignment_page(display_name_json: str) -> str:
    """An Okta page of one assignment (00uDEEP) whose compared profile.displayName is this JSON (the other mapped
    attributes null: known, so the plan compares them)."""
    user = (
        '{"id": "00uDEEP", "status": "PROVISIONED", "credentials": {"userName": "deep@example.com"}, '
        '"profile": {"givenName": null, "familyName": null, "email": null, "locale": null, "displayName": %s}, '
        '"_embedded": {"user": {"status": "ACTIVE", "profile": {}}}}'
    )
    return "[" + user % display_name_json + "]"


@pytest.mark.parametrize("side", ["okta", "scim"])
async def test_a_value_nested_within_the_decoder_limit_still_fails_the_run_clearly(tmp_path: Path, side: str) -> None:
    """600 deep decodes, but comparing it would recurse past Python's limit: a clear failure, no write."""
    deep, plain = nested(600), '"Deep"'
    okta_page = one_assignment_page(deep if side == "okta" else plain)
    hostile = ScriptedOkta(deque([Reply(200, okta_page, content_type=OKTA_JSON)]))
    async with FaultServer() as scim, scripted_okta(hostile) as org_url:
        scim.script("GET", "/Users", Reply(200, one_user_listing(deep if side == "scim" else plain)))
        config = load_config(write_local_config(tmp_path, org_url, "0oaAPP", scim.base_url, OKTA_TOKEN, SCIM_TOKEN))
        with Store(config.store.url) as store:
            outcome = await reconcile(config, store, dry_run=False)
            assert store.actions_of(outcome.run_id) == []
        assert {request.method for request in scim.requests} == {"GET"}
    assert outcome.status is RunStatus.FAILED
    assert outcome.error is not None and outcome.error.startswith("an answer from Okta or the platform holds a value")


@pytest.mark.parametrize("side", ["okta", "scim"])
async def test_a_hostile_answer_fails_the_run_with_no_write(okta: Okta, tmp_path: Path, side: str) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 3)  # creates, were the run to plan
    nested_profile = '[{"id": "00u1", "profile": {"x": ' + nested() + "}}]"
    hostile = ScriptedOkta(deque([Reply(200, nested_profile, content_type=OKTA_JSON)]))
    async with FaultServer(users=[scim_user(1)]) as scim, scripted_okta(hostile) as hostile_org:
        if side == "scim":
            scim.script("GET", "/Users", Reply(200, NESTED_ATTRIBUTE))
        org_url = hostile_org if side == "okta" else okta.org_url
        app_id = "0oaAPP" if side == "okta" else okta.app_id
        config = load_config(write_local_config(tmp_path, org_url, app_id, scim.base_url, OKTA_TOKEN, SCIM_TOKEN))
        with Store(config.store.url) as store:
            outcome = await reconcile(config, store, dry_run=False)
            run = store.get_run(outcome.run_id)
            assert store.actions_of(outcome.run_id) == []
        assert {request.method for request in scim.requests} == {"GET"}, "nothing was written"
    assert exit_code(outcome, dry_run=False) == 1
    assert outcome.status is RunStatus.FAILED and run is not None and run.status is RunStatus.FAILED
    assert outcome.error is not None and "JSON nested too deeply to decode" in outcome.error


async def test_the_service_keeps_its_schedule_through_hostile_answers(okta: Okta, tmp_path: Path) -> None:
    """No crash loop: each run fails cleanly, is recorded, and the next one comes on schedule."""
    okta.emulator.add_assigned_users(okta.app_id, 2)
    async with FaultServer() as scim:
        scim.script("GET", "/Users", *[Reply(200, NESTED_ATTRIBUTE)] * 50)
        config = load_config(service_config(tmp_path, okta, scim.base_url, interval="1s"))
        with Store(config.store.url) as store:
            service = Service(config, store, environ={})
            async with running(service) as task:
                await eventually(lambda: _failed_runs(store) >= 2, 15, "two failed runs")
                assert not task.done(), "the service is still serving"
            assert _failed_runs(store) >= 2
            assert all(run.status is RunStatus.FAILED for run in store.recent_runs(10))
        assert {request.method for request in scim.requests} == {"GET"}


def _failed_runs(store: Store) -> int:
    return sum(run.status is RunStatus.FAILED for run in store.recent_runs(10))


async def test_an_error_body_is_not_read_past_the_cap_either() -> None:
    """A 500 whose body is huge: refused at the cap, not retried into more memory."""
    async with FaultServer() as server:
        server.script("GET", "/Users", Reply(500, "x" * (2 * CAP), content_type="text/plain"))
        async with reader_for(server.base_url) as reader:
            with pytest.raises(TargetError, match="larger than 1 MiB"):
                await reader.list_users()
        assert len(server.seen("GET", "/Users")) == 1


# --- compressed answers: still read, within the cap ----------------------------------------------


def _deflate(data: bytes, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "wbits"),
    [("gzip", zlib.MAX_WBITS | 16), ("deflate", zlib.MAX_WBITS), ("deflate", -zlib.MAX_WBITS)],
    ids=["gzip", "deflate", "raw-deflate"],
)
async def test_a_compressed_listing_is_read_whole(encoding: str, wbits: int) -> None:
    users = [scim_user(i, displayName="x" * 500) for i in range(1, 41)]
    body = _deflate(json.dumps(listing(40, *users)).encode(), wbits)

    async def compressed(request: web.Request) -> web.Response:
        assert request.headers["Accept-Encoding"] == "gzip, deflate"
        return web.Response(body=body, headers={"Content-Type": "application/scim+json", "Content-Encoding": encoding})

    async with serving({"/v2/Users": compressed}) as base_url:
        async with reader_for(base_url + "/v2", page_size=100) as reader:
            listed = await reader.list_users()
    assert sorted(user.scim_id for user in listed) == sorted(f"id-{i}" for i in range(1, 41))


@pytest.mark.parametrize(
    ("encoding", "body", "says"),
    [
        ("br", b"\x1b\x00", "Content-Encoding is 'br', which was not asked for (only gzip, deflate)"),
        ("gzip", b"\x1f\x8b\x08\x00garbage", "corrupt compressed body"),
    ],
    ids=["unasked-encoding", "corrupt-gzip"],
)
async def test_an_undecodable_scim_body_is_a_clear_error(encoding: str, body: bytes, says: str) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": "application/scim+json", "Content-Encoding": encoding})

    async with serving({"/v2/Users": answer}) as base_url:
        async with reader_for(base_url + "/v2") as reader:
            with pytest.raises(TargetError, match=re.escape(says)):
                await reader.list_users()

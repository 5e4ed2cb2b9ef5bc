"""A tiny SCIM server on 127.0.0.1 that answers scripted statuses, for the faults real servers rarely show.

It is a real HTTP server (aiohttp.web): the client under test goes through its
whole stack. Each request is recorded. A request first takes the next reply
scripted for its method and path; with none left, the server falls back to a
minimal SCIM behaviour: a ServiceProviderConfig when given one (404 otherwise),
and a ``/Users`` listing of fixed users that may return fewer users than asked
(or more, ignoring ``count``) and may omit ``itemsPerPage``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

SCIM_MEDIA_TYPE = "application/scim+json"
LIST_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. A dict or list body is sent as JSON; a str body is sent as is."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = SCIM_MEDIA_TYPE
    delay_s: float = 0.0
    """Wait this long before answering, to make a client time out."""
    hold: asyncio.Event | None = None
    """Answer only once this is set: a request that hangs until the test lets it go, however slow the machine."""


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: Any
    at: float


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Reply:
    body = {"schemas": [ERROR_URN], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return Reply(status, body)


def scim_user(index: int, **attributes: Any) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": f"id-{index}",
        "userName": f"user{index}@example.com",
        "active": True,
        **attributes,
    }


class FaultServer:
    """Serves under ``/v2`` like scim2-server; ``base_url`` is what a client is given."""

    def __init__(
        self,
        users: Sequence[Mapping[str, Any]] = (),
        page_cap: int | None = None,
        items_per_page: bool = True,
        service_provider_config: Mapping[str, Any] | None = None,
        listing_delay_s: float = 0.0,
        short_pages: Mapping[int, int] | None = None,
        fixed_page: int | None = None,
    ) -> None:
        """``short_pages`` maps a startIndex to how many users that page holds, fewer than asked;
        ``fixed_page`` makes every page hold that many users, whatever ``count`` asked (more or fewer)."""
        self.users = list(users)
        self.page_cap = page_cap
        self.items_per_page = items_per_page
        self.service_provider_config = service_provider_config
        self.listing_delay_s = listing_delay_s
        self.short_pages = dict(short_pages or {})
        self.fixed_page = fixed_page
        self.served: list[str] = []
        """The id of every user sent in a listing page, in order: a user read twice shows twice."""
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests: list[SeenRequest] = []
        self._script: defaultdict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def script(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for ``method`` on ``path`` (relative to /v2, e.g. ``/Users``)."""
        self._script[(method.upper(), path)].extend(replies)

    def seen(self, method: str, path: str) -> list[SeenRequest]:
        return [r for r in self.requests if r.method == method.upper() and r.path == path]

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/v2{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v2"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(
            SeenRequest(request.method, path, dict(request.query), dict(request.headers), body, time.monotonic())
        )
        queue = self._script.get((request.method, path))
        reply = queue.popleft() if queue else self._default(request.method, path, request.query)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            if reply.hold is not None:
                await reply.hold.wait()
            return _respond(reply)
        finally:
            self.in_flight -= 1

    def _default(self, method: str, path: str, query: Mapping[str, str]) -> Reply:
        if method == "GET" and path == "/ServiceProviderConfig" and self.service_provider_config is not None:
            return Reply(200, dict(self.service_provider_config))
        if method == "GET" and path == "/Users":
            return self._listing(int(query.get("startIndex", 1)), int(query.get("count", 100)))
        return scim_error(404, f"nothing at {method} {path}")

    def _listing(self, start_index: int, count: int) -> Reply:
        size = min(count, self.page_cap) if self.page_cap else count
        size = min(size, self.short_pages.get(start_index, size))
        size = self.fixed_page or size
        page = self.users[start_index - 1 : start_index - 1 + size]
        self.served.extend(str(user.get("id")) for user in page)
        body: dict[str, Any] = {
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": len(self.users),
            "startIndex": start_index,
            "Resources": page,
        }
        if self.items_per_page:
            body["itemsPerPage"] = len(page)
        return Reply(200, body, delay_s=self.listing_delay_s)


def _respond(reply: Reply) -> web.Response:
    if isinstance(reply.body, (dict, list)):
        text: str | None = json.dumps(reply.body)
    else:
        text = reply.body
    return web.Response(
        status=reply.status,
        text=text,
        headers=dict(reply.headers),
        content_type=reply.content_type if text is not None else None,
    )

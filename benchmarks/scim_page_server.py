"""A lightweight SCIM 2.0 server for the benchmark: pages of pre-generated users, cheap to serve.

::

    BENCH_SCIM_TOKEN=... python -m benchmarks.scim_page_server --users users.jsonl \
        [--latency-ms 20] [--max-results 1000]

It stands in for a platform at 100,000 users, where the real ``scim2-server`` would spend
its CPU validating models; the correctness suite keeps using real servers. Each user's JSON
is serialised once and kept, so a page costs a join of bytes. It serves, under ``/scim/v2``
and with the injected latency on every answer:

- ``GET /ServiceProviderConfig``: patch supported, filter supported with ``maxResults``, etag not;
- ``GET /Users?startIndex=&count=`` (``count`` capped at ``maxResults``), and
  ``&filter=userName eq "x"`` (case-insensitive) or ``externalId eq "x"`` (case-exact, a scan: the
  incremental bench's lookups of users Okta never linked), the only filters it knows, ``GET /Users/{id}``;
- ``POST /Users`` (409 ``uniqueness`` on a taken userName), ``PATCH /Users/{id}`` (``add``,
  ``replace`` and ``remove`` with a plain ``attr`` or ``attr.sub`` path, or a value object
  without path; answers 200 with the user), ``PUT /Users/{id}``, ``DELETE /Users/{id}``.

``--users`` holds one SCIM User per line, each with its ``id``. Once serving it prints
``{"url": BASE_URL, "control": URL}``; the control port answers ``GET /stats`` (requests
by kind since the last reset, and ``first_request_at``: see :mod:`benchmarks.serving`),
``GET /writes`` (each write since the last reset: ``[method, user id or null, body]``, the wire as a
bench checks it for duplicates) and ``POST /reset``, without latency and uncounted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.serving import FirstRequestClock, serve_until_stopped

TOKEN_ENV = "BENCH_SCIM_TOKEN"
PREFIX = "/scim/v2"
CORE_USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_JSON = "application/scim+json"
_EQ_FILTER = re.compile(r'^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_NEVER_WRITTEN = frozenset({"id", "meta", "schemas"})


def scim_error(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return web.json_response(body, status=status, content_type=SCIM_JSON)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UserStore:
    """Users in listing order, each kept with its serialised JSON."""

    def __init__(self, users: Iterator[dict[str, Any]]) -> None:
        self._order: list[str] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._blobs: dict[str, bytes] = {}
        self._by_name: dict[str, str] = {}
        for user in users:
            self._put(user)

    def __len__(self) -> int:
        return len(self._order)

    def _put(self, user: dict[str, Any]) -> None:
        user_id = user["id"]
        if user_id not in self._users:
            self._order.append(user_id)
        else:
            self._by_name.pop(self._users[user_id]["userName"].casefold(), None)
        self._users[user_id] = user
        self._blobs[user_id] = json.dumps(user, separators=(",", ":")).encode()
        self._by_name[user["userName"].casefold()] = user_id

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self._users.get(user_id)

    def blob(self, user_id: str) -> bytes:
        return self._blobs[user_id]

    def holder_of(self, user_name: str) -> str | None:
        return self._by_name.get(user_name.casefold())

    def with_external_id(self, external_id: str) -> list[str]:
        return [user_id for user_id in self._order if self._users[user_id].get("externalId") == external_id]

    def page(self, start_index: int, count: int) -> list[str]:
        return self._order[start_index - 1 : start_index - 1 + count]

    def create(self, resource: dict[str, Any], location: str) -> dict[str, Any]:
        user_id = uuid.uuid4().hex
        now = _now()
        user = {**resource, "id": user_id, "schemas": resource.get("schemas") or [CORE_USER_URN]}
        meta = {"resourceType": "User", "created": now, "lastModified": now, "location": f"{location}/{user_id}"}
        user["meta"] = meta
        self._put(user)
        return user

    def replace(self, user: dict[str, Any]) -> None:
        user["meta"] = {**user.get("meta", {}), "lastModified": _now()}
        self._put(user)

    def delete(self, user_id: str) -> None:
        user = self._users.pop(user_id)
        del self._blobs[user_id]
        self._by_name.pop(user["userName"].casefold(), None)
        self._order.remove(user_id)


def apply_patch(user: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """The user after RFC 7644 PATCH operations on plain paths (``attr``, ``attr.sub``) or without path."""
    patched = json.loads(json.dumps(user))
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        if op not in ("add", "replace", "remove"):
            raise ValueError(f"unsupported op {operation.get('op')!r}")
        path = operation.get("path")
        if path:
            _set_path(patched, path, None if op == "remove" else operation.get("value"))
        elif isinstance(operation.get("value"), dict):
            for key, value in operation["value"].items():
                _set_path(patched, key, value)
        else:
            raise ValueError("an operation without a path needs an object value")
    return patched


def _set_path(resource: dict[str, Any], path: str, value: Any) -> None:
    if "[" in path:
        raise ValueError(f"filtered paths are not supported here: {path!r}")
    attribute, _, sub = path.partition(".")
    if attribute in _NEVER_WRITTEN:
        raise ValueError(f"{attribute} is read-only")
    if not sub:
        if value is None:
            resource.pop(attribute, None)
        elif isinstance(value, dict) and isinstance(resource.get(attribute), dict):
            resource[attribute] = {**resource[attribute], **value}
        else:
            resource[attribute] = value
        return
    complex_value = dict(resource.get(attribute) or {})
    if value is None:
        complex_value.pop(sub, None)
    else:
        complex_value[sub] = value
    resource[attribute] = complex_value


class ScimPageServer:
    """The aiohttp handlers over a :class:`UserStore`, with latency, auth and counting."""

    def __init__(self, store: UserStore, token: str, latency_s: float, max_results: int) -> None:
        self.store = store
        self.token = token
        self.latency_s = latency_s
        self.max_results = max_results
        self.counts: Counter[str] = Counter()
        self.writes: list[tuple[str, str | None, Any]] = []
        self.first_request = FirstRequestClock()

    def make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.first_request.middleware, self._middleware], client_max_size=1 << 24)
        app.router.add_get(f"{PREFIX}/ServiceProviderConfig", self.service_provider_config)
        app.router.add_get(f"{PREFIX}/Users", self.list_users)
        app.router.add_post(f"{PREFIX}/Users", self.create_user)
        app.router.add_get(PREFIX + "/Users/{id}", self.get_user)
        app.router.add_patch(PREFIX + "/Users/{id}", self.patch_user)
        app.router.add_put(PREFIX + "/Users/{id}", self.put_user)
        app.router.add_delete(PREFIX + "/Users/{id}", self.delete_user)
        return app

    def make_control_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/stats", self.stats)
        app.router.add_get("/writes", self.written)
        app.router.add_post("/reset", self.reset)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.counts[request.method] += 1
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            body = await request.json() if request.can_read_body else None
            self.writes.append((request.method, request.match_info.get("id"), body))
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return scim_error(401, "a valid bearer token is required")
        return await handler(request)

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response({"users": len(self.store), **self.counts, "first_request_at": self.first_request.at})

    async def written(self, request: web.Request) -> web.Response:
        return web.json_response(self.writes)

    async def reset(self, request: web.Request) -> web.Response:
        self.counts.clear()
        self.writes.clear()
        self.first_request.reset()
        return web.json_response({})

    async def service_provider_config(self, request: web.Request) -> web.Response:
        self.counts["discovery"] += 1
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": True},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": self.max_results},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [{"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": ""}],
        }
        return web.json_response(body, content_type=SCIM_JSON)

    async def list_users(self, request: web.Request) -> web.Response:
        try:
            start_index = max(1, int(request.query.get("startIndex", "1")))
            count = min(max(0, int(request.query.get("count", str(self.max_results)))), self.max_results)
        except ValueError:
            return scim_error(400, "startIndex and count must be integers", "invalidValue")
        filter_text = request.query.get("filter")
        if filter_text is None:
            self.counts["list_page"] += 1
            total, ids = len(self.store), self.store.page(start_index, count)
        else:
            self.counts["filter"] += 1
            match = _EQ_FILTER.match(filter_text)
            if match is None:
                return scim_error(400, f"unsupported filter {filter_text!r}", "invalidFilter")
            value = json.loads(f'"{match[2]}"')
            if match[1].casefold() == "externalid":
                found = self.store.with_external_id(value)
            else:
                holder = self.store.holder_of(value)
                found = [holder] if holder else []
            total, ids = len(found), found[start_index - 1 : start_index - 1 + count]
        head = {"schemas": [LIST_URN], "totalResults": total, "startIndex": start_index, "itemsPerPage": len(ids)}
        body = json.dumps(head)[:-1].encode() + b',"Resources":[' + b",".join(self.store.blob(i) for i in ids) + b"]}"
        return web.Response(body=body, content_type=SCIM_JSON)

    async def get_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["id"]
        if self.store.get(user_id) is None:
            return scim_error(404, f"no user {user_id}")
        return web.Response(body=self.store.blob(user_id), content_type=SCIM_JSON)

    async def create_user(self, request: web.Request) -> web.Response:
        resource = await request.json()
        user_name = resource.get("userName") if isinstance(resource, dict) else None
        if not isinstance(user_name, str) or not user_name:
            return scim_error(400, "userName is required", "invalidValue")
        if self.store.holder_of(user_name) is not None:
            return scim_error(409, f"userName {user_name!r} is already taken", "uniqueness")
        user = self.store.create(resource, str(request.url.with_query(None)))
        return web.Response(body=self.store.blob(user["id"]), status=201, content_type=SCIM_JSON)

    async def patch_user(self, request: web.Request) -> web.Response:
        user = self.store.get(request.match_info["id"])
        if user is None:
            return scim_error(404, f"no user {request.match_info['id']}")
        body = await request.json()
        try:
            patched = apply_patch(user, list(body.get("Operations") or []))
        except (ValueError, TypeError, AttributeError) as error:
            return scim_error(400, str(error), "invalidSyntax")
        return self._replaced(user, patched)

    async def put_user(self, request: web.Request) -> web.Response:
        user = self.store.get(request.match_info["id"])
        if user is None:
            return scim_error(404, f"no user {request.match_info['id']}")
        resource = await request.json()
        replacement = {key: value for key, value in resource.items() if key not in _NEVER_WRITTEN}
        return self._replaced(user, {"schemas": user["schemas"], "id": user["id"], "meta": user["meta"], **replacement})

    def _replaced(self, user: dict[str, Any], replacement: dict[str, Any]) -> web.Response:
        user_name = replacement.get("userName")
        if not isinstance(user_name, str) or not user_name:
            return scim_error(400, "userName is required", "invalidValue")
        holder = self.store.holder_of(user_name)
        if holder is not None and holder != user["id"]:
            return scim_error(409, f"userName {user_name!r} is already taken", "uniqueness")
        self.store.replace(replacement)
        return web.Response(body=self.store.blob(user["id"]), content_type=SCIM_JSON)

    async def delete_user(self, request: web.Request) -> web.Response:
        user_id = request.match_info["id"]
        if self.store.get(user_id) is None:
            return scim_error(404, f"no user {user_id}")
        self.store.delete(user_id)
        return web.Response(status=204)


def read_users(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=Path, required=True, help="one SCIM User (with its id) per line")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--max-results", type=int, default=1000)
    args = parser.parse_args()
    server = ScimPageServer(
        UserStore(read_users(args.users)), os.environ[TOKEN_ENV], args.latency_ms / 1000, args.max_results
    )
    apps = {"url": server.make_app(), "control": server.make_control_app()}
    asyncio.run(serve_until_stopped(apps, {"prefix": PREFIX}))


if __name__ == "__main__":
    main()

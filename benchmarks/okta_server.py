"""The Okta side of the benchmark: the project's :class:`OktaEmulator`, in a process of its own.

::

    BENCH_OKTA_TOKEN=... python -m benchmarks.okta_server [--latency-ms 20] [--seed 1] [--rate-window-s 60]

Once serving it prints ``{"url": "http://127.0.0.1:P", "control": "http://127.0.0.1:Q"}``:
``url`` is the emulated org (every answer delayed by the injected latency), ``control``
drives it for the bench, on its own port, without latency and outside the emulator's
request log:

- ``POST /seed {"assigned": N, "unassigned": D}``: an app with N users assigned directly
  (plausible profiles, as :meth:`OktaEmulator.add_assigned_users` makes them) and D Okta
  users assigned to nothing; answers ``{"app_id", "assigned": [person…], "unassigned": [person…]}``
  with each person as ``[id, login, firstName, lastName, email, displayName, locale]``;
- ``POST /provision {"app_id", "links": [[okta_id, scim_id], …]}``: what Okta records after a push
  (:meth:`OktaEmulator.mark_provisioned`);
- ``POST /change {"op", "app_id", "user_id", "value"}``: one change an admin makes, written to the System Log
  as Okta would (op: deactivate, suspend, unassign, rename, edit, assign_new, failed_push: a profile edit whose
  push Okta logs as FAILURE); answers ``{"user_id"}`` (the new user's, for assign_new);
- ``POST /reset``: clear the request log and start fresh rate-limit windows;
- ``POST /rate-limit {"limit": 12, "bucket": "/api/v1/apps"}``;
- ``GET /stats``: ``{"requests", "list_pages", "log_requests", "status_429", "token_requests",
  "first_request_at"}`` since
  the last reset (``first_request_at``: see :mod:`benchmarks.serving`).

``--rate-window-s`` shortens the emulator's rate-limit window (Okta's is 60 s) for quick checks.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections import Counter
from typing import Any

from aiohttp import web

from benchmarks.serving import FirstRequestClock, serve_until_stopped
from reconciler.testing.okta import DEFAULT_RATE_LIMIT, RATE_LIMIT_WINDOW_S, EmulatedUser, OktaEmulator

TOKEN_ENV = "BENCH_OKTA_TOKEN"
APPS_BUCKET = "/api/v1/apps"


def person_row(user: EmulatedUser) -> list[Any]:
    """``[id, login, firstName, lastName, email, displayName, locale]``: what the bench needs of a user."""
    profile = user.profile
    return [
        user.id,
        profile["login"],
        profile["firstName"],
        profile["lastName"],
        profile["email"],
        profile.get("displayName"),
        profile.get("locale"),
    ]


class Control:
    """The bench's handle on the emulator."""

    def __init__(self, emulator: OktaEmulator) -> None:
        self.emulator = emulator
        self.rate_limits: dict[str, int] = {}
        self.first_request = FirstRequestClock()

    def emulated_org(self) -> web.Application:
        """The emulator's app, with the first request's arrival stamped before its latency and checks."""
        app = self.emulator.make_app()
        app.middlewares.insert(0, self.first_request.middleware)
        return app

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/seed", self.seed)
        app.router.add_post("/provision", self.provision)
        app.router.add_post("/change", self.change)
        app.router.add_post("/reset", self.reset)
        app.router.add_post("/rate-limit", self.rate_limit)
        app.router.add_get("/stats", self.stats)
        return app

    async def seed(self, request: web.Request) -> web.Response:
        spec = await request.json()
        emulator = self.emulator
        app = emulator.create_app()
        assigned = emulator.add_assigned_users(app.id, int(spec["assigned"]))
        unassigned = [
            emulator.create_user(
                login=f"former.{number}@example.com",
                first_name="Former",
                last_name=f"Employee{number}",
                displayName=f"Former Employee{number}",
                locale="en_US",
            )
            for number in range(1, int(spec["unassigned"]) + 1)
        ]
        return web.json_response(
            {
                "app_id": app.id,
                "assigned": [person_row(user) for user in assigned],
                "unassigned": [person_row(user) for user in unassigned],
            }
        )

    async def provision(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self.emulator.log_paused():  # the state at rest: no System Log event for the follower to read
            for okta_id, scim_id in body["links"]:
                self.emulator.mark_provisioned(body["app_id"], okta_id, scim_id)
        if body.get("org_url"):
            # Serialise every app user now: a fresh emulator's first listing costs ~50 ms a page of
            # its own CPU, which real Okta does not make a client wait, and no timed run should pay.
            self.emulator.warm_listing(body["app_id"], body["org_url"])
        return web.json_response({"provisioned": len(body["links"])})

    async def change(self, request: web.Request) -> web.Response:
        body = await request.json()
        op, app_id, user_id, value = body["op"], body["app_id"], body.get("user_id"), body.get("value")
        emulator = self.emulator
        if op in ("deactivate", "suspend"):
            emulator.set_user_status(user_id, "DEPROVISIONED" if op == "deactivate" else "SUSPENDED")
        elif op == "unassign":
            emulator.unassign_user(app_id, user_id)
        elif op == "rename":
            emulator.update_user_profile(user_id, login=value, email=value)
            emulator.set_app_user(app_id, user_id, user_name=value)
        elif op == "edit":
            emulator.update_user_profile(user_id, firstName=value)
        elif op == "failed_push":
            emulator.update_user_profile(user_id, lastName=value)
            emulator.record_push(app_id, user_id, "push_profile", "FAILURE")
        elif op == "assign_new":
            user_id = emulator.create_user(login=value, first_name="New", last_name="Hire", locale="en_US").id
            emulator.assign_user(app_id, user_id)
        else:
            return web.json_response({"error": f"unknown op {op!r}"}, status=400)
        return web.json_response({"user_id": user_id})

    async def reset(self, request: web.Request) -> web.Response:
        self.emulator.clear_request_log()
        self.first_request.reset()
        self._fresh_windows()
        return web.json_response({})

    async def rate_limit(self, request: web.Request) -> web.Response:
        body = await request.json()
        bucket = body.get("bucket", APPS_BUCKET)
        self.rate_limits[bucket] = int(body["limit"])
        self.emulator.set_rate_limit(int(body["limit"]), bucket)
        return web.json_response({})

    async def stats(self, request: web.Request) -> web.Response:
        records = self.emulator.requests
        return web.json_response(
            {
                "requests": len(records),
                "list_pages": sum(1 for r in records if r.method == "GET" and r.path.endswith("/users")),
                "log_requests": sum(1 for r in records if r.path.startswith("/api/v1/logs")),
                "status_429": sum(1 for r in records if r.status == 429),
                "token_requests": sum(1 for r in records if r.path.startswith("/oauth2/")),
                "first_request_at": self.first_request.at,
                "by_path": dict(Counter(_path_kind(r.path) for r in records)),
            }
        )

    def _fresh_windows(self) -> None:
        """``set_rate_limit`` forgets every bucket's window: each run starts with a full budget."""
        bucket, limit = next(iter(self.rate_limits.items()), (APPS_BUCKET, None))
        if limit is None:
            self.emulator.set_rate_limit(DEFAULT_RATE_LIMIT, None)
        else:
            self.emulator.set_rate_limit(limit, bucket)


def _path_kind(path: str) -> str:
    """``/api/v1/apps/{id}/users/{id}``: a request's path with its ids left out, to count requests by endpoint."""
    return "/".join("{id}" if len(part) == 20 else part for part in path.split("/"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate-window-s", type=float, default=None)
    args = parser.parse_args()
    window_s = args.rate_window_s if args.rate_window_s is not None else RATE_LIMIT_WINDOW_S
    emulator = OktaEmulator(seed=args.seed, api_tokens=[os.environ[TOKEN_ENV]], rate_limit_window_s=window_s)
    emulator.set_latency(args.latency_ms)
    control = Control(emulator)
    asyncio.run(serve_until_stopped({"url": control.emulated_org(), "control": control.make_app()}))


if __name__ == "__main__":
    main()

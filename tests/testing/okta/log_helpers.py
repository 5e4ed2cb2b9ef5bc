"""What the System Log tests share: reading pages the way a follower does, and the spec's LogEvent example."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import yaml

LOGS = "/api/v1/logs"


def okta_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def an_hour_ago() -> str:
    """A ``since`` older than everything a real-clock test writes."""
    return okta_time(time.time() - 3600)


def logs_url(org_url: str, **params: Any) -> str:
    return f"{org_url}{LOGS}?{urlencode(params)}" if params else f"{org_url}{LOGS}"


async def get_page(http: aiohttp.ClientSession, url: str) -> tuple[int, Any, dict[str, str]]:
    """Status, JSON body and the Link URLs by rel (``self``, ``next``)."""
    async with http.get(url) as response:
        body = await response.json(content_type=None)
        return response.status, body, {link.get("rel", ""): str(link["url"]) for link in response.links.values()}


async def follow(http: aiohttp.ClientSession, url: str, *, max_pages: int = 50) -> tuple[list[dict[str, Any]], str]:
    """Every event from ``url`` on, following next links until a page is empty; and the last next link."""
    events: list[dict[str, Any]] = []
    for _ in range(max_pages):
        status, page, links = await get_page(http, url)
        assert status == 200, page
        events += page
        url = links["next"]
        if not page:
            return events, url
    raise AssertionError("the log never ran dry")


def summary(events: list[dict[str, Any]]) -> list[tuple[str, list[str], str]]:
    """(eventType, target types, transaction type) of each event: what a follower acts on."""
    return [
        (event["eventType"], [t["type"] for t in event["target"]], event["transaction"]["type"]) for event in events
    ]


def _spec_path() -> Path:
    """``shared/okta-openapi/management-api.yaml`` beside the checkout (a worktree sits one level deeper)."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / "shared" / "okta-openapi" / "management-api.yaml"
        if candidate.is_file():
            return candidate
    raise AssertionError("Okta's OpenAPI spec (shared/okta-openapi/management-api.yaml) is not beside the checkout")


@functools.cache
def spec_log_event_example() -> dict[str, Any]:
    """The spec's ``ListLogs`` example event (only its block is parsed: the whole spec takes seconds)."""
    lines = _spec_path().read_text().splitlines()
    start = lines.index("    ListLogs:")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("    ") and lines[i][4] != " ")
    example = yaml.safe_load("\n".join(lines[start:end]))
    return example["ListLogs"]["value"][0]

"""Cursor paging as Okta's listings do it: ``limit`` within bounds, ``after`` the last id of the previous page,
``Link`` headers (``rel="self"`` then ``rel="next"``, two separate headers, as Okta sends them), all built on
the :func:`base_url` the request came to.

Every listing pages over a sorted list of ids, so a page is a bisection and a slice: its cost does not grow
with the listing's length (benchmarks serve 100,000 app users).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from reconciler.testing.okta.errors import OktaHTTPError, okta_error

USER_ID = re.compile(r"00u[A-Za-z0-9]{17}")
GROUP_ID = re.compile(r"00g[A-Za-z0-9]{17}")
JSON = "application/json"


@dataclass(frozen=True)
class Paging:
    """One listing's bounds for ``limit`` and the shape of its ``after`` cursor."""

    default_limit: int
    max_limit: int
    cursor: re.Pattern[str]
    min_limit: int = 1

    def read(self, query: Mapping[str, str]) -> tuple[int, str | None]:
        """The ``limit`` and the ``after`` cursor asked for, checked in that order (Okta answers 400 for either)."""
        return self._limit(query), self._after(query)

    def _limit(self, query: Mapping[str, str]) -> int:
        """The ``limit`` asked for; 400 E0000001 when it is not a number within the bounds."""
        raw = query.get("limit")
        if raw is None:
            return self.default_limit
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not self.min_limit <= limit <= self.max_limit:
            cause = f"limit: The value must be between {self.min_limit} and {self.max_limit}."
            raise OktaHTTPError(400, okta_error("E0000001", "Api validation failed: limit", [cause]))
        return limit

    def _after(self, query: Mapping[str, str]) -> str | None:
        """The ``after`` cursor (the last id of the previous page); 400 E0000029 when it cannot be one."""
        raw = query.get("after")
        if raw is not None and not self.cursor.fullmatch(raw):
            raise OktaHTTPError(400, okta_error("E0000029", "Invalid paging request.", ["Invalid cursor."]))
        return raw


def page_after(listed: list[str], after: str | None, limit: int) -> tuple[list[str], str | None]:
    """The page of the sorted ``listed`` ids that follows ``after``, and the next page's cursor (None: the last)."""
    start = 0 if after is None else bisect.bisect_right(listed, after)
    page = listed[start : start + limit]
    return page, page[-1] if start + limit < len(listed) else None


def json_array(items: list[bytes]) -> bytes:
    """``json.dumps`` of a list, from its items' JSON, in one copy (a 500-user page is about a megabyte)."""
    chunks = [b", "] * (2 * len(items) - 1) if items else []
    chunks[::2] = items
    return b"".join([b"[", *chunks, b"]"])


def page_response(
    request: web.Request, base_url: str, limit: int, next_cursor: str | None, items: list[bytes]
) -> web.Response:
    """The page as ``web.json_response`` of its items would answer it, byte for byte, with its ``Link`` headers."""
    response = web.Response(body=json_array(items), content_type=JSON, charset="utf-8")
    for link in page_links(request, base_url, limit, next_cursor):
        response.headers.add("Link", link)
    return response


def page_links(request: web.Request, base_url: str, limit: int, next_cursor: str | None) -> list[str]:
    """``Link`` values as Okta formats them: parameters sorted, ``limit`` always present."""
    params = {**request.query, "limit": str(limit)}
    links = [f'<{base_url}{request.path}?{urlencode(sorted(params.items()))}>; rel="self"']
    if next_cursor is not None:
        params["after"] = next_cursor
        links.append(f'<{base_url}{request.path}?{urlencode(sorted(params.items()))}>; rel="next"')
    return links


def base_url(request: web.Request) -> str:
    """The org URL the request came to: Okta's links are absolute, on the host the client used."""
    return f"{request.scheme}://{request.host}"

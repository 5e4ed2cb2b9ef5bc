"""What Okta answers, read: its error bodies, ``Link`` cursors and headers, which failures may pass, and
the org URL it is reached at. Pure: no request is sent here, and the okta SDK is not imported."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from reconciler.errors import SourceError
from reconciler.net.pacing import header_value
from reconciler.net.retries import is_transient_connection_failure
from reconciler.net.transport import is_loopback_host

APPS_FAMILY = "/api/v1/apps"
GROUPS_FAMILY = "/api/v1/groups"
LOGS_FAMILY = "/api/v1/logs"
"""The System Log: a rate-limit bucket of its own, so following it never spends the listings' budget."""
MAX_DETAIL = 300
"""Characters of an error text quoted in a message."""
_LINK = re.compile(r"<(?P<url>[^>]*)>(?P<params>[^,<]*)")
_REL = re.compile(r"""\brel\s*=\s*(?:"(?P<quoted>[^"]*)"|(?P<bare>[^\s;,]+))""", re.IGNORECASE)


def okta_error_detail(error: Exception) -> str:
    """``HTTP 401 E0000011: Invalid token provided``, or the status and the start of a non-Okta body."""
    status = getattr(error, "status", None)
    code = getattr(error, "error_code", None)
    if code:
        summary = " ".join(str(getattr(error, "error_summary", "")).split())
        return f"HTTP {status} {code}: {summary}".rstrip(": ")
    text = " ".join(str(getattr(error, "message", error)).split())
    prefix = f"HTTP {status} "
    text = text.removeprefix(prefix) if status is not None else text
    body = text[:MAX_DETAIL] + ("…" if len(text) > MAX_DETAIL else "")
    return f"HTTP {status}: {body}" if status is not None else body


def exception_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > MAX_DETAIL:
        text = text[:MAX_DETAIL] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_transient_transport_error(exc: BaseException) -> bool:
    """A failure on the wire that may pass, by the policy both sides share (:mod:`reconciler.net.retries`).

    A timeout, or a connection made and then lost (dropped, reset, answer broken off), may pass; a failed
    connect may pass when it was refused, reset or unreachable for now, not when the host is unknown; a
    certificate that does not verify never will.
    """
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return False
    if isinstance(exc, aiohttp.ClientConnectorError):
        return is_transient_connection_failure(exc.os_error)
    return isinstance(
        exc,
        TimeoutError
        | aiohttp.ServerDisconnectedError
        | aiohttp.ClientPayloadError
        | aiohttp.ClientOSError
        | ConnectionResetError,
    )


def rate_limit_family(url: str) -> str:
    """``/api/v1/apps``, ``/api/v1/groups``…: the endpoint family whose window Okta counts a request in."""
    parts = urlsplit(url).path.split("/")
    return "/".join(parts[:4]) if len(parts) >= 4 and parts[1:3] == ["api", "v1"] else "/api/v1"


def next_cursor(headers: Mapping[str, Any]) -> str | None:
    """The ``after`` value of the ``rel="next"`` link, or None on the last page.

    Accepts any mapping (header names matched case-insensitively) whose
    ``Link`` values are strings, possibly several links joined by commas, or
    lists of them. okta 3.4.6 hands headers over as a plain dict in which a
    repeated header keeps its last value; Okta sends ``rel="self"`` first and
    ``rel="next"`` last, so the next link survives.
    """
    for url in links_with_rel(headers, "next"):
        values = parse_qs(urlsplit(url).query).get("after")
        if not values or not values[0]:
            raise SourceError(f"Okta's next-page link has no after cursor: {url}")
        return values[0]
    return None


def links_with_rel(headers: Mapping[str, Any], rel: str) -> Iterator[str]:
    for name, value in headers.items():
        if str(name).lower() != "link":
            continue
        for link_header in [value] if isinstance(value, str) else list(value):
            for link in _LINK.finditer(str(link_header)):
                rel_match = _REL.search(link.group("params"))
                rels = (rel_match.group("quoted") or rel_match.group("bare") or "").split() if rel_match else []
                if rel in (r.lower() for r in rels):
                    yield link.group("url").strip()


def checked_org_url(org_url: str) -> tuple[str, bool]:
    """The org URL without trailing slash, and whether it is plain http to a loopback host.

    Plain http is refused for any other host: the API token or client
    assertion would cross the network in clear.
    """
    url = org_url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"okta org URL {org_url!r} is not an http(s) URL such as https://example.okta.com")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise SourceError(f"okta org URL {org_url!r} must be the bare org URL, such as https://example.okta.com")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise SourceError(
            f"refusing plain http:// for Okta at {url}: credentials would travel unencrypted; "
            "use https:// (http is allowed only for a loopback host such as a local emulator)"
        )
    return url, parts.scheme == "http"


def json_object_of(body: bytes | str) -> Mapping[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise SourceError(f"Okta answered JSON it cannot parse: {error}") from None
    if not isinstance(value, dict):
        raise SourceError(f"Okta answered a JSON {type(value).__name__} where an object was expected")
    return value


def int_header(headers: Mapping[str, Any], name: str) -> int | None:
    value = header_value(headers, name)
    return int(value) if value is not None and value.strip().isdigit() else None

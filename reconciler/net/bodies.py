"""What kind of answer a server sent, in a few words, for the message that says it is the wrong server.

A URL that points at a web page, a sign-in portal or another API answers something; the message
names what it was ("an HTML page titled 'Welcome'", "a JSON object with keys status, version")
so the operator recognises the server, and never quotes the body itself: a page of HTML in an
error line helps nobody, and a body may echo what it was sent.
"""

from __future__ import annotations

import html
import json
import re

MAX_TITLE = 80
MAX_KEYS = 5
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


def describe_body(content_type: str | None, body: bytes | str) -> str:
    """``an HTML page titled 'Welcome'``, ``a JSON array``, ``an empty answer``, ``a text/plain answer``…"""
    raw = body.encode("utf-8", "replace") if isinstance(body, str) else body
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if not raw.strip():
        return "an empty answer"
    if media_type == "text/html" or raw.lstrip()[:1] == b"<":
        return _html_page(raw)
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return f"a {media_type} answer" if media_type else "an answer that is not JSON"
    json_like = not media_type or media_type == "application/json" or media_type.endswith("+json")
    return _json_kind(value) + ("" if json_like else f" sent as {media_type}")


def _html_page(raw: bytes) -> str:
    found = _TITLE.search(raw[:65536])
    if not found:
        return "an HTML page"
    title = " ".join(html.unescape(found.group(1).decode("utf-8", "replace")).split())
    if not title:
        return "an HTML page"
    title = title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
    return f"an HTML page titled {title!r}"


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        if not value:
            return "an empty JSON object"
        keys = [str(key) for key in list(value)[:MAX_KEYS]]
        more = ", …" if len(value) > MAX_KEYS else ""
        return f"a JSON object with keys {', '.join(keys)}{more}"
    if isinstance(value, list):
        return "a JSON array"
    return f"a JSON {type(value).__name__}"

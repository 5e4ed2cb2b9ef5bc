"""Okta's error answers: the body every endpoint shares, and the exception handlers raise to send one."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from reconciler.testing.okta.records import ID_ALPHABET

OKTA_ERROR_CODES = {400: "E0000001", 401: "E0000011", 403: "E0000006", 404: "E0000007", 429: "E0000047"}
RATE_LIMIT_SUMMARY = "API call exceeded rate limit due to too many requests."


class OktaHTTPError(Exception):
    """Raised inside handlers; the front door turns it into an Okta error answer (with its headers)."""

    def __init__(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def okta_error(code: str, summary: str, causes: Iterable[str] = ()) -> dict[str, Any]:
    """An Okta error body (``errorCode``, ``errorSummary``, ``errorLink``, ``errorId``, ``errorCauses``)."""
    return {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oae" + "".join(secrets.choice(ID_ALPHABET) for _ in range(22)),
        "errorCauses": [{"errorSummary": cause} for cause in causes],
    }


def error_code(status: int) -> str:
    """The ``errorCode`` Okta sends with an HTTP status (E0000009, an internal error, for the others)."""
    return OKTA_ERROR_CODES.get(status, "E0000009")


def status_error(status: int) -> dict[str, Any]:
    """The error body for a bare status: the rate-limit one for 429, else the status's phrase."""
    if status == 429:
        return okta_error("E0000047", RATE_LIMIT_SUMMARY)
    try:
        summary = HTTPStatus(status).phrase
    except ValueError:
        summary = "Error"
    return okta_error(error_code(status), summary)


def not_found(resource_id: str, kind: str) -> OktaHTTPError:
    """404 E0000007 for a missing ``kind`` (AppInstance, AppUser, User, UserGroup)."""
    return OktaHTTPError(404, okta_error("E0000007", f"Not found: Resource not found: {resource_id} ({kind})"))


def oauth_error(status: int, error: str, description: str) -> OktaHTTPError:
    """The token endpoint's errors are OAuth 2.0's (``error``, ``error_description``), not Okta's."""
    return OktaHTTPError(status, {"error": error, "error_description": description})

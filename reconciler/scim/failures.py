"""What a failed SCIM request means: retry it or not, and the message that names the method, the path, the
status and the server's own detail, never the token."""

from __future__ import annotations

import os
import ssl
from http import HTTPStatus

import httpx
import pydantic

from reconciler.errors import TargetConflict, TargetError, TargetNotFound
from reconciler.net.bodies import describe_body
from reconciler.net.pacing import parse_retry_after
from reconciler.net.retries import exception_chain, is_transient_connection_failure, is_transient_status
from reconciler.net.transport import JsonError, decode_json, is_json_media_type
from reconciler.secret import Secret, redact


def check_json_media_type(method: str, path: str, response: httpx.Response) -> None:
    content_type = response.headers.get("Content-Type")
    if not is_json_media_type(content_type):
        raise TargetError(
            f"SCIM {method} {path} answered {response.status_code} with Content-Type {content_type!r} "
            "where SCIM JSON was expected",
            response.status_code,
        )


TOKEN_HINT = "check the token in scim.token_env / scim.token_file"
LISTINGS_EVERY_SERVER_HAS = ("/Users",)
"""Paths every SCIM server answers a GET on (RFC 7644 §3.4.2): a 404 there means the wrong server or base."""
LIST_RESPONSE_KEYS = frozenset({"Resources", "totalResults", "schemas", "itemsPerPage", "startIndex"})


def not_a_scim_endpoint(base_url: str, method: str, path: str, status: int, kind: str) -> str:
    """An answer no SCIM server gives to a listing: scim.base_url points at another server, or not at its base."""
    return (
        f"this is not a SCIM endpoint: {base_url or 'the server'} answered {method} {path} with HTTP {status} "
        f"and {kind}, where a SCIM server lists its users: check scim.base_url (the SCIM base the platform "
        "documents, such as https://platform.example.com/scim/v2)"
    )


def refuse_another_kind(base_url: str, path: str, response: httpx.Response, token: Secret, *, must_list: bool) -> None:
    """TargetError when a 2xx answer to a listing is not SCIM: not JSON or, with ``must_list``, JSON that is no
    ListResponse at all (neither ``Resources`` nor ``totalResults`` nor ``schemas``: another API's document).

    A ListResponse sent under the wrong Content-Type is a SCIM server's slip, and said as such."""
    content_type = response.headers.get("Content-Type")
    if is_json_media_type(content_type) and not must_list:
        return
    try:
        payload = decode_json(response.content)
    except JsonError:
        payload = None
        if must_list:
            return  # JSON broken or cut short: a failing server, said as such, not another kind of server
    if isinstance(payload, list) or (isinstance(payload, dict) and not LIST_RESPONSE_KEYS.isdisjoint(payload)):
        if not must_list:
            check_json_media_type("GET", path, response)
        return
    kind = redact(describe_body(content_type, response.content), [token.reveal()])
    raise TargetError(not_a_scim_endpoint(base_url, "GET", path, response.status_code, kind), response.status_code)


class RetryableFailure(TargetError):
    """A failure worth another attempt: a 429, a 5xx or a network error."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        scim_type: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status, scim_type)
        self.retry_after_s = retry_after_s


def is_retryable_status(status: int) -> bool:
    """429 (paced by its ``Retry-After``) and the 5xx that may pass (:mod:`reconciler.net.retries`)."""
    return status == HTTPStatus.TOO_MANY_REQUESTS or is_transient_status(status)


def is_transient_transport_error(error: httpx.TransportError) -> bool:
    """A failure on the wire that may pass, by the shared policy (:mod:`reconciler.net.retries`).

    A timeout, or a connection made and then lost (a read or write cut off, an answer broken off), may
    pass; a failed connect may pass when it was refused, reset or unreachable for now, not when the host
    is unknown; a certificate that does not verify, or a request httpx cannot send, never will.
    """
    if is_certificate_failure(error):
        return False
    if isinstance(error, httpx.TimeoutException | httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return True
    return is_transient_connection_failure(error)


def status_reason(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def shortened(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scim_error_detail(response: httpx.Response, token: Secret) -> tuple[str | None, str | None]:
    """The ``(scimType, detail)`` of an error answer, read leniently; a non-SCIM body gives a snippet.

    Credentials are masked before anything is cut short, so that no prefix of the token survives.
    """
    try:
        payload = decode_json(response.content)
    except JsonError:
        kind = describe_body(response.headers.get("Content-Type"), response.content)
        if kind.startswith("an HTML page"):
            return None, redact(kind, [token.reveal()])  # what it is, never the HTML
        return None, shortened(redact(response.text, [token.reveal()])) or None
    if not isinstance(payload, dict):
        return None, shortened(redact(str(payload), [token.reveal()]))
    fields = {key: payload[key] for key in ("status", "scimType", "detail") if key in payload}
    # Imported here, on the error path only: scim2-models takes a third of a second to import.
    from scim2_models import Error

    try:
        error = Error.model_validate(fields)
    except pydantic.ValidationError:
        return None, shortened(redact(str(payload.get("detail") or payload), [token.reveal()]))
    return error.scim_type, redact(error.detail, [token.reveal()]) if error.detail else error.detail


def failure_for(method: str, path: str, response: httpx.Response, token: Secret, base_url: str = "") -> TargetError:
    """The error a non-2xx answer stands for.

    The detail is the server's; should a debugging proxy echo the request
    headers in it, the token is masked all the same (as ``********``).
    """
    status = response.status_code
    if method == "GET" and path in LISTINGS_EVERY_SERVER_HAS and status in (HTTPStatus.NOT_FOUND, 405):
        kind = describe_body(response.headers.get("Content-Type"), response.content)
        return TargetError(redact(not_a_scim_endpoint(base_url, method, path, status, kind), [token.reveal()]), status)
    scim_type, detail = scim_error_detail(response, token)
    message = f"SCIM {method} {path} answered {status_reason(status)}"
    if scim_type:
        message += f" ({scim_type})"
    if detail:
        message += f": {detail}"
    if status == HTTPStatus.UNAUTHORIZED:
        return TargetError(f"{message}; the platform refused the bearer token: {TOKEN_HINT}", status, scim_type)
    if is_retryable_status(status):
        return RetryableFailure(message, status, scim_type, parse_retry_after(response.headers.get("Retry-After")))
    if status == HTTPStatus.CONFLICT:
        return TargetConflict(message, status, scim_type)
    if status == HTTPStatus.NOT_FOUND:
        return TargetNotFound(message, status, scim_type)
    return TargetError(message, status, scim_type)


def transport_failure(method: str, where: str, error: httpx.TransportError, timeout_s: float | None) -> str:
    """What went wrong on the wire, in words: no connection, no answer in time, or an answer broken off.

    httpx's own messages are often empty (``ReadTimeout:``), so the kind is
    spelled out and the cause (``Connection reset by peer``) added.
    """
    if isinstance(error, httpx.TimeoutException):  # its causes say only that a deadline passed
        kind = type(error).__name__
        return f"SCIM {method} {where} timed out: no answer within {timeout_s:g} s (scim.timeout_s) ({kind})"
    chain = list(exception_chain(error))
    socket_reason = next((os.strerror(link.errno) for link in chain if isinstance(link, OSError) and link.errno), None)
    cause = socket_reason or next((str(link) for link in chain if str(link)), "")
    detail = f"{type(error).__name__}: {cause}" if cause else type(error).__name__
    if isinstance(error, httpx.ConnectError):
        return f"cannot reach SCIM at {where} ({method}): {detail}"
    return f"SCIM {method} {where}: the connection broke before the answer was complete ({detail})"


def is_certificate_failure(error: httpx.TransportError) -> bool:
    """A server certificate that does not verify: retrying will not change it."""
    cause = error.__cause__ or error.__context__
    return isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(error)


def certificate_message(where: str, error: httpx.TransportError) -> str:
    return (
        f"SCIM at {where}: the server's TLS certificate does not verify ({error}): if the platform uses a "
        "private CA, set scim.ca_bundle to the PEM file of that CA"
    )

"""What a failed request to Okta says to the operator: what failed, where, and the setting to check."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from reconciler.net.bodies import describe_body
from reconciler.okta.answers import GROUPS_FAMILY, LOGS_FAMILY, exception_text, okta_error_detail, rate_limit_family

if TYPE_CHECKING:
    from reconciler.okta.sdk import AuthMode


@dataclass(frozen=True)
class FailureWording:
    """The messages of one Okta source: they name its org, app and credential settings."""

    org_url: str
    app_id: str
    auth: AuthMode
    client_id: str | None
    scopes: Sequence[str]
    timeout_s: float

    def transport(self, exc: BaseException, where: str) -> str:
        """No usable answer: a timeout, a refused or broken connection, a certificate that does not verify."""
        if isinstance(exc, TimeoutError):
            return f"Okta at {self.org_url} did not answer within {self.timeout_s:g} s ({where})"
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return (
                f"Okta at {self.org_url}: its TLS certificate does not verify ({exc.certificate_error}) "
                f"({where}): if a private CA or a TLS-inspecting proxy signed it, set okta.ca_bundle "
                "to the PEM file of that CA"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            refused = isinstance(exc.os_error, ConnectionRefusedError) or exc.os_error.errno == errno.ECONNREFUSED
            reason = "connection refused" if refused else (exc.os_error.strerror or str(exc.os_error))
            return f"cannot reach Okta at {self.org_url}: {reason} ({where})"
        if isinstance(exc, aiohttp.ServerDisconnectedError):
            return f"Okta at {self.org_url} closed the connection without answering ({where})"
        if isinstance(exc, aiohttp.ClientPayloadError):
            return f"Okta at {self.org_url} broke off its answer part-way: {exception_text(exc)} ({where})"
        return f"cannot talk to Okta at {self.org_url}: {exception_text(exc)} ({where})"

    def not_an_org(self, url: str, status: int, kind: str, where: str = "") -> str:
        """An answer no Okta org gives: okta.org_url points at another server (a web page, a proxy, an API)."""
        path = urlsplit(url).path or url
        request = f"GET {path} ({where})" if where else f"GET {path}"
        return (
            f"this is not an Okta org: {self.org_url} answered {request} with HTTP {status} and {kind}, "
            "which no Okta org answers: check okta.org_url (the org's own URL, such as https://example.okta.com)"
        )

    def sdk(self, exc: Exception, where: str) -> str:
        """The okta SDK failed in its own code on an answer."""
        return f"Okta listing failed on {where}: the okta SDK failed: {exception_text(exc)}"

    def refusal(self, error: Exception, where: str, url: str = "") -> str:
        """Okta answered with an error: the credential, the scopes, the app id or the group, named.

        A refusal without Okta's error code (``E0000007``…) did not come from Okta: a 404 from a web
        server (no such path, no such method) blames okta.org_url, never okta.app_id.
        """
        status = getattr(error, "status", None)
        code = getattr(error, "error_code", None)
        if not code and status in (404, 405):
            body = str(getattr(error, "message", "")).removeprefix(f"HTTP {status} ")  # the SDK's HTTPError
            return self.not_an_org(url or where, status, describe_body(None, body), where if url else "")
        detail = okta_error_detail(error)
        if code in ("invalid_client", "invalid_scope"):
            return self._service_app_refusal(code, detail)
        if status == 401:
            return self._token_refusal(detail)
        reads_groups = rate_limit_family(url) == GROUPS_FAMILY
        if status == 403 and rate_limit_family(url) == LOGS_FAMILY:
            return f"Okta denied reading its System Log ({detail}): the credential needs okta.logs.read"
        if status == 403 and reads_groups:
            return f"Okta denied reading {where} ({detail}): the credential needs okta.groups.read"
        if status == 403:
            return (
                f"Okta denied reading app {self.app_id}'s assignments ({detail}): the credential needs okta.apps.read"
            )
        if status == 404 and reads_groups:
            return f"Okta answered {detail} on {where}: was the group deleted while the run read it?"
        if status == 404:
            return f"Okta has no app {self.app_id} ({detail}): check okta.app_id"
        return f"Okta listing failed on {where}: {detail}"

    def _service_app_refusal(self, code: str, detail: str) -> str:
        if code == "invalid_client":
            return (
                f"Okta refused service app {self.client_id}'s client assertion ({detail}): "
                "check okta.client_id, and that okta.private_key_file matches the public key registered in Okta"
            )
        scopes = " ".join(self.scopes)
        return (
            f"Okta refused the scopes {scopes} ({detail}): "
            f"grant them to service app {self.client_id} in Okta, or change okta.scopes"
        )

    def _token_refusal(self, detail: str) -> str:
        if self.auth == "api_token":
            return f"Okta rejected the API token ({detail}): check okta.token_env (or okta.token_file)"
        return f"Okta rejected service app {self.client_id}'s access token ({detail})"

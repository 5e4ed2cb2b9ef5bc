"""What both sides' HTTP clients share: TLS trust, plain-http refusal, response size caps, JSON decoding.

Kept free of httpx, aiohttp and the okta SDK, so that the configuration can
check URLs and CA bundles with it without paying for their imports.

Everything a server sends is untrusted: a body is read up to a cap (64 MiB by
default) and decoded by :func:`decode_json`, which turns malformed or absurdly
nested JSON into a :class:`JsonError` instead of a ``RecursionError``.
"""

from __future__ import annotations

import ipaddress
import ssl
import zlib
from pathlib import Path
from typing import Any, Final

import msgspec

from reconciler.net.limits import MIB


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1: the only hosts plain http:// may reach."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def ssl_context_for(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """What to verify servers with: ``True`` (each library's default trust store) or the CA bundle alone.

    With a bundle, only its certificates are trusted for that side (a private CA),
    with the usual hostname checks; ssl.SSLError or OSError if it cannot be loaded.
    """
    if ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(ca_bundle))


def ca_bundle_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable PEM CA bundle, or None when it is."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"cannot read {path}: {error.strerror or type(error).__name__}"
    if "-----BEGIN CERTIFICATE-----" not in text:
        return f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----): expected the CA's certificate(s)"
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, ValueError) as error:
        return f"{path} is not a usable PEM CA bundle: {error}"
    return None


class ResponseTooLarge(ValueError):
    """A server sent more than the configured cap; reading stopped there."""

    def __init__(self, limit_bytes: int, setting: str) -> None:
        self.limit_bytes = limit_bytes
        super().__init__(
            f"the answer is larger than {limit_bytes / MIB:g} MiB, so it was not read: "
            f"if the server's answers really are that large, raise {setting}"
        )


class UnreadableBody(ValueError):
    """A body in an encoding this reader does not decode, or corrupt compressed data."""


class CappedBody:
    """Collects a body's bytes, decoded, up to ``limit_bytes``; :class:`ResponseTooLarge` past it.

    Decompression (gzip, deflate: what the reconciler asks for) is done here
    with a bound on each step's output, so that a compression bomb (a few KB
    on the wire, gigabytes once inflated) stops at the cap as well. httpx's own
    decoders inflate each received chunk whole before any cap could apply.
    """

    def __init__(self, content_encoding: str | None, limit_bytes: int, setting: str) -> None:
        self._limit = limit_bytes
        self._setting = setting
        self._chunks: list[bytes] = []
        self._size = 0
        self._inflater = _inflater_for(content_encoding)
        self._may_be_raw_deflate = self._inflater is not None and _codings(content_encoding) == ["deflate"]

    def feed(self, raw: bytes) -> None:
        if self._inflater is None:
            self._keep(raw)
            return
        data = raw
        while data:
            room = self._limit - self._size
            try:
                out = self._inflater.decompress(data, room + 1)
            except zlib.error as error:
                if self._may_be_raw_deflate and self._size == 0:
                    # "deflate" is often sent as raw deflate, without its zlib wrapper (httpx copes the same way)
                    self._may_be_raw_deflate = False
                    self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise UnreadableBody(f"corrupt compressed body: {error}") from None
            self._keep(out)
            data = self._inflater.unconsumed_tail

    def finish(self) -> bytes:
        if self._inflater is not None:
            self._keep(self._inflater.flush())
            if not self._inflater.eof:
                raise UnreadableBody("corrupt compressed body: the compressed stream ends early")
        return b"".join(self._chunks)

    def _keep(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise ResponseTooLarge(self._limit, self._setting)
        if data:
            self._chunks.append(data)


ACCEPT_ENCODING: Final = "gzip, deflate"
"""What a :class:`CappedBody` can inflate."""


def _codings(content_encoding: str | None) -> list[str]:
    """The content codings applied, in order, without ``identity``."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    return [c for c in codings if c != "identity"]


def _inflater_for(content_encoding: str | None) -> Any:
    codings = _codings(content_encoding)
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if codings == ["deflate"]:
        return zlib.decompressobj()
    raise UnreadableBody(
        f"the answer's Content-Encoding is {content_encoding!r}, which was not asked for (only {ACCEPT_ENCODING})"
    )


def declared_too_large(content_length: str | int | None, limit_bytes: int) -> bool:
    """True when a ``Content-Length`` already says the body is over the cap."""
    try:
        return content_length is not None and int(content_length) > limit_bytes
    except ValueError:
        return False


def is_json_media_type(content_type: str | None) -> bool:
    """application/json, application/scim+json or another ``+json``; an absent type gets the benefit of the doubt."""
    if not content_type:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class JsonError(ValueError):
    """A body that is not JSON, or JSON too deeply nested to decode safely."""


def decode_json(body: bytes | str) -> Any:
    """The JSON value of ``body``; JsonError says what is wrong with it.

    Deeply nested JSON (``[[[[...`` 100,000 deep) makes both ``json`` and
    msgspec raise RecursionError; it is caught here and reported as what it is.
    """
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as error:
        raise JsonError(f"malformed JSON: {error}") from None
    except RecursionError:
        raise JsonError(NESTING_MESSAGE) from None


NESTING_MESSAGE: Final = "JSON nested too deeply to decode (no SCIM or Okta answer is)"

"""The SCIM reader and writer as a run builds them (one connection, shared), for tests that talk to a server."""

from __future__ import annotations

from typing import Any

from reconciler.scim.http import ScimConnection
from reconciler.scim.reader import ScimReader
from reconciler.scim.writer import ScimWriter
from reconciler.secret import Secret

READER_OPTIONS = frozenset({"page_size", "read_concurrency", "progress", "keep_attributes"})
"""What the reader takes; every other option is the connection's (timeout, retry, TLS, size cap, transport)."""


def reader_on(base_url: str, token: Secret, **options: Any) -> ScimReader:
    """A reader on a connection of its own (closing the reader closes it)."""
    reader_options = {name: options.pop(name) for name in list(options) if name in READER_OPTIONS}
    return ScimReader(ScimConnection(base_url, token, **options), **reader_options)


def writer_of(reader: ScimReader, **options: Any) -> ScimWriter:
    """A writer sharing ``reader``'s connection, as a run's writer does."""
    return ScimWriter(reader.connection, reader, **options)

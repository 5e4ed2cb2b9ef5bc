"""Canonical JSON and digests of it: what saved plans sign and what their subject digests hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest_of(value: Any) -> str:
    """The sha256, in hex, of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()

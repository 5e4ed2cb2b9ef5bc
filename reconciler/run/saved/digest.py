"""Canonical JSON and digests of it: what saved plans sign and what their subject digests hash; and
telling the saved writes whose subject is unchanged from the stale ones."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

SavedAction_ = TypeVar("SavedAction_")


def plain_json(value: Any) -> Any:
    """``value`` with every Mapping a dict and every tuple a list, as JSON would read it back."""
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    """One byte string per JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def digest_of(value: Any) -> str:
    """The sha256, in hex, of ``value``'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


class Saved(Protocol[SavedAction_]):
    """A write of a saved plan with the digest of its subject as it was when the plan was made."""

    @property
    def action(self) -> SavedAction_: ...
    @property
    def subject_digest(self) -> str: ...


@dataclass
class Stale(Generic[SavedAction_]):
    """A saved write not sent, because its subject changed since the plan was made: why, naming it."""

    action: SavedAction_
    why: str


def split_stale(
    saved: Iterable[Saved[SavedAction_]],
    live_digest: Callable[[SavedAction_], str],
    why_stale: Callable[[SavedAction_], str],
) -> tuple[list[SavedAction_], list[Stale[SavedAction_]]]:
    """The saved writes whose subject's live digest is the saved one, and the others with why."""
    current: list[SavedAction_] = []
    stale: list[Stale[SavedAction_]] = []
    for entry in saved:
        if live_digest(entry.action) == entry.subject_digest:
            current.append(entry.action)
        else:
            stale.append(Stale(entry.action, why_stale(entry.action)))
    return current, stale

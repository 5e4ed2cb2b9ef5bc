"""Fixtures the crash tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.crash_zygote import Zygote


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    """A pre-imported parent that forks the processes a crash test kills (one per test module)."""
    with Zygote() as started:
        yield started

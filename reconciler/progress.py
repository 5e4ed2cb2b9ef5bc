"""How far a run has got, for a display: pages read, users planned, writes done.

The stages report through a :class:`ProgressListener`; a run without a
display gets :data:`NO_PROGRESS`, whose methods do nothing. Listeners are
called from the run's event loop and must return at once.
"""

from __future__ import annotations

from typing import Final, Protocol


class ProgressListener(Protocol):
    def okta_page(self, users: int) -> None:
        """One page of Okta assignments arrived, holding ``users`` users."""

    def scim_page(self, users: int, total: int | None) -> None:
        """One SCIM page arrived; ``total`` is the server's totalResults once known."""

    def planned(self, users: int) -> None:
        """The plan covered ``users`` users (desired and actual together)."""

    def apply_started(self, writes: int) -> None:
        """``writes`` writes are about to be sent."""

    def write_done(self, succeeded: bool) -> None:
        """One write finished."""

    def finished(self) -> None:
        """The run is over: a display clears itself."""


class NoProgress:
    """The listener of a run nobody watches."""

    def okta_page(self, users: int) -> None:
        pass

    def scim_page(self, users: int, total: int | None) -> None:
        pass

    def planned(self, users: int) -> None:
        pass

    def apply_started(self, writes: int) -> None:
        pass

    def write_done(self, succeeded: bool) -> None:
        pass

    def finished(self) -> None:
        pass


NO_PROGRESS: Final[ProgressListener] = NoProgress()

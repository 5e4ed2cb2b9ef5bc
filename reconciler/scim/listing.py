"""One listing of the platform's users, page by page: its pages as they arrive, in any order, what they
leave uncovered, and the bounds that refuse a partial or runaway listing."""

from __future__ import annotations

from typing import Final

from reconciler.errors import TargetError
from reconciler.models.records import PlatformUser

LISTING_ATTEMPTS: Final = 3
"""Listings read at most while ``totalResults`` keeps changing between pages."""
PAGE_LOOP_SLACK: Final = 10
"""Pages allowed beyond ``totalResults`` (the worst case, one user per page) before the listing
is declared runaway."""
MAX_LISTED_USERS: Final = 10_000_000
"""A ``totalResults`` above this is not a user count this reconciler can hold: the listing is refused
before its second page (a server answering 10**12 would otherwise be asked for billions of pages)."""
MAX_LISTING_PAGES: Final = 100_000
"""Pages one listing may take at most (100,000 users at one user per page)."""


def check_page_count(total: int, first_page: int, step: int) -> None:
    """Refuse, before the second request, a listing that would take more than MAX_LISTING_PAGES pages."""
    pages = 1 + -(-max(0, total - first_page) // step)
    if pages > MAX_LISTING_PAGES:
        raise TargetError(
            f"SCIM GET /Users announces totalResults={total} in pages of {step}: {pages:,} requests, more than "
            f"the {MAX_LISTING_PAGES:,} one listing may take; check the server (or raise scim.page_size)"
        )


class TotalChanged(Exception):
    """A listing page's ``totalResults`` differs from the first page's: the listing is read again."""


class UserListing:
    """The pages of one listing as they arrive, in any order, and what they leave uncovered."""

    def __init__(self, page_size: int, filter_expression: str | None) -> None:
        self.page_size = page_size
        """What the first page asks for."""
        self.step = page_size
        """How many users the server really puts in a page, as its first page showed."""
        self.filter_expression = filter_expression
        self.total = 0
        self._pages: dict[int, list[PlatformUser]] = {}
        self._seen: set[str] = set()

    def add(self, start_index: int, total: int, users: list[PlatformUser]) -> None:
        if total > MAX_LISTED_USERS:
            raise TargetError(
                f"SCIM GET /Users answered totalResults={total} at startIndex={start_index}: more than the "
                f"{MAX_LISTED_USERS:,} users a listing may hold, so it is not read"
            )
        if len(self._pages) >= MAX_LISTING_PAGES:
            raise TargetError(f"SCIM GET /Users kept paging past {MAX_LISTING_PAGES:,} pages: the listing is refused")
        if self._pages and total != self.total:
            raise TotalChanged(f"{self.total} on the first page, {total} at startIndex={start_index}")
        if not users and start_index <= total:
            raise TargetError(
                f"SCIM GET /Users answered an empty page at startIndex={start_index} although totalResults "
                f"is {total}: the listing would be partial"
            )
        if users and self._pages and all(user.scim_id in self._seen for user in users):
            raise TargetError(
                f"SCIM GET /Users answered at startIndex={start_index} only users it had already listed: "
                "the server seems to ignore startIndex, and the listing would be partial"
            )
        if len(self._pages) > self.total + PAGE_LOOP_SLACK and self._pages:
            raise TargetError(f"SCIM GET /Users kept paging past {len(self._pages)} pages for {self.total} users")
        self.total = total
        self._pages[start_index] = users
        self._seen.update(user.scim_id for user in users)

    def first_gap(self) -> tuple[int, int] | None:
        """The first range not covered by a page read so far, up to ``total``, as (startIndex, count) of at
        most one step; None when all is read."""
        covered = 1
        for start_index in sorted(self._pages):
            if start_index > covered:
                return covered, min(self.step, start_index - covered)
            covered = max(covered, start_index + len(self._pages[start_index]))
        return (covered, min(self.step, self.total + 1 - covered)) if covered <= self.total else None

    def users(self) -> list[PlatformUser]:
        unique: dict[str, PlatformUser] = {}
        for start_index in sorted(self._pages):
            for user in self._pages[start_index]:
                unique.setdefault(user.scim_id, user)
        return list(unique.values())

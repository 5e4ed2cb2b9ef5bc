"""The benchmark's scenario and its arithmetic: who drifts how, and the least a run can do.

N users are assigned to the Okta app. 1 % of N drifts, in three equal parts:

- **create**: assigned in Okta, never pushed: missing on the platform;
- **update**: pushed, then ``name.givenName`` edited on the platform;
- **deactivate**: extra platform users, active, whose ``externalId`` is the id of an Okta user
  who is not assigned to the app (any more).

Every other assigned user is on the platform exactly as Okta's SCIM app pushes it (the body of
:func:`reconciler.testing.scenario.push_like_okta`) and linked (``AppUser.externalId`` = its SCIM id).
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

CORE_USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
OKTA_PAGE_SIZE = 500
"""Okta's ceiling for ``limit`` on ``/api/v1/apps/{appId}/users``."""
EDITED_GIVEN_NAME = "Edited-on-the-platform"


@dataclass(frozen=True, slots=True)
class Person:
    """An Okta user, as the Okta server's ``/seed`` describes it."""

    okta_id: str
    login: str
    first_name: str
    last_name: str
    email: str
    display_name: str | None
    locale: str | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Person:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class Drift:
    """How many users drift, by kind."""

    create: int
    update: int
    deactivate: int

    @classmethod
    def for_size(cls, n: int, ratio: float = 0.01) -> Drift:
        """``ratio`` of ``n`` (at least 3), split in three: create, update, then deactivate takes the rest."""
        total = max(3, round(n * ratio))
        return cls(total // 3, total // 3, total - 2 * (total // 3))

    @property
    def writes(self) -> int:
        return self.create + self.update + self.deactivate


def pushed_resource(person: Person, given_name: str | None = None) -> dict[str, Any]:
    """The SCIM User Okta's app POSTs for ``person`` (see ``reconciler.testing.scenario.push_like_okta``)."""
    return {
        "schemas": [CORE_USER_URN],
        "userName": person.login,
        "name": {"givenName": given_name or person.first_name, "familyName": person.last_name},
        "emails": [{"value": person.email, "primary": True, "type": "work"}],
        "displayName": person.display_name or f"{person.first_name} {person.last_name}",
        "locale": person.locale or "en_US",
        "externalId": person.okta_id,
        "active": True,
    }


@dataclass(frozen=True)
class Scenario:
    """Both sides of one benchmark size, before any run."""

    n: int
    drift: Drift
    assigned: tuple[Person, ...]
    unassigned: tuple[Person, ...]
    """Okta users not assigned to the app; each still has an active platform user."""
    created: frozenset[str]
    """Okta ids of the assigned users missing on the platform."""
    edited: frozenset[str]
    """Okta ids of the assigned users whose platform givenName was edited."""

    @classmethod
    def build(cls, assigned: Sequence[Person], unassigned: Sequence[Person], drift: Drift) -> Scenario:
        """Spread the create and update drift evenly over the assigned users, alternating kinds."""
        n = len(assigned)
        spots = drift.create + drift.update
        positions = [(2 * k + 1) * n // (2 * spots) for k in range(spots)]
        creates = [assigned[p].okta_id for k, p in enumerate(positions) if k % 2 == 0][: drift.create]
        updates = [assigned[p].okta_id for k, p in enumerate(positions) if k % 2 == 1][: drift.update]
        if len(creates) != drift.create or len(updates) != drift.update or len(unassigned) != drift.deactivate:
            raise ValueError(f"cannot place {drift} in {n} assigned and {len(unassigned)} unassigned users")
        return cls(n, drift, tuple(assigned), tuple(unassigned), frozenset(creates), frozenset(updates))

    def platform_users(self) -> Iterator[tuple[Person, dict[str, Any]]]:
        """Each platform user (without its SCIM id) with the Okta user it belongs to, in listing order.

        One at a time: at 300,000 users the whole list of dicts would cost the bench ~0.5 GB for nothing.
        """
        for person in self.assigned:
            if person.okta_id not in self.created:
                yield person, pushed_resource(person, EDITED_GIVEN_NAME if person.okta_id in self.edited else None)
        for person in self.unassigned:
            yield person, pushed_resource(person)

    @property
    def platform_count(self) -> int:
        """M before the apply."""
        return self.n - self.drift.create + self.drift.deactivate

    @property
    def platform_count_after(self) -> int:
        """M after the apply: the creates are added; nothing is ever deleted."""
        return self.n + self.drift.deactivate

    def minimums(self, page: int) -> tuple[Minimum, Minimum, Minimum]:
        """The least each run can do: the dry-run, the apply (+ one write per action), the dry-run after it."""
        okta = okta_pages(self.n)
        before, after = scim_pages(self.platform_count, page), scim_pages(self.platform_count_after, page)
        return Minimum(okta, before, 0), Minimum(okta, before, self.drift.writes), Minimum(okta, after, 0)

    def expected_dry_run(self) -> dict[str, int]:
        """The plan summary the first dry-run must show."""
        return summary(
            create=self.drift.create,
            update=self.drift.update,
            deactivate=self.drift.deactivate,
            in_sync=self.n - self.drift.create - self.drift.update,
        )

    def expected_converged(self) -> dict[str, int]:
        """The plan summary once the apply went through: the deactivated leftovers are in sync too."""
        return summary(in_sync=self.n + self.drift.deactivate)


def summary(**counts: int) -> dict[str, int]:
    """A plan summary (``reconciler.models.records.SUMMARY_KEYS``) with zeros where not given."""
    keys = ("create", "update", "deactivate", "reactivate", "link", "conflict", "unmanaged", "in_sync")
    return {key: counts.get(key, 0) for key in keys}


# -- the least a run can do -------------------------------------------------------------------


def okta_pages(n: int) -> int:
    """Okta pages for ``n`` assignments at 500 a page (an empty listing is still one page)."""
    return max(1, math.ceil(n / OKTA_PAGE_SIZE))


def scim_pages(m: int, page: int) -> int:
    """SCIM pages for ``m`` users at ``page`` a page (an empty listing is still one page)."""
    return max(1, math.ceil(m / page))


@dataclass(frozen=True, slots=True)
class Minimum:
    """The requests a run cannot do without, and the wall time it cannot beat, at latency L per request."""

    okta_pages: int
    scim_pages: int
    writes: int
    token_requests: int = 0
    """+1 with OAuth (a token request); 0 with an API token, as here."""

    @property
    def scim_reads(self) -> int:
        """The pages plus one discovery request (``/ServiceProviderConfig``)."""
        return self.scim_pages + 1

    @property
    def requests(self) -> int:
        return self.okta_pages + self.token_requests + self.scim_reads + self.writes

    def floor_s(self, latency_s: float, read_concurrency: int, write_concurrency: int) -> float:
        """max(Okta pages × L, L + ⌈(SCIM pages − 1) / read concurrency⌉ × L) + ⌈writes / write concurrency⌉ × L.

        Okta pages chain by cursor, so they go one at a time; SCIM pages go in parallel once the
        first has told how many there are; the writes follow the plan.
        """
        okta = self.okta_pages * latency_s
        scim = latency_s + math.ceil((self.scim_pages - 1) / read_concurrency) * latency_s
        return max(okta, scim) + math.ceil(self.writes / write_concurrency) * latency_s

"""``[incremental]``: the System Log follower, which repairs each change Okta records within seconds. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from reconciler.config.keys import duration, duration_text, flag, integer, setting

MAX_LOG_LIMIT: Final = 1000
"""The most events Okta's ``/api/v1/logs`` returns in one page (its ``limit``)."""


@dataclass(frozen=True)
class IncrementalConfig:
    """Incremental reconciliation: between full audits, follow Okta's System Log and repair, within seconds,
    each user a change touched.

    ``reconcile serve`` (per tenant, by the replica that holds its lease) and ``reconcile follow`` poll the
    log; each batch of events names a few users, who are read on both sides, planned, gated and repaired
    like a run's users, and recorded as a run of mode ``incremental``. The log's cursor is saved only after
    that. The follower needs the token's ``okta.logs.read`` scope: without it, it turns itself off and says
    so, and the scheduled full audits go on, as they always do (they also catch edits made on the platform,
    which no Okta event reports).
    """

    enabled: bool = setting(
        flag(
            "enabled",
            "Follow the System Log: on when the token may read it (``okta.logs.read``); a 403 turns it off at "
            "run time, with an alert, and the full audits go on. ``false``: full audits only.",
        ),
        default=True,
    )
    poll_s: float = setting(
        duration("poll", "How often to ask the log for new events once caught up.", low=1, high=600),
        default=10.0,
    )
    overlap_s: float = setting(
        duration(
            "overlap",
            "How far before the last event seen polling restarts when the cursor is lost or refused (and after "
            "a full audit, before its start): events are published late and clocks drift. Events read again "
            "are recognised by their uuid and repair nothing twice.",
            high=86400,
        ),
        default=900.0,
    )
    max_gap_s: float = setting(
        duration(
            "max_gap",
            "Polling that has failed for longer than this, or a stored cursor older than this, means a full "
            "audit before following again: what happened meanwhile is read whole rather than trusted to the log.",
            high=30 * 86400,
        ),
        default=1800.0,
    )
    recheck_after_s: float = setting(
        duration(
            "recheck_after",
            "A user a batch touched is looked at once more this long later: Okta's group fan-out and its pushes "
            "to the app are asynchronous, and the first look can come too early. 0 turns it off.",
            zero="no second look",
            high=86400,
        ),
        default=180.0,
    )
    window_s: float = setting(
        duration(
            "window",
            "The safety gate's sliding window: besides each batch on its own, the writes of every incremental "
            "run of the last ``window`` are added up and held to the same ``[thresholds]`` ``max_<kind>`` "
            "limits, so that a burst of events cannot deactivate, one small batch after another, more than "
            "one run may.",
            high=86400,
        ),
        default=600.0,
    )
    batch_limit: int = setting(
        integer("batch_limit", 1, MAX_LOG_LIMIT, "Events asked for in one request to the log (Okta's ``limit``)."),
        default=MAX_LOG_LIMIT,
    )

    @property
    def window_text(self) -> str:
        """``window`` as the file would write it (``"10m"``), for messages."""
        return duration_text(self.window_s)

    @property
    def max_gap(self) -> str:
        """``max_gap`` as the file would write it (``"30m"``), for messages."""
        return duration_text(self.max_gap_s)

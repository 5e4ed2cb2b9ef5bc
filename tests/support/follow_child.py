"""A follower run to caught-up in a process of its own: what the crash tests fork, SIGKILL and start again.

``python -m tests.support.follow_child CONFIG`` (or forked by :mod:`tests.support.crash_zygote` with
``entry="tests.support.follow_child"``) does what one pass of ``reconcile follow`` does: it takes the
target's run lock long enough to mark runs a killed process left 'running' as interrupted (as every
``reconcile`` command does), then starts the :class:`~reconciler.run.follower.Follower` (a full audit
under the run lock when there is no cursor), and polls until the log is caught up. It exits 0 then, and
1 when a poll failed: a failure is never read as "caught up".
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from reconciler.config import Config, fingerprint, load_config
from reconciler.run.follower import Follower
from reconciler.run.outcome import RunOutcome
from reconciler.run.reconcile import reconcile
from reconciler.store import Store

MAX_POLLS = 50
"""Pages read before giving up (a test's log holds far fewer)."""
LOCK_WAIT_S = 10.0
EXIT_CAUGHT_UP, EXIT_NOT_CAUGHT_UP = 0, 1


def main(argv: Sequence[str] | None = None) -> int:
    [path] = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_config(Path(path))
    with Store(config.store.url) as store:
        with store.run_lock(fingerprint(config), wait_s=LOCK_WAIT_S):
            store.mark_interrupted(fingerprint=fingerprint(config))
        return asyncio.run(follow_until_caught_up(config, store))


async def follow_until_caught_up(config: Config, store: Store) -> int:
    async def full_audit() -> RunOutcome:
        with store.run_lock(fingerprint(config), wait_s=LOCK_WAIT_S):
            return await reconcile(config, store, dry_run=False)

    async with Follower(config, store, full_audit) as follower:
        await follower.start()
        for _ in range(MAX_POLLS):
            if (await follower.poll()).caught_up:  # not poll_safely: a failed batch must not pass for caught up
                return EXIT_CAUGHT_UP
    print(f"the System Log was not caught up after {MAX_POLLS} pages", file=sys.stderr)
    return EXIT_NOT_CAUGHT_UP


if __name__ == "__main__":
    sys.exit(main())

"""Run locks: one run per target at a time, across processes, on SQLite (flock) and PostgreSQL (advisory lock).

The holder is a real second process (``python -c`` below) that opens the store
and takes the lock, as another ``reconcile`` would.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.errors import ReconcileError
from reconciler.store import Store
from reconciler.store.locks import LockBusy, advisory_key, lock_holders, lock_path, run_lock
from reconciler.store.urls import is_postgresql

REPO = Path(__file__).resolve().parents[2]
TARGET = "1a2b3c4d5e6f" + "0" * 52
OTHER_TARGET = "9f8e7d6c5b4a" + "0" * 52

HOLDER = """
import sys, time
from reconciler.store import Store
url, fingerprint, hold_s, replica = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
with Store(url, replica=replica or None) as store, store.run_lock(fingerprint):
    print("locked", flush=True)
    time.sleep(hold_s)
print("released", flush=True)
"""


class Holder:
    """Another process holding the run lock of ``fingerprint`` for ``hold_s`` seconds (as ``replica``, if named)."""

    def __init__(self, url: str, fingerprint: str, hold_s: float = 60.0, replica: str = "") -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, url, fingerprint, str(hold_s), replica],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.process.pid
        line = self.readline(timeout=30)
        assert line == "locked", f"the holder did not take the lock: {line!r} {self.process.stderr.read()}"  # type: ignore[union-attr]

    def readline(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        return self.process.stdout.readline().strip() if ready else ""

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


def test_a_second_process_is_refused_promptly_naming_the_holder_until_the_first_dies(
    store: Store, store_url: str, holders: list[Holder]
) -> None:
    holder = Holder(store_url, TARGET)
    holders.append(holder)

    started = time.monotonic()
    with pytest.raises(LockBusy) as refused:
        with store.run_lock(TARGET):
            pytest.fail("the lock was taken twice")
    assert time.monotonic() - started < 2.0

    message = str(refused.value)
    assert message.startswith(
        "another reconcile run of this target is in progress (config fingerprint 1a2b3c4d5e6f, store "
    )
    assert f"held by reconcile pid {holder.pid} on " in message
    assert message.endswith("Gave up without waiting; nothing was done. It runs again once that run ends.")
    assert isinstance(refused.value, ReconcileError) and refused.value.holder is not None

    # SIGKILL, while this process waits: no clean-up of its own; the kernel or the server frees the lock.
    killer = threading.Timer(0.5, holder.kill)
    killer.start()
    try:
        with store.run_lock(TARGET, wait_s=15) as lock:
            assert lock.still_held()
            assert 0.4 < lock.waited_s < 15
    finally:
        killer.join()


def test_different_targets_do_not_block_each_other_and_a_bounded_wait_gives_up(
    store: Store, store_url: str, holders: list[Holder]
) -> None:
    holders.append(Holder(store_url, TARGET))

    with store.run_lock(OTHER_TARGET) as lock:
        assert lock.waited_s < 1.0
    started = time.monotonic()
    with pytest.raises(LockBusy, match="Gave up after waiting 1 s; nothing was done"):
        with store.run_lock(TARGET, wait_s=0.6):
            pass
    assert 0.6 <= time.monotonic() - started < 2.0


def test_within_one_process_the_lock_is_exclusive_and_released_at_the_end(store: Store, store_url: str) -> None:
    with Store(store_url) as other:
        with store.run_lock(TARGET):
            with pytest.raises(LockBusy, match=f"held by reconcile pid {os.getpid()} on "):
                with other.run_lock(TARGET):
                    pass
            with other.run_lock(OTHER_TARGET):
                pass
        with other.run_lock(TARGET):
            pass


def test_an_in_memory_store_locks_within_the_process() -> None:
    with Store("sqlite://") as store:
        with store.run_lock(TARGET):
            with pytest.raises(LockBusy, match="this process"):
                with store.run_lock(TARGET):
                    pass
        with store.run_lock(TARGET):
            pass


def test_an_in_memory_store_reports_the_holders_of_this_process() -> None:
    with Store("sqlite://", replica="replica-c") as store:
        assert store.lock_holders([TARGET]) == {}
        with store.run_lock(TARGET):
            assert store.lock_holders([TARGET, OTHER_TARGET]) == {TARGET: "reconcile replica-c (this process)"}
        assert store.lock_holders([TARGET]) == {}


def test_the_holder_is_the_callers_text_cut_to_63_characters_by_postgresql(store_url: str) -> None:
    holder = "reconcile " + "r" * 80
    with run_lock(store_url, TARGET, holder=holder):
        with pytest.raises(LockBusy) as busy:
            with run_lock(store_url, TARGET):
                pass
        shown = holder[:63] if is_postgresql(store_url) else holder
        assert busy.value.holder is not None and busy.value.holder.startswith(f"{shown}, since ")
        assert lock_holders(store_url, [TARGET, OTHER_TARGET]) == {TARGET: busy.value.holder}


def test_the_sqlite_lock_file_lies_beside_the_database(tmp_path: Path) -> None:
    database = tmp_path / "state" / "reconciler.db"
    with Store(f"sqlite:///{database}") as store, store.run_lock(TARGET):
        assert lock_path(database, TARGET) == tmp_path / "state" / "reconciler.db.1a2b3c4d5e6f.lock"
        assert lock_path(database, TARGET).is_file()
    assert lock_path(database, "not hex").name.startswith("reconciler.db.")


def test_advisory_keys_are_signed_64_bit_and_per_target() -> None:
    keys = {advisory_key(TARGET), advisory_key(OTHER_TARGET)}
    assert len(keys) == 2
    assert all(-(2**63) <= key < 2**63 for key in keys)

"""The store's files: never created by a command that only looks, found beside the config, shared by the service's
user and root, their lock files cleaned, and a clear error for a user who may not write them."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reconciler.config import fingerprint, load_config
from reconciler.models.runs import RunMode
from reconciler.store import Store, StoreError, schema_status
from reconciler.store.locks import lock_path, run_lock
from reconciler.store.store import NoStore
from reconciler.testing.scenario import write_local_config
from tests.conftest import OKTA_TOKEN, SCIM_TOKEN, Okta
from tests.support.cli_runner import reconcile

NOBODY = 65534
"""A user that is not root and owns nothing here: the service's dynamic user, or an operator without rights."""
FINGERPRINT = "0123456789abcdef" * 4


def _config(state: Path, store_url: str, okta_url: str = "https://example.okta.com", scim_url: str = "") -> Path:
    scim_url = scim_url or "https://scim.example.com/scim"
    path = write_local_config(state, okta_url, "0oaapp", scim_url, OKTA_TOKEN, SCIM_TOKEN)
    text = path.read_text()
    start = text.index("[store]")
    path.write_text(text[:start] + f'[store]\nurl = "{store_url}"\n' + text[text.index("\n\n", start) :])
    return path


@pytest.mark.parametrize("command", [["history"], ["show", "1"], ["status"]])
def test_a_command_that_only_looks_creates_no_store(command: list[str], tmp_path: Path) -> None:
    database = tmp_path / "state" / "never" / "reconciler.db"
    config = _config(tmp_path / "state", f"sqlite:///{database}")

    looked = reconcile("--config", config, *command)
    assert looked.code == 1
    assert f"no store at {database} yet: no run has happened with this configuration" in looked.stderr
    assert f"reconcile --config {config} --dry-run" in looked.stderr
    assert not database.parent.exists(), "no file and no directory is left behind"


def test_an_empty_database_is_not_made_a_store_by_a_look(store_url: str) -> None:
    with pytest.raises(NoStore, match="no run has happened"):
        Store(store_url, create=False)
    assert schema_status(store_url).state == "empty", "no table was created"
    with Store(store_url):
        pass
    with Store(store_url, create=False) as store:
        assert store.recent_runs(5) == []


def test_a_relative_sqlite_path_is_relative_to_the_config_file(
    okta: Okta, scim_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    okta.emulator.add_assigned_users(okta.app_id, 1)
    config = _config(tmp_path / "etc", "sqlite:///data/reconciler.db", okta.org_url, scim_url)
    config.write_text(config.read_text().replace('"0oaapp"', f'"{okta.app_id}"'))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    assert load_config(config).store.url == f"sqlite:///{tmp_path / 'etc' / 'data' / 'reconciler.db'}"
    assert reconcile("--config", config, "--dry-run").code == 2
    assert (tmp_path / "etc" / "data" / "reconciler.db").exists()
    assert list(elsewhere.iterdir()) == []
    assert len(reconcile("--config", config, "history", "--output", "json").json()) == 1


def test_lock_files_are_removed_after_use_and_a_leftover_is_reused(
    okta: Okta, config_file: Path, platform: httpx.Client
) -> None:
    state = config_file.parent
    database = state / "reconciler.db"
    with Store(f"sqlite:///{database}"):
        pass
    leftover = lock_path(database, fingerprint(load_config(config_file)))
    leftover.write_text(json.dumps({"pid": 999999, "host": "gone", "since": "2025-01-01T00:00:00+00:00"}))

    assert reconcile("--config", config_file, "--dry-run").code == 0
    assert reconcile("--config", config_file, "history").code == 0
    assert reconcile("--config", config_file).code == 0
    assert sorted(p.name for p in state.glob("*.lock")) == [], "the leftover was reused, then removed like the rest"


def test_a_removed_lock_file_never_lets_two_holders_in(tmp_path: Path) -> None:
    """Holders remove the file as they let go; one that locked a removed file must notice and try again."""
    url = f"sqlite:///{tmp_path / 'reconciler.db'}"
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def contend() -> None:
        try:
            for _ in range(40):
                with run_lock(url, FINGERPRINT, wait_s=30):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    with guard:
                        inside[0] -= 1
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most[0] == 1
    assert list(tmp_path.glob("*.lock")) == []


def test_a_new_store_and_its_lock_files_are_private_and_follow_the_database(tmp_path: Path) -> None:
    database = tmp_path / "reconciler.db"
    with Store(f"sqlite:///{database}"):
        pass
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    with run_lock(f"sqlite:///{database}", FINGERPRINT):
        assert stat.S_IMODE(lock_path(database, FINGERPRINT).stat().st_mode) == 0o600
    database.chmod(0o660)  # an operator's group shares it: its lock files follow
    with run_lock(f"sqlite:///{database}", FINGERPRINT):
        assert stat.S_IMODE(lock_path(database, FINGERPRINT).stat().st_mode) == 0o660


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (tmp_path's parents are root's own), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="store-files-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def acting_as(uid: int) -> Iterator[None]:
    """Run the block with ``uid`` as the effective user and group (root only), then root again."""
    groups = os.getgroups()
    os.setgroups([])
    os.setegid(uid)
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
        os.setgroups(groups)


@pytest.mark.skipif(os.geteuid() != 0, reason="root runs the CLI for the service's user: needs root")
def test_what_root_creates_in_the_service_users_store_stays_the_service_users(shared_dir: Path) -> None:
    state = shared_dir / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)  # the service's state directory
    database = state / "reconciler.db"
    url = f"sqlite:///{database}"
    with Store(url) as store:  # root, first
        store.start_run(RunMode.DRY_RUN, FINGERPRINT)
        with run_lock(url, FINGERPRINT):
            assert lock_path(database, FINGERPRINT).stat().st_uid == NOBODY
    owners = {path.name: (path.stat().st_uid, stat.S_IMODE(path.stat().st_mode)) for path in state.iterdir()}
    assert owners.get("reconciler.db") == (NOBODY, 0o600), owners
    assert all(uid == NOBODY for uid, _mode in owners.values()), owners

    with acting_as(NOBODY), Store(url) as store:  # then the service, in the same files
        with run_lock(url, FINGERPRINT):
            assert len(store.recent_runs(5)) == 1


def test_a_user_who_may_not_write_the_store_is_told_whose_it_is_and_what_to_run(shared_dir: Path) -> None:
    """A read-only file (0444) for its owner; and root, who writes anything, acts as another user for this."""
    database = shared_dir / "reconciler.db"
    with Store(f"sqlite:///{database}"):
        pass
    database.chmod(0o444)
    owner, me = _name(os.geteuid()), _name(NOBODY if os.geteuid() == 0 else os.geteuid())
    with acting_as(NOBODY) if os.geteuid() == 0 else contextlib.nullcontext(), pytest.raises(StoreError) as refused:
        Store(f"sqlite:///{database}")
    message = str(refused.value)
    assert f"cannot write the store {database}: it belongs to {owner} (mode 0444)" in message
    assert f"this command runs as {me}" in message
    assert f"sudo -u {owner} reconcile ..." in message and "or as root (sudo reconcile ...)" in message
    assert "readonly database" not in message


def _name(uid: int) -> str:
    return pwd.getpwuid(uid).pw_name

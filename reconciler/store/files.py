"""The SQLite store's files, shared by the service's user and an operator: who owns them, who may write them.

The service runs as its own user (the shipped unit: ``DynamicUser=yes``, the
store in its 0700 state directory); an operator runs the CLI as root
(``sudo reconcile --config ... history``, see docs/service.md). Whatever root
creates there must stay usable by the service, so the files follow SQLite's own
rule for its ``-wal`` and ``-shm`` files: a new file takes the database's mode,
and, created by root, the database's owner. A new database created by root in
a directory that belongs to another user is given to that user. A user who may
not write the database gets an error naming the owner and the command to use,
not SQLite's "attempt to write a readonly database".
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
from pathlib import Path
from typing import Final

from reconciler.store.urls import StoreError

DEFAULT_MODE: Final = 0o600
"""A lock file beside no database yet, or a database created here: the service's ``UMask=0077`` gives the same."""


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a systemd DynamicUser= has a name only while its service runs
        return f"uid {uid}"


def current_user() -> str:
    return owner_name(os.geteuid())


def _is_root() -> bool:
    return os.geteuid() == 0


def _give_to(fd: int, owner: os.stat_result) -> None:
    """Root's new file goes to ``owner`` (the database's or the directory's), as SQLite does with its own."""
    if _is_root() and owner.st_uid != 0:
        with contextlib.suppress(OSError):
            os.fchown(fd, owner.st_uid, owner.st_gid)


def open_shared_file(path: Path, flags: int, database: Path | None = None) -> int:
    """Open ``path``, creating it with ``database``'s mode and (as root) its owner if it is not there.

    ``flags`` without ``O_CREAT``; raises OSError as :func:`os.open` does.
    """
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, DEFAULT_MODE)
        except FileExistsError:
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                continue  # removed by its holder in between: create it
        try:
            model = database if database is not None and database.exists() else None
            like = os.stat(model if model is not None else path.parent)
            os.fchmod(fd, stat.S_IMODE(like.st_mode) & 0o666 if model is not None else DEFAULT_MODE)
            _give_to(fd, like)
        except OSError:
            os.close(fd)
            raise
        return fd


def create_database_file(path: Path) -> None:
    """Create the SQLite file of a new store, mode 0600, owned by its directory's owner when root creates it.

    SQLite would create it with its own default mode (0644 less the umask) and
    the creating user: root's file, which the service could not write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, DEFAULT_MODE)
    except FileExistsError:
        return
    except OSError as error:
        raise StoreError(f"cannot create the store {path}: {error.strerror or error}{_as_whom(path.parent)}") from error
    try:
        os.fchmod(fd, DEFAULT_MODE)
        _give_to(fd, os.stat(path.parent))
    finally:
        os.close(fd)


def check_writable(path: Path) -> None:
    """A StoreError naming the owner and the command to use when this user may not write the store at ``path``.

    SQLite needs to write the database and to create its ``-wal`` and
    ``-shm`` files beside it; without that it answers "attempt to write a
    readonly database" in the middle of a run.
    """
    for needed, what in ((path, "the store"), (path.parent, "the store's directory")):
        if needed.exists() and not os.access(needed, os.W_OK, effective_ids=True):
            raise StoreError(f"cannot write {what} {needed}{_as_whom(needed)}")


def _as_whom(path: Path) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return ""
    owner = owner_name(info.st_uid)
    run_as = (
        f"sudo -u {owner} reconcile ..." if not owner.startswith("uid ") else f"sudo -u '#{info.st_uid}' reconcile ..."
    )
    return (
        f": it belongs to {owner} (mode {stat.S_IMODE(info.st_mode):04o}) and this command runs as {current_user()}. "
        f"Run reconcile as the store's owner ({run_as}) or as root (sudo reconcile ...), which keeps the files "
        "the service's (see docs/service.md)"
    )


def lock_file_problem(path: Path, error: OSError) -> str:
    whose = _as_whom(path if path.exists() else path.parent)
    return f"cannot open the run lock file {path}: {error.strerror or error}{whose}"

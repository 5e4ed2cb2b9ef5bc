"""Secrets: read from an environment variable, a file or a systemd credential, never written into a message.

Secrets come from an environment variable (``token_env``), a file
(``token_file``, ``private_key_file``, ``urls_file``) or a systemd credential
(``*_credential``); their values are stripped of surrounding whitespace and
wrapped in :class:`~reconciler.secret.Secret`. A relative secret file path is
taken relative to the configuration file's directory. A secret file that its
group or others may access is refused, with the ``chmod`` to run; so is a
``*_credential`` file, unless it lies in a credentials directory systemd made
itself (``/run/credentials/UNIT``, or ``$XDG_RUNTIME_DIR/credentials/UNIT`` for a
user service): systemd keeps those private to the service, and may grant the
service access through an ACL, which shows in the group bits of the mode.

A secret shorter than :data:`~reconciler.secret.MIN_SECRET_CHARS` (8) is refused:
no issuer hands out such a token, and the log scrubber could not mask it without
masking pieces of ordinary words. One shorter than :data:`SHORT_SECRET_CHARS` is
accepted with a warning naming the key (never the value).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from reconciler.config.table import Table, os_reason
from reconciler.config.wording import show
from reconciler.secret import MIN_SECRET_CHARS, Secret

log = logging.getLogger(__name__)

CREDENTIALS_DIRECTORY_ENV: Final = "CREDENTIALS_DIRECTORY"
SYSTEMD_CREDENTIALS_ROOT: Final = Path("/run/credentials")
"""Where systemd puts a system service's credentials: ``/run/credentials/UNIT``."""
SHORT_SECRET_CHARS: Final = 16
"""A token shorter than this is accepted with a warning: real API and bearer tokens are far longer."""


class NoSecrets(dict[str, str]):
    """The environment seen with ``read_secrets=False``: secret readers return "" instead of reading."""


NO_SECRETS: Final = NoSecrets()


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_CONVENTIONAL_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")


def read_token(table: Table, environ: Mapping[str, str], base_dir: Path, example_env: str) -> Secret | None:
    """The token from exactly one of ``token_env`` / ``token_file`` / ``token_credential``."""
    given = [key for key in ("token_env", "token_file", "token_credential") if table.has(key)]
    if len(given) > 1:
        table.note(given[1], f"set together with {given[0]} — keep only one of them")
        return None
    if not given:
        table.note("token_env", f'missing — set token_env = "{example_env}" (and export it), or token_file = "/path"')
        return None
    if given[0] == "token_env":
        return _secret_env(table, "token_env", environ, example_env)
    text = read_secret_file(table, given[0], base_dir, environ)
    if text is None or isinstance(environ, NoSecrets):
        return None if text is None else Secret(text)
    return checked_secret(table, given[0], text, str(_secret_path(table, given[0], base_dir, environ)))


def _secret_env(table: Table, key: str, environ: Mapping[str, str], example_env: str) -> Secret | None:
    if isinstance(environ, NoSecrets):
        return Secret("")
    name = table.string(key, missing=f'set it to the name of an environment variable, e.g. "{example_env}"')
    if name is None:
        return None
    if not _ENV_NAME.match(name):
        # The value is not echoed: a token pasted here by mistake must not be printed.
        table.note(key, "expected the NAME of an environment variable (letters, digits, _), not the token itself")
        return None
    value = environ.get(name, "").strip()
    shown = f"environment variable {name}" if _CONVENTIONAL_ENV_NAME.match(name) else "the environment variable"
    if not value:
        state = "is empty" if name in environ else "is not set"
        table.note(key, f"{shown} {state} — export it or use {table.name}.{key.removesuffix('_env')}_file")
        return None
    return checked_secret(table, key, value, shown)


def checked_secret(table: Table, key: str, text: str, source: str, *, warn: bool = True) -> Secret | None:
    """``text`` as a Secret, or None (a problem noted) when it is too short to be a real one.

    ``source`` says where it was read (an environment variable's name, a path), never what it holds.
    Under :data:`SHORT_SECRET_CHARS` a warning is logged (unless ``warn`` is false: alert URLs are
    long by nature, the length of their secret part is not theirs to judge).
    """
    if len(text) < MIN_SECRET_CHARS:
        table.note(
            key,
            f"{source} holds fewer than {MIN_SECRET_CHARS} characters: too short to be a real secret — "
            "put the whole token there",
        )
        return None
    if warn and len(text) < SHORT_SECRET_CHARS:
        log.warning(
            "%s.%s: %s holds fewer than %d characters, short for a real token: check that it is whole",
            table.name,
            key,
            source,
            SHORT_SECRET_CHARS,
        )
    return Secret(text)


def _secret_path(table: Table, key: str, base_dir: Path, environ: Mapping[str, str]) -> Path | None:
    """Where a ``*_file`` or ``*_credential`` key points.

    A credential is a file systemd's ``LoadCredential=`` placed in ``$CREDENTIALS_DIRECTORY``.
    """
    if key.endswith("_credential"):
        return _credential_path(table, key, environ)
    name = table.string(key, missing='set it to the path of a file holding the secret, e.g. "/etc/reconciler/token"')
    return None if name is None else base_dir / Path(name).expanduser()


def _credential_path(table: Table, key: str, environ: Mapping[str, str]) -> Path | None:
    name = table.string(key, missing='set it to the name given to LoadCredential=, e.g. "scim-token"')
    if name is None:
        return None
    if "/" in name or name in (".", ".."):
        table.note(key, f"expected a credential name as given to LoadCredential=, not a path: {show(name)}")
        return None
    directory = environ.get(CREDENTIALS_DIRECTORY_ENV)
    if not directory:
        file_key = key.removesuffix("_credential") + "_file"
        table.note(
            key,
            f"${CREDENTIALS_DIRECTORY_ENV} is not set (systemd sets it for LoadCredential=); outside systemd use "
            f"{table.name}.{file_key}",
        )
        return None
    return Path(directory) / name


def read_secret_file(table: Table, key: str, base_dir: Path, environ: Mapping[str, str]) -> str | None:
    """The file's text, stripped; a problem naming the key and the path when unusable."""
    if isinstance(environ, NoSecrets):
        return ""
    path = _secret_path(table, key, base_dir, environ)
    if path is None:
        return None
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if not _in_systemd_credentials(path, environ) and (problem := _loose_permissions(path, mode)):
                table.note(key, problem)
                return None
            text = file.read().decode("utf-8").strip()
    except OSError as error:
        table.note(key, f"cannot read {path}: {os_reason(error)}")
        return None
    except UnicodeDecodeError:
        table.note(key, f"{path} is not UTF-8 text")
        return None
    if not text:
        table.note(key, f"{path} is empty")
        return None
    return text


SECRET_FILE_MODE: Final = 0o600


def _in_systemd_credentials(path: Path, environ: Mapping[str, str]) -> bool:
    """True for a file in a credentials directory systemd made: ``/run/credentials/UNIT/NAME``
    (a system service) or ``$XDG_RUNTIME_DIR/credentials/UNIT/NAME`` (a user service).

    A ``$CREDENTIALS_DIRECTORY`` set by hand elsewhere (a CLI run outside systemd) is an ordinary
    directory, and its files are checked as secret files are.
    """
    roots = [SYSTEMD_CREDENTIALS_ROOT]
    if environ.get("XDG_RUNTIME_DIR"):
        roots.append(Path(environ["XDG_RUNTIME_DIR"]) / "credentials")
    unit_directory = path.resolve().parent
    return any(unit_directory.parent == root.resolve() for root in roots)


def _loose_permissions(path: Path, mode: int) -> str | None:
    """Why a secret file's mode is unsafe (its group or others may access it), with the fix; None if it is safe.

    As ssh does for private keys: any permission for the group or others is
    refused, since whoever can read the file can act as the reconciler.
    """
    if os.name != "posix" or not stat.S_ISREG(mode) or not mode & 0o077:
        return None
    who = " and ".join(name for name, bits in (("its group", 0o070), ("others", 0o007)) if mode & bits)
    return (
        f"{path} is accessible to {who} (mode {stat.S_IMODE(mode):04o}): a secret file must be private to "
        f"its owner — run: chmod {SECRET_FILE_MODE:o} {shlex.quote(str(path))}"
    )


def read_private_key(table: Table, base_dir: Path, environ: Mapping[str, str]) -> Secret | None:
    """The PEM or JWK text; a public key or a certificate given by mistake is caught here."""
    given = [key for key in ("private_key_file", "private_key_credential") if table.has(key)]
    if len(given) > 1:
        table.note(given[1], f"set together with {given[0]} — keep only one of them")
        return None
    key = given[0] if given else "private_key_file"
    text = read_secret_file(table, key, base_dir, environ)
    if text is None:
        return None
    if isinstance(environ, NoSecrets):
        return Secret(text)
    path = _secret_path(table, key, base_dir, environ)
    if "PRIVATE KEY-----" not in text and not text.startswith("{"):
        table.note(key, f"{path} holds no private key: expected a PEM private key or a JWK")
        return None
    return checked_secret(table, key, text, str(path), warn=False)

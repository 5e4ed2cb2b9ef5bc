"""docs/setup.md's service-app steps, run as written: the key pair made by its script or its openssl commands,
the public JWK uploaded to the (emulated) service app with the scopes granted, and its ``[okta]`` table used by
``check`` and a dry-run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.config.connections_model import DEFAULT_SCOPES
from tests.conftest import SCIM_TOKEN, Okta
from tests.support.cli_runner import reconcile

SETUP = Path(__file__).resolve().parents[2] / "docs" / "setup.md"
INSTALLED_PYTHON = "/opt/okta-reconciler/bin/python"


def _block(after: str, language: str) -> str:
    """The first fenced ``language`` block of setup.md that follows the text ``after``."""
    text = SETUP.read_text()
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL)
    assert found, f"no {language} block after {after!r} in {SETUP}"
    return found.group(1).replace(INSTALLED_PYTHON, sys.executable)


def _make_keys_with_the_script(where: Path) -> Path:
    script = where / "okta-key.py"
    script.write_text(_block("**1. Make the key pair**", "python"))
    subprocess.run([sys.executable, str(script)], cwd=where, check=True, capture_output=True, timeout=60)
    return where / "okta-private-key.json"


def _make_keys_with_openssl(where: Path) -> Path:
    subprocess.run(
        ["bash", "-euo", "pipefail", "-c", _block("Or with openssl", "sh")],
        cwd=where,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return where / "okta-private-key.pem"


def _documented_config(where: Path, okta: Okta, client_id: str, scim_url: str, private_key: Path) -> Path:
    """The ``[okta]`` table of step 5 with this org's values, then a ``[scim]`` and a ``[store]``."""
    table = _block("**5. Configure it.**", "toml")
    table = table.replace("https://yourcompany.okta.com", okta.org_url).replace("0oa1b2c3d4e5f6g7h8i9", okta.app_id)
    table = table.replace("0oa9z8y7x6w5v4u3t2s1", client_id).replace("okta-private-key.json", private_key.name)
    (where / "scim.token").write_text(SCIM_TOKEN)
    (where / "scim.token").chmod(0o600)
    config = where / "config.toml"
    config.write_text(
        f'{table}\n[scim]\nbase_url = "{scim_url}"\ntoken_file = "scim.token"\n'
        f'[store]\nurl = "sqlite:///{where / "reconciler.db"}"\n'
    )
    return config


@pytest.mark.parametrize("make_keys", [_make_keys_with_the_script, _make_keys_with_openssl])
def test_the_documented_key_pair_and_config_authenticate_with_private_key_jwt(
    okta: Okta, scim_url: str, tmp_path: Path, make_keys
) -> None:
    private_key = make_keys(tmp_path)
    assert private_key.stat().st_mode & 0o777 == 0o600
    public_jwk = json.loads((tmp_path / "okta-public-key.json").read_text())
    assert "d" not in public_jwk, "the file to upload holds the public half only"
    client_id = okta.emulator.register_client(public_jwk, DEFAULT_SCOPES)  # Add key, then grant the scopes
    okta.emulator.add_assigned_users(okta.app_id, 2)
    config = _documented_config(tmp_path, okta, client_id, scim_url, private_key)

    checked = reconcile("--config", config, "check")
    assert checked.code == 0, checked.stdout + checked.stderr
    planned = reconcile("--config", config, "--dry-run", "--output", "json")
    assert planned.code == 2, planned.stderr
    assert planned.json()["summary"]["create"] == 2
    tokens = [r for r in okta.emulator.requests if r.path == "/oauth2/v1/token"]
    assert tokens and all(r.status == 200 for r in tokens)


def test_the_scripts_kid_is_sent_and_must_name_the_uploaded_key(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    private_key = _make_keys_with_the_script(tmp_path)
    public_jwk = json.loads((tmp_path / "okta-public-key.json").read_text())
    client_id = okta.emulator.register_client(public_jwk | {"kid": "another-key"}, DEFAULT_SCOPES)
    config = _documented_config(tmp_path, okta, client_id, scim_url, private_key)
    refused = reconcile("--config", config, "check")
    assert refused.code == 1
    assert "okta.client_id" in refused.stdout + refused.stderr


def test_a_scope_not_granted_is_named_by_check(okta: Okta, scim_url: str, tmp_path: Path) -> None:
    private_key = _make_keys_with_the_script(tmp_path)
    public_jwk = json.loads((tmp_path / "okta-public-key.json").read_text())
    client_id = okta.emulator.register_client(public_jwk, ["okta.apps.read", "okta.users.read"])
    config = _documented_config(tmp_path, okta, client_id, scim_url, private_key)
    refused = reconcile("--config", config, "check")
    assert refused.code == 1
    assert "okta.groups.read" in refused.stdout + refused.stderr

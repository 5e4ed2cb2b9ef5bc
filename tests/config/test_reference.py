"""The configuration reference, docs/configuration.md: the model's own output, covering every key there is."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.config import load_fleet
from reconciler.config.keys import table_keys
from reconciler.config.mapping import SPEC_KEYS
from reconciler.config.model import SECTIONS, SHARED_SECTIONS, TABLE_MODELS, TENANT_SECTIONS
from reconciler.config.reference import REGENERATE, file_value, render
from reconciler.config.table import Table
from reconciler.config.tenants import TENANT_KEYS

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "configuration.md"
EXAMPLE = REPO / "config.example.toml"


def documented_keys() -> dict[str, set[str]]:
    """The keys the checked-in reference lists, by table: ``okta``, ..., ``tenants``, and ``source`` (source tables)."""
    keys: dict[str, set[str]] = {}
    table = ""
    for line in REFERENCE.read_text().splitlines():
        if heading := re.fullmatch(r"## `\[\[?(\w+)\]\]?`", line):
            table = heading[1]
        elif line == "### Source tables":
            table = "source"
        elif row := re.match(r"\| `(\w+)` \|", line):
            keys.setdefault(table, set()).add(row[1])
    return keys


def example_settings() -> Iterator[tuple[str, str, Any]]:
    """``(table, key, value)`` of every key config.example.toml sets, or shows commented out (``# key = ...``).

    A ``[tenants.okta]`` key is an ``okta`` key; the keys of the prose's examples (indented) are not settings.
    """
    table = ""
    for line in EXAMPLE.read_text().splitlines():
        text = line[2:] if re.match(r"# \S", line) else line
        if header := re.fullmatch(r"\[\[?([\w.]+)\]\]?\s*(#.*)?", text):
            table = header[1].removeprefix("tenants.")
            continue
        try:
            setting = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            continue
        for key, value in setting.items():
            yield table, key, value


def test_the_checked_in_reference_is_the_generated_one() -> None:
    if REFERENCE.read_text() != render():
        pytest.fail(f"docs/configuration.md is stale (the configuration's model changed): run {REGENERATE}")


def test_every_key_of_the_example_is_in_the_reference() -> None:
    documented = documented_keys()
    settings = list(example_settings())
    seen = {(table, key) for table, key, _ in settings}
    assert {("okta", "token_file"), ("alerts", "urls_credential"), ("service", "tick"), ("tenants", "name")} <= seen

    missing = []
    for table, key, value in settings:
        if table != "mapping":
            missing += [f"{table}.{key}"] if key not in documented.get(table, set()) else []
        elif isinstance(value, dict):
            missing += [f"mapping source table: {name}" for name in value if name not in documented["source"]]
    assert missing == []


def test_every_key_the_loader_accepts_is_in_the_reference() -> None:
    documented = documented_keys()
    for section in TABLE_MODELS:
        accepted = set(Table(section, {}, []).keys)
        assert accepted and accepted <= documented[section], section
    assert set(SPEC_KEYS) <= documented["source"]
    assert {key for key in TENANT_KEYS if key not in TENANT_SECTIONS} <= documented["tenants"]
    assert {*SECTIONS, *SHARED_SECTIONS, "tenants"} <= documented.keys() | {"mapping"}


def test_the_documented_defaults_are_the_ones_the_loader_takes(tmp_path: Path) -> None:
    """Every default the reference shows, written out in a file, reads as the file without them."""
    tenant = """
[[tenants]]
name = "acme"
[tenants.okta]
org_url = "https://acme.okta.com"
app_id = "0oaacme"
token_env = "OKTA_TOKEN"
[tenants.scim]
base_url = "https://scim.example.com/acme"
token_env = "SCIM_TOKEN"
"""
    defaults = "".join(
        f"[{section}]\n" + "".join(f"{key.name} = {file_value(key)}\n" for key in keys if key.default is not None)
        for section, keys in ((section, table_keys(model).values()) for section, model in TABLE_MODELS.items())
    )
    path = tmp_path / "config.toml"
    path.write_text(tenant)
    bare = load_fleet(path, read_secrets=False)
    path.write_text(defaults + tenant)

    assert "quarantine_interval = " in defaults and "max_response_mb = 64" in defaults
    assert load_fleet(path, read_secrets=False) == bare

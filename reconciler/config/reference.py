"""The operator's configuration reference, ``docs/configuration.md``, written from the model.

Every table, key, type, default, bound and description on the page comes from the declarations the
loader reads the file with (:mod:`reconciler.config.keys`), and the ``[mapping]`` language from
:mod:`reconciler.config.mapping`'s docstring, so the page cannot drift from what is accepted. Only
the page's frame (its introduction) is written here. Regenerate it with ``make docs``::

    python -m reconciler.config.reference > docs/configuration.md

A test fails when the checked-in page differs from this output.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Final

from reconciler.config import mapping as mapping_language
from reconciler.config.keys import DURATION, SHARE, Key, ValueType, duration_text, table_keys
from reconciler.config.load import CONFIG_ENV
from reconciler.config.mapping import DEFAULT_MAPPING, SOURCE_TABLE_KEYS, mapping_key
from reconciler.config.model import SECTIONS, SHARED_SECTIONS, TABLE_MODELS, TENANT_SECTIONS, Config

REGENERATE: Final = "make docs (python -m reconciler.config.reference > docs/configuration.md)"


INTRODUCTION: Final = """\
# Configuration reference

<!-- Generated from the configuration's model (reconciler/config/) by `make docs`:
     edit the model's declarations, not this page. -->

The reconciler reads one TOML file, given with `--config FILE` or `{config_env}=FILE`;
[`config.example.toml`](../config.example.toml) is a commented example to copy. The whole file is
checked before any network call: a bad value stops the reconciler with one line per problem, each naming
its key and the fix (exit code 78), e.g. `scim.page_size: expected an integer from 1 to 1000, got 5000`.
An unknown key or table is a problem too, with the name it nearly is.

Secrets never go in the file: each is read from an environment variable (`token_env`), a file
(`token_file`, `private_key_file`, `urls_file`) or a systemd credential (`token_credential`, ...), as
the value types below describe.
"""


def render() -> str:
    """The whole page."""
    parts = [INTRODUCTION.format(config_env=CONFIG_ENV), _contents(), _value_types()]
    for section in SECTIONS:
        parts.append(_mapping_section() if section == "mapping" else _table_section(section))
    parts.append(_tenants_section())
    return "\n".join(parts)


def file_value(key: Key) -> str:
    """A key's default as it would be written in the file, e.g. ``100``, ``"30m"``, ``["a", "b"]``."""
    if key.type is DURATION:
        return json.dumps(duration_text(key.default))
    return _toml(key.default)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{name} = {_toml(item)}" for name, item in value.items())
        return f"{{ {items} }}" if items else "{}"
    raise TypeError(f"no TOML spelling for {value!r}")


def _toml_key(path: str) -> str:
    """A ``[mapping]`` key as the file would spell it: bare when it can be."""
    return path if _BARE_KEY.fullmatch(path) else mapping_key(path)


_BARE_KEY: Final = re.compile(r"[A-Za-z0-9_-]+")


# --- the parts of the page ----------------------------------------------------------------------


def _contents() -> str:
    lines = ["## Tables", ""]
    for section in SECTIONS:
        summary = _summary(mapping_language.__doc__ if section == "mapping" else TABLE_MODELS[section].__doc__)
        lines.append(f"- [`[{section}]`](#{section}): {summary}")
    lines.append(f"- [`[[tenants]]`](#tenants): {_summary(Config.__doc__)}")
    return "\n".join(lines) + "\n"


def _value_types() -> str:
    lines = ["## Value types", "", "| Type | Written as |", "|---|---|"]
    lines += [f"| {value_type.name} | {_cell(value_type.doc)} |" for value_type in _used_types()]
    return "\n".join(lines) + "\n"


def _used_types() -> list[ValueType]:
    """Every value type a key takes, in order of first use."""
    keys = [key for model in TABLE_MODELS.values() for key in table_keys(model).values()]
    found: dict[str, ValueType] = {}
    for key in (*keys, *table_keys(Config).values(), *SOURCE_TABLE_KEYS):
        found.setdefault(key.type.name, key.type)
    return list(found.values())


def _table_section(section: str) -> str:
    model = TABLE_MODELS[section]
    return f"## `[{section}]`\n\n{_markdown(model.__doc__)}\n\n{_key_table(table_keys(model).values())}"


def _mapping_section() -> str:
    default = "\n".join(f"{_toml_key(path)} = {_toml(source)}" for path, source in DEFAULT_MAPPING.items())
    return (
        f"## `[mapping]`\n\n{_markdown(mapping_language.__doc__)}\n\n"
        f"### Source tables\n\nThe keys of a table such as `{{ source = ..., transform = ... }}`:\n\n"
        f"{_key_table(SOURCE_TABLE_KEYS)}\n"
        f"### The default mapping\n\n```toml\n[mapping]\n{default}\n```\n"
    )


def _tenants_section() -> str:
    own = ", ".join(f"`[tenants.{section}]`" for section in TENANT_SECTIONS)
    shared = ", ".join(f"`[{section}]`" for section in SHARED_SECTIONS)
    return (
        f"## `[[tenants]]`\n\n{_markdown(Config.__doc__)}\n\n"
        f"An entry's tables: {own}, each with the keys of the top-level table of its name. "
        f"Shared by every tenant, at the top level only: {shared}.\n\n"
        f"{_key_table(table_keys(Config).values())}"
    )


def _key_table(keys: Iterable[Key]) -> str:
    lines = ["| Key | Type | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
    lines += [
        f"| `{key.name}` | {key.type.name} | {_default(key)} | {_allowed(key)} | {_cell(key.doc)} |" for key in keys
    ]
    return "\n".join(lines) + "\n"


def _default(key: Key) -> str:
    if key.required:
        return "required"
    if key.default is None:
        return "—"
    return f"`{file_value(key)}`"


def _allowed(key: Key) -> str:
    if key.choices:
        quoted = (json.dumps(choice) for choice in key.choices) if key.type.name != "table" else key.choices
        return ", ".join(f"`{choice}`" for choice in quoted)
    if key.type is DURATION:
        return _allowed_duration(key)
    if key.low is not None and key.high is not None:
        return f"{key.low:,} to {key.high:,}"
    if key.type is SHARE:
        return "0 to 1"
    return ""


def _allowed_duration(key: Key) -> str:
    """``more than 0``, ``0 (no jitter) or more``, ``"1s" to "10m"``, ``more than 0, up to "1d"``..."""
    at_most = f", up to `{json.dumps(duration_text(key.high))}`" if key.high is not None else ""
    if key.low is None:
        return (f"0 ({key.zero}) or more" if key.zero else "more than 0") + at_most
    low = f"`{json.dumps(duration_text(key.low))}`"
    zero = f"0 ({key.zero}), or " if key.zero else ""
    if key.high is None:
        return f"{zero}{low} or more"
    return f"{zero}{low} to `{json.dumps(duration_text(key.high))}`"


# --- from docstrings to Markdown ----------------------------------------------------------------

_LITERAL: Final = re.compile(r"``(.+?)``", re.DOTALL)
_ROLE: Final = re.compile(r":\w+:`~?\.?([^`]+)`")


def _markdown(docstring: str | None) -> str:
    """A docstring as Markdown: ````literal```` as ```literal```, a Sphinx role as its target."""
    return _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", inspect.cleandoc(docstring or "")))


def _summary(docstring: str | None) -> str:
    return _markdown(docstring).split("\n\n")[0].replace("\n", " ")


def _cell(text: str) -> str:
    return _markdown(text).replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    sys.stdout.write(render())

"""The package's public face: a few names, each importable from ``reconciler``, none paid for until used."""

from __future__ import annotations

import subprocess
import sys

import reconciler


def test_every_public_name_resolves_to_what_its_module_defines() -> None:
    for name in reconciler.__all__:
        assert getattr(reconciler, name) is not None, name
    from reconciler.run.reconcile import reconcile
    from reconciler.store import Store

    assert reconciler.reconcile is reconcile and reconciler.Store is Store


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        reconciler.no_such_thing  # noqa: B018
    except AttributeError as error:
        assert "no_such_thing" in str(error)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_imports_neither_the_okta_sdk_nor_the_stages() -> None:
    probe = "import sys, reconciler; print(sorted(m for m in sys.modules if m.startswith(('okta', 'reconciler.'))))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"

"""Many tenants in one file: [[tenants]], the top-level tables as defaults, shared [store]/[metrics]/[service]."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.config import Config, FleetConfig, ServiceConfig, fingerprint, load_config, load_fleet
from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.config.policy_model import DEFAULT_LIMITS
from reconciler.errors import ConfigError
from reconciler.testing.scenario import write_secret_file

REPO = Path(__file__).resolve().parents[2]
ACME_OKTA = "00acme-okta-SECRET-1f2e3d4c5b6a"
ACME_SCIM = "acme-scim-SECRET-9a8b7c6d5e4f"
GLOBEX_OKTA = "00globex-okta-SECRET-0a1b2c3d"
GLOBEX_SCIM = "globex-scim-SECRET-4e5f6a7b"
SECRETS = (ACME_OKTA, ACME_SCIM, GLOBEX_OKTA, GLOBEX_SCIM)
ENV = {
    "ACME_OKTA_TOKEN": ACME_OKTA,
    "ACME_SCIM_TOKEN": ACME_SCIM,
    "GLOBEX_OKTA_TOKEN": GLOBEX_OKTA,
    "GLOBEX_SCIM_TOKEN": GLOBEX_SCIM,
}
DEPARTMENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"


def tenant(name: str, *extra: str, org: str | None = None) -> str:
    """A ``[[tenants]]`` entry with Okta and SCIM tables, tokens from ``<NAME>_OKTA_TOKEN``/``<NAME>_SCIM_TOKEN``."""
    upper = name.upper()
    return (
        f'[[tenants]]\nname = "{name}"\n'
        f'[tenants.okta]\norg_url = "https://{org or name}.okta.com"\napp_id = "0oa{name}"\n'
        f'token_env = "{upper}_OKTA_TOKEN"\n'
        f'[tenants.scim]\nbase_url = "https://scim.example.com/{name}/scim"\ntoken_env = "{upper}_SCIM_TOKEN"\n'
        + "".join(line + "\n" for line in extra)
    )


TWO = tenant("acme") + tenant("globex")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def fleet_problems(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_fleet(path, ENV if environ is None else environ)
    message = str(raised.value) + repr(raised.value)
    assert not any(secret in message for secret in SECRETS), message
    return raised.value.problems


# --- what loads -------------------------------------------------------------------------------


def test_two_tenants_in_file_order_sharing_the_store_and_metrics(tmp_path: Path) -> None:
    text = '[store]\nurl = "postgresql://reconciler@db.example.com/reconciler"\n[metrics]\nlisten = ""\n' + TWO
    path = write(tmp_path, text)

    fleet = load_fleet(path, ENV)

    assert fleet.multi_tenant and fleet.source_path == path
    assert [config.tenant for config in fleet.tenants] == ["acme", "globex"]
    acme, globex = fleet.tenants
    assert acme.okta.token is not None and acme.okta.token.reveal() == ACME_OKTA
    assert globex.scim.token.reveal() == GLOBEX_SCIM
    assert acme.store is globex.store is fleet.store
    assert fleet.store.url == "postgresql://reconciler@db.example.com/reconciler"
    assert acme.metrics.listen is None is fleet.metrics.listen
    assert acme.source_path == path
    assert fleet.service == ServiceConfig()
    assert fingerprint(acme) != fingerprint(globex)
    assert fleet.tenant("globex") is globex


def test_top_level_tables_are_defaults_a_tenant_overrides_key_by_key(tmp_path: Path) -> None:
    text = (
        '[schedule]\ninterval = "10m"\njitter = "5s"\n'
        "[thresholds]\nmax_deactivate = 20\nmax_create = 500\n"
        "[okta]\ntimeout_s = 60.0\n"
        f'[mapping]\ntitle = "profile.title"\n"{DEPARTMENT}" = "user.profile.department"\n'
        + tenant("acme")
        + tenant(
            "globex",
            '[tenants.schedule]\ninterval = "1h"',
            "[tenants.thresholds]\nmax_deactivate = 5",
            '[tenants.mapping]\ntitle = ""\nname.givenName = "user.profile.firstName"\nlocale = ""',
        )
        + '[tenants.okta]\ntimeout_s = 10.0\norg_url = "https://globex.okta.com"\napp_id = "0oaglobex"\n'
        'token_env = "GLOBEX_OKTA_TOKEN"\n'
    )
    with pytest.raises(ConfigError) as raised:  # two [tenants.okta] in one entry is not TOML
        load_fleet(write(tmp_path, text), ENV)
    assert "not valid TOML" in str(raised.value)

    text = text[: text.rindex("[tenants.okta]")].replace(
        'token_env = "GLOBEX_OKTA_TOKEN"\n', 'token_env = "GLOBEX_OKTA_TOKEN"\ntimeout_s = 10.0\n'
    )
    acme, globex = load_fleet(write(tmp_path, text), ENV).tenants

    assert (acme.schedule.interval_s, acme.schedule.jitter_s) == (600.0, 5.0)
    assert (globex.schedule.interval_s, globex.schedule.jitter_s) == (3600.0, 5.0)
    assert acme.thresholds.limits["deactivate"].count == 20 and globex.thresholds.limits["deactivate"].count == 5
    assert acme.thresholds.limits["create"].count == globex.thresholds.limits["create"].count == 500
    assert globex.thresholds.limits["update"] == DEFAULT_LIMITS["update"]
    assert (acme.okta.timeout_s, globex.okta.timeout_s) == (60.0, 10.0)
    assert acme.mapping == {**DEFAULT_MAPPING, "title": "profile.title", DEPARTMENT: "user.profile.department"}
    expected = {**DEFAULT_MAPPING, DEPARTMENT: "user.profile.department", "name.givenName": "user.profile.firstName"}
    del expected["locale"]
    assert globex.mapping == expected


def test_a_tenant_choosing_its_own_token_or_cron_takes_none_of_the_defaults_alternatives(tmp_path: Path) -> None:
    write_secret_file(tmp_path / "globex-scim", GLOBEX_SCIM + "\n")
    text = (
        '[okta]\ntoken_env = "ACME_OKTA_TOKEN"\n[scim]\ntoken_env = "ACME_SCIM_TOKEN"\n[schedule]\ninterval = "10m"\n'
        '[[tenants]]\nname = "acme"\n'
        '[tenants.okta]\norg_url = "https://acme.okta.com"\napp_id = "0oaacme"\n'
        '[tenants.scim]\nbase_url = "https://scim.example.com/acme/scim"\n'
        + tenant("globex", '[tenants.schedule]\ncron = "*/5 * * * *"').replace(
            'token_env = "GLOBEX_SCIM_TOKEN"', 'token_file = "globex-scim"'
        )
    )
    acme, globex = load_fleet(write(tmp_path, text), ENV).tenants

    assert acme.okta.token is not None and acme.okta.token.reveal() == ACME_OKTA
    assert acme.scim.token.reveal() == ACME_SCIM
    assert globex.okta.token is not None and globex.okta.token.reveal() == GLOBEX_OKTA
    assert globex.scim.token.reveal() == GLOBEX_SCIM
    assert (acme.schedule.interval_s, acme.schedule.cron) == (600.0, None)
    assert globex.schedule.cron == "*/5 * * * *"


def test_secrets_per_tenant_from_env_file_and_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    write_secret_file(tmp_path / "secrets" / "acme-scim", ACME_SCIM + "\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    write_secret_file(credentials / "globex-okta", GLOBEX_OKTA + "\n")
    write_secret_file(credentials / "globex-scim", GLOBEX_SCIM)
    text = tenant("acme").replace('token_env = "ACME_SCIM_TOKEN"', 'token_file = "secrets/acme-scim"') + tenant(
        "globex"
    ).replace('token_env = "GLOBEX_OKTA_TOKEN"', 'token_credential = "globex-okta"').replace(
        'token_env = "GLOBEX_SCIM_TOKEN"', 'token_credential = "globex-scim"'
    )
    environ = {"ACME_OKTA_TOKEN": ACME_OKTA, "CREDENTIALS_DIRECTORY": str(credentials)}

    acme, globex = load_fleet(write(tmp_path, text), environ).tenants

    assert acme.okta.token is not None and acme.okta.token.reveal() == ACME_OKTA
    assert acme.scim.token.reveal() == ACME_SCIM
    assert globex.okta.token is not None and globex.okta.token.reveal() == GLOBEX_OKTA
    assert globex.scim.token.reveal() == GLOBEX_SCIM

    problems = fleet_problems(write(tmp_path, text), {"ACME_OKTA_TOKEN": ACME_OKTA})
    assert [p.split(":")[0] for p in problems] == ["tenants[globex].okta.token_credential"] + [
        "tenants[globex].scim.token_credential"
    ]
    assert "outside systemd use tenants[globex].okta.token_file" in problems[0]


def test_a_loose_secret_file_of_a_tenant_is_refused_with_the_chmod(tmp_path: Path) -> None:
    token = tmp_path / "acme-scim"
    token.write_text(ACME_SCIM)
    token.chmod(0o644)
    text = tenant("acme").replace('token_env = "ACME_SCIM_TOKEN"', 'token_file = "acme-scim"')
    [line] = fleet_problems(write(tmp_path, text))
    assert line.startswith("tenants[acme].scim.token_file: ") and "chmod 600" in line


def test_a_single_tenant_file_reads_as_before(tmp_path: Path) -> None:
    path = REPO / "config.example.toml"
    environ = {"OKTA_API_TOKEN": ACME_OKTA, "SCIM_TOKEN": ACME_SCIM}

    fleet = load_fleet(path, environ)

    assert fleet == FleetConfig(
        (load_config(path, environ),), fleet.store, fleet.metrics, ServiceConfig(), path, multi_tenant=False
    )
    [config] = fleet.tenants
    assert config.tenant is None and config.store is fleet.store and config.metrics is fleet.metrics


# --- problems, named after the tenant ----------------------------------------------------------


def test_a_tenants_missing_env_var_names_the_tenant_key_and_the_fix(tmp_path: Path) -> None:
    environ = {k: v for k, v in ENV.items() if k != "ACME_OKTA_TOKEN"}
    [line] = fleet_problems(write(tmp_path, TWO), environ)
    assert line == (
        "tenants[acme].okta.token_env: environment variable ACME_OKTA_TOKEN is not set — "
        "export it or use tenants[acme].okta.token_file"
    )


def test_a_default_s_problem_says_where_the_value_came_from(tmp_path: Path) -> None:
    problems = fleet_problems(write(tmp_path, "[scim]\npage_size = 0\n" + TWO))
    assert problems == [
        f"tenants[{name}].scim.page_size (from the top-level [scim]): expected an integer from 1 to 1000, got 0"
        for name in ("acme", "globex")
    ]


def test_every_tenants_problems_are_reported_together(tmp_path: Path) -> None:
    text = (
        '[schedule]\ninterval = "soon"\n'
        + tenant("acme", '[tenants.policy]\nunmanaged = "delete"', '[tenants.mapping]\ntitle = "title"').replace(
            'app_id = "0oaacme"\n', ""
        )
        + tenant("globex").replace('base_url = "https://scim.example.com/globex/scim"', "pagesize = 10")
        + '[[tenants]]\nname = "Bad Name"\n[tenants.okta]\norg_url = "nope"\n'
    )
    problems = fleet_problems(write(tmp_path, text))
    keys = [line.split(":")[0] for line in problems]

    assert "tenants[acme].okta.app_id" in keys
    assert "tenants[acme].policy.unmanaged" in keys
    assert any(line.startswith('tenants[acme].mapping."title": source "title"') for line in problems)
    assert "tenants[acme].schedule.interval (from the top-level [schedule])" in keys
    assert "tenants[globex].scim.base_url" in keys
    assert "tenants[globex].scim.pagesize: unknown key — did you mean page_size?" in problems
    assert "tenants[3].name" in keys and "tenants[3].okta.org_url" in keys
    assert "tenants[3].scim" in keys
    assert all("\n" not in line for line in problems)


def test_a_tenant_without_okta_or_scim_anywhere_is_told_where_to_put_them(tmp_path: Path) -> None:
    problems = fleet_problems(write(tmp_path, '[[tenants]]\nname = "acme"\n'))
    assert problems == [
        "tenants[acme].okta: missing — add org_url, app_id and a token under [tenants.okta] "
        "or a top-level [okta] of defaults",
        "tenants[acme].scim: missing — add base_url and a token under [tenants.scim] or a top-level [scim] of defaults",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TWO + tenant("acme", org="other"), 'tenants[3].name: "acme" is already the name of tenants[1]'),
        ('[[tenants]]\nname = ""\n', "tenants[1].name: missing — give each tenant a unique name"),
        ('[[tenants]]\nname = "Acme"\n', "tenants[1].name: expected up to 63 lower-case letters"),
        ("[[tenants]]\nname = 3\n", "tenants[1].name: expected up to 63 lower-case letters"),
        ('tenants = "acme"\n', 'tenants: expected an array of tables, one [[tenants]] header per tenant, got "acme"'),
        ("tenants = [1, 2]\n", "tenants: expected an array of tables"),
        ("tenants = []\n", "tenants: empty — add a [[tenants]] table per tenant"),
        (TWO + "[tenants.store]\nurl = 'sqlite:///x.db'\n", "tenants[globex].store: [store] is shared by every tenant"),
        (TWO + "[tenants.metrics]\nlisten = ''\n", "tenants[globex].metrics: [metrics] is shared by every tenant"),
        (TWO + "[tenants.service]\nconcurrency = 2\n", "tenants[globex].service: [service] is shared by every"),
        (TWO + "[tenants.polcy]\n", "tenants[globex].polcy: unknown key — did you mean policy?"),
        (TWO.replace('name = "globex"', 'name = "globex"\norg_url = "https://x.okta.com"'),
         "tenants[globex].org_url: unknown key"),
        (TWO + '[[tenants]]\nname = "initech"\nscim = 1\n', "tenants[initech].scim: expected a table [tenants.scim]"),
        ("[tenant]\n" + TWO, "tenant: unknown section — did you mean tenants?"),
    ],
    ids=[
        "duplicate name", "empty name", "upper-case name", "name not a string", "not an array",
        "array of numbers", "empty", "store", "metrics", "service", "unknown section", "unknown key",
        "section not a table", "unknown top-level section",
    ],
)  # fmt: skip
def test_each_tenants_problem_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    problems = fleet_problems(write(tmp_path, text))
    assert any(line.startswith(expected) for line in problems), problems


def test_a_shared_section_in_a_tenant_says_to_move_it_to_the_top_level(tmp_path: Path) -> None:
    [line] = fleet_problems(write(tmp_path, TWO + "[tenants.store]\nurl = 'sqlite:///x.db'\n"))
    assert line == (
        "tenants[globex].store: [store] is shared by every tenant and belongs at the top level — "
        "move it out of [[tenants]], above the first [[tenants]] header"
    )


def test_two_tenants_on_the_same_pair_would_race(tmp_path: Path) -> None:
    twin = tenant("acme").replace('name = "acme"', 'name = "acme-2"').replace("ACME_", "GLOBEX_")
    [line] = fleet_problems(write(tmp_path, TWO + twin))
    assert line.startswith("tenants[acme-2]: reconciles the same Okta app (https://acme.okta.com, app_id 0oaacme)")
    assert "as tenants[acme]" in line and "two tenants would reconcile the same pair and race" in line


# --- [service] --------------------------------------------------------------------------------


def test_service_keys(tmp_path: Path) -> None:
    text = '[service]\nconcurrency = 16\ntick = "1m"\nreplica = "eu-west-1a"\n' + TWO
    assert load_fleet(write(tmp_path, text), ENV).service == ServiceConfig(16, 60.0, "eu-west-1a")
    assert load_fleet(write(tmp_path, "[service]\ntick = 10\n" + TWO), ENV).service.tick_s == 10.0


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("concurrency = 0", "service.concurrency: expected an integer from 1 to 64, got 0"),
        ("concurrency = 65", "service.concurrency: expected an integer from 1 to 64, got 65"),
        ('concurrency = "4"', 'service.concurrency: expected an integer, got "4"'),
        ('tick = "soon"', 'service.tick: expected a duration such as "30m", "6h" or "1d", got "soon"'),
        (
            "tick = 0",
            'service.tick: 0 is not a usable duration here: set one greater than 0, such as "30m" — or remove it '
            'for the default, "5s"',
        ),
        ("replica = 1", "service.replica: expected a string, got 1"),
        ('replica = "a\\nb"', "service.replica: expected a name of 1 to 128 printable characters"),
        ("ticks = 5", "service.ticks: unknown key — did you mean tick?"),
    ],
)
def test_service_problems_name_the_key(tmp_path: Path, table: str, expected: str) -> None:
    [line] = fleet_problems(write(tmp_path, f"[service]\n{table}\n" + TWO))
    assert line.startswith(expected), line


def test_service_is_refused_without_tenants(tmp_path: Path) -> None:
    text = (REPO / "config.example.toml").read_text() + "[service]\nconcurrency = 2\n"
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, text), {"OKTA_API_TOKEN": ACME_OKTA, "SCIM_TOKEN": ACME_SCIM})
    [line] = raised.value.problems
    assert line.startswith("service: only used with [[tenants]]")


# --- load_config and --tenant ------------------------------------------------------------------


def test_load_config_on_a_multi_tenant_file_needs_a_tenant(tmp_path: Path) -> None:
    path = write(tmp_path, TWO)
    with pytest.raises(ConfigError) as raised:
        load_config(path, ENV)
    assert raised.value.problems == ["this file has 2 tenants ([[tenants]]: acme, globex): pass --tenant NAME"]


def test_the_list_of_tenants_is_cut_short(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(tenant(f"t{i:02}") for i in range(12)))
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    [line] = raised.value.problems
    assert line.startswith("this file has 12 tenants ([[tenants]]: t00, t01,") and "t09, …)" in line
    assert "t10" not in line


def test_load_config_with_a_tenant_reads_only_its_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, TWO)
    only_globex = {"GLOBEX_OKTA_TOKEN": GLOBEX_OKTA, "GLOBEX_SCIM_TOKEN": GLOBEX_SCIM}

    config = load_config(path, only_globex, tenant="globex")

    assert isinstance(config, Config) and config.tenant == "globex"
    assert config.scim.token.reveal() == GLOBEX_SCIM
    assert config == load_fleet(path, ENV).tenant("globex")
    with pytest.raises(ConfigError, match=r"^tenants\[acme\]\.okta\.token_env: environment variable ACME_OKTA"):
        load_config(path, only_globex, tenant="acme")


def test_an_unknown_tenant_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, TWO)
    with pytest.raises(ConfigError) as raised:
        load_config(path, ENV, tenant="initech")
    assert raised.value.problems == [f'no tenant "initech" in {path}; its tenants: acme, globex']
    with pytest.raises(ConfigError) as raised:
        load_fleet(path, ENV).tenant("initech")
    assert raised.value.problems == [f'no tenant "initech" in {path}; its tenants: acme, globex']


def test_a_tenant_on_a_single_tenant_file_is_refused(tmp_path: Path) -> None:
    path = REPO / "config.example.toml"
    environ = {"OKTA_API_TOKEN": ACME_OKTA, "SCIM_TOKEN": ACME_SCIM}
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ, tenant="acme")
    [line] = raised.value.problems
    assert line.startswith(f"{path} has no [[tenants]]") and "drop --tenant acme" in line
    with pytest.raises(ConfigError, match="drop --tenant acme"):
        load_fleet(path, environ).tenant("acme")
    assert load_config(path, environ, tenant=None).tenant is None


def test_read_secrets_false_needs_no_environment(tmp_path: Path) -> None:
    path = write(tmp_path, TWO.replace('token_env = "GLOBEX_OKTA_TOKEN"', 'token_credential = "globex-okta"'))

    fleet = load_fleet(path, {}, read_secrets=False)
    config = load_config(path, {}, read_secrets=False, tenant="globex")

    assert [c.tenant for c in fleet.tenants] == ["acme", "globex"]
    assert all(c.scim.token.reveal() == "" for c in fleet.tenants)
    assert config.okta.token is not None and config.okta.token.reveal() == ""
    assert fingerprint(config) == fingerprint(fleet.tenant("globex"))


def test_fingerprint_ignores_the_tenant_name(tmp_path: Path) -> None:
    before = load_config(write(tmp_path, TWO), ENV, tenant="acme")
    renamed = load_config(write(tmp_path, TWO.replace('name = "acme"', 'name = "acme-corp"')), ENV, tenant="acme-corp")
    assert fingerprint(before) == fingerprint(renamed)


# --- the example stays true ---------------------------------------------------------------------

_SETTING = re.compile(r"""^# (\[\[?[a-z.]+\]\]?(?:\s+#.*)?|(?:[a-z_]+|"[^"]+") = .*)$""")
"""A commented setting: a whole table header (and its comment) or ``key = value``, not prose."""


def _example_many_tenants() -> str:
    """config.example.toml with its [okta]/[scim] removed and the many-tenants block uncommented."""
    text = (REPO / "config.example.toml").read_text()
    text = text[: text.index("# --- Okta")] + text[text.index("# --- Mapping") :]
    start = text.index("# --- Many tenants")
    lines = [match[1] if (match := _SETTING.match(line)) else line for line in text[start:].splitlines()]
    return text[:start] + "\n".join(lines) + "\n"


def test_the_example_many_tenants_block_loads_once_uncommented(tmp_path: Path) -> None:
    text = _example_many_tenants()
    assert text.count("[[tenants]]\n") == 2 and "\n[service]\n" in text and "\n[okta]  " in text
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    write_secret_file(credentials / "globex-okta-token", GLOBEX_OKTA)
    write_secret_file(credentials / "globex-scim-token", GLOBEX_SCIM)
    write_secret_file(tmp_path / "acme-scim-token", ACME_SCIM)
    text = text.replace("/etc/okta-reconciler/credentials/acme-scim-token", str(tmp_path / "acme-scim-token"))
    environ = {"ACME_OKTA_TOKEN": ACME_OKTA, "CREDENTIALS_DIRECTORY": str(credentials)}

    fleet = load_fleet(write(tmp_path, text), environ)

    assert fleet.multi_tenant and fleet.service == ServiceConfig(4, 5.0, "reconciler-1")
    acme, globex = fleet.tenants
    assert (acme.tenant, globex.tenant) == ("acme", "globex")
    assert acme.okta.token is not None and acme.okta.token.reveal() == ACME_OKTA
    assert acme.scim.token.reveal() == ACME_SCIM
    assert globex.okta.token is not None and globex.okta.token.reveal() == GLOBEX_OKTA
    assert globex.scim.token.reveal() == GLOBEX_SCIM
    assert (acme.okta.timeout_s, globex.okta.timeout_s) == (60.0, 30.0)
    assert (acme.schedule.interval_s, globex.schedule.interval_s) == (600.0, 1800.0)
    assert (acme.thresholds.limits["deactivate"].count, globex.thresholds.limits["deactivate"].count) == (50, 20)
    assert DEPARTMENT not in acme.mapping and globex.mapping[DEPARTMENT] == "user.profile.department"
    assert acme.alerts.alert_drift_by_kind == {"deactivate": 10}

"""The configuration contract: names, defaults, and one line per problem naming its key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.config import Config, StoreConfig, fingerprint, load_config
from reconciler.config.connections_model import DEFAULT_SCOPES
from reconciler.config.keys import DURATION, duration_text, table_keys
from reconciler.config.mapping import DEFAULT_MAPPING
from reconciler.config.model import TABLE_MODELS
from reconciler.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
OKTA_TOKEN = "00okta-SECRET-7f3a9c1e5b2d8f4a6c0e"
SCIM_TOKEN = "scim-SECRET-d41d8cd98f00b204e980"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-SECRET-KEY-BODY\n-----END PRIVATE KEY-----\n"
ENV = {"OKTA_API_TOKEN": OKTA_TOKEN, "SCIM_TOKEN": SCIM_TOKEN}

OKTA = """\
[okta]
org_url = "https://example.okta.com"
app_id = "0oa1b2c3d4e5f6g7h8i9"
auth = "api_token"
token_env = "OKTA_API_TOKEN"
"""
SCIM = """\
[scim]
base_url = "https://scim-api.example.com/scim"
token_env = "SCIM_TOKEN"
"""
MINIMAL = OKTA + SCIM

WriteConfig = Callable[[str], Path]


def write_secret(path: Path, text: str | bytes) -> Path:
    """A secret file as it must be: private to its owner (the configuration refuses a looser mode)."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(text: str) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(text)
        return path

    return write


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(path, ENV if environ is None else environ)
    return raised.value.problems


def load(write_config: WriteConfig, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write_config(text), ENV if environ is None else environ)


# --- what loads -------------------------------------------------------------------------------


def test_the_example_config_loads_as_shipped() -> None:
    config = load_config(REPO / "config.example.toml", ENV)

    assert config.okta.org_url == "https://example.okta.com"
    assert config.okta.auth == "api_token"
    assert config.okta.token is not None and config.okta.token.reveal() == OKTA_TOKEN
    assert config.scim.token.reveal() == SCIM_TOKEN
    assert dict(config.mapping) == dict(DEFAULT_MAPPING)
    assert config.store.url == f"sqlite:///{REPO / 'reconciler.db'}", "beside the file, as its token files"
    assert config.source_path == REPO / "config.example.toml"


def test_the_example_private_key_mode_loads_once_uncommented(tmp_path: Path) -> None:
    key_file = tmp_path / "okta-private-key.pem"
    write_secret(key_file, PRIVATE_KEY)
    text = (REPO / "config.example.toml").read_text()
    text = text.replace('auth = "api_token"', 'auth = "private_key"')
    text = text.replace('token_env = "OKTA_API_TOKEN"', "")
    text = text.replace('# client_id = "0oa9z8y7x6w5v4u3t2s1"', 'client_id = "0oa9z8y7x6w5v4u3t2s1"')
    text = text.replace(
        '# private_key_file = "/etc/okta-reconciler/credentials/okta-private-key.pem"',
        f'private_key_file = "{key_file}"',
    )
    path = tmp_path / "config.toml"
    path.write_text(text)

    okta = load_config(path, {"SCIM_TOKEN": SCIM_TOKEN}).okta

    assert (okta.auth, okta.client_id, okta.token) == ("private_key", "0oa9z8y7x6w5v4u3t2s1", None)
    assert okta.private_key is not None and okta.private_key.reveal() == PRIVATE_KEY.strip()
    assert okta.scopes == DEFAULT_SCOPES


def test_defaults(write_config: WriteConfig) -> None:
    config = load(write_config, MINIMAL)

    assert config.source_path is not None
    assert config.okta.scopes == ("okta.apps.read", "okta.users.read", "okta.groups.read")
    assert (config.okta.timeout_s, config.scim.timeout_s, config.scim.page_size) == (30.0, 30.0, 100)
    assert config.okta.rate_limit_share == 0.5
    assert (config.scim.read_concurrency, config.scim.write_concurrency) == (4, 4)
    assert (config.policy.unmanaged, config.policy.suspended) == ("report", "keep")
    assert config.store.url == f"sqlite:///{config.source_path.parent / 'reconciler.db'}", "beside the file"
    assert dict(config.mapping) == dict(DEFAULT_MAPPING)


def test_auth_defaults_to_api_token(write_config: WriteConfig) -> None:
    assert load(write_config, MINIMAL.replace('auth = "api_token"\n', "")).okta.auth == "api_token"


def test_trailing_slashes_are_dropped_from_urls(write_config: WriteConfig) -> None:
    text = MINIMAL.replace('okta.com"', 'okta.com/"').replace('/scim"', '/scim/"')
    config = load(write_config, text)
    assert (config.okta.org_url, config.scim.base_url) == (
        "https://example.okta.com",
        "https://scim-api.example.com/scim",
    )


def test_config_path_falls_back_to_reconciler_config(write_config: WriteConfig) -> None:
    path = write_config(MINIMAL)
    config = load_config(None, {**ENV, "RECONCILER_CONFIG": str(path)})
    assert config.source_path == path


def test_the_argument_wins_over_reconciler_config(write_config: WriteConfig, tmp_path: Path) -> None:
    path = write_config(MINIMAL)
    config = load_config(path, {**ENV, "RECONCILER_CONFIG": str(tmp_path / "other.toml")})
    assert config.source_path == path


# --- the file itself --------------------------------------------------------------------------


def test_no_path_at_all_says_how_to_give_one() -> None:
    [line] = problems_of(None, ENV)
    assert "--config" in line and "RECONCILER_CONFIG" in line


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    [line] = problems_of(missing)
    assert str(missing) in line and "no such" in line


def test_invalid_toml_gives_the_line(write_config: WriteConfig) -> None:
    [line] = problems_of(write_config(MINIMAL + "page_size = \n"))
    assert "not valid TOML" in line and "line 9" in line


# --- one line per problem, naming the key ------------------------------------------------------


def without(line: str) -> str:
    return MINIMAL.replace(line + "\n", "")


def in_okta(lines: str) -> str:
    return MINIMAL.replace("[scim]", lines + "\n[scim]")


def in_scim(lines: str) -> str:
    return MINIMAL + lines + "\n"


def replaced(old: str, new: str) -> str:
    return MINIMAL.replace(old, new)


PROBLEMS = {
    "missing org_url": (
        without('org_url = "https://example.okta.com"'),
        'okta.org_url: missing — set it to your Okta org, e.g. "https://example.okta.com"',
    ),
    "missing app_id": (without('app_id = "0oa1b2c3d4e5f6g7h8i9"'), "okta.app_id: missing — "),
    "missing base_url": (without('base_url = "https://scim-api.example.com/scim"'), "scim.base_url: missing — "),
    "org_url not a URL": (
        replaced('"https://example.okta.com"', '"example.okta.com"'),
        'okta.org_url: expected an http(s) URL, e.g. "https://example.okta.com", got "example.okta.com"',
    ),
    "org_url with a path": (replaced('okta.com"', 'okta.com/api/v1"'), "okta.org_url: expected the org URL alone"),
    "admin org_url": (replaced("example.okta", "example-admin.okta"), "okta.org_url: use the org URL, not the admin"),
    "base_url ftp": (replaced('"https://scim-api', '"ftp://scim-api'), "scim.base_url: expected an http(s) URL"),
    "page_size type": (in_scim('page_size = "abc"'), 'scim.page_size: expected an integer, got "abc"'),
    "page_size bool": (in_scim("page_size = true"), "scim.page_size: expected an integer, got true"),
    "page_size big": (in_scim("page_size = 5000"), "scim.page_size: expected an integer from 1 to 1000, got 5000"),
    "page_size zero": (in_scim("page_size = 0"), "scim.page_size: expected an integer from 1 to 1000, got 0"),
    "timeout zero": (in_scim("timeout_s = 0"), "scim.timeout_s: expected a number of seconds greater than 0, got 0"),
    "timeout type": (in_okta('timeout_s = "30s"'), 'okta.timeout_s: expected a number of seconds, got "30s"'),
    "share zero": (in_okta("rate_limit_share = 0"), "okta.rate_limit_share: expected a share greater than 0"),
    "share above one": (in_okta("rate_limit_share = 50"), "okta.rate_limit_share: expected a share from 0 to 1"),
    "write_concurrency zero": (
        in_scim("write_concurrency = 0"),
        "scim.write_concurrency: expected an integer from 1 to 64, got 0",
    ),
    "read_concurrency type": (in_scim('read_concurrency = "4"'), 'scim.read_concurrency: expected an integer, got "4"'),
    "unknown key": (in_scim("pagesize = 10"), "scim.pagesize: unknown key — did you mean page_size?"),
    "unknown section": (in_scim("[polcy]"), "polcy: unknown section — did you mean policy?"),
    "section not a table": ('store = "sqlite:///x.db"\n' + MINIMAL, "store: expected a table [store]"),
    "key that is a section": (in_scim("policy = 1"), "scim.policy: unknown key — is the [policy] header missing?"),
    "missing section": (OKTA, "scim: missing section"),
    "bad auth": (replaced('"api_token"', '"ssws"'), 'okta.auth: expected "api_token" or "private_key", got "ssws"'),
    "bad unmanaged": (
        in_scim('[policy]\nunmanaged = "delete"'),
        'policy.unmanaged: expected "report" or "deactivate", got "delete"',
    ),
    "bad suspended": (in_scim("[policy]\nsuspended = 1"), 'policy.suspended: expected "deactivate" or "keep", got 1'),
    "bad scopes": (in_okta('scopes = "okta.apps.read"'), "okta.scopes: expected a non-empty list of strings"),
    "no token": (without('token_env = "OKTA_API_TOKEN"'), 'okta.token_env: missing — set token_env = "OKTA_API'),
    "both tokens": (in_okta('token_file = "token"'), "okta.token_file: set together with token_env — keep only one"),
    "client_id with api_token": (in_okta('client_id = "0oa9"'), 'okta.client_id: only used with auth = "private_key"'),
    "bad store url": (
        in_scim('[store]\nurl = "mysql://db/reconciler"'),
        "store.url: expected a sqlite:/// or postgresql:// URL",
    ),
    "bad mapping source": (in_scim('[mapping]\ntitle = "profile.a.b"'), 'mapping."title": source "profile.a.b"'),
    "reserved mapping path": (
        in_scim('[mapping]\nexternalId = "id"'),
        'mapping."externalId": the reconciler always sets externalId to the Okta user id',
    ),
    "bad mapping transform": (
        in_scim('[mapping]\ntitle = { source = "profile.title", transform = "capitalize" }'),
        'mapping."title": unknown transform "capitalize"; use lower, upper, trim',
    ),
}


@pytest.mark.parametrize(("text", "expected"), PROBLEMS.values(), ids=PROBLEMS.keys())
def test_each_problem_is_one_line_naming_its_key(write_config: WriteConfig, text: str, expected: str) -> None:
    problems = problems_of(write_config(text))
    assert any(line.startswith(expected) for line in problems), problems
    assert all("\n" not in line for line in problems)


def test_several_problems_give_several_lines(write_config: WriteConfig) -> None:
    text = MINIMAL.replace('"https://example.okta.com"', '"nope"') + 'page_size = "abc"\npagesize = 1\n[polcy]\n'
    problems = problems_of(write_config(text))
    keys = sorted(line.split(":")[0] for line in problems)
    assert keys == ["okta.org_url", "polcy", "scim.page_size", "scim.pagesize"]
    with pytest.raises(ConfigError, match="(?s)okta.org_url.*scim.page_size"):
        load_config(write_config(text), ENV)


def test_private_key_mode_needs_client_id_and_key_file_and_no_token(write_config: WriteConfig) -> None:
    problems = problems_of(write_config(MINIMAL.replace('"api_token"', '"private_key"')))
    assert {line.split(":")[0] for line in problems} == {
        "okta.token_env",
        "okta.client_id",
        "okta.private_key_file",
    }
    assert any('only used with auth = "api_token"' in line for line in problems)


def test_a_public_key_is_not_a_private_key(write_config: WriteConfig, tmp_path: Path) -> None:
    write_secret(tmp_path / "key.pem", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
    okta = OKTA.replace('"api_token"', '"private_key"').replace(
        'token_env = "OKTA_API_TOKEN"', 'client_id = "0oa9"\nprivate_key_file = "key.pem"'
    )
    [line] = problems_of(write_config(okta + SCIM))
    assert line.startswith("okta.private_key_file:") and "key.pem holds no private key" in line


# --- secrets ----------------------------------------------------------------------------------


def test_token_env_unset(write_config: WriteConfig) -> None:
    [line] = problems_of(write_config(MINIMAL), {"SCIM_TOKEN": SCIM_TOKEN})
    assert line == ("okta.token_env: environment variable OKTA_API_TOKEN is not set — export it or use okta.token_file")


def test_token_env_empty(write_config: WriteConfig) -> None:
    [line] = problems_of(write_config(MINIMAL), {**ENV, "SCIM_TOKEN": "  \n"})
    assert line.startswith("scim.token_env: environment variable SCIM_TOKEN is empty")


def test_a_token_pasted_into_token_env_is_not_echoed(write_config: WriteConfig) -> None:
    pasted = "00Xy-" + OKTA_TOKEN
    problems = problems_of(write_config(MINIMAL.replace('"OKTA_API_TOKEN"', f'"{pasted}"')))
    assert problems == [
        "okta.token_env: expected the NAME of an environment variable (letters, digits, _), not the token itself"
    ]


def test_token_file_is_read_relative_to_the_config_and_stripped(write_config: WriteConfig, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    write_secret(tmp_path / "secrets" / "scim-token", SCIM_TOKEN + "\n")
    text = MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "secrets/scim-token"')
    config = load(write_config, text, {"OKTA_API_TOKEN": OKTA_TOKEN})
    assert config.scim.token.reveal() == SCIM_TOKEN


@pytest.mark.parametrize(
    ("prepare", "expected"),
    [
        (lambda path: None, "cannot read {path}: No such file or directory"),
        (lambda path: path.mkdir(), "cannot read {path}: Is a directory"),
        (lambda path: write_secret(path, "\n"), "{path} is empty"),
        (lambda path: write_secret(path, b"\xff\xfe\x00"), "{path} is not UTF-8 text"),
    ],
    ids=["missing", "unreadable", "empty", "not text"],
)
def test_an_unusable_token_file_names_the_key_and_the_path(
    write_config: WriteConfig, tmp_path: Path, prepare: Callable[[Path], None], expected: str
) -> None:
    token_path = tmp_path / "okta-token"
    prepare(token_path)
    text = MINIMAL.replace('token_env = "OKTA_API_TOKEN"', f'token_file = "{token_path}"')
    [line] = problems_of(write_config(text))
    assert line == "okta.token_file: " + expected.format(path=token_path)


def test_secrets_never_appear_in_the_config_repr(write_config: WriteConfig, tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    write_secret(key_file, PRIVATE_KEY)
    okta = OKTA.replace('"api_token"', '"private_key"').replace(
        'token_env = "OKTA_API_TOKEN"', f'client_id = "0oa9"\nprivate_key_file = "{key_file}"'
    )
    store = '[store]\nurl = "postgresql://reconciler:db-SECRET-pw@db.example.com/reconciler"\n'
    config = load(write_config, okta + SCIM + store)

    shown = repr(config) + str(config) + f"{config}"
    for secret in (SCIM_TOKEN, "MIIEvQ-SECRET-KEY-BODY", "db-SECRET-pw"):
        assert secret not in shown
    assert config.store.url.endswith("db-SECRET-pw@db.example.com/reconciler")


def test_secrets_never_appear_in_error_messages(write_config: WriteConfig, tmp_path: Path) -> None:
    write_secret(tmp_path / "scim-token", SCIM_TOKEN)
    text = (
        MINIMAL.replace('token_env = "SCIM_TOKEN"', 'token_file = "scim-token"\npage_size = "x"')
        + '[policy]\nunmanaged = "nope"\n[mapping]\nuserName = ""\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(text), ENV)
    assert len(raised.value.problems) == 3
    message = str(raised.value) + repr(raised.value)
    assert OKTA_TOKEN not in message and SCIM_TOKEN not in message


def test_store_config_repr_masks_a_database_password() -> None:
    assert repr(StoreConfig("postgresql://u:pw@h/db")) == "StoreConfig(url='postgresql://u:***@h/db')"


# --- mapping ----------------------------------------------------------------------------------


def test_mapping_is_merged_over_the_defaults(write_config: WriteConfig) -> None:
    text = MINIMAL + '[mapping]\ndisplayName = "user.profile.displayName"\ntitle = "profile.title"\n'
    mapping = load(write_config, text).mapping
    assert mapping == {**DEFAULT_MAPPING, "displayName": "user.profile.displayName", "title": "profile.title"}


def test_an_empty_source_removes_a_default_mapping(write_config: WriteConfig) -> None:
    mapping = load(write_config, MINIMAL + '[mapping]\nlocale = ""\n').mapping
    assert "locale" not in mapping and len(mapping) == len(DEFAULT_MAPPING) - 1


def test_removing_a_mapping_that_is_not_there_is_a_problem(write_config: WriteConfig) -> None:
    [line] = problems_of(write_config(MINIMAL + '[mapping]\nnickName = ""\n'))
    assert line.startswith('mapping."nickName": set to "" to remove a default mapping')


def test_username_cannot_be_removed(write_config: WriteConfig) -> None:
    [line] = problems_of(write_config(MINIMAL + '[mapping]\nuserName = ""\n'))
    assert line.startswith("mapping: userName must be mapped")


def test_a_default_path_is_replaced_whatever_its_case(write_config: WriteConfig) -> None:
    mapping = load(write_config, MINIMAL + '[mapping]\nDisplayName = "user.profile.displayName"\n').mapping
    assert mapping["displayName"] == "user.profile.displayName" and "DisplayName" not in mapping


def test_unquoted_dotted_paths_are_read_as_paths(write_config: WriteConfig) -> None:
    text = MINIMAL + '[mapping]\nname.givenName = "user.profile.firstName"\nname.middleName = "profile.middleName"\n'
    mapping = load(write_config, text).mapping
    assert mapping["name.givenName"] == "user.profile.firstName"
    assert mapping["name.middleName"] == "profile.middleName"


def test_the_mapping_is_read_only(write_config: WriteConfig) -> None:
    mapping = load(write_config, MINIMAL).mapping
    with pytest.raises(TypeError):
        mapping["title"] = "profile.title"  # type: ignore[index]


MAPPING_PROBLEMS = {
    "externalId": (
        'externalId = "id"',
        'mapping."externalId": the reconciler always sets externalId to the Okta user id'
        " (the link between the two sides); it cannot be mapped",
    ),
    "active": (
        "active = { constant = true }",
        'mapping."active": the reconciler sets active to follow'
        " the user's assignment status in Okta; it cannot be mapped",
    ),
    "active in any case": ('Active = "profile.active"', 'mapping."Active": the reconciler sets active'),
    "unknown transform": (
        'title = { source = "profile.title", transform = ["trim", "capitalize"] }',
        'mapping."title": unknown transform "capitalize"; use lower, upper, trim',
    ),
    "transform not a name": (
        'title = { source = "profile.title", transform = 3 }',
        'mapping."title": transform must be one of lower, upper, trim or a list of them',
    ),
    "unknown key": (
        'title = { source = "profile.title", transfrom = "trim" }',
        'mapping."title": unknown key "transfrom"; did you mean transform?',
    ),
    "typo of the form key": (
        'title = { sorce = "profile.title" }',
        'mapping."title": unknown key "sorce"; did you mean source?',
    ),
    "no form": ('title = { transform = "trim" }', 'mapping."title": give one of source, constant or join'),
    "empty table": ("title = {}", 'mapping."title": give one of source, constant or join'),
    "two forms": (
        'title = { source = "profile.title", constant = "x" }',
        'mapping."title": set both source and constant; keep only one',
    ),
    "bad constant": (
        "title = { constant = 1.5 }",
        'mapping."title": constant must be a string, true/false or an integer',
    ),
    "constant with transform": (
        'title = { constant = "x", transform = "trim" }',
        'mapping."title": transform does not go with constant',
    ),
    "separator without join": (
        'title = { source = "profile.title", separator = "-" }',
        'mapping."title": separator only goes with join',
    ),
    "join of one": (
        'displayName = { join = ["profile.firstName"] }',
        'mapping."displayName": join needs a list of at least two sources',
    ),
    "join of a string": (
        'displayName = { join = "profile.firstName" }',
        'mapping."displayName": join needs a list of at least two sources',
    ),
    "bad join source": (
        'displayName = { join = ["profile.a", "name"] }',
        'mapping."displayName": join source "name" is not one of credentials.userName, id',
    ),
    "bad separator": (
        'displayName = { join = ["profile.a", "profile.b"], separator = 1 }',
        'mapping."displayName": separator must be a string',
    ),
    "bad table source": (
        'title = { source = "title" }',
        'mapping."title": source "title" is not one of credentials.userName',
    ),
    "empty default": (
        'title = { source = "profile.title", default = "" }',
        'mapping."title": default must be a non-empty string',
    ),
    "not a spec": ("title = 3", 'mapping."title": expected a source path such as "profile.title" or a table'),
    "quoted path key": (
        """'emails[type eq "home"].value' = { source = "profile.x", transform = "up" }""",
        """mapping.'emails[type eq "home"].value': unknown transform "up"; use lower""",
    ),
}


@pytest.mark.parametrize(("line", "expected"), MAPPING_PROBLEMS.values(), ids=MAPPING_PROBLEMS.keys())
def test_each_mapping_problem_names_its_key_and_the_fix(write_config: WriteConfig, line: str, expected: str) -> None:
    problems = problems_of(write_config(MINIMAL + f"[mapping]\n{line}\n"))
    assert any(problem.startswith(expected) for problem in problems), problems
    assert all("\n" not in problem and problem.startswith("mapping") for problem in problems)


def test_mapping_tables_are_kept_read_only_and_plain(write_config: WriteConfig) -> None:
    text = MINIMAL + (
        "[mapping]\n"
        'userType = { constant = "Employee" }\n'
        'displayName = { join = ["user.profile.firstName", "user.profile.lastName"], transform = "trim" }\n'
        'title = { source = "user.profile.title", default = "Staff" }\n'
        'name.givenName = { source = "profile.givenName", transform = ["trim"] }\n'
        'nickName = "profile.nickName"\n'
    )
    mapping = load(write_config, text).mapping
    assert mapping["userType"] == {"constant": "Employee"}
    assert mapping["displayName"] == {
        "join": ("user.profile.firstName", "user.profile.lastName"),
        "transform": "trim",
    }
    assert mapping["title"] == {"source": "user.profile.title", "default": "Staff"}
    assert mapping["name.givenName"] == {"source": "profile.givenName", "transform": ("trim",)}
    assert mapping["nickName"] == "profile.nickName"
    with pytest.raises(TypeError):
        mapping["title"]["default"] = "x"  # type: ignore[index]
    plain = {key: value if isinstance(value, str) else dict(value) for key, value in mapping.items()}
    assert json.loads(json.dumps(plain))["displayName"]["join"] == ["user.profile.firstName", "user.profile.lastName"]


def test_a_bad_mapping_table_stops_before_any_network_call(write_config: WriteConfig) -> None:
    """Every problem at once, from the file alone (load_config does no I/O beyond it)."""
    text = MINIMAL + '[mapping]\ntitle = { source = "profile.title", transform = "capitalize" }\nactive = "id"\n'
    problems = problems_of(write_config(text))
    assert len(problems) == 2


def _example_mapping_lines() -> list[str]:
    """The mapping examples config.example.toml shows in comments: ``key = value`` after a ``#``."""
    text = (REPO / "config.example.toml").read_text()
    block = text[text.index("# --- Mapping") : text.index("# --- Policy")]
    return re.findall(r"""^#\s+((?:'[^']*'|"[^"]*"|\w+) = .+)$""", block, flags=re.MULTILINE)


def test_every_mapping_example_in_the_example_config_loads(write_config: WriteConfig) -> None:
    lines = _example_mapping_lines()
    assert len(lines) >= 7 and any("join" in line for line in lines) and any("constant" in line for line in lines)
    for line in lines:
        mapping = load(write_config, MINIMAL + f"[mapping]\n{line}\n").mapping
        assert len(mapping) == len(DEFAULT_MAPPING) + (0 if line.startswith("displayName") else 1), line


# --- fingerprint ------------------------------------------------------------------------------


def test_fingerprint_identifies_the_pair_not_the_credentials(write_config: WriteConfig) -> None:
    first = fingerprint(load(write_config, MINIMAL))
    other_tokens = fingerprint(
        load(
            write_config,
            MINIMAL,
            {"OKTA_API_TOKEN": "other-okta-token-3b1f9e", "SCIM_TOKEN": "other-scim-token-8c2d0a"},
        )
    )
    other_app = fingerprint(load(write_config, MINIMAL.replace("0oa1b2c3d4e5f6g7h8i9", "0oaOTHER")))

    assert first == other_tokens != other_app
    assert len(first) == 64 and int(first, 16) >= 0


def test_tokens_from_systemd_credentials(tmp_path: Path) -> None:
    """token_credential reads $CREDENTIALS_DIRECTORY/NAME, as LoadCredential= provides."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    write_secret(credentials / "okta-token", "okta-secret-from-credential\n")
    write_secret(credentials / "scim-token", "scim-secret-from-credential\n")
    path = tmp_path / "c.toml"
    path.write_text(
        '[okta]\norg_url = "https://example.okta.com"\napp_id = "0oa1"\ntoken_credential = "okta-token"\n'
        '[scim]\nbase_url = "https://scim.example.com/scim"\ntoken_credential = "scim-token"\n'
    )
    config = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.okta.token is not None and config.okta.token.reveal() == "okta-secret-from-credential"
    assert config.scim.token.reveal() == "scim-secret-from-credential"
    with pytest.raises(ConfigError) as raised:
        load_config(path, {})
    assert "okta.token_credential: $CREDENTIALS_DIRECTORY is not set" in str(raised.value)
    assert "outside systemd use okta.token_file" in str(raised.value)


# --- [groups] ---------------------------------------------------------------------------------


def test_groups_are_off_unless_pushed(write_config: WriteConfig) -> None:
    groups = load(write_config, MINIMAL).groups
    assert (groups.enabled, groups.push, groups.push_assigned, groups.delete_unpushed) == (False, (), False, False)


def test_groups_push_names_and_ids_once_each_with_delete_and_batch(write_config: WriteConfig) -> None:
    text = MINIMAL + (
        '[groups]\npush = ["Engineering", " Engineering ", "00g1a2b3c4d5e6f7g8h9"]\n'
        "delete_unpushed = true\nmember_batch = 50\n"
        "[thresholds]\nmax_remove_members = 20\nmax_delete_group_ratio = 0.05\n"
    )
    config = load(write_config, text)
    assert config.groups.push == ("Engineering", "00g1a2b3c4d5e6f7g8h9")
    assert (config.groups.enabled, config.groups.delete_unpushed, config.groups.member_batch) == (True, True, 50)
    assert config.thresholds.group_limits["remove_members"].count == 20
    assert config.thresholds.group_limits["delete_group"].ratio == 0.05


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('push = "Engineering"', "groups.push: expected a list of Okta group names or ids"),
        ('push = [""]', "groups.push: expected a list of Okta group names or ids"),
        ('push_assigned = "yes"', "groups.push_assigned: expected true or false"),
        ("member_batch = 0", "groups.member_batch: expected an integer from 1 to 1000"),
        ("delete_unpushed = true", "groups.delete_unpushed: set without push or push_assigned"),
        ("pushed = []", "groups.pushed: unknown key — did you mean push?"),
    ],
)
def test_groups_problems_name_the_key_and_the_fix(write_config: WriteConfig, table: str, expected: str) -> None:
    problems = problems_of(write_config(MINIMAL + f"[groups]\n{table}\n"))
    assert any(p.startswith(expected) for p in problems), problems


def test_group_kinds_can_raise_their_own_drift_alert(write_config: WriteConfig) -> None:
    text = MINIMAL + "[alerts]\nalert_drift_by_kind = {remove_members = 1, create = 5}\n"
    assert load(write_config, text).alerts.alert_drift_by_kind == {"remove_members": 1, "create": 5}


# --- durations: 0 where it means none, refused where it is nonsense ------------------------------

ZERO_MEANS_NONE = {("schedule", "jitter"), ("schedule", "stop_timeout"), ("incremental", "recheck_after")}
"""The durations for which 0 is a choice: no jitter; no grace on stop (runs in flight are cancelled at once); no
second look at a user the System Log follower repaired."""


def duration_keys() -> list[tuple[str, str]]:
    """Every duration key of the tables a single-tenant file takes."""
    return [
        (section, key.name)
        for section, model in TABLE_MODELS.items()
        if section != "service"  # [service] is only read in a multi-tenant file (tests/config/test_config_tenants.py)
        for key in table_keys(model).values()
        if key.type is DURATION
    ]


@pytest.mark.parametrize("zero", ["0s", 0, "0", "0m", 0.0])
def test_jitter_and_stop_timeout_take_zero_as_none(write_config: WriteConfig, zero: object) -> None:
    value = json.dumps(zero)
    schedule = load(write_config, MINIMAL + f"[schedule]\njitter = {value}\nstop_timeout = {value}\n").schedule
    assert (schedule.jitter_s, schedule.stop_timeout_s) == (0.0, 0.0)


@pytest.mark.parametrize(("section", "key"), duration_keys())
def test_zero_is_refused_where_it_is_nonsense_naming_the_key_and_the_fix(
    write_config: WriteConfig, section: str, key: str
) -> None:
    text = MINIMAL + f'[{section}]\n{key} = "0s"\n'
    if (section, key) in ZERO_MEANS_NONE:
        assert load(write_config, text)
        return
    default = duration_text(table_keys(TABLE_MODELS[section])[key].default)
    assert problems_of(write_config(text)) == [
        f'{section}.{key}: 0 is not a usable duration here: set one greater than 0, such as "30m" — or remove it '
        f'for the default, "{default}"'
    ]


def test_every_duration_key_is_swept_and_a_negative_one_is_refused(write_config: WriteConfig) -> None:
    assert {("schedule", "interval"), ("alerts", "realert_after")} | ZERO_MEANS_NONE <= set(duration_keys())
    assert problems_of(write_config(MINIMAL + "[schedule]\njitter = -5\n")) == [
        'schedule.jitter: expected a duration such as "30m", "6h" or "1d", got -5'
    ]

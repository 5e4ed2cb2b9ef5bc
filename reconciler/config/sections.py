"""One reader per table (but ``[okta]``, ``[scim]`` and ``[mapping]``), and every table of one tenant read together.

A reader takes its keys' bounds and defaults from the model's declarations (see :class:`.table.Table`);
what is left here is what a declaration does not say: a store URL's backend, a cron expression that
parses, ``delete_unpushed`` without a group pushed, and the like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from reconciler.config.connections import read_okta, read_scim
from reconciler.config.incremental_model import IncrementalConfig
from reconciler.config.mapping_table import read_mapping
from reconciler.config.model import DEFAULT_STORE_URL, DRIFT_KINDS, AlertsConfig, GroupsConfig, StoreConfig
from reconciler.config.policy_model import (
    DEFAULT_LIMITS,
    GROUP_LIMITS,
    KindLimit,
    OnThreshold,
    PolicyConfig,
    SuspendedPolicy,
    ThresholdsConfig,
    UnmanagedPolicy,
)
from reconciler.config.secrets import checked_secret, read_secret_file
from reconciler.config.service_model import MetricsConfig, ScheduleConfig, ServiceConfig, valid_replica_name
from reconciler.config.table import Table
from reconciler.config.wording import show
from reconciler.secret import Secret


def tenant_parts(
    tables: Mapping[str, Mapping[str, Any] | None],
    inherited: Mapping[str, frozenset[str]],
    prefix: str,
    base_dir: Path,
    environ: Mapping[str, str],
    problems: list[str],
) -> dict[str, Any] | None:
    """The sections of one tenant as Config's keyword arguments; None when a problem was noted.

    ``prefix`` (``"tenants[acme]."``) starts the name of every key in a message;
    ``inherited`` names, per section, the keys that came from the top-level defaults.
    """
    before = len(problems)

    def table(name: str, *, required: bool = False) -> Table:
        values = tables.get(name)
        return Table(name, values if required else values or {}, problems, inherited.get(name), prefix=prefix)

    okta = read_okta(table("okta", required=True), environ, base_dir)
    scim = read_scim(table("scim", required=True), environ, base_dir)
    found: list[str] = []
    mapping = read_mapping(tables.get("mapping") or {}, found)
    problems.extend(prefix + problem for problem in found)
    parts = {
        "okta": okta,
        "scim": scim,
        "mapping": mapping,
        "policy": read_policy(table("policy")),
        "thresholds": read_thresholds(table("thresholds")),
        "alerts": read_alerts(table("alerts"), base_dir, environ),
        "schedule": read_schedule(table("schedule")),
        "groups": read_groups(table("groups")),
        "incremental": read_incremental(table("incremental")),
    }
    return None if len(problems) > before else parts


def read_policy(table: Table) -> PolicyConfig | None:
    table.check_keys()
    unmanaged = table.choice("unmanaged")
    suspended = table.choice("suspended")
    if not table.clean:
        return None
    return PolicyConfig(cast(UnmanagedPolicy, unmanaged), cast(SuspendedPolicy, suspended))


def read_store(table: Table, base: Path) -> StoreConfig | None:
    """``[store]``; a relative SQLite path in the file is relative to ``base``, the file's directory."""
    table.check_keys()
    url = table.string("url") or DEFAULT_STORE_URL
    if not table.clean:
        return None
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError:
        backend = None
    if backend not in ("sqlite", "postgresql"):
        table.note("url", f'expected a sqlite:/// or postgresql:// URL, e.g. "{DEFAULT_STORE_URL}"')
        return None
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database).expanduser()
        if not database.is_absolute():
            url = parsed.set(database=str(base / database)).render_as_string(hide_password=False)
    return StoreConfig(url)


def _kind_limits(table: Table, kinds: Iterable[str]) -> dict[str, KindLimit]:
    """``max_KIND`` and ``max_KIND_ratio`` of each kind."""
    limits = {}
    for kind in kinds:
        count = table.integer(f"max_{kind}")
        ratio = table.ratio(f"max_{kind}_ratio")
        if count is not None and ratio is not None:
            limits[kind] = KindLimit(count, ratio)
    return limits


def read_thresholds(table: Table) -> ThresholdsConfig | None:
    table.check_keys()
    limits = _kind_limits(table, DEFAULT_LIMITS)
    group_limits = _kind_limits(table, GROUP_LIMITS)
    min_for_ratio = table.integer("min_count_for_ratio")
    drop = table.ratio("max_source_drop_ratio")
    on_threshold = table.choice("on_threshold")
    error_ratio = table.ratio("max_error_ratio")
    quarantine_after = table.integer("quarantine_after")
    quarantine_interval = table.duration("quarantine_interval")
    max_plan_age = table.duration("max_plan_age")
    quarantine_after_interrupted = table.integer("quarantine_after_interrupted")
    if not table.clean:
        return None
    assert drop is not None and error_ratio is not None and quarantine_after and quarantine_interval
    assert min_for_ratio is not None and max_plan_age and quarantine_after_interrupted
    return ThresholdsConfig(
        MappingProxyType(limits),
        MappingProxyType(group_limits),
        min_for_ratio,
        drop,
        cast(OnThreshold, on_threshold),
        error_ratio,
        quarantine_after,
        quarantine_interval,
        max_plan_age,
        quarantine_after_interrupted,
    )


def read_groups(table: Table) -> GroupsConfig | None:
    table.check_keys()
    push = _group_names(table)
    push_assigned = table.flag("push_assigned")
    delete_unpushed = table.flag("delete_unpushed")
    member_batch = table.integer("member_batch")
    if delete_unpushed and not push and not push_assigned:
        table.note(
            "delete_unpushed",
            "set without push or push_assigned: with no group pushed, every group Okta once pushed would be "
            "deleted — list the groups to push, or set push_assigned = true",
        )
    if not table.clean:
        return None
    assert push is not None and push_assigned is not None and delete_unpushed is not None and member_batch
    return GroupsConfig(push, push_assigned, delete_unpushed, member_batch)


def read_incremental(table: Table) -> IncrementalConfig | None:
    table.check_keys()
    enabled = table.flag("enabled")
    poll, overlap, max_gap = table.duration("poll"), table.duration("overlap"), table.duration("max_gap")
    recheck_after, window = table.duration("recheck_after"), table.duration("window")
    batch_limit = table.integer("batch_limit")
    if not table.clean:
        return None
    assert enabled is not None and poll and overlap and max_gap and recheck_after is not None and window
    assert batch_limit
    return IncrementalConfig(enabled, poll, overlap, max_gap, recheck_after, window, batch_limit)


def _group_names(table: Table) -> tuple[str, ...] | None:
    """``push``: Okta group names or ids, each once."""
    value = table.value("push")
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        table.note(
            "push",
            f'expected a list of Okta group names or ids, e.g. ["Engineering", "00g1a2b3c4d5e6f7g8h9"], '
            f"got {show(value)}",
        )
        return None
    names = tuple(dict.fromkeys(v.strip() for v in value))
    return names


def read_alerts(table: Table, base_dir: Path, environ: Mapping[str, str]) -> AlertsConfig | None:
    table.check_keys()
    urls = _alert_urls(table, base_dir, environ)
    drift = table.integer("alert_drift")
    by_kind = _drift_by_kind(table)
    failures = table.integer("consecutive_failures")
    realert = table.duration("realert_after")
    if not table.clean:
        return None
    assert urls is not None and drift and by_kind is not None and failures and realert
    return AlertsConfig(urls, drift, MappingProxyType(by_kind), failures, realert)


def _alert_urls(table: Table, base_dir: Path, environ: Mapping[str, str]) -> tuple[Secret, ...] | None:
    """apprise URLs from ``urls``, ``urls_file`` and ``urls_credential`` (one per line, # comments)."""
    inline = table.value("urls")
    if not isinstance(inline, list) or not all(isinstance(u, str) and "://" in u for u in inline):
        table.note("urls", 'expected a list of apprise URLs, e.g. ["json://alerts.example.com/hook"]')
        return None
    urls = [checked_secret(table, "urls", url, "an alert URL", warn=False) for url in inline]
    from_files = [key for key in ("urls_file", "urls_credential") if table.has(key)]
    for key in from_files:
        text = read_secret_file(table, key, base_dir, environ)
        if text is None:
            return None
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        urls += [checked_secret(table, key, url, "a URL line", warn=False) for url in lines]
    return tuple(url for url in urls if url is not None) if all(urls) else None


def read_schedule(table: Table) -> ScheduleConfig | None:
    table.check_keys()
    if table.has("interval") and table.has("cron"):
        table.note("cron", "set together with interval — keep only one of them")
    interval = table.duration("interval")
    cron = _cron(table)
    jitter_s = table.duration("jitter")
    run_at_start = table.flag("run_at_start")
    stop_timeout = table.duration("stop_timeout")
    if not table.clean:
        return None
    assert interval and jitter_s is not None and run_at_start is not None and stop_timeout is not None
    return ScheduleConfig(interval, cron, jitter_s, run_at_start, stop_timeout)


def _cron(table: Table) -> str | None:
    expression = table.string("cron")
    if expression is None:
        return None
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression)
    except ValueError as error:
        table.note("cron", f'expected a 5-field crontab expression such as "*/30 * * * *": {error}')
        return None
    return expression


def read_metrics(table: Table) -> MetricsConfig | None:
    table.check_keys()
    listen = table.value("listen")
    if listen == "":
        return MetricsConfig(None)
    host, _, port = str(listen).rpartition(":")
    if not isinstance(listen, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        table.note("listen", f'expected host:port such as "127.0.0.1:9464" (or "" to turn it off), got {show(listen)}')
        return None
    return MetricsConfig(listen)


def read_service(table: Table) -> ServiceConfig | None:
    table.check_keys()
    concurrency = table.integer("concurrency")
    tick_s = table.duration("tick")
    replica = table.string("replica")
    if replica is not None and not valid_replica_name(replica):
        table.note("replica", f"expected a name of 1 to 128 printable characters, got {show(replica)}")
    if not table.clean:
        return None
    assert concurrency and tick_s
    return ServiceConfig(concurrency, tick_s, replica)


def _drift_by_kind(table: Table) -> dict[str, int] | None:
    value = table.value("alert_drift_by_kind")
    kinds = DRIFT_KINDS
    if not isinstance(value, dict) or not all(
        k in kinds and isinstance(v, int) and not isinstance(v, bool) and v >= 1 for k, v in value.items()
    ):
        table.note("alert_drift_by_kind", f"expected a table of kind = count >= 1, kinds: {', '.join(kinds)}")
        return None
    return dict(value)

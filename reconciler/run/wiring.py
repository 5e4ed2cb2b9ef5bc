"""The run's parts, built from the configuration: the Okta source, the SCIM reader and writers;
both sides read at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from reconciler.config.model import Config
from reconciler.hooks import NO_PROGRESS, ProgressListener
from reconciler.models.groups import OktaGroup, PlatformGroup
from reconciler.models.records import OktaAssignment, PlatformUser
from reconciler.net.pacing import AdaptiveLimit, BudgetFactory, all_or_cancel
from reconciler.net.shared_pacing import SharedRateLimitBudget
from reconciler.okta.source import OktaSource
from reconciler.plan.gate import ManagedCount, managed_count
from reconciler.plan.mapping import profile_fields, resource_attributes
from reconciler.plan.projection import projection_for
from reconciler.plan.users import PlanBuilder
from reconciler.run.apply import Applier, ApplyResult, Journal
from reconciler.run.group_apply import GroupApplier
from reconciler.scim.groups import ScimGroups
from reconciler.scim.http import ScimConnection
from reconciler.scim.page import release_resource
from reconciler.scim.reader import ScimReader
from reconciler.scim.writer import ScimWriter
from reconciler.store import Store


def okta_source(
    config: Config,
    progress: ProgressListener = NO_PROGRESS,
    on_page: Callable[[list[OktaAssignment]], None] | None = None,
    store: Store | None = None,
) -> OktaSource:
    """The run's Okta source; with ``store``, paced by the org's rate budget that every process on the store
    shares (:func:`shared_budgets`), else by its own."""
    okta = config.okta
    return OktaSource(
        org_url=okta.org_url,
        app_id=okta.app_id,
        auth=okta.auth,
        token=okta.token,
        client_id=okta.client_id,
        private_key=okta.private_key,
        scopes=okta.scopes,
        timeout_s=okta.timeout_s,
        rate_limit_share=okta.rate_limit_share,
        profile_fields=profile_fields(config.mapping),
        projection=projection_for(config.mapping),
        progress=progress,
        on_page=on_page,
        ca_bundle=okta.ca_bundle,
        max_response_bytes=okta.max_response_bytes,
        budgets=shared_budgets(store, okta.org_url, okta.rate_limit_share) if store is not None else None,
    )


def shared_budgets(store: Store, org_url: str, share: float) -> BudgetFactory:
    """Each rate-limit family's budget, claimed from the org's window in the store.

    So that replicas (and one-off runs) reading one org spend together what one run would:
    ``share`` of each window, not ``share`` each.
    """
    ledger = store.rate_ledger(org_url)
    return lambda family: SharedRateLimitBudget(ledger, family, share)


def scim_reader(config: Config, progress: ProgressListener = NO_PROGRESS) -> ScimReader:
    """The run's reader, on a connection of its own that closing the reader closes; writers share it."""
    scim = config.scim
    connection = ScimConnection(
        scim.base_url,
        scim.token,
        scim.timeout_s,
        ca_bundle=scim.ca_bundle,
        max_response_bytes=scim.max_response_bytes,
    )
    return ScimReader(
        connection,
        scim.page_size,
        read_concurrency=scim.read_concurrency,
        progress=progress,
        keep_attributes=resource_attributes(config.mapping),
        projection=projection_for(config.mapping),
    )


class Lookahead:
    """Builds the plan (:class:`~reconciler.plan.users.PlanBuilder`) while Okta pages are still arriving.

    The platform's listing is done long before Okta's, whose pages come one
    round trip after another: each page that arrives once the platform is
    known is matched and decided in the meantime, so little planning is left
    for the end of the run.
    """

    def __init__(self, config: Config) -> None:
        self._mapping, self._policy = config.mapping, config.policy
        self._builder: PlanBuilder | None = None
        self._waiting: list[list[OktaAssignment]] = []
        self._platform: list[PlatformUser] | None = None
        self._managed: ManagedCount | None = None

    def okta_page(self, assignments: list[OktaAssignment]) -> None:
        if self._builder is None:
            self._waiting.append(assignments)
        else:
            self._builder.add(assignments, release_resource)

    def platform_read(self, users: list[PlatformUser]) -> None:
        self._platform, self._managed = users, managed_count(users)
        self._builder = PlanBuilder(users, self._mapping, self._policy)
        waiting, self._waiting = self._waiting, []
        for page in waiting:
            self._builder.add(page, release_resource)

    def managed_of(self, actual: Sequence[PlatformUser]) -> ManagedCount | None:
        """The platform's managed users, counted when it was read, if ``actual`` is that very listing."""
        return self._managed if actual is self._platform else None

    @property
    def builder(self) -> PlanBuilder | None:
        """The plan built so far (None until the platform is read)."""
        return self._builder


async def read_both_sides(
    source: OktaSource, reader: ScimReader, lookahead: Lookahead | None = None
) -> tuple[list[OktaAssignment], list[PlatformUser]]:
    """Okta's assignments and the platform's users, read concurrently; either failing fails both.

    The first error cancels the other read, so nothing keeps running on a
    client that is about to be closed.
    """
    okta = asyncio.create_task(source.list_assignments())  # Okta's chain is the long one: it starts first
    scim = asyncio.create_task(reader.list_users())  # which discovers the platform's paging first
    if lookahead is not None:
        scim.add_done_callback(lambda done: _tell_platform_read(done, lookahead))
    desired, actual = await all_or_cancel(okta, scim)
    return desired, actual


async def read_groups(
    config: Config, source: OktaSource, reader: ScimReader
) -> tuple[list[OktaGroup], list[PlatformGroup]]:
    """Okta's pushed groups with their members, and the platform's groups, read concurrently."""
    groups = config.groups
    okta = asyncio.create_task(source.list_pushed_groups(groups.push, groups.push_assigned))
    scim = asyncio.create_task(ScimGroups(reader.connection, reader, groups.member_batch).list_groups())
    desired, actual = await all_or_cancel(okta, scim)
    return desired, actual


def _tell_platform_read(done: asyncio.Task[list[PlatformUser]], lookahead: Lookahead) -> None:
    if not done.cancelled() and done.exception() is None:
        lookahead.platform_read(done.result())


def group_applier_for(
    config: Config, store: Store, run_id: int, reader: ScimReader, links: dict[str, str], result: ApplyResult
) -> GroupApplier:
    """The GroupApplier of a run, after its users: members resolve through ``links`` and the users just created."""
    return GroupApplier(
        ScimGroups(reader.connection, reader, config.groups.member_batch),
        store,
        run_id,
        links | result.created,
        limit=AdaptiveLimit(config.scim.write_concurrency),
        result=result,
        max_error_ratio=config.thresholds.max_error_ratio,
    )


def applier_for(
    config: Config,
    store: Store,
    run_id: int,
    reader: ScimReader,
    actual: list[PlatformUser],
    progress: ProgressListener = NO_PROGRESS,
    journal: Journal | None = None,
) -> Applier:
    """The Applier of a run: ``scim.write_concurrency`` writes at most, fewer while the platform answers 429;
    its outcomes recorded in ``journal`` (default: the store's)."""
    limit = AdaptiveLimit(config.scim.write_concurrency)
    writer = ScimWriter(reader.connection, reader, on_throttled=limit.throttled)
    return Applier(
        writer,
        journal or store,
        run_id,
        actual,
        max_error_ratio=config.thresholds.max_error_ratio,
        limit=limit,
        progress=progress,
    )

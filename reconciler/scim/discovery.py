"""What a SCIM server says about itself (RFC 7643 §5-7), read leniently. Pure: no I/O.

``/ServiceProviderConfig`` decides how a run talks to the server (PATCH or
PUT, page cap, ``If-Match``, filtered lookups). ``/ResourceTypes`` and
``/Schemas`` say which attributes its User resource has; ``reconcile check``
compares the mapping with them, so that a mapped attribute the server would
drop is found before it shows up as the same update on every run.

Servers bend these documents: vendor fields, a bare JSON array instead of a
ListResponse, no ``/Schemas`` at all. Only the fields used here are read, and
a document that cannot be read counts as "not announced", never as an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pydantic

from reconciler.models.scim_path import CORE_USER_URN, TargetPath


@dataclass(frozen=True, slots=True)
class ScimCapabilities:
    """What the server announces in ``GET /ServiceProviderConfig`` (RFC 7643 §5)."""

    patch_supported: bool = True
    filter_supported: bool = False
    max_results: int | None = None
    """``filter.maxResults``: the most resources the server returns in one page."""
    etag_supported: bool = False

    def describe(self) -> str:
        """In words, for a log line: ``PATCH, no filter, no page cap, no ETags``."""
        return ", ".join(
            (
                "PATCH" if self.patch_supported else "PUT (no PATCH)",
                "filter" if self.filter_supported else "no filter",
                f"at most {self.max_results} a page" if self.max_results else "no page cap",
                "ETags" if self.etag_supported else "no ETags",
            )
        )


DEFAULT_CAPABILITIES: Final = ScimCapabilities()
"""Assumed when a server has no usable ServiceProviderConfig.

PATCH is assumed supported: Okta itself (de)activates users with PATCH, so any
platform that takes Okta's pushes accepts it, and a PATCH changes only what it
names where a PUT rewrites the whole user from a possibly stale read. Filtering
is assumed unsupported, so a lookup by userName scans the listing, which is
right on every server. No page cap is assumed (the page size applies, and short
pages are read correctly anyway), nor ETags (no ``If-Match`` is sent)."""


class AnnouncedFeature(pydantic.BaseModel):
    """A feature of ``/ServiceProviderConfig`` (``patch``, ``etag``), validated as scim2-models validates it.

    These few flags are all a run reads of the document: checking them with
    models of their own spares each run the import of scim2-models (a third
    of a second). ``tests/scim/test_scim_discovery.py`` holds them to
    scim2-models' ``ServiceProviderConfig``, answer for answer.
    """

    model_config = pydantic.ConfigDict(extra="forbid")

    supported: bool | None = None


class AnnouncedFilter(AnnouncedFeature):
    """``filter``: supported, and the most resources a page holds."""

    max_results: int | None = pydantic.Field(default=None, alias="maxResults")


class AnnouncedFeatures(pydantic.BaseModel):
    """The parts of ``/ServiceProviderConfig`` a run reads."""

    model_config = pydantic.ConfigDict(extra="forbid")

    patch: AnnouncedFeature | None = None
    filter: AnnouncedFilter | None = None
    etag: AnnouncedFeature | None = None


def capabilities_from(payload: Mapping[str, Any]) -> ScimCapabilities:
    """The flags used here; vendor additions elsewhere in the document are ignored.

    Raises pydantic.ValidationError when a flag used here has the wrong type.
    """
    subset = {
        name: {key: part[key] for key in ("supported", "maxResults") if key in part}
        for name in ("patch", "filter", "etag")
        if isinstance(part := payload.get(name), Mapping)
    }
    config = AnnouncedFeatures.model_validate(subset)
    max_results = config.filter.max_results if config.filter else None
    return ScimCapabilities(
        patch_supported=config.patch.supported is not False if config.patch else DEFAULT_CAPABILITIES.patch_supported,
        filter_supported=bool(config.filter and config.filter.supported),
        max_results=max_results if max_results and max_results > 0 else None,
        etag_supported=bool(config.etag and config.etag.supported),
    )


@dataclass(frozen=True, slots=True)
class UserSchema:
    """The server's User resource as ``/ResourceTypes`` and ``/Schemas`` announce it.

    Either part is None when the server does not serve it (or serves it
    unreadably): then nothing can be said about that part.
    """

    extensions: tuple[str, ...] | None
    """The extension schema URNs of the User resource type."""
    attributes: Mapping[str, frozenset[str]] | None
    """Schema URN (lower case) → its attribute names, and ``name.sub`` for sub-attributes (lower case)."""

    def describe(self) -> str:
        """One line: the User schemas and how many attributes each has."""
        if self.attributes is None and self.extensions is None:
            return "not announced (no readable /ResourceTypes or /Schemas)"
        urns = [CORE_USER_URN, *(self.extensions or ())]
        known = self.attributes or {}
        return ", ".join(f"{urn} ({_top_level_count(known.get(urn.lower()))})" for urn in urns)


def _top_level_count(names: frozenset[str] | None) -> str:
    if names is None:
        return "attributes not announced"
    return f"{sum(1 for name in names if '.' not in name)} attributes"


def listed_resources(payload: Any) -> Iterator[Mapping[str, Any]]:
    """The resources of a ListResponse, or of a bare JSON array (some servers answer one)."""
    resources = payload.get("Resources") if isinstance(payload, Mapping) else payload
    if isinstance(resources, list):
        yield from (item for item in resources if isinstance(item, Mapping))


def user_extensions(resource_types: Any) -> tuple[str, ...] | None:
    """The schema extensions of the User resource type; None when no User resource type is listed."""
    for resource_type in listed_resources(resource_types):
        names = {str(resource_type.get(key, "")).lower() for key in ("id", "name")}
        if "user" in names or resource_type.get("endpoint") in ("/Users", "Users"):
            extensions = resource_type.get("schemaExtensions") or []
            return tuple(
                str(extension["schema"])
                for extension in extensions
                if isinstance(extension, Mapping) and isinstance(extension.get("schema"), str)
            )
    return None


def schema_attributes(schemas: Any) -> dict[str, frozenset[str]]:
    """Each listed schema's attribute names (lower case, with ``name.sub`` for sub-attributes)."""
    found: dict[str, frozenset[str]] = {}
    for schema in listed_resources(schemas):
        urn = schema.get("id")
        if isinstance(urn, str):
            found[urn.lower()] = frozenset(_attribute_names(schema.get("attributes")))
    return found


def _attribute_names(attributes: Any, prefix: str = "") -> Iterator[str]:
    if not isinstance(attributes, list):
        return
    for attribute in attributes:
        if isinstance(attribute, Mapping) and isinstance(name := attribute.get("name"), str):
            yield prefix + name.lower()
            if not prefix:
                yield from _attribute_names(attribute.get("subAttributes"), f"{name.lower()}.")


COMMON_ATTRIBUTES: Final = frozenset({"id", "externalid", "meta"})
"""RFC 7643 §3.1: every resource has them, and servers rarely list them in a schema."""


def unannounced_paths(paths: Iterable[TargetPath], schema: UserSchema) -> list[str]:
    """One line per mapped path the server's User resource does not announce; empty when all are (or unknown).

    Attribute names compare without regard to case (RFC 7643 §2.1).
    """
    problems = []
    for path in paths:
        urn = path.schema or CORE_USER_URN
        if urn != CORE_USER_URN and schema.extensions is not None and urn not in schema.extensions:
            listed = ", ".join(schema.extensions) or "none"
            problems.append(f"{path.text}: the User resource type has no extension {urn} (it has: {listed})")
            continue
        names = None if schema.attributes is None else schema.attributes.get(urn.lower())
        if names is None or path.attribute.lower() in COMMON_ATTRIBUTES:
            continue
        wanted = path.attribute.lower()
        if wanted not in names:
            problems.append(f"{path.text}: {urn} has no attribute {path.attribute} in the server's /Schemas")
        elif path.sub_attribute and _lacks_sub_attribute(names, wanted, path.sub_attribute.lower()):
            problems.append(f"{path.text}: {path.attribute} has no sub-attribute {path.sub_attribute}")
    return problems


def _lacks_sub_attribute(names: frozenset[str], attribute: str, sub_attribute: str) -> bool:
    """Whether the schema lists sub-attributes of ``attribute``, and not this one."""
    prefix = f"{attribute}."
    return any(name.startswith(prefix) for name in names) and prefix + sub_attribute not in names

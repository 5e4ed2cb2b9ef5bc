"""SCIM PATCH operations (RFC 7644 §3.5.2): checked before they are sent, and replayed over a resource for
a server that takes PUT only."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

from reconciler.models.scim_path import CORE_USER_URN, ENTERPRISE_URN, TargetPath, parse_target_path, set_value

READ_ONLY_ATTRIBUTES: Final = ("meta", "groups")
"""Dropped from a PUT body: RFC 7643 marks them readOnly (``groups`` is set through Groups),
and some servers refuse a replacement that carries them. ``id`` is kept, as Okta sends it."""

PATCH_OP_URN: Final = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
PATCH_OPS: Final = frozenset({"add", "replace", "remove"})
DIRECT_PATHS: Final = frozenset({"active", "externalId"})
"""Top-level attributes the reconciler owns, which the mapping's path parser refuses on purpose."""


def patch_message(operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The body of a PATCH request (a PatchOp message) carrying ``operations``."""
    return {"schemas": [PATCH_OP_URN], "Operations": [dict(operation) for operation in operations]}


def check_operations(operations: Sequence[Mapping[str, Any]]) -> None:
    """Refuse malformed operations before anything is sent: they are a caller's bug, not a target failure."""
    if not operations:
        raise ValueError("a PATCH needs at least one operation")
    for operation in operations:
        op = str(operation.get("op", "")).lower()
        if op not in PATCH_OPS:
            raise ValueError(f"PATCH op must be one of add, replace, remove: {operation}")
        if op == "remove" and not operation.get("path"):
            raise ValueError(f"a remove operation needs a path: {operation}")
        if op != "remove" and "value" not in operation:
            raise ValueError(f"an {op} operation needs a value: {operation}")
        if not operation.get("path") and not isinstance(operation.get("value"), Mapping):
            raise ValueError(f"an operation without a path needs an object value: {operation}")


def apply_operations(resource: Mapping[str, Any], operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The resource as the PATCH operations would leave it, ready for a PUT (RFC 7644 §3.5.2).

    Attributes the operations do not name are kept, so the PUT does not wipe
    what the platform owns. A value object merges into an existing complex
    attribute (sub-attributes not named are kept); ``add`` of a list extends a
    multi-valued attribute; a null value or ``remove`` unassigns. Read-only
    attributes (``meta``, ``groups``) are dropped. Paths are those of
    :func:`reconciler.models.scim_path.parse_target_path`, plus ``active`` and
    ``externalId``; raises ValueError for any other.
    """
    check_operations(operations)
    replacement = copy.deepcopy(dict(resource))
    for operation in operations:
        op = str(operation["op"]).lower()
        path = operation.get("path")
        if path:
            _apply_at_path(replacement, path, None if op == "remove" else operation["value"], op)
        else:
            for key, value in operation["value"].items():
                _apply_at_path(replacement, key, value, op)
    for attribute in READ_ONLY_ATTRIBUTES:
        replacement.pop(attribute, None)
    return replacement


def _apply_at_path(resource: dict[str, Any], path: str, value: Any, op: str) -> None:
    if path in DIRECT_PATHS or _is_schema_key(resource, path):
        _apply_top_level(resource, path, value, op)
        return
    try:
        target = parse_target_path(path)
    except ValueError as error:
        raise ValueError(f"cannot replay PATCH path {path!r} as a PUT: {error}") from error
    if target.schema is None and target.sub_attribute is None and target.entry_type is None:
        _apply_top_level(resource, target.attribute, value, op)
    elif value is None:
        _remove(resource, target)
    else:
        set_value(resource, target, value)


def _is_schema_key(resource: Mapping[str, Any], key: str) -> bool:
    """``urn:...:enterprise:2.0:User`` and other extension objects, as opposed to ``urn:...:User:department``."""
    schemas = resource.get("schemas")
    if not key.startswith("urn:") or key == CORE_USER_URN:
        return False
    return key == ENTERPRISE_URN or (isinstance(schemas, list) and key in schemas)


def _apply_top_level(resource: dict[str, Any], key: str, value: Any, op: str) -> None:
    """Set, merge into, extend or unassign a top-level attribute or an extension object."""
    if value is None:
        _remove_top_level(resource, key)
        return
    current = resource.get(key)
    if isinstance(value, Mapping) and isinstance(current, Mapping):
        merged = {**current, **copy.deepcopy(dict(value))}
        resource[key] = {name: part for name, part in merged.items() if part is not None}
    elif op == "add" and isinstance(value, list) and isinstance(current, list):
        resource[key] = current + [entry for entry in copy.deepcopy(value) if entry not in current]
    else:
        resource[key] = copy.deepcopy(value)
    if key.startswith("urn:") and key != CORE_USER_URN:
        schemas = resource.setdefault("schemas", [CORE_USER_URN])
        if key not in schemas:
            schemas.append(key)


def _remove_top_level(resource: dict[str, Any], key: str) -> None:
    resource.pop(key, None)
    schemas = resource.get("schemas")
    if key.startswith("urn:") and isinstance(schemas, list) and key in schemas:
        schemas.remove(key)


def _remove(resource: dict[str, Any], target: TargetPath) -> None:
    """Unassign the value at ``target``: a typed entry goes whole, a sub-attribute alone."""
    if target.entry_type is not None:
        set_value(resource, target, None)
        return
    container = resource.get(target.schema) if target.schema and target.schema != CORE_USER_URN else resource
    if not isinstance(container, dict):
        return
    if target.sub_attribute is None:
        container.pop(target.attribute, None)
    elif isinstance(complex_value := container.get(target.attribute), dict):
        complex_value.pop(target.sub_attribute, None)

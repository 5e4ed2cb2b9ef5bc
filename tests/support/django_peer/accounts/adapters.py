"""The platform's SCIM user adapter: django-scim2's SCIMUser, extended to every field the platform keeps.

What the default adapter does is kept on purpose (the tests are here to find such quirks): ``emails`` come
out as one ``{"value", "primary"}`` entry without ``type``, ``displayName`` and ``name.formatted`` are
synthesised when nothing is stored, ``meta.lastModified`` is the creation time, ``externalId`` is ``""``
when absent, and PATCH answers 200 with the user. Only the parts the default cannot do are written here:
the added attributes, the enterprise extension, and PATCH handlers that understand their paths.

PATCH paths arrive parsed by scim2-filter-parser (``SCIMMixin.split_path``) as ``AttrPath`` objects whose
``first_path`` is ``(attribute, sub-attribute, schema URN)``; a path without a URN, or with the core User
URN, is a core attribute. Filtered paths (``emails[type eq "work"].value``) and attributes the platform
does not keep are answered 501, as the default adapter answers them.
"""

from __future__ import annotations

from typing import Any

from django_scim import constants, exceptions
from django_scim.adapters import SCIMUser
from scim2_filter_parser.attr_paths import AttrPath

CORE_URN = constants.SchemaURI.USER
ENTERPRISE_URN = constants.SchemaURI.ENTERPRISE_USER

CORE_FIELDS = {
    ("username", None): "username",
    ("externalid", None): "scim_external_id",
    ("displayname", None): "display_name",
    ("nickname", None): "nick_name",
    ("title", None): "title",
    ("locale", None): "locale",
    ("preferredlanguage", None): "preferred_language",
    ("timezone", None): "timezone",
    ("usertype", None): "user_type",
    ("name", "givenname"): "first_name",
    ("name", "familyname"): "last_name",
}
"""(attribute, sub-attribute), lower-cased (RFC 7643 §2.1: names are case-insensitive) → model field."""

ENTERPRISE_FIELDS = {
    ("employeenumber", None): "employee_number",
    ("costcenter", None): "cost_center",
    ("organization", None): "organization",
    ("division", None): "division",
    ("department", None): "department",
    ("manager", "value"): "manager_id",
}

OPTIONAL_CORE = {
    "nickName": "nick_name",
    "title": "title",
    "locale": "locale",
    "preferredLanguage": "preferred_language",
    "timezone": "timezone",
    "userType": "user_type",
}
"""Added attributes, serialised only when set."""

OPTIONAL_ENTERPRISE = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
}

Target = tuple[str, str | None, str | None]
"""(schema: "core" or "enterprise", attribute or None for the whole extension, sub-attribute), lower-cased."""


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise exceptions.BadRequestError(f'"{where}" should be a string', scim_type="invalidValue")
    return value


def _target(path: AttrPath, raw: str) -> Target:
    """Where a parsed PATCH path points; filtered paths and unknown schemas are not implemented."""
    if path.is_complex:
        raise exceptions.NotImplementedError(f'PATCH path "{raw}" with a filter is not implemented')
    attribute, sub_attribute, urn = path.first_path
    sub = sub_attribute.lower() if sub_attribute else None
    if urn is None or urn.lower() == CORE_URN.lower():
        return ("core", attribute.lower(), sub)
    if f"{urn}:{attribute}".lower() == ENTERPRISE_URN.lower() and sub is None:
        return ("enterprise", None, None)
    if urn.lower() == ENTERPRISE_URN.lower():
        return ("enterprise", attribute.lower(), sub)
    raise exceptions.NotImplementedError(f'PATCH path "{raw}" is not implemented')


class PlatformSCIMUser(SCIMUser):
    """SCIMUser plus the platform's attributes and the enterprise extension."""

    @property
    def display_name(self) -> str:
        """The stored displayName; when none, the default adapter's "given family" or userName."""
        return self.obj.display_name or super().display_name

    @property
    def phone_numbers(self) -> list[dict[str, Any]]:
        """Like the default ``emails``: one primary entry, ``type`` not kept."""
        return [{"value": self.obj.phone_number, "primary": True}] if self.obj.phone_number else []

    def enterprise_dict(self) -> dict[str, Any]:
        extension = {name: getattr(self.obj, field) for name, field in OPTIONAL_ENTERPRISE.items()}
        extension = {name: value for name, value in extension.items() if value}
        if self.obj.manager_id:
            extension["manager"] = {"value": self.obj.manager_id}
        return extension

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update({name: getattr(self.obj, field) for name, field in OPTIONAL_CORE.items() if getattr(self.obj, field)})
        if self.obj.phone_number:
            d["phoneNumbers"] = self.phone_numbers
        extension = self.enterprise_dict()
        if extension:
            d["schemas"] = [CORE_URN, ENTERPRISE_URN]
            d[ENTERPRISE_URN] = extension
        return d

    def from_dict(self, d: dict[str, Any]) -> None:
        """POST and PUT: the default adapter's attributes, then the platform's; anything else is ignored."""
        super().from_dict(d)
        self.obj.scim_username = self.obj.username
        self.obj.display_name = _text(d.get("displayName"), "displayName")
        for name, field in OPTIONAL_CORE.items():
            setattr(self.obj, field, _text(d.get(name), name))
        self.parse_phone_numbers(d.get("phoneNumbers"))
        extension = d.get(ENTERPRISE_URN) or {}
        if not isinstance(extension, dict):
            raise exceptions.BadRequestError(f'"{ENTERPRISE_URN}" should be an object', scim_type="invalidValue")
        for name, field in OPTIONAL_ENTERPRISE.items():
            setattr(self.obj, field, _text(extension.get(name), name))
        self.obj.manager_id = self._manager_id(extension.get("manager"))

    def parse_phone_numbers(self, value: Any) -> None:
        """The primary number first, as the default ``parse_emails`` picks the e-mail."""
        if not value:
            self.obj.phone_number = ""
            return
        if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
            raise exceptions.BadRequestError('"phoneNumbers" should be a list of objects', scim_type="invalidValue")
        ordered = sorted(value, key=lambda entry: not entry.get("primary"))
        self.obj.phone_number = _text(ordered[0].get("value"), "phoneNumbers.value")

    @staticmethod
    def _manager_id(value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, dict):
            raise exceptions.BadRequestError('"manager" should be an object with "value"', scim_type="invalidValue")
        return _text(value.get("value"), "manager.value")

    # PATCH (RFC 7644 §3.5.2), called by SCIMMixin.handle_path_and_value once per (path, value).

    def handle_replace(self, path: AttrPath, value: Any, operation: dict) -> None:
        self._assign(_target(path, str(operation.get("path") or path.first_path)), value)
        self.save()

    def handle_add(self, path: AttrPath, value: Any, operation: dict) -> None:
        """Every attribute the platform keeps is single-valued, so an add sets it as a replace does."""
        self.handle_replace(path, value, operation)

    def handle_remove(self, path: AttrPath, value: Any, operation: dict) -> None:
        target = _target(path, str(operation.get("path")))
        if target[:2] in (("core", "username"), ("core", "active")):
            raise exceptions.BadRequestError(f'"{operation.get("path")}" can not be removed', scim_type="mutability")
        self._assign(target, None)
        self.save()

    def _assign(self, target: Target, value: Any) -> None:
        schema, attribute, sub = target
        if schema == "enterprise":
            self._assign_enterprise(attribute, sub, value)
        else:
            self._assign_core(attribute or "", sub, value)

    def _assign_core(self, attribute: str, sub: str | None, value: Any) -> None:
        if (attribute, sub) == ("active", None):
            if not isinstance(value, bool):
                raise exceptions.BadRequestError('"active" should be a boolean', scim_type="invalidValue")
            self.obj.is_active = value
        elif (attribute, sub) == ("emails", None):
            self.obj.email = ""
            self.parse_emails(value)  # the default's: keeps the primary (else first) value only
        elif (attribute, sub) == ("phonenumbers", None):
            self.parse_phone_numbers(value)
        elif (attribute, sub) == ("name", None):
            if value is None:  # remove
                self.obj.first_name = self.obj.last_name = ""
            for name, part in self._object(value, "name").items():
                self._assign_core("name", name.lower(), part)
        elif (attribute, sub) in CORE_FIELDS:
            self._set_field(CORE_FIELDS[(attribute, sub)], value, attribute if sub is None else f"{attribute}.{sub}")
        else:
            raise exceptions.NotImplementedError(f'PATCH of "{attribute}" is not implemented')

    def _assign_enterprise(self, attribute: str | None, sub: str | None, value: Any) -> None:
        if attribute is None:
            if value is None:  # remove of the whole extension
                for field in ENTERPRISE_FIELDS.values():
                    setattr(self.obj, field, "")
            for name, part in self._object(value, ENTERPRISE_URN).items():
                self._assign_enterprise(name.lower(), None, part)
        elif (attribute, sub) == ("manager", None):
            self.obj.manager_id = self._manager_id(value)
        elif (attribute, sub) in ENTERPRISE_FIELDS:
            self._set_field(ENTERPRISE_FIELDS[(attribute, sub)], value, attribute)
        else:
            raise exceptions.NotImplementedError(f'PATCH of "{ENTERPRISE_URN}:{attribute}" is not implemented')

    def _set_field(self, field: str, value: Any, where: str) -> None:
        text = _text(value, where)
        if field == "username":
            if not text:
                raise exceptions.BadRequestError('"userName" can not be empty', scim_type="invalidValue")
            self.obj.scim_username = text
        setattr(self.obj, field, text)

    @staticmethod
    def _object(value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise exceptions.BadRequestError(f'"{where}" should be an object', scim_type="invalidValue")
        return value

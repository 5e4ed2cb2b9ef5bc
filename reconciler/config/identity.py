"""What a configuration's target is, readable and free of secrets: for saved plans, messages and reports."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from reconciler.config.model import Config


def public_url(url: str) -> str:
    """``url`` without any user:password part, for a file that must hold no secret."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_identity(config: Config) -> dict[str, str]:
    """What the fingerprint stands for, readable, for messages."""
    return {
        "okta_org_url": public_url(config.okta.org_url),
        "okta_app_id": config.okta.app_id,
        "scim_base_url": public_url(config.scim.base_url),
    }

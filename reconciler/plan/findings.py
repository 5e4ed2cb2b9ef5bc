"""Findings a person may acknowledge (a conflict, an unmanaged user), and what makes one the same finding.

Pure. An acknowledgement holds for the finding as it was reviewed: its digest covers the kind, both
sides' ids, the userName and the reason (which names the other users of a conflict), so a finding that
changes is a new finding and is shown again, as midPoint shows a changed situation again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from reconciler.models.records import Action, ActionKind

ACKNOWLEDGEABLE: Final = (ActionKind.CONFLICT, ActionKind.UNMANAGED)
"""What can be acknowledged: what the plan only reports, for a person to settle."""


def finding_digest(kind: str, user_name: str, okta_user_id: str | None, scim_id: str | None, reason: str) -> str:
    subject = [kind, user_name, okta_user_id, scim_id, reason]
    return hashlib.sha256(json.dumps(subject, ensure_ascii=False).encode()).hexdigest()


def action_digest(action: Action) -> str:
    return finding_digest(action.kind.value, action.user_name, action.okta_user_id, action.scim_id, action.reason)


def names(action_ids: tuple[str, str | None, str | None], wanted: str) -> bool:
    """Whether ``wanted`` is the finding's userName (any case), its Okta user id or its SCIM id."""
    user_name, okta_user_id, scim_id = action_ids
    return wanted.casefold() == user_name.casefold() or wanted in (okta_user_id, scim_id)

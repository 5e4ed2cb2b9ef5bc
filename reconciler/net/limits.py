"""What an answer may weigh: the response cap both sides' clients enforce, and the chunk they read by."""

from __future__ import annotations

from typing import Final

MIB: Final = 1024 * 1024


DEFAULT_MAX_RESPONSE_MB: Final = 64


DEFAULT_MAX_RESPONSE_BYTES: Final = DEFAULT_MAX_RESPONSE_MB * MIB
"""A 1000-user SCIM page or a 500-user Okta page with ``expand=user`` is a few MB: 64 MiB leaves room
for fat profiles, and still bounds what a hostile or broken server can make the reconciler hold."""


READ_CHUNK_BYTES: Final = 64 * 1024

"""The SCIM side (RFC 7643/7644): discovery, paged reads, and the writes that repair drift."""

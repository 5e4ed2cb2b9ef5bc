"""Test doubles, outside the product path: the Okta emulator, a local SCIM server, the demo scenario.

Product code never imports this package; ``reconcile demo`` does, at its own entry point."""

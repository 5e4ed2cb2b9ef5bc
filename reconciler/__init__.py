"""okta-reconciler: keeps a SCIM 2.0 user store in line with an Okta app's assignments."""

__version__ = "0.1.0"

"""Saved plans: a dry-run's plan written, signed, read back and applied to live state."""

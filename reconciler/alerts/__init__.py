"""Alerts: which conditions a finished run raises, the message that tells them, and sending it through apprise."""

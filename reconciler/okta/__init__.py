"""The Okta side: the Management API read through the official SDK, paced under its rate limits."""

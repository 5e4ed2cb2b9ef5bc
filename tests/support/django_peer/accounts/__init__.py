"""The platform's user store: a custom user model as a security-awareness platform keeps it."""

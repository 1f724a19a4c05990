"""Errors that the CLI reports as one line (no traceback)."""


class ArgyroError(Exception):
    """A user-facing error: the message names the file/field and what was expected."""


class ConfigError(ArgyroError):
    """A configuration file or value is missing, unreadable or invalid."""


class DatabaseError(ArgyroError):
    """The database cannot be reached, started or stopped."""

"""Errors that the CLI reports as one line (no traceback)."""


class ArgyroError(Exception):
    """A user-facing error: the message names the file/field and what was expected."""


class ConfigError(ArgyroError):
    """A configuration file or value is missing, unreadable or invalid."""


class DatabaseError(ArgyroError):
    """The database cannot be reached, started or stopped."""


def yaml_problem(exc: Exception) -> str:
    """' at line L, column C (problem)' of a YAML parser error, for one-line messages naming the place."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where} ({getattr(exc, 'problem', None) or str(exc).splitlines()[0]})"

"""Reading a user's text file (a study config, a site profile, a structure) without ever echoing binary content.

A file handed to a command by mistake (an image, a tarball, a model) gets a one-line error,
``FILE: not a text file (binary content at byte N)``, never its bytes in a message or a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

#: control characters a text file never holds (tab, newline, vertical tab, form feed, carriage return are text)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
#: how much of a file :func:`binary_offset_of_file` inspects
PROBE_BYTES = 1 << 20


def binary_offset(data: bytes, partial: bool = False) -> int | None:
    """The offset of the first byte that cannot be in a UTF-8 text file (NUL, another control character, or an
    invalid UTF-8 sequence), None if there is none. ``partial``: ``data`` is the start of a longer file, so a UTF-8
    sequence cut by its end is not binary."""
    m = _CONTROL.search(data)
    first = m.start() if m else None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut = partial and exc.reason == "unexpected end of data" and exc.start >= len(data) - 3
        if not cut and (first is None or exc.start < first):
            first = exc.start
    return first


def binary_offset_of_file(path: str | os.PathLike, limit: int = PROBE_BYTES) -> int | None:
    """:func:`binary_offset` of the file's first ``limit`` bytes (None if the file cannot be read)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
        return binary_offset(data[:limit], partial=len(data) > limit)
    except OSError:
        return None


def not_text(path: str | os.PathLike, offset: int) -> str:
    return f"{path}: not a text file (binary content at byte {offset})"


def read_text(path: str | os.PathLike, what: str, error=ConfigError) -> str:
    """The text of a user's file; ``error`` (one line naming ``what`` and the file) if it cannot be read or is
    not UTF-8 text."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise error(f"{what} {p}: is a directory, expected a file") from None
    except OSError as exc:
        raise error(f"{what} {p}: cannot be read ({exc.strerror})") from None
    off = binary_offset(data)
    if off is not None:
        raise error(f"{what} {not_text(p, off)}")
    return data.decode("utf-8")

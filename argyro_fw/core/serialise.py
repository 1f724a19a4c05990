"""One way to turn results into plain data, to read structures back, and to write files atomically.

- :func:`to_plain`: JSON/BSON-safe plain data (numpy -> lists and floats, NaN -> None).
- :func:`as_structure`: a pymatgen Structure from a Structure or its ``as_dict()`` (FireWorks turns
  serialised pymatgen dicts in task parameters back into objects; both are accepted).
- :func:`atomic_path`: a context manager yielding a temporary path that replaces the target only
  when the block succeeds (no half-written file on disk, whatever the writer: HDF5, extxyz, text).
"""

from __future__ import annotations

import contextlib
import math
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from pymatgen.core import Structure


def to_plain(x: Any) -> Any:
    """Plain, JSON/BSON-safe data: dicts, lists, str, int, float (NaN/inf -> None), bool, None.

    numpy arrays and scalars become lists/numbers; datetimes are kept (BSON has them); objects with
    ``as_dict`` (pymatgen) are expanded; anything else becomes its ``str``."""

    if isinstance(x, dict):
        return {str(k): to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [to_plain(v) for v in x]
    if x is None or isinstance(x, (bool, str, datetime)):
        return x
    if isinstance(x, int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "tolist"):  # numpy arrays and scalars
        return to_plain(x.tolist())
    if hasattr(x, "as_dict"):
        return to_plain(x.as_dict())
    if isinstance(x, Path):
        return str(x)
    return str(x)


def as_structure(x):
    """A pymatgen Structure from a Structure or its ``as_dict()``."""
    return x if isinstance(x, Structure) else Structure.from_dict(x)


def write_atomic(path: str | Path, text: str, mode: int | None = None) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (no half-written file)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        if mode is not None:
            tmp.chmod(mode)
    return Path(path)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield ``.NAME.tmp`` beside ``path``; on success it replaces ``path``, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

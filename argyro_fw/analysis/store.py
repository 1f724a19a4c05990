"""Summary documents of analyses in MongoDB (collection ``analyses``), written in one insert."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__


def _clean(x):
    """NaN -> None, numpy scalars -> float, recursively (BSON has no NaN semantics we want)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    if isinstance(x, bool):
        return x
    return None if math.isnan(f) else f if not isinstance(x, int) else x


def store_summary(db, summary: dict, h5_path: str | Path, trajectory: str | Path, interface: str | None = None,
                  temperature_K: float | None = None, extra: dict | None = None):
    """Upsert the summary keyed by the HDF5 path; returns the document id."""
    doc = {
        "h5_path": str(Path(h5_path).resolve()),
        "trajectory": str(Path(trajectory).resolve()),
        "interface": interface,
        "temperature_K": temperature_K,
        "results": _clean(summary),
        "argyro_version": __version__,
        "created_at": datetime.now(timezone.utc),
        **(extra or {}),
    }
    db.analyses.replace_one({"h5_path": doc["h5_path"]}, doc, upsert=True)
    return db.analyses.find_one({"h5_path": doc["h5_path"]}, {"_id": 1})["_id"]

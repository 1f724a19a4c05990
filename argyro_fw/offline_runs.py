"""The state of a FireWorks offline launch from the files in its folder (a leaf module: :mod:`argyro_fw.recovery`,
loaded while FireWorks itself is imported, and :mod:`argyro_fw.queue.reconcile` use it; see :mod:`argyro_fw.collect`)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path


def offline_launch_state(lp, launch: dict):
    """For an offline launch (FireWorks' offline_runs): (ended, last ping from its folder's FW_ping.json), else None.
    A file being rewritten reads as "not ended, no ping": the ping in the database decides then."""
    if not lp.offline_runs.count_documents({"launch_id": launch["launch_id"], "deprecated": False}):
        return None
    d = Path(launch.get("launch_dir") or ".")
    ended, ping = False, None
    try:
        ended = "completed_on" in json.loads((d / "FW_offline.json").read_text())
    except (OSError, ValueError):
        pass
    try:
        t = datetime.datetime.fromisoformat(json.loads((d / "FW_ping.json").read_text())["ping_time"])
        ping = t if t.tzinfo else t.replace(tzinfo=datetime.UTC)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return ended, ping

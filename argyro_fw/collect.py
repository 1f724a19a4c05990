"""Fireworks run on compute nodes with no route to the database (FireWorks' offline mode), login-node side.

:func:`stage_launch` runs at reservation (``qlaunch -r``, from :class:`argyro_fw.queue.adapter.ArgyroQueueAdapter`):
it stages what the firework will read into its launch directory. :func:`collect` (``argyro collect``) brings the
offline launches back: the journal of every launch that ended is replayed into the results store, then FireWorks'
``recover_offline`` completes the launch with its FWAction (children become READY, additions and detours are
added); a launch still running gets its pings and RUNNING state. See :mod:`argyro_fw.store.offline`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fireworks import Firework

from . import store
from .errors import ArgyroError, ConfigError
from .settings import DBSettings
from .store.offline import FW_OFFLINE, STAGED, loads

#: the results-database settings (no password) a staged launch records, for its collect
RESULTS_DB_KEYS = ("host", "port", "name", "username", "authsource", "password_env", "tls_ca_file")


def results_db_settings(d: dict, where: str) -> DBSettings:
    """DBSettings from a plain dict of :data:`RESULTS_DB_KEYS` (a queue adapter's ``results_db``, a staged header)."""
    if not isinstance(d, dict) or not d.get("host") or not d.get("port") or not d.get("name"):
        raise ConfigError(f"{where}: expected the results database as a mapping with host, port and name "
                          f"(argyro init --compute-nodes offline writes it), got {d!r}")
    unknown = sorted(set(d) - set(RESULTS_DB_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {list(RESULTS_DB_KEYS)}")
    kw = {k: d[k] for k in RESULTS_DB_KEYS if d.get(k) is not None}
    kw["port"] = int(kw["port"])
    return DBSettings(**kw, source=where)


def stage_launch(launch_dir: str | os.PathLike, results_db: dict) -> Path:
    """Stage the reads of the firework FireWorks reserved into ``launch_dir`` (its FW.json and FW_offline.json)."""
    d = Path(launch_dir).resolve()
    try:
        launch_id = int(json.loads((d / FW_OFFLINE).read_text())["launch_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise ArgyroError(f"{d / FW_OFFLINE}: no launch id of a reserved offline launch ({exc})") from None
    fw = Firework.from_file(str(d / "FW.json"))
    settings = results_db_settings(results_db, "queue adapter results_db")
    # the results database goes with the launch, so that `argyro collect` replays into the same one
    return store.stage(store.database(settings=settings), d, fw, launch_id,
                       header={"results_db": {k: getattr(settings, k) for k in RESULTS_DB_KEYS}})


@dataclass
class CollectReport:
    completed: list[int] = field(default_factory=list)  # fw_ids whose launch ended and was ingested
    running: list[int] = field(default_factory=list)  # fw_ids still running (pings updated)
    waiting: list[int] = field(default_factory=list)  # fw_ids reserved, not started yet
    failed: list[tuple[int, str]] = field(default_factory=list)  # (fw_id, why): left for the next collect
    replayed_ops: int = 0


def _offline_state(launch_dir: Path) -> dict | None:
    """FW_offline.json of a launch, or None while it cannot be read (the offline Rocket rewrites it in place)."""
    try:
        return json.loads((launch_dir / FW_OFFLINE).read_text())
    except (OSError, ValueError):
        return None


def _results_db(launch_dir: Path, lp):
    """The results store a launch's journal goes to: the one it was staged from, else the launchpad's database."""
    try:
        head = loads((launch_dir / STAGED).read_text())["header"]
    except (OSError, ValueError, KeyError):
        return lp.db
    rdb = head.get("results_db")
    return store.database(settings=results_db_settings(rdb, f"{launch_dir / STAGED}")) if rdb else lp.db


def collect(lp) -> CollectReport:
    """Ingest every offline launch of ``lp`` (module docstring). A launch whose files cannot be read now (being
    written) or whose replay fails is left for the next collect, never FIZZLED by it."""
    rep = CollectReport()
    for run in lp.offline_runs.find({"completed": False, "deprecated": False}, {"launch_id": 1, "fw_id": 1}):
        lid, fw_id = int(run["launch_id"]), int(run["fw_id"])
        launch = lp.launches.find_one({"launch_id": lid}, {"launch_dir": 1})
        if launch is None:
            continue
        d = Path(launch["launch_dir"])
        state = _offline_state(d)
        if state is None:
            rep.failed.append((fw_id, f"{d / FW_OFFLINE} cannot be read now"))
            continue
        if "fwaction" in state:
            try:
                rep.replayed_ops += store.replay(_results_db(d, lp), d, lid)
            except (ArgyroError, ValueError, OSError) as exc:
                rep.failed.append((fw_id, f"replay of {d}: {exc}"))
                continue
        elif "started_on" not in state:
            rep.waiting.append(fw_id)
            continue
        if lp.recover_offline(lid, ignore_errors=True, print_errors=True):
            rep.failed.append((fw_id, "FireWorks' recover_offline failed (see the log)"))
        elif "fwaction" in state:
            rep.completed.append(fw_id)
        else:
            rep.running.append(fw_id)
    return rep

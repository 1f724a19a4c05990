"""Fireworks run on compute nodes with no route to the database (FireWorks' offline mode), login-node side.

:func:`stage_launch` runs at reservation (``qlaunch -r``, from :class:`argyro_fw.queue.adapter.ArgyroQueueAdapter`):
it stages what the firework will read into its launch directory. :func:`collect` (``argyro collect``) brings the
offline launches back: the journal of every launch that ended is replayed into the results store, then FireWorks'
``recover_offline`` completes the launch with its FWAction (children become READY, additions and detours are
added); a launch still running gets its pings and RUNNING state. See :mod:`argyro_fw.store.offline`.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import fireworks.core.launchpad as fw_launchpad
from fireworks import Firework
from monty.json import MontyDecoder
from pymongo.errors import DuplicateKeyError, PyMongoError

from . import store
from .errors import ArgyroError, ConfigError
from .settings import DBSettings
from .store.offline import FW_OFFLINE, STAGED, journal_path, loads

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
    return store.settings_from_dict(d, where)


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
    busy: str | None = None  # another collect held the lock (its owner): nothing was done


#: argyro's lock document for one collect at a time (in the launchpad's database; not a results collection)
LOCK_COLLECTION = "argyro_collect_lock"
LOCK_TTL_S = 900.0


def _lock(lp, owner: str) -> str | None:
    """Take the collect lock (None), or return the owner of the live lock another collect holds. A lock older than
    LOCK_TTL_S (a collect that died) is taken over; each launch renews it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        lp.db[LOCK_COLLECTION].find_one_and_update(
            {"_id": "collect", "$or": [{"until": {"$lt": now}}, {"owner": owner}]},
            {"$set": {"owner": owner, "until": now + datetime.timedelta(seconds=LOCK_TTL_S)}}, upsert=True)
        return None
    except DuplicateKeyError:
        doc = lp.db[LOCK_COLLECTION].find_one({"_id": "collect"}) or {}
        return str(doc.get("owner", "another collect"))


def _read_offline(launch_dir: Path) -> tuple[dict, dict] | None:
    """FW_offline.json of a launch as (plain JSON, what FireWorks' loadfn makes of it), or None while it cannot be
    read (the offline Rocket rewrites it in place)."""
    try:
        text = (launch_dir / FW_OFFLINE).read_text()
        return json.loads(text), json.loads(text, cls=MontyDecoder)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _pinned(launch_dir: Path, data: dict):
    """FireWorks' recover_offline reads FW_offline.json itself: make it read ``data``, the snapshot collect judged
    (and replayed) by, so that a launch that ends in between is never completed before its journal is replayed."""
    original = fw_launchpad.loadfn
    target = (launch_dir / FW_OFFLINE).resolve()

    def loadfn(fn, *args, **kwargs):
        if Path(fn).resolve() == target:
            return copy.deepcopy(data)
        return original(fn, *args, **kwargs)

    fw_launchpad.loadfn = loadfn
    try:
        yield
    finally:
        fw_launchpad.loadfn = original


def _replay(lp, launch_dir: Path, launch_id: int) -> int:
    """Replay a launch's journal into the results store it was staged from (a launch with no journal wrote nothing)."""
    if not journal_path(launch_dir, launch_id).exists():
        return 0
    try:
        head = loads((launch_dir / STAGED).read_text())["header"]
    except (OSError, ValueError, KeyError) as exc:
        raise ArgyroError(f"{launch_dir / STAGED}: cannot be read ({exc}); its journal is left unreplayed") from None
    rdb = head.get("results_db")
    db = store.database(settings=results_db_settings(rdb, str(launch_dir / STAGED))) if rdb else lp.db
    return store.replay(db, launch_dir, launch_id)


def collect(lp) -> CollectReport:
    """Ingest every offline launch of ``lp`` (module docstring), one collect at a time. A launch whose files cannot
    be read now, or whose replay or FireWorks update fails, is left for the next collect, never FIZZLED by it."""
    rep = CollectReport()
    owner = f"{socket.gethostname()}:{os.getpid()}"
    rep.busy = _lock(lp, owner)
    if rep.busy:
        return rep
    try:
        for run in list(lp.offline_runs.find({"completed": False, "deprecated": False}, {"launch_id": 1, "fw_id": 1})):
            _lock(lp, owner)  # renewed for each launch
            lid, fw_id = int(run["launch_id"]), int(run["fw_id"])
            launch = lp.launches.find_one({"launch_id": lid}, {"launch_dir": 1})
            if launch is None:
                continue
            d = Path(launch["launch_dir"])
            snap = _read_offline(d)
            if snap is None:
                rep.failed.append((fw_id, f"{d / FW_OFFLINE} cannot be read now"))
                continue
            plain, decoded = snap
            ended = "fwaction" in plain
            if not ended and "started_on" not in plain:
                rep.waiting.append(fw_id)
                continue
            try:
                if ended:
                    rep.replayed_ops += _replay(lp, d, lid)
                with _pinned(d, decoded):
                    failed = lp.recover_offline(lid, ignore_errors=True, print_errors=True)
                if failed:
                    rep.failed.append((fw_id, "FireWorks' recover_offline failed (see the log)"))
                elif ended:
                    lp.offline_runs.update_one({"launch_id": lid}, {"$set": {"argyro_replayed": True}})
                    rep.completed.append(fw_id)
                else:
                    rep.running.append(fw_id)
            except (ArgyroError, ValueError, OSError, PyMongoError) as exc:
                rep.failed.append((fw_id, f"{d}: {type(exc).__name__}: {exc}"))
        # launches completed without their journal (FireWorks' own `lpad recover_offline`): replayed now
        for run in list(lp.offline_runs.find({"completed": True, "deprecated": False, "argyro_replayed": {"$ne": True}},
                                             {"launch_id": 1, "fw_id": 1})):
            launch = lp.launches.find_one({"launch_id": run["launch_id"]}, {"launch_dir": 1})
            if launch is None:
                continue
            try:
                rep.replayed_ops += _replay(lp, Path(launch["launch_dir"]), int(run["launch_id"]))
                lp.offline_runs.update_one({"_id": run["_id"]}, {"$set": {"argyro_replayed": True}})
            except (ArgyroError, ValueError, OSError, PyMongoError) as exc:
                rep.failed.append((int(run["fw_id"]), f"{launch['launch_dir']}: {type(exc).__name__}: {exc}"))
    finally:
        lp.db[LOCK_COLLECTION].delete_one({"_id": "collect", "owner": owner})
    return rep

"""Bring a LaunchPad back to a consistent state after a crash (worker or database killed), without ever
rerunning a run whose process may still be alive.

A RUNNING launch is *lost* (rerun, or fizzled with ``fizzle``) only when its process cannot be alive:

- its worker ran on this host (same hostname, boot and pid namespace) and the pid it recorded is gone
  (a pid reused by another process counts as gone; a dead process-group leader whose group still has
  members counts as alive: its children still work in the launch directory). A live pid is never
  recovered, however old its last ping;
- otherwise (another host, or no record) when it has not pinged for ``lost_after_s`` seconds, and never
  before two of the ping intervals its worker recorded. ``argyro init`` sets that interval
  (:class:`argyro_fw.settings.PingSettings`, FireWorks' PING_TIME_SECS in FW_config.yaml beside the
  launchpad files); the default ``lost_after_s`` is ``expiry_pings`` intervals;
- or, with a scheduler, when :func:`argyro_fw.queue.reconcile.reconcile` finds its job gone.

The worker side is :func:`patch_launchpad`, applied to FireWorks' LaunchPad in every process of argyro's
environment (through :func:`argyro_fw.fw_counters.patch_launchpad`: ``compat.install`` and the ``.pth`` hook
of FireWorks' own ``rlaunch``):

- loading a launchpad file applies the FW_config.yaml beside it (the ping interval for this process's
  rockets) and exports ``FW_CONFIG_FILE`` to child processes;
- a checked-out launch records its worker (host, boot id, pid namespace, pid, start time, process group,
  ping interval) as ``argyro_worker``, again at every ping;
- a late finish: when a launch that a rerun archived completes after all (its worker was only silent),
  FireWorks would store it without touching the firework, which stays READY (and runs again) or RUNNING.
  The finish is adopted instead: the firework becomes COMPLETED with that launch and its FWAction is
  applied once; a copy of the rerun still running finishes into a COMPLETED firework, which FireWorks does
  not apply twice. A late FIZZLED finish of an archived launch changes nothing.
- the launches this process has in flight are known (:func:`put_back`), for Ctrl-C (:mod:`argyro_fw.interrupt`).
- a database outage (the server restarted, a network cut) is waited out (:mod:`argyro_fw.db.outage`, at most
  ``$ARGYRO_DB_OUTAGE_S``, default 600 s, for each wait): a running firework's pings and the report of its end
  wait for the server and go on; a workflow refresh cut by the outage neither
  marks the firework FIZZLED nor keeps its workflow locked (FireWorks' handling of an internal error would);
  a rocket that dies with the connection anyway has its firework rerun by its own worker once the server is
  back (:func:`riding_out_outages`, around the demo's and ``argyro rlaunch``'s launchers).

:func:`recover` also clears stale workflow locks (a worker killed while it held one leaves ``locked: true``,
and FireWorks then waits ``WFLOCK_EXPIRATION_SECS`` on every later update of that workflow) and refreshes
workflows whose states are inconsistent (a parent COMPLETED whose children were never made READY).

FireWorks' modules are imported inside functions: :mod:`argyro_fw.fw_counters` loads this module while
FireWorks' launchpad module loads.
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pymongo.errors import ConnectionFailure, PyMongoError

from .db.outage import mark_worker, outage_limit_s, ride_out, wait_for_server
from .errors import ConfigError
from .offline_runs import offline_launch_state
from .queue.reconcile import stale_locks
from .settings import PingSettings

#: FireWorks' settings file that `argyro init` writes beside the launchpad files
FW_CONFIG_FILE = "FW_config.yaml"
#: the launch document's field holding the worker's identity
WORKER_KEY = "argyro_worker"


@dataclass
class RecoveryReport:
    unlocked_wf_ids: list[int] = field(default_factory=list)
    orphaned_fw_ids: list[int] = field(default_factory=list)
    lost_fw_ids: list[int] = field(default_factory=list)
    gone_job_fw_ids: list[int] = field(default_factory=list)
    alive_fw_ids: list[int] = field(default_factory=list)
    waiting_fw_ids: list[int] = field(default_factory=list)
    inconsistent_fw_ids: list[int] = field(default_factory=list)
    refreshed_fw_ids: list[int] = field(default_factory=list)


# -- who runs a launch --------------------------------------------------------------------------------------
def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state, 2 the pgid, 19 the start time)."""
    text = _read(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    return text.rsplit(")", 1)[1].split()


def host_identity() -> dict:
    """This host as a launch records it: hostname, boot id and pid namespace (pids compare only within one)."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = None
    return {"host": socket.gethostname(), "boot_id": _read("/proc/sys/kernel/random/boot_id"), "pidns": pidns}


def worker_record() -> dict:
    """This process as the worker of a launch."""
    from fireworks.core import rocket  # here: this module loads while FireWorks' launchpad module does (.pth)

    st = _stat(os.getpid()) or []
    return dict(host_identity(), pid=os.getpid(), pgid=os.getpgrp(), start=st[19] if len(st) > 19 else None,
                ping_s=float(rocket.PING_TIME_SECS),
                job_id=os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or None)


def _group_alive(pgid: int) -> bool:
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st and st[0] != "Z" and st[2] == str(pgid):
                return True
    return False


def liveness(rec: dict | None) -> str:
    """'alive' or 'dead' for a worker recorded on this host, else 'unknown' (another host, or no record)."""
    if not rec or not rec.get("pid") or {k: rec.get(k) for k in ("host", "boot_id", "pidns")} != host_identity():
        return "unknown"
    st = _stat(int(rec["pid"]))
    if st and st[0] != "Z" and (rec.get("start") is None or st[19] == rec["start"]):
        return "alive"
    if rec.get("pgid") == rec["pid"] and _group_alive(int(rec["pgid"])):
        return "alive"  # the worker led its process group and the firework's children still run
    return "dead"


def _last_ping(launch: dict) -> datetime.datetime | None:
    times = []
    for h in launch.get("state_history", []):
        if h.get("state") == "RUNNING":
            for key in ("updated_on", "created_on"):
                t = h.get(key)
                if isinstance(t, str):
                    t = datetime.datetime.fromisoformat(t)
                if isinstance(t, datetime.datetime):
                    times.append(t if t.tzinfo else t.replace(tzinfo=datetime.UTC))
    return max(times) if times else None


# -- the ping interval ----------------------------------------------------------------------------------------
def _fw_config(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def apply_fw_config(path: str | os.PathLike) -> None:
    """Use the ping interval of FW_config.yaml ``path`` in this process's rockets, and export FW_CONFIG_FILE."""
    path = Path(path)
    cfg = _fw_config(path) if path.is_file() else {}
    if "PING_TIME_SECS" not in cfg:
        return
    from fireworks import fw_config  # here: this module loads while FireWorks' launchpad module does (.pth)
    from fireworks.core import rocket  # (the same)

    for key in ("PING_TIME_SECS", "RUN_EXPIRATION_SECS"):
        if key in cfg:
            setattr(fw_config, key, cfg[key])
    rocket.PING_TIME_SECS = cfg["PING_TIME_SECS"]  # the ping thread reads it at every wait
    os.environ.setdefault("FW_CONFIG_FILE", str(path.resolve()))


def configured_ping(launchpad_file: str | os.PathLike | None) -> tuple[float, str]:
    """(ping interval, where it comes from) for the workers of ``launchpad_file``: FW_config.yaml beside it,
    else the interval FireWorks uses in this environment (3600 s unless a FW_config.yaml says otherwise)."""
    if launchpad_file is not None:
        f = Path(launchpad_file).expanduser().parent / FW_CONFIG_FILE
        cfg = _fw_config(f) if f.is_file() else {}
        if isinstance(cfg.get("PING_TIME_SECS"), (int, float)) and cfg["PING_TIME_SECS"] > 0:
            return float(cfg["PING_TIME_SECS"]), str(f)
    from fireworks import fw_config  # here: this module loads while FireWorks' launchpad module does (.pth)

    return float(fw_config.PING_TIME_SECS), "FireWorks' PING_TIME_SECS (no FW_config.yaml beside the launchpad)"


def default_lost_after(ping_s: float) -> float:
    return PingSettings().expiry_pings * ping_s


def check_lost_after(lost_after_s: float, ping_s: float, source: str) -> None:
    """Refuse an expiry under ``min_pings`` ping intervals: a live worker between two pings would look lost."""
    n = PingSettings().min_pings
    if lost_after_s < n * ping_s:
        raise ConfigError(f"--lost-after {lost_after_s:g}: shorter than {n} ping intervals ({ping_s:g} s each, from "
                          f"{source}), so a live run could be rerun; use at least {n * ping_s:g}")


# -- the worker side --------------------------------------------------------------------------------------------
_inflight: dict[int, tuple[object, int]] = {}  # launch_id -> (launchpad, fw_id) of the rockets of this process
_torn_checkouts: list[str] = []  # launch dirs of this process's checkouts cut by a lost database connection
_checkout_lock = threading.Lock()
_stopping = threading.Event()
_reporting = threading.local()


def _park() -> None:
    """Block this thread for good: the process is being stopped (:mod:`argyro_fw.interrupt` exits it)."""
    threading.Event().wait()


def patch_launchpad(cls) -> None:
    """Apply the worker side (module docstring) to FireWorks' LaunchPad class ``cls`` (idempotent)."""
    if getattr(cls, "_argyro_recovery", False):
        return
    checkout, complete, ping, from_file = cls.checkout_fw, cls.complete_launch, cls.ping_launch, cls.from_file.__func__
    refresh = cls._refresh_wf

    def checkout_fw(self, fworker, launch_dir, fw_id=None, host=None, ip=None, state="RUNNING"):
        m_fw = launch_id = None
        with _checkout_lock:
            stopping = _stopping.is_set()
            if not stopping:
                mark_worker()
                # a checkout is several writes (the first claims the firework): one cut by a lost connection may have
                # claimed it, so it is not repeated here; riding_out_outages reruns what it claimed
                try:
                    m_fw, launch_id = checkout(self, fworker, launch_dir, fw_id, host, ip, state)
                except ConnectionFailure:
                    _torn_checkouts.append(str(launch_dir))
                    raise
                if m_fw is not None and state == "RUNNING":
                    _inflight[launch_id] = (self, m_fw.fw_id)
                    ride_out(lambda: self.launches.update_one({"launch_id": launch_id},
                                                              {"$set": {WORKER_KEY: worker_record()}}),
                             self.connection, "a worker's record")
        if stopping:
            _park()
        return m_fw, launch_id

    def ping_launch(self, launch_id, ptime=None, checkpoint=None):
        def once():
            ping(self, launch_id, ptime, checkpoint)
            if launch_id in _inflight:  # FireWorks rewrites the launch on some updates: record the worker again
                self.launches.update_one({"launch_id": launch_id, "state": "RUNNING"},
                                         {"$set": {WORKER_KEY: worker_record()}})

        ride_out(once, self.connection, "a running firework's ping")  # the ping thread waits out an outage

    def complete_launch(self, launch_id, action=None, state="COMPLETED"):
        if _stopping.is_set() and launch_id in _inflight and not getattr(_reporting, "on", False):
            _park()  # interrupted: the firework is put back to READY, never reported
        fw = ride_out(lambda: self.fireworks.find_one({"archived_launches": launch_id, "launches": {"$ne": launch_id}},
                                                      {"fw_id": 1, "state": 1}), self.connection, "a launch's end")
        # the work is done: its end is reported once the server is back. (A report cut inside FireWorks' workflow
        # update is repeated as a whole: a state already written is written again; an FWAction's new fireworks
        # written before the cut would be added again. Not seen in the chaos test; see README.)
        out = ride_out(lambda: complete(self, launch_id, action, state), self.connection, "a launch's end")
        _inflight.pop(launch_id, None)
        if fw is not None and state == "COMPLETED" and fw["state"] in ("READY", "RESERVED", "RUNNING", "FIZZLED"):
            # a late finish of a launch that a rerun archived: adopt it rather than run the firework again
            done = self.fireworks.update_one({"fw_id": fw["fw_id"], "archived_launches": launch_id},
                                             {"$pull": {"archived_launches": launch_id}, "$push": {"launches": launch_id}})
            if done.modified_count:
                self.m_logger.warning(f"launch {launch_id} of firework {fw['fw_id']} finished after a rerun "
                                      f"({fw['state']}): its result is kept, the firework is COMPLETED")
                self._refresh_wf(fw["fw_id"])
        return out

    def _refresh_wf(self, fw_id):
        """FireWorks' refresh, except that a lost database connection is raised as it is: FireWorks would mark
        the firework and its workflow FIZZLED (its handling of an internal error) and keep the workflow locked.
        The lock taken here is released once the server answers again; the caller rides the outage out."""
        from fireworks.core.launchpad import LockedWorkflowError, WFLock  # here: this module loads inside FireWorks'

        lock = WFLock(self, fw_id)
        try:
            lock.__enter__()
        except LockedWorkflowError:
            self.m_logger.info(f"{fw_id=} locked. Can't refresh!")
            return None
        try:
            wf = self.get_wf_by_fw_id_lzyfw(fw_id)
            self._update_wf(wf, wf.refresh(fw_id))
        except ConnectionFailure:
            ride_out(lambda: lock.__exit__(None, None, None), self.connection, "a workflow's lock")
            raise
        except Exception:  # FireWorks' own handling of an internal error (FIZZLED, RuntimeError)
            lock.__exit__(None, None, None)
            return refresh(self, fw_id)
        lock.__exit__(None, None, None)
        return None

    def load(kls, filename, *args, **kwargs):
        apply_fw_config(Path(filename).expanduser().parent / FW_CONFIG_FILE)
        return from_file(kls, filename, *args, **kwargs)

    cls.checkout_fw, cls.ping_launch, cls.complete_launch = checkout_fw, ping_launch, complete_launch
    cls._refresh_wf = _refresh_wf
    cls.from_file = classmethod(load)
    cls._argyro_recovery = True


def stop_taking() -> None:
    """No new firework is checked out, and no firework in flight reported, by this process from now on."""
    _stopping.set()


def put_back(message: str) -> tuple[list[int], list[int]]:
    """Rerun every firework this process has in flight to READY (its launch FIZZLED with ``message``), after
    :func:`stop_taking`. Returns (fw_ids put back, fw_ids that could not be: left RUNNING)."""
    from fireworks.core.firework import FWAction  # here: this module loads while FireWorks' launchpad does (.pth)

    if not _checkout_lock.acquire(timeout=5):  # a checkout in progress finishes and registers first
        return [], sorted(fw for _, fw in _inflight.values())
    try:
        items = list(_inflight.items())
    finally:
        _checkout_lock.release()
    done, failed = [], []
    _reporting.on = True
    for launch_id, (lp, fw_id) in items:
        try:
            if lp.fireworks.find_one({"fw_id": fw_id, "launches": launch_id, "state": "RUNNING"}, {"fw_id": 1}):
                lp.rerun_fw(fw_id)  # archives the launch: the firework is READY again (its children WAITING)
                lp.complete_launch(launch_id, FWAction(stored_data={"_message": message}), "FIZZLED")
                done.append(fw_id)
        except (PyMongoError, RuntimeError, ValueError):  # no database: `argyro recover` reruns it (dead pid)
            failed.append(fw_id)
    return sorted(done), sorted(failed)


def rerun_own_launches(lp) -> list[int]:
    """Rerun the fireworks of this process's rockets that died with the database connection: those it had in
    flight (their launches are still RUNNING, and nothing of this process runs them any more) and those a checkout
    cut in the middle claimed (a launch in that checkout's folder). :func:`recover` (which never touches a live
    worker's run) goes first, for the workflow lock a cut update may have left (a rerun would wait for it) and for
    a claim cut before its launch existed. Returns the fw_ids rerun."""
    active = {"$in": ["RUNNING", "RESERVED"]}
    # no run is lost by its silence here (lost_after_s inf): after a long outage other hosts' live runs have not
    # pinged for a while, and only `argyro recover` with its expiry may judge them
    rep = recover(lp, lost_after_s=math.inf, observe_s=1.0)
    rerun = set(rep.orphaned_fw_ids) | set(rep.lost_fw_ids)
    for launch_id, (_, fw_id) in list(_inflight.items()):
        if lp.fireworks.find_one({"fw_id": fw_id, "launches": launch_id, "state": active}, {"fw_id": 1}):
            lp.rerun_fw(fw_id)
            rerun.add(fw_id)
        _inflight.pop(launch_id, None)  # only once it is rerun: a second cut keeps it for the next try
    for launch_dir in list(_torn_checkouts):
        for launch in lp.launches.find({"launch_dir": launch_dir, "state": active}, {"launch_id": 1, "fw_id": 1}):
            if lp.fireworks.find_one({"fw_id": launch["fw_id"], "launches": launch["launch_id"], "state": active},
                                     {"fw_id": 1}):
                lp.rerun_fw(launch["fw_id"])
                rerun.add(launch["fw_id"])
        _torn_checkouts.remove(launch_dir)
    return sorted(rerun)


def riding_out_outages(launch):
    """FireWorks' ``rapidfire`` or ``launch_rocket`` (launchpad first), made to wait out a database outage: when
    the connection is lost and the server answers again within :func:`~argyro_fw.db.outage.outage_limit_s`, the
    fireworks of this process's rockets that died with it are rerun (:func:`rerun_own_launches`) and the launcher
    goes on (in the folder it was started in); past the limit the error is raised. The limit holds for each outage
    (a worker runs for days); a launcher that loses the connection again within seconds of each restart, five times
    in a row while the server answers, gives up."""
    @functools.wraps(launch)
    def wrapper(launchpad, *args, **kwargs):
        home = os.getcwd()  # rapidfire works in launcher folders: a restart starts where the worker was started
        quick_failures = 0
        while True:
            started = time.monotonic()
            try:
                return launch(launchpad, *args, **kwargs)
            except ConnectionFailure:
                quick_failures = quick_failures + 1 if time.monotonic() - started < 5.0 else 0
                if quick_failures >= 5 or not wait_for_server(launchpad.connection, outage_limit_s(), "the worker"):
                    raise
                os.chdir(home)
                rerun = ride_out(lambda: rerun_own_launches(launchpad), launchpad.connection, "the worker")
                launchpad.m_logger.warning(f"argyro: the database came back; fireworks {rerun} of this worker's rockets "
                                           "that died with the connection are rerun, and the worker goes on")

    return wrapper


def inflight_fw_ids() -> list[int]:
    # list() copies in one step under the GIL: the rocket's thread may change the dict meanwhile
    return sorted(fw for _, fw in list(_inflight.values()))


# -- recover ----------------------------------------------------------------------------------------------------
def orphaned_fireworks(lp) -> set[int]:
    """RESERVED/RUNNING fireworks with no RESERVED/RUNNING launch document.

    A worker killed between checking a firework out (state set) and inserting its launch leaves
    one: no ping will ever come, so ``detect_lostruns`` (which starts from launches) misses it.
    """
    active = {d["fw_id"] for d in lp.launches.find({"state": {"$in": ["RESERVED", "RUNNING"]}}, {"fw_id": 1})}
    held = {d["fw_id"] for d in lp.fireworks.find({"state": {"$in": ["RESERVED", "RUNNING"]}}, {"fw_id": 1})}
    return held - active


def lost_launches(lp, ping_s: float, lost_after_s: float, rep: RecoveryReport | None = None) -> list[int]:
    """Launch ids of the RUNNING launches whose process cannot be alive (module docstring)."""
    min_pings = PingSettings().min_pings
    now = datetime.datetime.now(datetime.UTC)
    lost = []
    fields = {"launch_id": 1, "fw_id": 1, "state_history": 1, "launch_dir": 1, WORKER_KEY: 1}
    for launch in lp.launches.find({"state": "RUNNING"}, fields):
        rec = launch.get(WORKER_KEY)
        verdict = liveness(rec)
        if verdict == "alive":
            if rep is not None:
                rep.alive_fw_ids.append(launch["fw_id"])
            continue
        if verdict == "unknown":
            expiry = max(lost_after_s, min_pings * float(rec["ping_s"])) if rec and rec.get("ping_s") else lost_after_s
            last = _last_ping(launch)
            offline = offline_launch_state(lp, launch)
            if offline is not None:  # an offline launch pings into its folder; one that ended waits for `argyro collect`
                ended, ping = offline
                if ended:
                    if rep is not None:
                        rep.waiting_fw_ids.append(launch["fw_id"])
                    continue
                last = max(t for t in (last, ping) if t is not None) if (last or ping) else None
            if last is not None and (now - last).total_seconds() <= expiry:
                if rep is not None:
                    rep.waiting_fw_ids.append(launch["fw_id"])
                continue
        lost.append(launch["launch_id"])
    return lost


def recover(lp, ping_s: float | None = None, lost_after_s: float | None = None, fizzle: bool = False,
            observe_s: float = 2.0, scheduler: str | None = None) -> RecoveryReport:
    """Unlock stale workflow locks, rerun (or fizzle) runs whose process cannot be alive (module docstring)
    and refresh workflows with inconsistent states. ``ping_s`` is the workers' ping interval (default:
    :class:`~argyro_fw.settings.PingSettings`), ``lost_after_s`` the silence after which a run elsewhere is
    lost (default ``expiry_pings`` intervals). Returns what was done."""
    ping_s = PingSettings().interval_s if ping_s is None else ping_s
    lost_after_s = default_lost_after(ping_s) if lost_after_s is None else lost_after_s
    rep = RecoveryReport()
    if scheduler:
        from .queue.reconcile import reconcile  # only with a scheduler

        gone = reconcile(lp, scheduler, fizzle=fizzle)
        rep.gone_job_fw_ids = sorted(gone.fizzled if fizzle else gone.rerun)
    orphans_before = orphaned_fireworks(lp)
    for fw_id in stale_locks(lp, observe_s):
        lp.workflows.update_one({"nodes": fw_id}, {"$unset": {"locked": True}})
        rep.unlocked_wf_ids.append(fw_id)
    lost_ids = lost_launches(lp, ping_s, lost_after_s, rep)
    _, lost, inconsistent = lp.detect_lostruns(
        expiration_secs=0, fizzle=fizzle, rerun=not fizzle, refresh=True, launch_query={"launch_id": {"$in": lost_ids}}
    )
    rep.lost_fw_ids = sorted(lost)
    if orphans_before:
        time.sleep(observe_s)
    for fw_id in sorted(orphans_before & orphaned_fireworks(lp)):
        if fizzle:
            lp.fireworks.update_one({"fw_id": fw_id}, {"$set": {"state": "FIZZLED"}})
            lp._refresh_wf(fw_id)
        else:
            lp.rerun_fw(fw_id)
        rep.orphaned_fw_ids.append(fw_id)
    rep.inconsistent_fw_ids = sorted(inconsistent)
    # A kill between the firework update and the workflow update leaves the workflow document's
    # fw_states cache stale (a parent COMPLETED in `fireworks`, RUNNING in the cache), and the
    # children WAITING forever. Sync the cache, then refresh each WAITING firework whose parents
    # are all done: FireWorks recomputes its state from its parents.
    done = {"COMPLETED", "FIZZLED", "ARCHIVED", "DEFUSED"}
    for wf in lp.workflows.find({"state": {"$nin": sorted(done)}}, {"nodes": 1, "fw_states": 1, "links": 1}):
        actual = {str(d["fw_id"]): d["state"] for d in lp.fireworks.find({"fw_id": {"$in": wf["nodes"]}}, {"fw_id": 1, "state": 1})}
        stale = {k: v for k, v in actual.items() if wf.get("fw_states", {}).get(k) != v}
        if stale:
            lp.workflows.update_one({"_id": wf["_id"]}, {"$set": {f"fw_states.{k}": v for k, v in stale.items()}})
        parents: dict[str, list[str]] = {}
        for parent, children in wf.get("links", {}).items():
            for c in children:
                parents.setdefault(str(c), []).append(parent)
        for k, state in actual.items():
            if state == "WAITING" and all(actual.get(p) == "COMPLETED" for p in parents.get(k, [])):
                lp._refresh_wf(int(k))
                rep.refreshed_fw_ids.append(int(k))
    return rep

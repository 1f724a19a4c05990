"""Reconcile the LaunchPad with the scheduler: RESERVED and RUNNING fireworks whose job is gone
(cancelled, failed, timed out, finished without reporting) are rerun or fizzled now, instead of
after FireWorks' 4 h ping expiry.

An offline launch (compute nodes with no route to the database) whose job ended is left for ``argyro collect``;
one whose job died is rerun and forgotten as an offline run. A launch is tied to its job by the reservation id (reserved mode, ``qlaunch -r``) or by the
``.argyro_job_id`` file the job script writes into the launch directory (both modes).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ArgyroError
from ..offline_runs import offline_launch_state

#: a workflow lock held this long, once a job is found gone, is its dead job's: live updates hold one for milliseconds
LOCK_OBSERVE_S = 10.0
ALIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "STAGE_OUT",
         "SIGNALING", "Q", "R", "H", "E", "B", "W", "S"}


class SchedulerUnavailable(ArgyroError):
    """The scheduler did not answer: no job is judged gone (a live job is never rerun because squeue failed)."""


def slurm_job_state(job_id: str) -> str | None:
    """The Slurm state of a job (None when the scheduler no longer knows it; an error when it does not answer)."""
    out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True)
    if out.returncode == 0 and out.stdout.strip():
        return out.stdout.strip().split()[0]
    out = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True)
    if out.returncode == 0:
        for tok in out.stdout.split():
            if tok.startswith("JobState="):
                return tok.split("=", 1)[1]
        return None
    if "invalid job id" in out.stderr.lower():
        return None
    raise SchedulerUnavailable(f"scontrol show job {job_id}: {out.stderr.strip() or f'exit {out.returncode}'}; "
                               "no job is judged gone while Slurm does not answer")


def pbs_job_state(job_id: str) -> str | None:
    out = subprocess.run(["qstat", "-f", str(job_id)], capture_output=True, text=True)
    if out.returncode != 0:
        if "unknown job id" in out.stderr.lower() or "job has finished" in out.stderr.lower():
            return None
        raise SchedulerUnavailable(f"qstat -f {job_id}: {out.stderr.strip() or f'exit {out.returncode}'}; no job is "
                                   "judged gone while PBS does not answer")
    for ln in out.stdout.splitlines():
        if "job_state" in ln:
            return ln.split("=")[1].strip()
    return None


def stale_locks(lp, observe_s: float = 2.0) -> list[int]:
    """Workflow ids (first node) locked now and still locked ``observe_s`` seconds later.

    Live workers hold a lock for milliseconds; a lock that persists was left by a dead process.
    """
    def locked():
        return {d["_id"]: d["nodes"][0] for d in lp.workflows.find({"locked": True}, {"nodes": 1})}

    first = locked()
    if not first:
        return []
    time.sleep(observe_s)
    second = locked()
    return sorted(first[k] for k in first.keys() & second.keys())


@dataclass
class ReconcileReport:
    checked: list[tuple[int, str, str | None]] = field(default_factory=list)  # (fw_id, job id, state)
    rerun: list[int] = field(default_factory=list)
    fizzled: list[int] = field(default_factory=list)


def _job_id(launch: dict) -> str | None:
    """The scheduler job of a launch, the exact records first: the job its worker runs in (``$SLURM_JOB_ID`` /
    ``$PBS_JOBID``, recorded with the worker when the launch starts; a firework with ``_launch_dir`` runs outside the
    job's folder), for a launch still RESERVED its reservation id, else the job script's ``.argyro_job_id`` in the
    launch directory (which an earlier job of the same ``_launch_dir`` may have left), else a reservation id of the
    launch's history."""
    worker_job = (launch.get("argyro_worker") or {}).get("job_id")
    if worker_job:
        return str(worker_job)
    if launch.get("state") == "RESERVED" and launch.get("reservation_id"):
        return str(launch["reservation_id"])
    f = Path(launch.get("launch_dir") or "") / ".argyro_job_id"
    if f.is_file() and f.read_text().strip():
        return f.read_text().strip()
    rid = launch.get("reservation_id") or next(
        (h["reservation_id"] for h in launch.get("state_history", []) if h.get("reservation_id")), None)
    return str(rid) if rid else None


def reconcile(lp, scheduler: str = "slurm", fizzle: bool = False, state_fn=None) -> ReconcileReport:
    """Check every RESERVED/RUNNING launch against the scheduler and act on those whose job is gone."""
    state_fn = state_fn or {"slurm": slurm_job_state, "pbs": pbs_job_state}[scheduler]
    rep = ReconcileReport()
    unlocked = False
    for launch in lp.launches.find({"state": {"$in": ["RESERVED", "RUNNING"]}}):
        jid = _job_id(launch)
        if not jid:
            continue
        st = state_fn(jid)
        rep.checked.append((launch["fw_id"], jid, st))
        if st is not None and st.upper() in ALIVE:
            continue
        fw_id = launch["fw_id"]
        if not unlocked:  # a job killed inside a workflow update left its lock: FireWorks would wait 5 min for it
            for first in stale_locks(lp, LOCK_OBSERVE_S):
                lp.workflows.update_one({"nodes": first}, {"$unset": {"locked": True}})
            unlocked = True
        offline = offline_launch_state(lp, launch)
        if offline is not None:
            if offline[0]:  # an offline job that ended: its results wait in its folder for `argyro collect`
                continue
            lp.forget_offline(launch["launch_id"])  # a later collect must not bring this launch back
        if launch["state"] == "RESERVED":
            lp.cancel_reservation(launch["launch_id"])
            if fizzle:
                lp.mark_fizzled(launch["launch_id"])
        elif fizzle:
            lp.mark_fizzled(launch["launch_id"])
        else:
            lp.rerun_fw(fw_id)
        (rep.fizzled if fizzle else rep.rerun).append(fw_id)
    return rep

"""Bring a LaunchPad back to a consistent state after a crash (worker or database killed).

A worker killed while it held a workflow lock leaves ``locked: true`` on the workflow document,
and FireWorks then waits ``WFLOCK_EXPIRATION_SECS`` (5 min) on every later update of that
workflow; a killed worker also leaves its firework RUNNING until FireWorks' ping expiry (4 h).
:func:`recover` clears stale locks, reruns (or fizzles) lost runs and refreshes workflows whose
states are inconsistent (e.g. a parent COMPLETED whose children were never made READY).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RecoveryReport:
    unlocked_wf_ids: list[int] = field(default_factory=list)
    orphaned_fw_ids: list[int] = field(default_factory=list)
    lost_fw_ids: list[int] = field(default_factory=list)
    inconsistent_fw_ids: list[int] = field(default_factory=list)
    refreshed_fw_ids: list[int] = field(default_factory=list)


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


def orphaned_fireworks(lp) -> set[int]:
    """RESERVED/RUNNING fireworks with no RESERVED/RUNNING launch document.

    A worker killed between checking a firework out (state set) and inserting its launch leaves
    one: no ping will ever come, so ``detect_lostruns`` (which starts from launches) misses it.
    """
    active = {d["fw_id"] for d in lp.launches.find({"state": {"$in": ["RESERVED", "RUNNING"]}}, {"fw_id": 1})}
    held = {d["fw_id"] for d in lp.fireworks.find({"state": {"$in": ["RESERVED", "RUNNING"]}}, {"fw_id": 1})}
    return held - active


def recover(lp, lost_after_s: float = 60.0, fizzle: bool = False, observe_s: float = 2.0) -> RecoveryReport:
    """Unlock stale workflow locks, rerun (or fizzle) runs silent for ``lost_after_s`` seconds,
    and refresh workflows with inconsistent states. Returns what was done."""
    rep = RecoveryReport()
    orphans_before = orphaned_fireworks(lp)
    for fw_id in stale_locks(lp, observe_s):
        lp.workflows.update_one({"nodes": fw_id}, {"$unset": {"locked": True}})
        rep.unlocked_wf_ids.append(fw_id)
    _, lost, inconsistent = lp.detect_lostruns(
        expiration_secs=lost_after_s, fizzle=fizzle, rerun=not fizzle, refresh=True
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

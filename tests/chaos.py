"""Chaos run of the demo study (issue 18, item 7): `argyro demo` with SIGKILLs at seeded random moments.

What is killed, and the documented recovery after each (README, "Running on a cluster"):

- ``worker``: the `argyro demo` process group (the rlaunch worker and its children) -> `argyro demo` again, which
  reruns what the killed worker left RUNNING (:func:`argyro_fw.recovery.recover`) and continues;
- ``md``: the same while a LAMMPS MD firework runs (the demo's LAMMPS runs inside the worker: ``fix external``)
  -> `argyro demo` again; the run continues from its newest restart file;
- ``database``: the embedded MongoDB server (SIGKILL to its pid) -> `argyro db start --path DIR/db` (the same port);
  the worker is left alone and must ride it out;
- ``training``: a study training's ``mace_run_train`` child (committee or final model: ``--restart_latest``; not the
  demo's toy foundation model), once it has written a checkpoint and before it has written its model -> the firework
  fails
  (FIZZLED); `argyro lpad rerun_fws -i ID` (and `argyro demo` again if the worker has run out of work); the rerun
  resumes from the newest checkpoint (``--restart_latest``).

Kill moments: each kind has a quota; a kill waits at least a seeded random 6-25 s after the previous recovery, then
takes the first kind (in a seeded order) whose moment has come (a training child with a checkpoint, an MD firework
RUNNING with a restart file, or any RUNNING firework for the worker and the database). The moments depend on the
machine's speed, the order and the waits on the seed.

Usage: python tests/chaos.py DIR [--seed N] [--budget-s S]   (prints the kill log and the counts; exit 0 when the
study completed)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
#: kills of each kind in one run: 9 in all (issue 18 asks for at least 8)
QUOTAS = {"worker": 2, "md": 1, "database": 4, "training": 2}
MD_STAGES = ("md", "bulk-md")


def _running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@dataclass
class Kill:
    t_s: float  # seconds after the start
    kind: str
    pid: int
    what: str  # the RUNNING fireworks' stages (or the training's folder) at the kill
    recovery: str = ""
    recovered_s: float = 0.0  # seconds the recovery took


@dataclass
class ChaosRun:
    d: Path
    seed: int = 1
    budget_s: float = 900.0
    env: dict = field(default_factory=lambda: dict(os.environ))
    kills: list[Kill] = field(default_factory=list)
    worker_starts: int = 0
    reruns: list[int] = field(default_factory=list)  # fw_ids rerun after they failed (a training kill)
    failures: list[str] = field(default_factory=list)  # why each of them failed
    traces: dict = field(default_factory=dict)  # fw_id -> the end of its stack trace
    worker_failures: list[str] = field(default_factory=list)  # workers that ended with an error, unkilled
    killed_trainings: list[str] = field(default_factory=list)  # their folders
    #: before each worker kill: {fw_id: launches} of the COMPLETED fireworks (none may run again)
    completed_before_kills: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.d = Path(self.d).resolve()
        self.rng = random.Random(self.seed)
        self.order = [k for k, n in QUOTAS.items() for _ in range(n)]
        self.rng.shuffle(self.order)
        self.t0 = time.monotonic()
        self.worker: subprocess.Popen | None = None
        self.last_out = ""
        self._db = None

    # --------------------------------------------------------------------------------------------- parts
    def now(self) -> float:
        return time.monotonic() - self.t0

    def log(self, text: str) -> None:
        print(f"[chaos {self.now():6.1f} s] {text}", flush=True)

    def start_worker(self) -> None:
        self.worker_starts += 1
        out = open(self.d.parent / f"{self.d.name}-worker-{self.worker_starts}.log", "w")
        self.worker = subprocess.Popen([str(BIN / "argyro"), "demo", "--dir", str(self.d)], env=self.env,
                                       stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._worker_log = out.name
        out.close()

    def db(self):
        """The demo's database (pymongo; a fresh client after each database restart)."""
        if self._db is None:
            import pymongo

            from argyro_fw.settings import embedded_settings

            if not (self.d / "db" / "admin.password").is_file():
                return None
            kw = embedded_settings(self.d / "db", name="argyro_demo").client_kwargs(timeout_ms=2000)
            self._db = pymongo.MongoClient(**kw).argyro_demo
        return self._db

    def _query(self, fn, default):
        import pymongo.errors

        try:
            db = self.db()
            return default if db is None else fn(db)
        except pymongo.errors.PyMongoError:
            self._db = None
            return default

    def running(self) -> list[dict]:
        return self._query(lambda db: list(db.fireworks.find({"state": "RUNNING"}, {"fw_id": 1, "spec": 1})), [])

    def server_pid(self) -> int | None:
        try:
            return int((self.d / "db" / "secantusd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def training_child(self) -> tuple[int, Path] | None:
        """A mace_run_train process of the worker's session that has written a checkpoint: (pid, its folder)."""
        if self.worker is None or self.worker.poll() is not None:
            return None
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
                if (not any(c.endswith(b"mace_run_train") for c in cmd[:2]) or b"--restart_latest" not in cmd
                        or os.getsid(int(proc.name)) != self.worker.pid):
                    continue  # (the study's trainings resume: committee and final; the demo's toy foundation does not)
                cwd = Path(os.readlink(proc / "cwd"))
            except (OSError, ProcessLookupError):
                continue
            name = next((c[len(b"--name="):].decode() for c in cmd if c.startswith(b"--name=")), None)
            # mid-way: a checkpoint written, the model not yet (a kill after it would leave nothing to resume)
            if any((cwd / "checkpoints").glob("*.pt")) and name and not (cwd / f"{name}.model").exists():
                return int(proc.name), cwd
        return None

    def md_running(self) -> dict | None:
        """A RUNNING MD firework whose run folder holds a restart file (so its continuation can be checked)."""
        for fw in self.running():
            if fw["spec"].get("argyro_stage") in MD_STAGES:
                run_dir = next((t.get("run_dir") for t in fw["spec"].get("_tasks", []) if t.get("run_dir")), None)
                if run_dir and any(Path(run_dir).glob("restart.[0-9]*")):
                    return fw
        return None

    # --------------------------------------------------------------------------------------------- kills
    def _kill_worker(self, kind: str, what: str) -> None:
        pid = self.worker.pid
        self.completed_before_kills.append(self._query(lambda db: {
            f["fw_id"]: f["launches"] for f in db.fireworks.find({"state": "COMPLETED"}, {"fw_id": 1, "launches": 1})}, {}))
        os.killpg(pid, signal.SIGKILL)
        self.worker.wait()
        k = Kill(self.now(), kind, pid, what, "argyro demo (reruns the fireworks the killed worker left RUNNING)")
        self.start_worker()
        k.recovered_s = round(self.now() - k.t_s, 1)
        self.kills.append(k)

    def _kill_database(self, what: str) -> None:
        pid = self.server_pid()
        if pid is None:
            raise RuntimeError(f"no pid file of the database in {self.d / 'db'}")
        os.kill(pid, signal.SIGKILL)
        while _running(pid):
            time.sleep(0.05)
        k = Kill(self.now(), "database", pid, what, "argyro db start --path DIR/db")
        p = subprocess.run([str(BIN / "argyro"), "db", "start", "--path", str(self.d / "db")], env=self.env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"argyro db start after the kill failed: {p.stdout}{p.stderr}")
        self._db = None
        k.recovered_s = round(self.now() - k.t_s, 1)
        self.kills.append(k)

    def _kill_training(self, pid: int, folder: Path) -> None:
        os.kill(pid, signal.SIGKILL)
        self.killed_trainings.append(str(folder))
        self.kills.append(Kill(self.now(), "training", pid, str(folder),
                               "argyro lpad rerun_fws -i ID once it is FIZZLED"))

    def failed(self) -> list[tuple[int, str]]:
        """FIZZLED fireworks whose last launch failed with an exception: (fw_id, the exception's last line). (A lost
        run that `argyro demo` reruns is FIZZLED for a moment too, without one: that is the recovery at work.)"""
        def query(db):
            out = []
            for fw in db.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1, "launches": 1}):
                launch = db.launches.find_one({"launch_id": fw["launches"][-1]}) if fw.get("launches") else None
                exc = ((launch or {}).get("action") or {}).get("stored_data", {}).get("_exception")
                if exc:
                    lines = str(exc.get("_stacktrace", "")).splitlines()
                    why = [ln for ln in lines if re.match(r"[A-Za-z_.]*(Error|Exception|Interrupt): ", ln)]
                    out.append((fw["fw_id"], (why or lines or ["?"])[-1][:300]))
                    self.traces[fw["fw_id"]] = "\n".join(lines[-60:])
            return out

        return self._query(query, [])

    def rerun_fizzled(self) -> list[int]:
        """`argyro lpad rerun_fws -i ID` for every firework that failed (only killed trainings should)."""
        hits = self.failed()
        for fw_id, why in hits:
            subprocess.run([str(BIN / "argyro"), "lpad", "-l", str(self.d / "launchpad" / "my_launchpad.yaml"),
                            "rerun_fws", "-i", str(fw_id)], env=self.env, capture_output=True, text=True, check=True)
            self.reruns.append(fw_id)
            self.failures.append(why)
            self.log(f"rerun FIZZLED firework {fw_id} (argyro lpad rerun_fws -i {fw_id}): {why}")
        return [fw_id for fw_id, _ in hits]

    def due(self) -> tuple[str, object] | None:
        """The first kind in the seeded order whose moment has come, with its target."""
        left = {k: QUOTAS[k] - sum(x.kind == k for x in self.kills) for k in QUOTAS}
        for kind in dict.fromkeys(self.order):
            if left[kind] <= 0:
                continue
            if kind == "training" and (t := self.training_child()):
                return kind, t
            if kind == "md" and (fw := self.md_running()):
                return kind, fw
            if kind in ("worker", "database") and (r := self.running()):
                return kind, r
        return None

    # --------------------------------------------------------------------------------------------- the run
    def run(self) -> bool:
        """Run the study to the end with the kills; True when every firework COMPLETED."""
        self.start_worker()
        next_at = self.now() + self.rng.uniform(6, 25)
        while self.now() < self.budget_s:
            rc = self.worker.poll()
            if rc is not None:
                self.last_out = Path(self._worker_log).read_text()
                fizzled = self.rerun_fizzled()
                states = self._query(lambda db: [f["state"] for f in db.fireworks.find({}, {"state": 1})], [])
                if rc == 0 and states and all(s == "COMPLETED" for s in states):
                    self.log(f"study complete: {len(states)} fireworks COMPLETED")
                    return True
                if rc != 0 and "Traceback" in self.last_out:  # (a worker that ran out of work, its trainings
                    self.worker_failures.append(f"exit {rc}: {self.last_out[-1500:]}")  # killed, ends with 1)
                self.log(f"worker ended (exit {rc}), {len(fizzled)} rerun: starting it again")
                self.start_worker()
                continue
            self.rerun_fizzled()
            if self.now() >= next_at and (hit := self.due()):
                kind, target = hit
                if kind == "training":
                    self._kill_training(*target)
                elif kind == "md":
                    self._kill_worker("md", f"md firework {target['fw_id']} ({target['spec'].get('_launch_dir', '')})")
                elif kind == "worker":
                    self._kill_worker("worker", ",".join(f"{f['fw_id']}:{f['spec'].get('argyro_stage')}" for f in target))
                else:
                    self._kill_database(",".join(f"{f['fw_id']}:{f['spec'].get('argyro_stage')}" for f in target))
                k = self.kills[-1]
                self.log(f"kill {len(self.kills)}: {k.kind} (pid {k.pid}) during {k.what}; recovery: {k.recovery}")
                next_at = self.now() + self.rng.uniform(6, 25)
            time.sleep(0.2)
        if self.worker.poll() is None:
            os.killpg(self.worker.pid, signal.SIGKILL)
        return False

    def report(self) -> dict:
        counts = {k: sum(x.kind == k for x in self.kills) for k in QUOTAS}
        return {"seed": self.seed, "wall_s": round(self.now(), 1), "kills": [asdict(k) for k in self.kills],
                "counts": counts, "worker_starts": self.worker_starts, "reruns": self.reruns, "failures": self.failures, "traces": self.traces,
                "worker_failures": self.worker_failures,
                "killed_trainings": self.killed_trainings}

    def print_report(self) -> None:
        rep = self.report()
        print(f"chaos run (seed {self.seed}): {len(self.kills)} kills in {rep['wall_s']} s: {rep['counts']}; "
              f"worker started {self.worker_starts} times; fireworks rerun after a training kill: {self.reruns}; "
              f"workers that failed unkilled: {len(self.worker_failures)}")
        for i, k in enumerate(self.kills, 1):
            print(f"  {i}. {k.t_s:6.1f} s  {k.kind:9s} pid {k.pid:<7d} during {k.what[:90]}  -> {k.recovery}"
                  f"{f' ({k.recovered_s} s)' if k.recovered_s else ''}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=900.0)
    args = ap.parse_args()
    run = ChaosRun(Path(args.dir), seed=args.seed, budget_s=args.budget_s)
    ok = run.run()
    run.print_report()
    Path(str(Path(args.dir).resolve()) + "-chaos.json").write_text(json.dumps(run.report(), indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

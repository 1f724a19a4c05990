"""The demo study with every firework run offline (issue 18, item 2b): compute nodes with no route to the database.

The login node (this process) does what a user does on a cluster whose nodes cannot reach the database, with the
files of ``argyro init --site slurm --compute-nodes offline``: for each job kind, FireWorks' own reserved-mode
``launch_rocket_to_queue`` (what ``qlaunch -r`` runs) reserves a firework, writes FW.json and FW_offline.json into
a fresh launch folder, and argyro's queue adapter stages the firework's reads there and submits its job script; then
``argyro collect``'s :func:`argyro_fw.collect.collect` replays the journal of every job that ended and completes its
firework. Only the scheduler is replaced: the adapter's ``scheduler: local`` runs the job script with bash instead
of sbatch, and each job's command is prefixed with ``unshare --net``: the job runs FireWorks' ``rlaunch singleshot
--offline`` in a network namespace of its own, with no interface up, so no task can reach the database (or anything
else). Where no network namespace can be made, the jobs' FireWorker points the results database at a refused port
instead.

The demo folder it leaves (DIR/db, the study ``demo`` in the database ``argyro_demo``) has the layout of
`argyro demo`'s, so tests/test_chaos.py uses it as its undisturbed run.

Usage: python tests/offline_run.py DIR [--jobs N] [--no-netns]   (exit 0 when every firework COMPLETED; the exit
status is also written to DIR/offline_run.rc. .ci/run runs it beside the rehearsal, one job at a time, and hands the
folder to the tests as $ARGYRO_OFFLINE_DEMO)
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def netns_available() -> bool:
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket is: a connection there is refused


def _ended(pid: int) -> bool:
    """The job's process has exited (reaped here, or by subprocess' own clean-up of the adapter's Popen)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] != 0
    except ChildProcessError:
        try:
            return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return True


def run(d: Path, jobs: int = 2, netns: bool = True, budget_s: float = 1800.0) -> int:
    import warnings

    from fireworks.core.fworker import FWorker
    from fireworks.queue.queue_launcher import launch_rocket_to_queue

    from argyro_fw.collect import collect
    from argyro_fw.demo.run import DEMO_WF_NAME, demo_config, ensure_server, print_summary
    from argyro_fw.flows.stages import JOB_KINDS
    from argyro_fw.flows.study import initial_workflow
    from argyro_fw.launchpad import LAUNCHPAD_FILE, fworker_file, get_launchpad, init_files, qadapter_file
    from argyro_fw.queue.adapter import ArgyroQueueAdapter
    from argyro_fw.settings import embedded_settings

    warnings.filterwarnings("ignore", "cd is deprecated", FutureWarning)  # FireWorks' queue launcher's own
    d = d.resolve()
    d.mkdir(parents=True, exist_ok=True)
    port = ensure_server(d)
    print(f"[1/4] embedded database on 127.0.0.1:{port} (data in {d / 'db'})", flush=True)
    settings = embedded_settings(d / "db", name="argyro_demo")
    lpdir = d / "launchpad"
    init_files(settings, lpdir, site="slurm", worker_name="argyro-offline", argyro_cmd=str(BIN / "argyro"), offline=True)
    lp = get_launchpad(lpdir / LAUNCHPAD_FILE)
    lp.m_logger.setLevel(logging.WARNING)
    cfg = demo_config(d)
    if lp.workflows.count_documents({"name": DEMO_WF_NAME}) == 0:
        lp.reset("", require_password=False)
        wf = initial_workflow(cfg)
        wf.name = DEMO_WF_NAME
        lp.add_wf(wf)
    how = "in a network namespace of its own (unshare --net)" if netns else "with the database at a refused port"
    print(f"[2/4] offline launch files in {lpdir}; every job runs rlaunch singleshot --offline {how}", flush=True)

    kinds = {}
    for kind in JOB_KINDS:
        qa = yaml.safe_load((lpdir / qadapter_file(kind)).read_text())
        fw_file = lpdir / fworker_file(kind)
        if not netns:  # the job's worker names a results database nobody listens on
            fwd = yaml.safe_load(fw_file.read_text())
            fwd["env"]["argyro_db"]["port"] = _refused_port()
            fw_file = lpdir / f"refused.{fworker_file(kind)}"
            fw_file.write_text(yaml.safe_dump(fwd))
            qa["rocket_launch"] = qa["rocket_launch"].replace(str(lpdir / fworker_file(kind)), str(fw_file))
        else:
            qa["rocket_launch"] = "unshare --net " + qa["rocket_launch"]
        qa["scheduler"] = "local"  # bash instead of sbatch: the one stand-in here
        qa.pop("_fw_name")
        kinds[kind] = (FWorker.from_file(str(lpdir / fworker_file(kind))), qa)

    running: dict[int, str] = {}
    started, n_jobs, n_collects = time.monotonic(), 0, 0
    while True:
        for kind, (fworker, qa) in kinds.items():
            while len(running) < jobs:
                launcher = d / "runs" / kind
                launcher.mkdir(parents=True, exist_ok=True)
                pid = launch_rocket_to_queue(lp, fworker, ArgyroQueueAdapter(copy.deepcopy(qa)), str(launcher),
                                             reserve=True, strm_lvl="ERROR", create_launcher_dir=True)
                if not pid:
                    break
                running[int(pid)] = kind
                n_jobs += 1
        while running:
            done = [pid for pid in running if _ended(pid)]
            for pid in done:
                running.pop(pid)
            if done:
                break
            time.sleep(0.3)
        rep = collect(lp)
        n_collects += 1
        states = {s: lp.fireworks.count_documents({"state": s}) for s in ("COMPLETED", "FIZZLED")}
        total = lp.fireworks.count_documents({})
        print(f"  {time.monotonic() - started:6.0f} s  jobs {n_jobs}  collected {rep.completed} "
              f"({rep.replayed_ops} journalled operations)  COMPLETED {states['COMPLETED']}/{total}", flush=True)
        for fw_id, why in rep.failed:
            print(f"  firework {fw_id} left for the next collect: {why}", flush=True)
        if states["FIZZLED"]:
            for fw in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1, "name": 1, "launches": 1}):
                launch = lp.launches.find_one({"launch_id": fw["launches"][-1]})
                out = sorted(Path(launch["launch_dir"]).glob("*.out"))
                print(f"FIZZLED {fw['fw_id']} {fw['name']} in {launch['launch_dir']}:\n"
                      + (out[-1].read_text()[-3000:] if out else ""), flush=True)
            return 1
        if states["COMPLETED"] == total and not running:
            break
        if not running and not rep.completed and lp.fireworks.count_documents({"state": "READY"}) == 0:
            print("stuck: nothing running, nothing READY, not every firework COMPLETED", flush=True)
            return 1
        if time.monotonic() - started > budget_s:
            print(f"budget of {budget_s:.0f} s spent", flush=True)
            return 1
    print(f"[3/4] {n_jobs} offline jobs, {n_collects} collects, {time.monotonic() - started:.0f} s", flush=True)
    print("[4/4] results")
    return print_summary(lp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--jobs", type=int, default=2, help="jobs running at once (default 2)")
    ap.add_argument("--no-netns", action="store_true", help="refuse the database's port instead of a network namespace")
    ap.add_argument("--budget-s", type=float, default=1800.0)
    a = ap.parse_args(argv)
    netns = not a.no_netns and netns_available()
    rc = 1
    try:
        rc = run(a.dir, a.jobs, netns, a.budget_s)
    finally:  # for a later test that reuses the folder ($ARGYRO_OFFLINE_DEMO)
        (a.dir / "offline_run.rc").write_text(f"{rc}\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())

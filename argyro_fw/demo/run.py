"""`argyro demo`: the miniature study of configs/demo.yaml, end to end, on the embedded database.

Starts (or reuses) an embedded MongoDB under DIR/db, writes DIR/launchpad with `argyro init`,
adds the study's workflow (`argyro study`'s first stage; the rest is added at run time) and runs
it with rlaunch rapidfire in this process, then prints the study's tables from MongoDB and writes
the study report (DIR/report/report.html, `argyro report`).
Rerunning it resumes: COMPLETED fireworks are not run again.
Ctrl-C (:mod:`argyro_fw.interrupt`) stops it within seconds: the firework in flight goes back to READY, its
child processes are stopped, the resume command is printed; the embedded database keeps running (as after
a finished demo). A second Ctrl-C stops at once; the next start reruns what was left RUNNING.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from pathlib import Path

from fireworks.core.fworker import FWorker
from fireworks.core.rocket_launcher import rapidfire

from .. import store
from ..db.embedded import EmbeddedServer, port_in_use
from ..errors import ArgyroError, ConfigError, DatabaseError
from ..flows.study import initial_workflow
from ..interrupt import install_rockets
from ..launchpad import DEFAULT_LAUNCHPAD, DEFAULT_LAUNCHPAD_DIR, FWORKER_FILE, get_launchpad, init_files
from ..recovery import configured_ping, recover, riding_out_outages
from ..report import STATES, results_rows, results_table, stage_progress, study_tables, write_report
from ..results import study_names
from ..settings import embedded_settings
from ..study.config import load

DEMO_WF_NAME = "argyro-demo"


def _free_port(start: int = 27117) -> int:
    """The first free port from ``start`` (the demo keeps off 27017, the default MongoDB port)."""
    for port in range(start, start + 200):
        if not port_in_use("127.0.0.1", port):
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_server(directory: Path, host: str | None = None) -> int:
    """Start the demo's embedded server (authentication on; on ``host``, default 127.0.0.1) unless it already
    runs; returns its port."""
    server = EmbeddedServer(directory / "db", host=host)
    st = server.status()
    if st.running and server.ping(st.port):
        if host and st.host != host:
            raise DatabaseError(f"the embedded database of {directory} runs on {st.host}, not {host}: stop it first "
                                f"(argyro db stop --path {directory / 'db'})")
        return st.port
    return server.start(port=_free_port(), auth=True).port


DEMO_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def demo_config(directory: Path, config: str | Path | None = None):
    """The demo study's config (configs/demo.yaml), with its workdir inside the demo folder."""
    if config is None and not DEMO_CONFIG.is_file():
        raise ConfigError(f"{DEMO_CONFIG} not found (an installed package has no source tree): pass --config FILE")
    cfg = load(config or DEMO_CONFIG)
    cfg.workdir = str(Path(directory).resolve() / "study")
    return cfg


def run_demo(directory: str | Path = "demo-output", config: str | Path | None = None) -> int:
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    _take_demo_lock(d)
    try:
        return _run_demo(d, config, FWorker, riding_out_outages(rapidfire))  # waits out a database restart
    finally:
        (d / "demo.pid").unlink(missing_ok=True)


def _take_demo_lock(d: Path) -> None:
    """One demo per folder: DIR/demo.pid holds the running demo's pid (a stale one is taken over)."""

    lock = d / "demo.pid"
    if lock.exists():
        try:
            pid = int(lock.read_text().split()[0])
            os.kill(pid, 0)
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            if "argyro" in cmd and pid != os.getpid():
                raise ArgyroError(f"a demo is already running in {d} (pid {pid})")
        except (ValueError, IndexError, ProcessLookupError, FileNotFoundError, PermissionError):
            pass
    lock.write_text(f"{os.getpid()}\n")


def _run_demo(d: Path, config, FWorker, rapidfire) -> int:
    port = ensure_server(d)
    print(f"[1/4] embedded database on 127.0.0.1:{port} (data in {d / 'db'})")
    settings = embedded_settings(d / "db", name="argyro_demo")
    init_files(settings, d / DEFAULT_LAUNCHPAD_DIR, site="local", worker_name="argyro-demo")
    lp = get_launchpad(d / DEFAULT_LAUNCHPAD)

    lp.m_logger.setLevel(logging.WARNING)  # FireWorks' INFO lines go to the run log, not the terminal
    print(f"[2/4] launchpad files in {d / DEFAULT_LAUNCHPAD_DIR}")
    cfg = demo_config(d, config)
    if lp.workflows.count_documents({"name": DEMO_WF_NAME}) == 0:
        lp.reset("", require_password=False)
        wf = initial_workflow(cfg)
        wf.name = DEMO_WF_NAME
        lp.add_wf(wf)
        print(f"[3/4] added the demo study ({cfg.name!r}, configs/demo.yaml): {len(wf.fws)} fireworks now; every later "
              "stage is added at run time")
    else:
        # this process holds the folder's demo lock, so nothing else runs these fireworks: every RUNNING or
        # RESERVED one was left by an interrupted demo and is rerun now (a live worker's never: argyro_fw.recovery)
        rep = recover(lp, ping_s=configured_ping(d / DEFAULT_LAUNCHPAD)[0], lost_after_s=0.0, observe_s=1)
        print(f"[3/4] resuming workflow {DEMO_WF_NAME!r} (rerun after interruption: {rep.lost_fw_ids + rep.orphaned_fw_ids})")
    (d / "runs").mkdir(exist_ok=True)

    cwd = os.getcwd()
    log_path = d / "runs" / "rlaunch.log"
    n = lp.fireworks.count_documents({})
    print(f"      running the fireworks with rlaunch rapidfire; their output goes to {log_path} ...", flush=True)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    logging.basicConfig(filename=str(log_path), level=logging.INFO, force=True)
    from tqdm import tqdm

    # everything the fireworks print (FireWorks' log lines, CHGNet, LAMMPS, warnings) goes to the log file;
    # only the progress bar stays on the terminal
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    term = os.fdopen(os.dup(2), "w")
    log = open(log_path, "a")
    try:
        os.chdir(d / "runs")
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        with tqdm(total=n, unit="firework", desc="demo study", file=term) as bar:
            def progress(*_):
                bar.total = lp.fireworks.count_documents({})  # stages are added as the study runs
                bar.n = lp.fireworks.count_documents({"state": "COMPLETED"})
                bar.refresh()

            stop = threading.Event()

            def poll():
                while not stop.wait(1.0):
                    progress()

            t = threading.Thread(target=poll, daemon=True)
            t.start()
            # Ctrl-C: the firework in flight goes back to READY, the children stop, the hint goes to the terminal
            restore = install_rockets(lambda done, left: _interrupt_hint(d, config, done, left),
                                      lambda text: (term.write(text), term.flush()),
                                      cleanup=lambda: (d / "demo.pid").unlink(missing_ok=True))
            try:
                rapidfire(lp, FWorker.from_file(str(d / DEFAULT_LAUNCHPAD_DIR / FWORKER_FILE)), strm_lvl="ERROR")
            finally:
                restore()
                stop.set()
                progress()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        term.close()
        log.close()
        os.chdir(cwd)
    print("[4/4] results")
    rc = print_summary(lp)
    report = write_report(lp, d / "report", cfg.name if cfg.name in study_names(lp.db) else None)
    print(f"Study report (tables and figures, one HTML page): {report}")
    _stop_hint(d)
    return rc


def print_summary(lp) -> int:
    prog = stage_progress(lp)
    print(f"  {'stage':18s} " + " ".join(f"{st[:9]:>9s}" for st in STATES[:2] + ("READY", "WAITING", "FIZZLED")))
    for stage, counts in prog.items():
        print(f"  {stage:18s} " + " ".join(f"{counts.get(st, 0):9d}" for st in STATES[:2] + ("READY", "WAITING", "FIZZLED")))
    for r in store.read(lp.db, store.AL_ITERATIONS.name, sort="iteration"):
        u = r["uncertainty_eV_A"]
        rm = [v["force_rmse_meV_A"] for v in r["validation"].values()]
        print(f"  active learning {r['al_name']} iteration {r['iteration']}: dataset {r['dataset_size']} frames, "
              f"committee force uncertainty p95 {u['p95']:.3f} eV/A, force RMSE {min(rm):.0f}-{max(rm):.0f} meV/A, "
              f"{r.get('stopped', 'continued')}")
    print()
    print(study_tables(lp.db))
    print()
    print(results_table(results_rows(lp.db)))
    not_done = lp.fireworks.count_documents({"state": {"$ne": "COMPLETED"}})
    total = lp.fireworks.count_documents({})
    if not_done:
        print(f"  {not_done} of {total} fireworks not COMPLETED (argyro status -l ...)")
        return 1
    print(f"  all {total} fireworks COMPLETED (stages: {len(prog)})")
    return 0


def _interrupt_hint(d: Path, config, done: list[int], left: list[int]) -> str:
    """What a demo stopped by Ctrl-C prints (argyro_fw.interrupt)."""
    again = f"argyro demo --dir {d}" + (f" --config {config}" if config else "")
    out = ["", "demo interrupted (Ctrl-C); the fireworks' child processes were stopped"]
    if done:
        out.append(f"  fireworks {done}: put back to READY (not FIZZLED); they rerun on the next start")
    if left:
        out.append(f"  fireworks {left}: still RUNNING (the database did not answer); the next start reruns them")
    out += [f"  resume with: {again}  (COMPLETED fireworks are not run again)",
            f"  the demo database keeps running; stop it with: argyro db stop --path {d / 'db'}"]
    return "\n".join(out) + "\n"


def _stop_hint(d: Path) -> None:
    print(f"The demo database keeps running for queries (argyro results -l {d / DEFAULT_LAUNCHPAD}); "
          f"stop it with: argyro db stop --path {d / 'db'}  (or make clean-demo)")

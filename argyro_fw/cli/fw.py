"""``argyro init`` and the FireWorks pass-through commands ``argyro lpad|rlaunch|qlaunch``."""

from __future__ import annotations

import os
import sys

from .. import compat
from ..flows.stages import JOB_KINDS
from ..launchpad import (
    DEFAULT_LAUNCHPAD,
    DEFAULT_LAUNCHPAD_DIR,
    FWORKER_FILE,
    LAUNCHPAD_FILE,
    QADAPTER_FILE,
    SITES,
    fworker_file,
    get_launchpad,
    init_files,
    qadapter_file,
)
from ..settings import PingSettings, resolve

PASSTHROUGH = ("lpad", "rlaunch", "qlaunch")


def register(sub) -> None:
    p = sub.add_parser(
        "init",
        help=f"write {LAUNCHPAD_FILE}, {FWORKER_FILE} and {QADAPTER_FILE} (and one worker/adapter pair per job kind "
        "for a cluster) for the database in use",
        description=(
            "Render FireWorks' launchpad, worker and queue-adapter files from Jinja templates, pointing at "
            "the embedded database or at --uri/$ARGYRO_DB_URI. No password is written. For --site slurm|pbs "
            f"also one pair per job kind ({', '.join(JOB_KINDS)}): {fworker_file('KIND')} (category KIND) and "
            f"{qadapter_file('KIND')} (that kind's job from the profile's jobs: section); run one "
            "`argyro qlaunch` per kind. Every firework's spec carries its kind as _category."
        ),
    )
    p.add_argument("--site", choices=SITES, default="local", help="where fireworks run (default local)")
    p.add_argument("--dir", default=DEFAULT_LAUNCHPAD_DIR, metavar="DIR",
                   help=f"output folder (default ./{DEFAULT_LAUNCHPAD_DIR})")
    p.add_argument("--name", metavar="WORKER", help="FireWorker name (default argyro-SITE)")
    p.add_argument("--no-check", action="store_true", help="do not check that the database answers")
    p.add_argument("--profile", metavar="FILE", help="site profile YAML: queue-adapter keys shared by every job "
                   "(account, modules, env, container_runtime, container_image, container_binds ...), host_argyro, "
                   "potcar_dir, and jobs: {KIND: nodes, ntasks, cpus_per_task, gpus, walltime, partition, run_in "
                   "(host|container) ...} per job kind; see sites/ and argyro_fw/queue/profile.py")
    p.add_argument("--compute-nodes", choices=["reach", "offline"], default="reach",
                   help="reach: jobs connect to the database (it must listen on an address the nodes reach: argyro db "
                   "start --host ADDR); offline: the nodes have no route to it: `qlaunch -r` stages each firework's "
                   "reads into its launch folder, the job runs `rlaunch singleshot --offline`, and `argyro collect` "
                   "on this machine brings the results back (default reach)")
    p.add_argument("--argyro-cmd", default=None, help="how host jobs call argyro (default: the profile's host_argyro, "
                   "else argyro on the job's PATH); container jobs call the image's argyro")
    p.set_defaults(func=cmd_init)
    co = sub.add_parser(
        "collect",
        help="bring back fireworks run offline (argyro init --compute-nodes offline): store their results, complete "
        "them",
        description="For every offline launch (qlaunch -r with an --offline rocket_launch): a launch that ended has "
        "the results its tasks journalled in its launch folder (argyro_journal.jsonl) written into the results "
        "database, then FireWorks' recover_offline completes it with its FWAction, so its children become READY; a "
        "running launch gets its pings. A launch whose files cannot be read now is left for the next collect, "
        "never FIZZLED. Run it on the login node, e.g. in a loop beside `qlaunch -r rapidfire`.",
    )
    co.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    co.add_argument("--every", type=float, default=None, metavar="S",
                    help="keep collecting every S seconds (Ctrl-C stops it between two collects)")
    co.set_defaults(func=cmd_collect)
    rc = sub.add_parser(
        "reconcile",
        help="rerun (or fizzle) RESERVED/RUNNING fireworks whose scheduler job is gone",
        description="Compare RESERVED and RUNNING fireworks with the scheduler (squeue/scontrol, or qstat) and rerun "
        "those whose job no longer exists or ended (cancelled, failed, timed out), or fizzle them with --fizzle, "
        "without waiting for FireWorks' 4 h ping expiry.",
    )
    rc.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    rc.add_argument("--scheduler", choices=["slurm", "pbs"], default="slurm")
    rc.add_argument("--fizzle", action="store_true", help="mark them FIZZLED instead of READY")
    rc.set_defaults(func=cmd_reconcile)
    r = sub.add_parser(
        "recover",
        help="after a crash: clear stale workflow locks, rerun lost runs, refresh inconsistent workflows",
        description=(
            "Bring the LaunchPad back to a consistent state after a worker or the database was killed: "
            "workflow locks held for longer than --observe seconds are cleared, RUNNING fireworks whose process "
            "cannot be alive are rerun (or fizzled with --fizzle), and workflows are refreshed. A run is lost when "
            "its worker ran on this host and its pid is gone (a live pid is never rerun), or, elsewhere, when it "
            f"has not pinged for --lost-after seconds (default {PingSettings().expiry_pings} ping intervals: "
            "PING_TIME_SECS of the FW_config.yaml "
            "that `argyro init` writes beside the launchpad file), or with --scheduler when its job is gone "
            "(`argyro reconcile`)."
        ),
    )
    r.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE", help="launchpad file")
    r.add_argument("--lost-after", type=float, default=None, metavar="S",
                   help=f"seconds without a ping that make a run on another host lost (default "
                   f"{PingSettings().expiry_pings} ping intervals; less than {PingSettings().min_pings} is refused)")
    r.add_argument("--scheduler", choices=["slurm", "pbs"], help="also rerun the runs whose scheduler job is gone")
    r.add_argument("--observe", type=float, default=2.0, metavar="S", help="a lock held this long is stale (default 2)")
    r.add_argument("--fizzle", action="store_true", help="mark lost runs FIZZLED instead of rerunning them")
    r.set_defaults(func=cmd_recover)
    dm = sub.add_parser(
        "demo",
        help="run the demo study end to end on an embedded database (what `make demo` runs)",
        description="Start an embedded MongoDB in DIR/db, write DIR/launchpad, add the miniature study of "
        "configs/demo.yaml, run it with rlaunch rapidfire (progress bar; the fireworks' output goes to "
        "DIR/runs/rlaunch.log) and print the study's tables from MongoDB. Rerunning resumes: fireworks an "
        "interrupted demo left RUNNING are rerun, COMPLETED ones are not. Ctrl-C stops it within seconds, puts "
        "the firework in flight back to READY and prints how to resume; the database keeps running.",
    )
    dm.add_argument("--dir", default="demo-output", metavar="DIR", help="output folder (default demo-output)")
    dm.add_argument("--config", dest="study_config", metavar="FILE",
                    help="study config (default configs/demo.yaml of the source tree); its workdir becomes DIR/study")
    dm.set_defaults(func=cmd_demo)
    st = sub.add_parser("status", help="fireworks of the study by stage and state")
    st.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    rs = sub.add_parser("results", help="the results tables from MongoDB: per study (surfaces, interfaces, bulk D, "
                        "sigma, Ea) and one row per MD analysis (SEI, crystallinity, composition, flux)")
    rs.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    rs.add_argument("--study", metavar="NAME", help="only this study's tables (default: every study)")
    rs.add_argument("--json", nargs="?", const="-", metavar="DIR",
                    help="JSON instead of text: on stdout, or with DIR one file per table (DIR/terminations.json, ...)")
    rs.add_argument("--csv", metavar="DIR", help="write one CSV per table into DIR (studies, terminations, interfaces, "
                    "al_iterations, validation, analyses, diffusion; the pandas DataFrames of argyro_fw.results)")
    rs.set_defaults(func=cmd_results)
    rp = sub.add_parser("report", help="write the study report: one self-contained HTML page with the paper's tables "
                        "and figures from MongoDB and HDF5",
                        description="Write DIR/report.html: bulk choice and chemical potentials, the termination "
                        "table (Table 2) with a gamma_surf chart, interfaces (Tables 3 and 4), active learning per "
                        "interface, the MD time series and flux, bulk D and sigma with the Arrhenius plot; the study's "
                        "published values beside ours. Works for a finished or a running study (pending and FIZZLED "
                        "fireworks are shown). Figures are embedded; the page needs no network and no JavaScript.")
    rp.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    rp.add_argument("--study", metavar="NAME", help="the study to report (default: the most recently updated)")
    rp.add_argument("-o", "--output", default="report", metavar="DIR", help="output folder (default ./report)")
    rp.set_defaults(func=cmd_report)
    hk = sub.add_parser(
        "install-hook",
        help="make FireWorks' own rlaunch/lpad/qlaunch in this environment use race-free id counters",
        description="Write argyro_fireworks_counters.pth into this environment's site-packages (or --site-dir), "
        "so that every Python process that imports FireWorks gets argyro's race-free fw_id/launch_id "
        "counters (see argyro_fw/fw_counters.py). `make install` and the container build run it. Idempotent.",
    )
    hk.add_argument("--site-dir", metavar="DIR", help="site-packages folder (default: this Python's purelib)")
    hk.set_defaults(func=cmd_install_hook)
    for name in PASSTHROUGH:
        sub.add_parser(
            name,
            add_help=False,
            help=f"FireWorks' {name} with argyro's fixes (password from the environment, offline-mode zopen)",
        )


def cmd_install_hook(args) -> int:
    from ..fw_counters import install_pth

    print(install_pth(args.site_dir))
    return 0


def cmd_init(args) -> int:
    settings = resolve(args.uri, args.config)
    if settings.source.startswith("embedded"):
        from ..db.embedded import EmbeddedServer

        EmbeddedServer().check_identity(connect=not args.no_check)  # refuse a port another process holds
    profile = {}
    if args.profile:
        import yaml

        from ..errors import ConfigError, yaml_problem
        from ..textfile import read_text

        text = read_text(args.profile, "site profile")  # one line for an unreadable or binary file, never its bytes
        try:
            profile = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"site profile {args.profile}: not valid YAML{yaml_problem(exc)}") from None
        if not isinstance(profile, dict):
            raise ConfigError(f"site profile {args.profile}: expected a mapping of queue-adapter keys")
    if not args.no_check:
        get_launchpad(settings=settings)
    offline = args.compute_nodes == "offline"
    paths = init_files(settings, args.dir, site=args.site, worker_name=args.name, profile=profile,
                       argyro_cmd=args.argyro_cmd, offline=offline)
    for p in paths:
        print(p)
    if args.site != "local":
        lp = paths[0].parent
        print(f"# one qlaunch per job kind, e.g.\n# for k in {' '.join(JOB_KINDS)}; do argyro qlaunch -l {lp / LAUNCHPAD_FILE} "
              f"-w {lp}/{fworker_file('$k')} -q {lp}/{qadapter_file('$k')} -r rapidfire; done")
    if offline:
        print(f"# compute nodes offline: run `argyro collect -l {lp / LAUNCHPAD_FILE} --every 60` on this machine beside "
              "the qlaunch loops; it stores what each finished job wrote and completes its firework")
        return 0
    if args.site != "local":
        from ..db.embedded import is_loopback

        if is_loopback(settings.host):
            print(f"WARNING: the launchpad files point at the database on {settings.host}:{settings.port}, this "
                  f"machine's loopback: {args.site} jobs on other nodes cannot reach it. Start the embedded database "
                  "with `argyro db start --host ADDR` (an address the compute nodes reach; authentication on) and run "
                  "argyro init again, or use a MongoDB the nodes reach (--uri)", file=sys.stderr)
    return 0


def cmd_collect(args) -> int:
    import time

    from pymongo.errors import PyMongoError

    from ..collect import collect
    from ..errors import DatabaseError

    lp = get_launchpad(args.launchpad)
    while True:
        try:
            rep = collect(lp)
        except PyMongoError as exc:  # the database went away: say so, and go on with --every
            if args.every is None:
                raise DatabaseError(f"argyro collect: the database failed ({type(exc).__name__}: {exc})") from None
            print(f"argyro collect: the database failed ({type(exc).__name__}); trying again in {args.every:g} s",
                  file=sys.stderr, flush=True)
        else:
            if rep.busy:
                print(f"another argyro collect is running ({rep.busy}); nothing done", flush=True)
            else:
                print(f"collected (completed): {rep.completed}; running: {rep.running}; reserved, not started: "
                      f"{rep.waiting}; journalled operations stored: {rep.replayed_ops}", flush=True)
            for fw_id, why in rep.failed:
                print(f"  firework {fw_id} left for the next collect: {why}", file=sys.stderr)
            if args.every is None:
                return 1 if rep.failed else 0
        try:
            time.sleep(args.every)
        except KeyboardInterrupt:
            print("argyro collect: stopped (Ctrl-C); run it again to go on", file=sys.stderr)
            return 0


def cmd_status(args) -> int:
    import json

    from ..report import STATES, stage_progress

    prog = stage_progress(get_launchpad(args.launchpad))
    if args.json:
        print(json.dumps(prog, indent=1))
        return 0
    print(f"{'stage':14s} " + " ".join(f"{s[:9]:>9s}" for s in STATES))
    for stage, counts in prog.items():
        print(f"{stage:14s} " + " ".join(f"{counts.get(s, 0):9d}" for s in STATES))
    return 0


def cmd_results(args) -> int:
    import json

    from .. import results
    from ..report import results_rows, study_rows

    db = get_launchpad(args.launchpad).db
    rows = results_rows(db)
    if args.csv or (args.json and args.json != "-"):
        frames = results.tables(db, args.study)
        for p in results.write_tables(frames, args.csv, "csv") if args.csv else []:
            print(p)
        for p in results.write_tables(frames, args.json, "json") if args.json and args.json != "-" else []:
            print(p)
        return 0
    if args.json:
        tables = {k: json.loads(df.to_json(orient="records", default_handler=str))
                  for k, df in results.tables(db, args.study).items()}
        comparison = {k: json.loads(df.to_json(orient="records", default_handler=str))
                      for k, df in results.comparison(db, args.study).items()}
        print(json.dumps({"analyses": rows, "studies": study_rows(db), "tables": tables, "comparison": comparison},
                         indent=1, default=str))
        return 0
    print(results.comparison_text(db, args.study))  # every table: ours beside the study's value, with units
    return 0


def cmd_report(args) -> int:
    from ..report import write_report

    path = write_report(get_launchpad(args.launchpad), args.output, args.study)
    print(path)
    return 0


def cmd_demo(args) -> int:
    from ..demo.run import run_demo

    return run_demo(args.dir, args.study_config)


def cmd_reconcile(args) -> int:
    from ..queue.reconcile import reconcile

    lp = get_launchpad(args.launchpad)
    rep = reconcile(lp, args.scheduler, fizzle=args.fizzle)
    print(f"checked (fw_id, job, state): {rep.checked}; rerun: {rep.rerun}; fizzled: {rep.fizzled}")
    return 0


def cmd_recover(args) -> int:
    from ..recovery import check_lost_after, configured_ping, default_lost_after, recover

    lp = get_launchpad(args.launchpad)
    ping_s, source = configured_ping(args.launchpad)
    lost_after = default_lost_after(ping_s) if args.lost_after is None else args.lost_after
    check_lost_after(lost_after, ping_s, source)
    rep = recover(lp, ping_s=ping_s, lost_after_s=lost_after, fizzle=args.fizzle, observe_s=args.observe,
                  scheduler=args.scheduler)
    verb = "fizzled" if args.fizzle else "rerun"
    print(
        f"unlocked workflows: {rep.unlocked_wf_ids}; lost runs {verb}: {rep.lost_fw_ids}; "
        + (f"runs whose job is gone {verb}: {rep.gone_job_fw_ids}; " if args.scheduler else "")
        + f"orphaned reservations {verb}: {rep.orphaned_fw_ids}; inconsistent fixed: {rep.inconsistent_fw_ids}; "
        f"refreshed: {rep.refreshed_fw_ids}; left alone: {rep.alive_fw_ids} (worker alive on this host), "
        f"{rep.waiting_fw_ids} (pinged within {lost_after:g} s; ping every {ping_s:g} s)"
    )
    return 0


def passthrough(command: str, argv: list[str]) -> int:
    """Run FireWorks' own ``command`` entry point in this process, with :mod:`argyro_fw.compat`."""
    import sys

    compat.install()
    restore = None
    if command == "lpad":
        from fireworks.scripts.lpad_run import lpad as entry
    elif command == "rlaunch":
        from fireworks.scripts import rlaunch_run

        from ..interrupt import install_rockets, rockets_handler
        from ..recovery import riding_out_outages

        # FireWorks' own handler raises SystemExit inside the running task, which FIZZLES its firework
        rlaunch_run.handle_interrupt = rockets_handler
        # a database restart is waited out: the worker goes on (argyro_fw.recovery)
        rlaunch_run.rapidfire = riding_out_outages(rlaunch_run.rapidfire)
        rlaunch_run.launch_rocket = riding_out_outages(rlaunch_run.launch_rocket)
        entry = rlaunch_run.rlaunch
        restore = install_rockets(lambda done, left: _rlaunch_hint(argv, done, left), sys.stderr.write)
    else:
        from fireworks.scripts.qlaunch_run import qlaunch as entry
    sys.argv = [command, *argv]
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        result = entry()
    finally:
        if restore:
            restore()
    return int(result or 0)


def _rlaunch_hint(argv: list[str], done: list[int], left: list[int]) -> str:
    """What `argyro rlaunch` prints when Ctrl-C stopped it."""
    import shlex

    lp = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("-l", "--launchpad_file")), DEFAULT_LAUNCHPAD)
    out = ["", "argyro rlaunch: interrupted (Ctrl-C); its child processes were stopped"]
    if done:
        out.append(f"  fireworks {done}: put back to READY (not FIZZLED); they rerun on the next start")
    if left:
        out.append(f"  fireworks {left}: still RUNNING (the database did not answer); "
                   f"`argyro recover -l {shlex.quote(lp)}` reruns them (their worker is gone)")
    out.append(f"  resume with: argyro rlaunch {shlex.join(argv)}")
    return "\n".join(out) + "\n"

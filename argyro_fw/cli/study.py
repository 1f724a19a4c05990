"""``argyro study CONFIG.yaml [--add | -o wf.yaml]``: the whole study as one FireWorks workflow."""

from __future__ import annotations

from pathlib import Path

from ..launchpad import DEFAULT_LAUNCHPAD


def register(sub) -> None:
    p = sub.add_parser(
        "study", help="build the whole study's workflow from one config file; add it or write it for `lpad add`",
        description="Validate CONFIG.yaml (every field; see configs/paper.yaml), build the study's first stage "
        "(bulk candidates and reference phases -> choose-bulk) and either add it to the LaunchPad (--add) or write "
        "it as a FireWorks workflow file (-o wf.yaml, for `lpad add`). Every later stage (surfaces, interfaces, "
        "active learning, final model, MLMD, analysis, diffusion, summary) is added at run time by the firework "
        "that makes its choice. Nothing is added or written when the config is invalid.",
    )
    p.add_argument("config", metavar="CONFIG.yaml")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--add", action="store_true", help="add the workflow to the LaunchPad (-l)")
    g.add_argument("-o", "--output", metavar="WF.yaml", help="write the workflow file instead")
    g.add_argument("--check", action="store_true", help="only validate the config and print the resolved fields")
    p.add_argument("-l", "--launchpad", default=DEFAULT_LAUNCHPAD, metavar="FILE")
    p.set_defaults(func=cmd_study)


def cmd_study(args) -> int:
    import json

    from ..study.config import load

    cfg = load(args.config)
    if args.check:
        print(json.dumps(cfg.to_dict(), indent=1))
        return 0
    from ..core.serialise import write_atomic
    from ..flows.study import initial_workflow

    wf = initial_workflow(cfg)
    if args.output:
        write_atomic(Path(args.output), wf.to_format("yaml"))
        print(f"{args.output}: {len(wf.fws)} fireworks (later stages are added at run time); lpad add {args.output}")
        return 0
    from ..launchpad import get_launchpad

    lp = get_launchpad(args.launchpad)
    ids = lp.add_wf(wf)
    print(f"study {cfg.name!r} added: {len(ids)} fireworks (fw_ids {min(ids.values())}-{max(ids.values())}); "
          f"run them with `argyro rlaunch -l {args.launchpad} rapidfire` or qlaunch")
    return 0

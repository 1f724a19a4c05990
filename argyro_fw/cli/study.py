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
    g.add_argument("--add", action="store_true", help="add the workflow to the LaunchPad (-l); with engine vasp, "
                   "first check that the POTCAR folder VASP jobs will get (the site's potcar_dir in "
                   "my_qadapter.vasp.yaml beside -l, else $ARGYRO_POTCAR_DIR) holds every element's POTCAR")
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
    if args.add:  # before the workflow is built: nothing is added when a POTCAR is missing
        check_vasp_potcars(cfg, args.config, args.launchpad)
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


def check_vasp_potcars(cfg, config_file: str, launchpad_file: str) -> None:
    """Before any VASP firework is added: the POTCAR of every element of the study is in the folder that
    the VASP jobs will read (the site profile's potcar_dir, as `argyro init` wrote it into
    my_qadapter.vasp.yaml beside the launchpad file, else $ARGYRO_POTCAR_DIR here). A one-line
    ConfigError names the missing element's POTCAR. Nothing to check for another engine or
    ``dft.potcar: false`` (the jobs provide their POTCARs themselves)."""
    import os
    import sys

    from ..core.chemistry import ELEMENTS
    from ..dft.paw import POTCAR_ENV, check_potcars
    from ..errors import ConfigError
    from ..launchpad import qadapter_file, site_potcar_dir
    from ..queue.profile import VASP_KIND

    if cfg.engine != "vasp" or cfg.dft.potcar is False:
        return
    site_dir = site_potcar_dir(launchpad_file)
    where = (f"potcar_dir of the site ({Path(launchpad_file).parent / qadapter_file(VASP_KIND)})" if site_dir
             else f"${POTCAR_ENV}")
    directory = site_dir or os.environ.get(POTCAR_ENV)
    if not directory:
        if cfg.dft.potcar:
            raise ConfigError(f"{config_file}: engine vasp writes POTCARs (dft.potcar: true) but no POTCAR folder is "
                              f"configured: set potcar_dir in the site profile (argyro init --profile) or ${POTCAR_ENV}")
        print(f"note: engine vasp and no POTCAR folder configured (potcar_dir in the site profile or ${POTCAR_ENV}): "
              "the VASP jobs write no POTCAR", file=sys.stderr)
        return
    try:
        check_potcars(ELEMENTS, directory)
    except ConfigError as exc:
        raise ConfigError(f"{config_file}: engine vasp: {exc} (POTCAR folder: {where}); nothing was added") from None

"""``argyro rehearse [CONFIG] [--dir DIR] [--site local] [--container none]``: the production branch of a study
config end to end at toy sizes, with stand-ins only for the executables (:mod:`argyro_fw.rehearse`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "rehearse", help="run a study config's production branch end to end at toy sizes, stand-ins for VASP and LAMMPS",
        description="Run CONFIG (default configs/paper.yaml) with every production choice unchanged (engine, labeller, "
        "explorer, E0s, final model with ML-IAP conversion, MD engine, vasp_cmd from the FireWorker env, POTCARs "
        "from $ARGYRO_POTCAR_DIR) at sizes shrunk by one overlay (argyro_fw.rehearse.OVERLAY), with stand-ins "
        "first on PATH for vasp_std and lmp and a placeholder PAW library; embedded MongoDB under DIR/db. Stops at "
        "the first FIZZLED firework with its error; prints the study's tables and every FireTask class that ran. "
        "Exit 0 only when every firework is COMPLETED and every production FireTask class ran.",
    )
    p.add_argument("study_config", nargs="?", default=None, metavar="CONFIG",
                   help="study config (default configs/paper.yaml of the source tree)")
    p.add_argument("--dir", default="rehearsal", metavar="DIR", help="output folder (default ./rehearsal)")
    p.add_argument("--site", choices=("local", "slurm"), default="local",
                   help="local: every firework on this machine (implemented); slurm: qlaunch per job kind (not yet)")
    p.add_argument("--container", choices=("none", "docker", "apptainer"), default="none",
                   help="none: argyro of this venv (implemented); docker/apptainer: jobs in the image (not yet)")
    p.set_defaults(func=cmd_rehearse)


def cmd_rehearse(args) -> int:
    from ..rehearse import run_rehearsal

    return run_rehearsal(args.study_config, args.dir, site=args.site, container=args.container)

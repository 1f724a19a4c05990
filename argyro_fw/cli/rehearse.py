"""``argyro rehearse [CONFIG] [--dir DIR] [--site local|slurm|pbs] [--container ...] [--image IMAGE] [--profile FILE]``:
the production branch of a study config end to end at toy sizes, with stand-ins only for the executables
(:mod:`argyro_fw.rehearse`)."""

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
    p.add_argument("--site", choices=("local", "slurm", "pbs"), default="local",
                   help="local: every firework in this process, one at a time; slurm/pbs: real jobs, one reserved job "
                   "per READY firework of each job kind (qlaunch -r), against the scheduler this machine submits to")
    p.add_argument("--container", choices=("none", "docker", "podman", "apptainer", "singularity"), default="none",
                   help="(slurm/pbs) none: every job runs this venv's argyro on the host; otherwise the jobs of every "
                   "kind but vasp run argyro inside --image, DIR bound, with the host network")
    p.add_argument("--image", default=None, metavar="IMAGE",
                   help="the image of --container (docker/podman: a name such as argyro:cpu; apptainer: a .sif file)")
    p.add_argument("--profile", default=None, metavar="FILE",
                   help="(slurm/pbs) the site's profile (sites/*.yaml): its account, partition, qos, modules, env and "
                   "MPI launcher are kept; every job is shrunk to 1 core, no GPU, 30 min")
    p.add_argument("--db-host", default=None, metavar="ADDR",
                   help="(slurm/pbs) the address the rehearsal's embedded database listens on (default 127.0.0.1, "
                   "jobs on this machine only): the login node's address on the cluster network lets jobs on "
                   "compute nodes reach it (authentication on)")
    p.set_defaults(func=cmd_rehearse)


def cmd_rehearse(args) -> int:
    from ..rehearse import run_rehearsal

    return run_rehearsal(args.study_config, args.dir, site=args.site, container=args.container, image=args.image,
                         profile=args.profile, db_host=args.db_host)

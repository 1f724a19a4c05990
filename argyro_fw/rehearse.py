"""`argyro rehearse`: the production branch of a study config, end to end, at toy sizes, before a cluster run.

``argyro rehearse [CONFIG] [--dir DIR] [--site local] [--container none]`` (CONFIG default configs/paper.yaml)
runs the study of CONFIG with every production choice of that config unchanged: the energy engine (``vasp``:
WriteVaspInputs -> custodian -> pymatgen parse), the labeller (``engine``: VASP single points as label
fireworks), the explorer, the E0s (isolated-atom VASP fireworks), the final multi-head model with its ML-IAP
conversion (``final_model.convert_mliap``), the MD engine (``mlmd.engine: mliap``: ``lmp -k on g 1 -sf kk ...``),
the VASP command as the FireWorker env gives it (``dft.vasp_cmd: >>vasp_cmd<<``) and POTCARs written from
``$ARGYRO_POTCAR_DIR``. Only two things differ from a production run:

1. Sizes: one overlay, :data:`OVERLAY` (printed and written to DIR/rehearsal-config.yaml with the config it
   made), shrinks what the study computes: one Miller plane, the single lowest termination, a small lattice
   match, a toy foundation model and its own replay data (``toy``, as the demo), a tiny active-learning loop
   (2 iterations, so the second iteration's label fireworks run too; a few frames, steps and epochs), a few
   fs of AIMD and ps of MD, one interface temperature, two bulk temperatures, one charge-balancing variant;
   the MACE device is the CPU, custodian polls every 0.2 s, the MLMD cell's lattice match accepts 2.5 % (the
   toy interface matches at ~2 %). Processes run one OpenMP/torch thread unless OMP_NUM_THREADS is set. :data:`PRODUCTION_FIELDS` may never be in the
   overlay (checked when it is applied and by tests/test_rehearse.py).
2. Executables: stand-ins (:mod:`argyro_fw.standins`) for the three programs a cluster provides, in
   DIR/bin first on PATH: ``vasp_std`` (VASP's files, CHGNet's numbers, VASP's refusals; relaxations stop at
   0.2 eV/Å, :func:`vasp_standin_main`, the INCAR keeps EDIFFG -0.01) and ``lmp`` (the
   GPU command line, ML-IAP file and pair_coeff checks, CPU LAMMPS + MACE); and a placeholder PAW library
   (TITEL and ZVAL only, never real POTCARs) in DIR/potcars as ``$ARGYRO_POTCAR_DIR``.
   ``mace_run_train`` and ``mace_create_lammps_model`` are the real ones.

``--site local`` (``--container none``): an embedded MongoDB with authentication under DIR/db, ``argyro init
--site local`` files in DIR/launchpad, the study added, and every firework run on this machine, one rocket at a
time in its own launcher folder under DIR/runs (FireWorks' launch_rocket, the rocket ``argyro rlaunch rapidfire``
runs), until all are COMPLETED or one FIZZLES: then it stops and prints that firework's error. The FireWorker's
``vasp_cmd`` is the stand-in ``vasp_std`` on one rank (a local site's ``mpirun -n 1 vasp_std`` needs an MPI this
machine may not have).

``--site slurm|pbs [--container docker|podman|apptainer|singularity|none] [--image IMAGE] [--profile FILE]``:
the jobs are real. ``argyro init --site SITE`` with a rehearsal profile (:func:`rehearsal_profile`: the site
profile FILE, if given, with every job shrunk to one core, no GPU and 30 minutes; the job kinds that run Python
in the image run in IMAGE with DIR bound) writes one FireWorker and queue adapter per job kind, and
:func:`_run_queue` submits one reserved job per READY firework with its kind's FireWorker and queue adapter
(FireWorks' ``launch_rocket_to_queue`` with ``reserve=True``, what ``argyro qlaunch -r rapidfire`` does per kind),
the stages that gate the rest first (:data:`CRITICAL_STAGES`) and at most :data:`QUEUE_MAX_PENDING` jobs waiting
in the queue, until every firework is COMPLETED, one FIZZLES, or a job ends without its firework (then it stops
and prints the job's error output). VASP runs as the profile's ``vasp`` kind says (on the host by default, its
``vasp_cmd`` ``srun -n 1 DIR/bin/vasp_std``: the site's MPI launcher with the stand-in); ``lmp`` is found on
PATH, which the jobs get with DIR/bin first (inside the image: DIR/bin before the image's own PATH).

At the end: the study's tables from MongoDB (as ``argyro demo`` prints them) and every FireTask class that ran in
a COMPLETED firework with its count, checked against :func:`production_tasks`; for a queue site also the jobs
submitted per kind and the command each kind's job ran.
"""

from __future__ import annotations

import ast
import copy
import getpass
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import yaml

from .errors import ArgyroError, ConfigError

#: the study config a rehearsal runs by default
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
REHEARSAL_WF_NAME = "argyro-rehearsal"
REHEARSAL_DB_NAME = "argyro_rehearsal"

#: THE size overlay of a rehearsal, merged (mapping by mapping) over the study config; nothing else is changed.
#: Values as configs/demo.yaml's where it has them. Never a field of PRODUCTION_FIELDS.
OVERLAY: dict = {
    "dft": {"polling_s": 0.2},  # custodian's polling interval (paper 10 s): a stand-in run lasts seconds
    # one plane whose cut gives 4 symmetric terminations of either disordered cell (the (100) cut of one of them
    # has none at this thickness); the lowest one goes on to one interface
    "surfaces": {"planes": [[0, 1, 0]], "min_thickness": 12.0, "vacuum": 10.0, "top_n": 1},
    "interfaces": {"li_planes": ["100"], "li_layers": 2, "max_area": 120.0, "candidates": 2, "balance_candidates": 12},
    "active_learning": {
        "foundation_model": "toy",  # a tiny MACE trained here (argyro_fw.demo.toy) stands in for OMat24
        "temperatures": [600], "explore_steps": 20, "record_every": 2, "n_train": 4, "n_valid": 2,
        "committee_md_steps": 12, "committee_record_every": 3, "select_k": 2,
        # two iterations: iteration 1 selects (threshold unreachable), iteration 2 labels the selection with
        # label fireworks, trains and stops at max_iterations: every task of the loop runs
        "max_iterations": 2, "threshold": 1.0e-6,
        "train_overrides": {"max_num_epochs": 6, "batch_size": 2, "start_stage_two": 4, "r_max": 4.0,
                            "num_channels": 8, "ema": False, "lr": 0.01},
        "device": "cpu",  # MACE training and ASE MD on the CPU (a login node or CI has no GPU)
    },
    "final_model": {"pt_file": "toy", "replay_n": 8, "overrides": {"max_num_epochs": 2, "batch_size": 2}},
    # max_mismatch: the toy-size DFT interface matches Li(100) at ~2 %; at 1.5 % the MLMD cell (and its variants)
    # would fall back to the DFT cell and that branch would not run
    "mlmd": {"temperatures": [400], "nvt_ps": 0.2, "npt_ns": 0.0003, "dump_every": 10, "restart_every": 100,
             "layers": 1, "li_layers": 2, "supercell": [1, 1, 1], "max_mismatch": 2.5, "prerelax_fmax": 0.5,
             "prerelax_steps": 5,
             "extend_ns": 0.0006, "extend_temperature": 400.0, "variant_balance_choices": [0],
             "variant_symmetric": False, "variants_temperature": 400.0, "variants_npt_ns": 0.0003},
    "bulk_mlmd": {"temperatures": [600, 800], "supercell": [1, 1, 1], "nvt_ps": 0.2, "npt_ns": 0.0003,
                  "dump_every": 10},
    "aimd": {"bulk_temperatures": [400, 1000], "bulk_ps": 0.01, "bulk_frames": 3, "li_supercell": 2, "li_ps": 0.01,
             "li_frames": 3, "product_supercell": [1, 1, 1], "product_ps": 0.01, "product_frames": 3,
             "interface_relax_frames": 3, "test_temperatures": [400, 1000], "test_ps": 0.004, "test_frames": 4,
             "validation_ps": 0.04, "validation_frame_ps": 0.01},
}

#: the production choices a rehearsal keeps as the config has them: the overlay never names these
PRODUCTION_FIELDS: tuple[str, ...] = (
    "name", "engine", "bulk.disordered", "dft.vasp_cmd", "dft.potcar",
    "active_learning.labeller", "active_learning.explorer", "active_learning.committee_size", "active_learning.e0s",
    "final_model.e0s", "final_model.convert_mliap", "final_model.extra_datasets",
    "mlmd.engine", "mlmd.lmp_binary", "aimd.enabled", "aimd.products", "analysis",
)

#: FireTask classes of argyro_fw.flows that a study config's production branch never adds, and why
NOT_IN_STUDY: dict[str, str] = {
    "argyro_fw.flows.al.FinalMultiheadTask": "the final model of a stand-alone active-learning workflow (an ALRun "
    "with `final`); the study trains its final models in StudyFinalModelTask",
    "argyro_fw.flows.structures.BuildStructuresTask": "`argyro build` workflows, not the study",
}
#: modules whose explicit_serialize FireTasks make up a study's production branch (the engines' fireworks included)
FLOW_MODULES = ("argyro_fw.flows.dft", "argyro_fw.flows.al", "argyro_fw.flows.md", "argyro_fw.flows.analysis",
                "argyro_fw.flows.study", "argyro_fw.flows.structures", "argyro_fw.flows.energy")


def production_tasks() -> set[str]:
    """Every FireTask class (``module.Class``) a production study can add: the explicit_serialize FiretaskBase
    subclasses defined in :data:`FLOW_MODULES` (read from their source, so nothing is imported), less
    :data:`NOT_IN_STUDY`."""
    root = Path(__file__).resolve().parents[1]
    out = set()
    for mod in FLOW_MODULES:
        tree = ast.parse((root / (mod.replace(".", "/") + ".py")).read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                    (isinstance(d, ast.Name) and d.id == "explicit_serialize") for d in node.decorator_list):
                out.add(f"{mod}.{node.name}")
    return out - set(NOT_IN_STUDY)


def _touches(overlay: dict, field: str) -> bool:
    node = overlay
    for part in field.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def merged(data: dict, overlay: dict) -> dict:
    """``data`` with ``overlay`` merged in section by section (a field's value, train_overrides included, is
    replaced as a whole); refuses an overlay that names a field of :data:`PRODUCTION_FIELDS`."""
    bad = [f for f in PRODUCTION_FIELDS if _touches(overlay, f)]
    if bad:
        raise ConfigError(f"rehearsal overlay: {bad} are production choices, which a rehearsal keeps as configured")
    out = copy.deepcopy(data)
    for section, values in overlay.items():
        if isinstance(values, dict):
            out[section] = dict(out.get(section) or {}, **copy.deepcopy(values))
        else:
            out[section] = copy.deepcopy(values)
    return out


def rehearsal_config(config: str | Path, directory: str | Path, overlay: dict | None = None):
    """(StudyConfig, path): CONFIG with :data:`OVERLAY` merged in and its workdir DIR/study, validated as any
    config and written to DIR/rehearsal-config.yaml (what ran, for the record)."""
    src = Path(config)
    from .study.config import load  # (off the top: vasp_std loads this module)
    from .textfile import read_text  # (off the top: vasp_std loads this module)

    data = yaml.safe_load(read_text(src, "study config")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"study config {src}: expected a mapping of sections")
    data = merged(data, OVERLAY if overlay is None else overlay)
    d = Path(directory).resolve()
    data["workdir"] = str(d / "study")
    # paths of the config stay relative to the config's own folder: make them absolute before the copy moves
    for section, key in (("active_learning", "foundation_model"), ("final_model", "pt_file"),
                         ("active_learning", "initial_dataset")):
        v = (data.get(section) or {}).get(key)
        if isinstance(v, str) and v and v != "toy" and not Path(v).is_absolute():
            data[section][key] = str(src.resolve().parent / v)
    out = d / "rehearsal-config.yaml"
    out.write_text(f"# {src.resolve()} with argyro_fw.rehearse.OVERLAY merged in (argyro rehearse)\n"
                   + yaml.safe_dump(data, sort_keys=False))
    return load(out), out


def production_choices(cfg) -> dict[str, object]:
    """The config's production choices as the rehearsal runs them (printed at the start)."""
    return {"engine": cfg.engine, "active_learning.labeller": cfg.active_learning.labeller,
            "active_learning.explorer": cfg.active_learning.explorer, "dft.vasp_cmd": cfg.dft.vasp_cmd,
            "dft.potcar": cfg.dft.potcar, "final_model.e0s": cfg.final_model.e0s,
            "final_model.convert_mliap": cfg.final_model.convert_mliap, "mlmd.engine": cfg.mlmd.engine,
            "mlmd.lmp_binary": cfg.mlmd.lmp_binary, "aimd.enabled": cfg.aimd.enabled}


def vasp_standin_main(argv: list[str] | None = None) -> int:
    """The rehearsal's ``vasp_std``: the stand-in :mod:`argyro_fw.standins.vasp` unchanged (its checks, refusals,
    files and CHGNet numbers), except that a relaxation with a force criterion (EDIFFG < 0) stops once every
    force is below :data:`RELAX_FMAX_FLOOR_EV_A` when the INCAR asks for less. The INCAR stays as argyro wrote it
    (EDIFFG -0.01, NSW 200); CHGNet's path to 0.01 eV/Å takes 150-250 BFGS steps per cell and custodian's
    unconverged-relaxation rerun, about 2 minutes per slab on a shared 2-core machine, and says nothing about VASP."""
    from .standins import vasp as standin  # the stand-ins load only when a rehearsal runs them

    check = standin.check_inputs

    def check_inputs(directory="."):
        inp = check(directory)
        s = inp.settings
        if s.mode == "relax" and -RELAX_FMAX_FLOOR_EV_A < s.ediffg < 0:
            s.ediffg = -RELAX_FMAX_FLOOR_EV_A
        return inp

    standin.check_inputs = check_inputs
    return standin.main(argv)


#: force (eV/Å) at which the rehearsal's vasp_std stops a relaxation that asks for less (see vasp_standin_main)
RELAX_FMAX_FLOOR_EV_A = 0.2


def write_standins(directory: Path) -> dict[str, Path]:
    """DIR/bin/vasp_std (:func:`vasp_standin_main`), DIR/bin/lmp (:mod:`argyro_fw.standins.lmp`) and DIR/potcars
    (placeholder PAW library: TITEL and ZVAL, never a real POTCAR)."""
    from .core.chemistry import ELEMENTS  # (off the top: vasp_std loads this module)
    from .standins import lmp as lmp_standin  # the stand-ins load only when a rehearsal writes them
    from .standins import vasp as vasp_standin  # (same)

    bin_dir = directory / "bin"
    vasp = vasp_standin.write_wrapper(bin_dir)  # then its last line is replaced: the same stand-in, entry point above
    root = shlex.quote(str(Path(__file__).resolve().parents[1]))
    vasp.write_text(f"#!/bin/sh\n# argyro rehearse: the vasp_std STAND-IN (argyro_fw.standins.vasp, CHGNet numbers), "
                    f"relaxations stopped at {RELAX_FMAX_FLOOR_EV_A} eV/A (argyro_fw.rehearse.vasp_standin_main)\n"
                    f"PY={shlex.quote(sys.executable)}\n[ -x \"$PY\" ] || PY=python3\n"
                    f"PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}} exec \"$PY\" -c "
                    "'import sys; from argyro_fw.rehearse import vasp_standin_main; sys.exit(vasp_standin_main())' "
                    '"$@"\n')
    return {"vasp_std": vasp, "lmp": lmp_standin.write_wrapper(bin_dir),
            "potcars": vasp_standin.write_placeholder_paw_dir(directory / "potcars", ELEMENTS)}


def ran_tasks(lp) -> Counter:
    """FireTask class (``module.Class``) -> how many COMPLETED fireworks ran it."""
    n = Counter()
    for fw in lp.fireworks.find({"state": "COMPLETED"}, {"spec._tasks._fw_name": 1}):
        for t in (fw.get("spec") or {}).get("_tasks") or []:
            n[str(t.get("_fw_name", "?")).strip("{}")] += 1
    return n


def fizzled_errors(lp) -> list[str]:
    """One text per FIZZLED firework: its id, name and the end of its stack trace."""
    out = []
    for fw in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1, "name": 1}):
        launch = lp.launches.find_one({"fw_id": fw["fw_id"], "state": "FIZZLED"}, sort=[("launch_id", -1)]) or {}
        exc = ((launch.get("action") or {}).get("stored_data") or {}).get("_exception") or {}
        trace = str(exc.get("_stacktrace") or "(no stack trace stored)").strip().splitlines()
        out.append(f"firework {fw['fw_id']} {fw.get('name')!r} FIZZLED in {launch.get('launch_dir')}:\n    "
                   + "\n    ".join(trace[-12:]))
    return out


def fallback_notes(db) -> list[str]:
    """A line per interface whose MLMD cell was not built as ``mlmd.*`` specifies (the study then runs the DFT
    interface cell times the supercell, without METHOD.md 6's variants): a rehearsal says so."""
    from . import store  # (off the top: vasp_std loads this module)

    out = []
    for itf in store.read(db, store.INTERFACES.name):
        how = (itf.get("mlmd_cell") or {}).get("built_as")
        if how and how != "mlmd-cell":
            out.append(f"  NOTE {itf['key']}: MLMD cell not built from mlmd.* (no variants): {how}")
    return out


def task_table(counts: Counter, expected: set[str]) -> tuple[str, set[str]]:
    """The printed list of FireTask classes that ran, and the expected ones that did not."""
    lines = [f"  {'FireTask class':62s} {'fireworks':>9s}"]
    for name, k in sorted(counts.items()):
        mark = "" if name in expected else "   (stand-in / not a production task)"
        lines.append(f"  {name:62s} {k:9d}{mark}")
    missing = expected - set(counts)
    for name in sorted(missing):
        lines.append(f"  {name:62s} {0:9d}   MISSING: the production branch has this task, the rehearsal did not run it")
    return "\n".join(lines), missing


#: where a rehearsal runs its fireworks: in this process, or as jobs of a scheduler
SITES = ("local", "slurm", "pbs")
#: how the job kinds that run argyro's Python in the image run it
CONTAINERS = ("none", "docker", "podman", "apptainer", "singularity")
#: every rehearsal job, whatever the site profile asks of the production job: one core, no GPU, 30 minutes
REHEARSAL_JOB = {"nodes": 1, "ntasks": 1, "cpus_per_task": 1, "gpus": 0, "walltime": "00:30:00"}
#: the PATH of an image when `docker image inspect` cannot tell (Debian's default)
DEFAULT_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _image_path(container: str, image: str) -> str:
    """The PATH an OCI image (docker/podman) sets, from its config."""
    try:
        out = subprocess.run([container, "image", "inspect", "--format", "{{json .Config.Env}}", image],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ArgyroError(f"--image {image}: `{container} image inspect` failed ({exc})") from None
    if out.returncode != 0:
        raise ArgyroError(f"--image {image}: no such {container} image ({out.stderr.strip() or out.stdout.strip()}); "
                          "build it first (containers/build.sh cpu)")
    env = dict(e.split("=", 1) for e in (json.loads(out.stdout or "null") or []) if "=" in e)
    return env.get("PATH") or DEFAULT_IMAGE_PATH


def rehearsal_profile(directory: Path, site: str, container: str = "none", image: str | None = None,
                      base: dict | None = None, image_path: str | None = None) -> dict:
    """The site profile a queue rehearsal passes to ``argyro init --site SITE``: ``base`` (the site's own profile,
    or none) with every job :data:`REHEARSAL_JOB` (pre_rocket GPU checks dropped: no job holds a GPU), the
    placeholder PAW library as ``potcar_dir``, VASP as the stand-in ``DIR/bin/vasp_std`` under the profile's MPI
    launcher, OMP_NUM_THREADS 1, and DIR/bin first on the PATH of every job that runs ``lmp``. ``container``:
    ``none`` runs every kind on the host; otherwise every kind but ``vasp`` runs in ``image`` (the ``vasp`` kind
    keeps the profile's run_in, host by default as the shipped profiles do: the stand-in's CHGNet is not in the
    image), with DIR bound. Production choices of the site (account, partition, qos, modules, mpi_launcher, env)
    are kept."""
    from .flows.stages import JOB_KINDS  # (off the top: vasp_std loads this module)
    from .queue.container import RUNTIMES  # (same)
    from .queue.profile import VASP_KIND  # (same)

    if site not in SITES[1:]:
        raise ConfigError(f"rehearsal profile: site {site!r}: expected one of {', '.join(SITES[1:])}")
    if container not in RUNTIMES:
        raise ConfigError(f"--container {container!r}: expected one of {', '.join(CONTAINERS)}")
    if container != "none" and not image:
        raise ConfigError(f"--container {container} needs --image (the cpu image: containers/build.sh cpu)")
    d = Path(directory).resolve()
    bin_dir = d / "bin"
    prof = copy.deepcopy(base or {})
    if not isinstance(prof, dict):
        raise ConfigError("site profile: expected a mapping")
    jobs = prof.pop("jobs", None) or {}
    prof.pop("host_argyro", None)  # this venv's argyro (argyro init --argyro-cmd)
    prof["potcar_dir"] = str(d / "potcars")  # placeholder PAW files, never the site's licensed library
    for k in ("container_runtime", "container_image", "container_binds", "container_gpu"):
        prof.pop(k, None)
    if container != "none":
        prof["container_runtime"] = container
        prof["container_image"] = str(image)
        prof["container_binds"] = [str(d)]
    host_path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    out_jobs = {}
    for kind in JOB_KINDS:
        j = copy.deepcopy(jobs.get(kind) or {})
        for k in ("pre_rocket", "container_gpu", "mem"):
            j.pop(k, None)
        j.update(REHEARSAL_JOB)
        env = dict(j.get("env") or {})
        env["OMP_NUM_THREADS"] = "1"
        if kind == VASP_KIND:
            run_in = j.get("run_in") or "host"
            if container != "none" and run_in == "container":
                raise ConfigError("site profile: jobs.vasp.run_in container: the rehearsal's vasp_std stand-in "
                                  "computes with CHGNet, which the image does not ship; rehearse with "
                                  "jobs.vasp.run_in host")
            j["run_in"] = "host"
            j["vasp_exe"] = str(bin_dir / "vasp_std")  # under the profile's MPI launcher (srun -n 1 ...)
        elif container == "none":
            j["run_in"] = "host"
            env["PATH"] = host_path
        else:
            j["run_in"] = "container"
            if container in ("docker", "podman"):  # -e PATH: the job script's value reaches the container
                env["PATH"] = f"{bin_dir}{os.pathsep}{image_path or DEFAULT_IMAGE_PATH}"
            else:  # apptainer/singularity keep the image's PATH and prepend this
                env[f"{container.upper()}ENV_PREPEND_PATH"] = str(bin_dir)
        j["env"] = env
        out_jobs[kind] = j
    prof["jobs"] = out_jobs
    return prof


def run_rehearsal(config: str | Path | None = None, directory: str | Path = "rehearsal", site: str = "local",
                  container: str = "none", image: str | None = None, profile: str | Path | None = None,
                  db_host: str | None = None) -> int:
    if site not in SITES:
        raise ArgyroError(f"--site {site!r}: expected one of {', '.join(SITES)}")
    if container not in CONTAINERS:
        raise ArgyroError(f"--container {container!r}: expected one of {', '.join(CONTAINERS)}")
    if site == "local" and (container != "none" or profile):
        raise ArgyroError(f"--site local runs every firework in this process: --container {container}"
                          f"{' and --profile' if profile else ''} need a scheduler site (--site slurm or pbs)")
    if container != "none" and not image:
        raise ArgyroError(f"--container {container} needs --image (the image's name or .sif file)")
    if site == "local" and db_host:
        raise ArgyroError("--db-host is for the jobs of --site slurm|pbs; --site local runs everything in this process")
    base = None
    if profile:
        from .textfile import read_text  # (off the top: vasp_std loads this module)

        try:
            base = yaml.safe_load(read_text(Path(profile), "site profile")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"site profile {profile}: not YAML ({exc})") from None
    image_path = _image_path(container, image) if container in ("docker", "podman") else None
    d = Path(directory).resolve()
    d.mkdir(parents=True, exist_ok=True)
    config = Path(config) if config else DEFAULT_CONFIG
    if not config.is_file():
        raise ConfigError(f"{config}: no such study config")
    t0 = time.time()
    cfg, cfg_file = rehearsal_config(config, d)
    print(f"[1/5] {config}: production choices kept: "
          + ", ".join(f"{k} {v}" for k, v in production_choices(cfg).items()))
    print(f"      sizes from argyro_fw.rehearse.OVERLAY ({', '.join(OVERLAY)}): the config that runs is {cfg_file}")

    made = write_standins(d)
    os.environ["PATH"] = f"{made['vasp_std'].parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from .dft.paw import POTCAR_ENV  # (off the top: vasp_std loads this module)

    os.environ[POTCAR_ENV] = str(made["potcars"])
    # one OpenMP/torch thread per process unless set (a site profile sets it per job kind): mace_run_train with
    # torch's default threads on a shared 2-core machine ran 10-15x slower than with one
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    print(f"[2/5] stand-ins first on PATH: {made['vasp_std']}, {made['lmp']}; placeholder POTCARs (not real ones) "
          f"in ${POTCAR_ENV}={made['potcars']}")
    if site == "local":
        return _run_local(d, cfg, t0)
    prof = rehearsal_profile(d, site, container, image, base, image_path)
    return _run_queue(d, cfg, t0, site, prof, profile, db_host)


def _run_local(d: Path, cfg, t0: float) -> int:
    from fireworks.core.fworker import FWorker  # (off the top: vasp_std loads this module)
    from fireworks.core.rocket_launcher import launch_rocket  # (off the top: vasp_std loads this module)
    from fireworks.utilities.fw_utilities import create_datestamp_dir  # (off the top: vasp_std loads this module)

    from .demo.run import ensure_server  # (off the top: vasp_std loads this module)
    from .launchpad import (  # (off the top: vasp_std loads this module)
        DEFAULT_LAUNCHPAD,
        DEFAULT_LAUNCHPAD_DIR,
        FWORKER_FILE,
        get_launchpad,
        init_files,
    )
    from .recovery import configured_ping, recover  # (off the top: vasp_std loads this module)
    from .settings import embedded_settings  # (off the top: vasp_std loads this module)

    port = ensure_server(d)
    settings = embedded_settings(d / "db", name=REHEARSAL_DB_NAME)
    init_files(settings, d / DEFAULT_LAUNCHPAD_DIR, site="local", worker_name="argyro-rehearsal")
    fw_file = d / DEFAULT_LAUNCHPAD_DIR / FWORKER_FILE
    worker = yaml.safe_load(fw_file.read_text())
    site_cmd = worker["env"]["vasp_cmd"]
    worker["env"]["vasp_cmd"] = "vasp_std"  # one rank, no MPI launcher: the stand-in on PATH
    fw_file.write_text(f"# argyro init --site local, vasp_cmd {site_cmd!r} -> 'vasp_std' by argyro rehearse\n"
                       + yaml.safe_dump(worker, sort_keys=False))
    lp = get_launchpad(d / DEFAULT_LAUNCHPAD)
    lp.m_logger.setLevel(logging.WARNING)
    print(f"[3/5] embedded database 127.0.0.1:{port} (authentication on, data in {d / 'db'}); launchpad files in "
          f"{d / DEFAULT_LAUNCHPAD_DIR}; the worker's vasp_cmd: vasp_std")
    from .cli.study import check_vasp_potcars  # `argyro study --add`'s own POTCAR check (the CLI loads lazily)

    check_vasp_potcars(cfg, "rehearsal", str(d / DEFAULT_LAUNCHPAD))  # as `argyro study --add` does
    _add_or_resume(lp, cfg, lambda: recover(lp, ping_s=configured_ping(d / DEFAULT_LAUNCHPAD)[0], lost_after_s=0.0,
                                            observe_s=1))

    runs = d / "runs"
    runs.mkdir(exist_ok=True)
    log_path = runs / "rockets.log"
    print(f"      running every firework on this machine, one rocket at a time; their output goes to {log_path}",
          flush=True)
    fworker = FWorker.from_file(str(fw_file))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    logging.basicConfig(filename=str(log_path), level=logging.INFO, force=True)
    cwd = os.getcwd()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    term = os.fdopen(os.dup(1), "w")
    log = open(log_path, "a")  # noqa: SIM115  (closed in the finally below, after the fds are restored)
    stopped = None
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        while lp.run_exists(fworker):
            launcher = create_datestamp_dir(str(runs), lp.m_logger, prefix="launcher_")
            os.chdir(launcher)
            before = {f["fw_id"] for f in lp.fireworks.find({"state": {"$in": ["COMPLETED", "FIZZLED"]}}, {"fw_id": 1})}
            t = time.time()
            launch_rocket(lp, fworker, strm_lvl="ERROR")
            os.chdir(cwd)
            done = list(lp.fireworks.find({"state": {"$in": ["COMPLETED", "FIZZLED"]}, "fw_id": {"$nin": list(before)}},
                                          {"fw_id": 1, "name": 1, "state": 1}))
            n_done = lp.fireworks.count_documents({"state": "COMPLETED"})
            total = lp.fireworks.count_documents({})
            for f in done:
                term.write(f"  [{n_done:3d}/{total:3d}] {time.time() - t0:7.0f} s  {f['state']:9s} {time.time() - t:6.1f} s  "
                           f"fw {f['fw_id']} {f['name']}\n")
            term.flush()
            if any(f["state"] == "FIZZLED" for f in done) or lp.fireworks.count_documents({"state": "FIZZLED"}):
                stopped = "a firework FIZZLED"
                break
    finally:
        os.chdir(cwd)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        term.close()
        log.close()
    return _report(lp, d, t0, stopped)


def _add_or_resume(lp, cfg, resume) -> None:
    """Add the study (a fresh rehearsal) or resume it: ``resume()`` returns the lost fireworks to READY, and every
    FIZZLED one is rerun (COMPLETED ones are kept)."""
    from .flows.study import initial_workflow  # (off the top: vasp_std loads this module)

    if lp.workflows.count_documents({"name": REHEARSAL_WF_NAME}) == 0:
        lp.reset("", require_password=False)
        wf = initial_workflow(cfg)
        wf.name = REHEARSAL_WF_NAME
        lp.add_wf(wf)
        print(f"[4/5] added the study {cfg.name!r}: {len(wf.fws)} fireworks now, the later stages are added at run time")
    else:
        resume()
        for fw in lp.fireworks.find({"state": "FIZZLED"}, {"fw_id": 1}):
            lp.rerun_fw(fw["fw_id"])
        print(f"[4/5] resuming {REHEARSAL_WF_NAME!r} (FIZZLED fireworks rerun, COMPLETED ones kept)")


def _report(lp, d: Path, t0: float, stopped: str | None, jobs: list[str] | None = None) -> int:
    """The end of a rehearsal: the study's tables, FIZZLED fireworks' errors, the FireTask classes that ran
    (checked against :func:`production_tasks`) and the verdict; returns the exit code."""
    from .demo.run import print_summary  # (off the top: vasp_std loads this module)
    from .launchpad import DEFAULT_LAUNCHPAD  # (same)

    print(f"[5/5] results after {time.time() - t0:.0f} s")
    rc = print_summary(lp)
    for note in fallback_notes(lp.db):
        print(note)
    for line in jobs or []:
        print(line)
    errors = fizzled_errors(lp)
    if stopped and not errors:
        print("\nThe rehearsal stopped: " + stopped)
        rc = 1
    if errors:
        print("\nThe rehearsal stopped: " + (stopped or "FIZZLED fireworks") + "\n" + "\n".join(errors))
        rc = 1
    table, missing = task_table(ran_tasks(lp), production_tasks())
    print("\nFireTask classes that ran (COMPLETED fireworks):\n" + table)
    if missing and not errors and not rc:
        print(f"  {len(missing)} production FireTask class(es) never ran: the rehearsal did not cover the production "
              "branch")
        rc = 1
    print(f"rehearsal {'PASSED' if rc == 0 else 'FAILED'} in {time.time() - t0:.0f} s; the database keeps running "
          f"(argyro results -l {d / DEFAULT_LAUNCHPAD}); stop it with: argyro db stop --path {d / 'db'}")
    return rc


#: seconds between the queue rehearsal's rounds (submit, watch)
QUEUE_POLL_S = 2.0
#: jobs the rehearsal keeps waiting in the queue at most: its jobs last seconds to minutes, and a firework that
#: becomes READY (the other branch of the study) then starts soon instead of behind every job already queued
QUEUE_MAX_PENDING = 2
#: stages whose fireworks get their jobs first, in this order (then every other READY firework by id): the chain
#: that gates the rest of the study (bulk -> surfaces -> interfaces -> their AIMD and active learning), which
#: otherwise waits behind the isolated-atom, phase and AIMD ramp jobs that are READY from the start
CRITICAL_STAGES = ("bulk-dft", "bulk-choose", "surface-dft", "surface-rank", "interface-dft", "interface-strain",
                   "interface-energy", "mlip-foundation", "mlip-final", "bulk-model")


def _submit_rank(fw: dict) -> tuple[int, int]:
    stage = (fw.get("spec") or {}).get("argyro_stage")
    return (CRITICAL_STAGES.index(stage) if stage in CRITICAL_STAGES else len(CRITICAL_STAGES), fw["fw_id"])


def _pending_jobs(site: str, ids: list[str]) -> int:
    """How many of the jobs ``ids`` still wait in the queue (not started)."""
    ours = {str(j).split(".")[0] for j in ids if j and j != "None"}
    if not ours:
        return 0
    if site == "slurm":
        out = subprocess.run(["squeue", "-h", "-t", "PD", "-o", "%i", "-u", getpass.getuser()], capture_output=True,
                             text=True)
        return len(ours & set(out.stdout.split()))
    out = subprocess.run(["qstat", "-u", getpass.getuser()], capture_output=True, text=True)
    return sum(1 for ln in out.stdout.splitlines()
               if ln[:1].isdigit() and ln.split()[0].split(".")[0] in ours and " Q " in f" {ln} ")


#: seconds a firework may stay RESERVED/RUNNING after its job left the scheduler before the rehearsal stops
LOST_JOB_GRACE_S = 20.0


def _job_err(launch_dir: str | None, job_id: str) -> str:
    """The end of a job's error output (``%x-<id>.err`` in its folder), for the message of a lost job."""
    for f in sorted(Path(launch_dir or ".").glob(f"*-{job_id}.err")) + sorted(Path(launch_dir or ".").glob(f"*{job_id}*.e*")):
        lines = f.read_text(errors="replace").strip().splitlines()
        return f"{f}:\n    " + "\n    ".join(lines[-15:])
    return f"(no error output of job {job_id} in {launch_dir})"


def _run_queue(d: Path, cfg, t0: float, site: str, prof: dict, profile_file, db_host: str | None = None) -> int:
    """Every firework as a real job of ``site``: one reserved job per READY firework of each job kind (FireWorks'
    launch_rocket_to_queue, reserve=True), watched until all are COMPLETED, one FIZZLES or a job ends without its
    firework."""
    from fireworks.core.fworker import FWorker  # (off the top: vasp_std loads this module)
    from fireworks.queue.queue_launcher import launch_rocket_to_queue  # (same)
    from fireworks.utilities.fw_serializers import load_object_from_file  # (same)

    from .demo.run import ensure_server  # (same)
    from .flows.stages import JOB_KINDS  # (same)
    from .launchpad import (  # (same)
        DEFAULT_LAUNCHPAD,
        DEFAULT_LAUNCHPAD_DIR,
        fworker_file,
        get_launchpad,
        init_files,
        qadapter_file,
    )
    from .queue.reconcile import ALIVE, _job_id, pbs_job_state, reconcile, slurm_job_state  # (same)
    from .settings import embedded_settings  # (same)

    port = ensure_server(d, db_host)
    settings = embedded_settings(d / "db", name=REHEARSAL_DB_NAME)
    (d / "rehearsal-site.yaml").write_text(
        f"# the site profile of this rehearsal (argyro_fw.rehearse.rehearsal_profile of {profile_file or 'no profile'})\n"
        + yaml.safe_dump(prof, sort_keys=False))
    argyro = Path(sys.executable).parent / "argyro"
    lpd = d / DEFAULT_LAUNCHPAD_DIR
    init_files(settings, lpd, site=site, worker_name="argyro-rehearsal", profile=prof,
               argyro_cmd=str(argyro) if argyro.is_file() else None)
    lp = get_launchpad(d / DEFAULT_LAUNCHPAD)
    lp.m_logger.setLevel(logging.WARNING)
    runtime = prof.get("container_runtime", "none")
    print(f"[3/5] embedded database {settings.host}:{port} (authentication on, data in {d / 'db'}); `argyro init --site "
          f"{site}` files in {lpd} from {d / 'rehearsal-site.yaml'}; jobs of every kind but vasp run "
          + (f"in {runtime} image {prof.get('container_image')}" if runtime != "none" else "on the host"))
    from .cli.study import check_vasp_potcars  # `argyro study --add`'s own POTCAR check (the CLI loads lazily)

    check_vasp_potcars(cfg, "rehearsal", str(d / DEFAULT_LAUNCHPAD))
    _add_or_resume(lp, cfg, lambda: reconcile(lp, site))
    workers = {k: FWorker.from_file(str(lpd / fworker_file(k))) for k in JOB_KINDS}
    adapters = {k: load_object_from_file(str(lpd / qadapter_file(k))) for k in JOB_KINDS}
    state_of = {"slurm": slurm_job_state, "pbs": pbs_job_state}[site]
    runs = d / "runs"
    runs.mkdir(exist_ok=True)
    log_path = runs / "qlaunch.log"
    print(f"      one reserved {site} job per READY firework of each kind (qlaunch -r), job folders under {runs}; "
          f"qlaunch's log: {log_path}", flush=True)
    logging.basicConfig(filename=str(log_path), level=logging.INFO, force=True)  # FireWorks' queue launcher logs
    warnings.filterwarnings("ignore", message="cd is deprecated")  # monty's, from FireWorks' queue launcher
    submitted: dict[str, list[str]] = {k: [] for k in JOB_KINDS}
    gone_since: dict[int, float] = {}
    idle_since = None
    reported: set[int] = set()
    stopped = None
    try:
        while True:
            waiting = _pending_jobs(site, [j for js in submitted.values() for j in js])
            ready = sorted(lp.fireworks.find({"state": "READY"}, {"fw_id": 1, "spec.argyro_stage": 1, "spec._category": 1}),
                           key=_submit_rank)
            for f in ready:
                if waiting >= QUEUE_MAX_PENDING:
                    break
                kind = (f.get("spec") or {}).get("_category")
                if kind not in workers:
                    stopped = f"firework {f['fw_id']} has job kind {kind!r}, which no FireWorker of this site takes"
                    break
                waiting += 1
                ok = launch_rocket_to_queue(lp, workers[kind], adapters[kind], str(runs), reserve=True,
                                            strm_lvl="ERROR", create_launcher_dir=True, fw_id=f["fw_id"])
                if not ok:
                    stopped = f"qlaunch of firework {f['fw_id']} ({kind}) failed (see {log_path})"
                    break
                launch = lp.launches.find_one({"fw_id": f["fw_id"], "state": "RESERVED"}, sort=[("launch_id", -1)])
                submitted[kind].append(str((launch or {}).get("reservation_id")))
            if stopped:
                break
            for f in lp.fireworks.find({"state": {"$in": ["COMPLETED", "FIZZLED"]}, "fw_id": {"$nin": list(reported)}},
                                       {"fw_id": 1, "name": 1, "state": 1, "spec._category": 1}):
                reported.add(f["fw_id"])
                launch = lp.launches.find_one({"fw_id": f["fw_id"]}, sort=[("launch_id", -1)]) or {}
                took = (launch.get("runtime_secs") or 0.0)
                print(f"  [{lp.fireworks.count_documents({'state': 'COMPLETED'}):3d}/{lp.fireworks.count_documents({}):3d}]"
                      f" {time.time() - t0:7.0f} s  {f['state']:9s} {took:6.1f} s  job {_job_id(launch) or '?':>6}"
                      f" {(f.get('spec') or {}).get('_category', '?'):10s} fw {f['fw_id']} {f['name']}", flush=True)
            if lp.fireworks.count_documents({"state": "FIZZLED"}):
                stopped = "a firework FIZZLED"
                break
            if lp.fireworks.count_documents({"state": {"$ne": "COMPLETED"}}) == 0:
                break
            now = time.time()
            live = False
            for launch in lp.launches.find({"state": {"$in": ["RESERVED", "RUNNING"]}}):
                jid = _job_id(launch) or ""
                st = state_of(jid) if jid else None
                if st is not None and st.upper() in ALIVE:
                    live = True
                    gone_since.pop(launch["fw_id"], None)
                    continue
                first = gone_since.setdefault(launch["fw_id"], now)
                if now - first > LOST_JOB_GRACE_S:
                    stopped = (f"job {jid} ({st or 'gone'}) ended, but firework {launch['fw_id']} is still "
                               f"{launch['state']}: " + _job_err(launch.get("launch_dir"), jid))
                    break
                live = True
            if stopped:
                break
            # nothing runs and nothing is READY: the moment between a launch's end and its children's READY, or
            # (when it lasts) a study that cannot go on
            if live or any(lp.run_exists(w) for w in workers.values()):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since > LOST_JOB_GRACE_S:
                stopped = ("no job runs and no firework is READY, but not all are COMPLETED: "
                           + ", ".join(f"{s} {lp.fireworks.count_documents({'state': s})}"
                                       for s in ("RUNNING", "WAITING", "PAUSED", "DEFUSED", "READY")))
                break
            time.sleep(QUEUE_POLL_S)
    except KeyboardInterrupt:
        cancel = {"slurm": ["scancel"], "pbs": ["qdel"]}[site]
        ids = [j for js in submitted.values() for j in js if j and j != "None"]
        if ids:
            subprocess.run(cancel + ids, capture_output=True, check=False)
        print(f"\ninterrupted: {len(ids)} job(s) cancelled; resume with the same command (argyro rehearse ... --dir {d})")
        raise
    jobs = [f"\n{site} jobs submitted per kind (reserved, one firework each): "
            + ", ".join(f"{k} {len(v)}" for k, v in submitted.items())]
    for kind in JOB_KINDS:
        script = adapters[kind].get_script_str(str(runs)).splitlines()
        jobs.append(f"  {kind:10s} job runs: {next((ln for ln in script if ' rlaunch ' in ln), '?')}")
    return _report(lp, d, t0, stopped, jobs)

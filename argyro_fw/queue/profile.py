"""Site profiles (``sites/*.yaml``): the job each kind of firework gets, and where argyro's part of it runs.

Every firework carries FireWorks' ``_category``: the job kind of its stage
(:data:`argyro_fw.flows.stages.STAGES`). A profile gives each kind its job; ``argyro init`` turns
it into one FireWorker (``category: <kind>``) and one queue adapter per kind, so a job sized for
kind K only ever pulls fireworks of kind K (reserved and non-reserved ``qlaunch`` alike, fireworks
added at run time included).

A profile holds queue-adapter keys shared by every job (``argyro_fw/queue/adapter.py``: account,
modules, env, container_* ...), argyro's own keys, and ``jobs:`` with one entry per job kind, merged
over the shared keys (``env`` key by key; every other key replaces the shared one):

``run_in``
    ``container`` or ``host``: where the rocket runs (argyro's Python: FireTasks, custodian, parsing).
    container: inside ``container_image`` (``argyro`` of the image); host: ``host_argyro`` on the
    host, without any container. Default: container when ``container_runtime`` is set, else host.
``host_argyro``
    how a host job calls argyro (the host venv's ``.../bin/argyro``); ``argyro init --argyro-cmd``
    overrides it; default ``argyro`` on the job's PATH.
``potcar_dir``
    the PAW folder (``<symbol>/POTCAR``), an absolute path: exported as ``$ARGYRO_POTCAR_DIR`` to
    VASP jobs and bound into the container when their Python runs there.
``vasp_exe``, ``mpi_launcher``
    the VASP command of the ``vasp`` kind is ``<mpi_launcher> -n <ntasks> <vasp_exe>`` (default
    ``srun -n N vasp_std`` on Slurm, ``mpiexec`` on PBS, ``mpirun`` without a scheduler; ``mpi_launcher: ""``
    runs ``vasp_exe`` alone, e.g. a serial stand-in): the
    FireWorker env ``vasp_cmd`` that :class:`argyro_fw.flows.dft.RunVaspCustodian` runs. VASP itself
    is the site's build on the site's MPI, never a binary inside the image.

A kind without GPUs passes none into the container (``container_gpu`` off), a kind with GPUs passes
them (unless it says ``container_gpu: false``), and an ``analysis`` job (analysis and decisions)
never holds a GPU.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..dft.paw import POTCAR_ENV
from ..errors import ConfigError
from ..flows.stages import JOB_KINDS
from .adapter import DEFAULTS as ADAPTER_DEFAULTS
from .adapter import KNOWN as ADAPTER_KEYS

RUN_IN = ("container", "host")
#: argyro's own profile keys (everything else is a queue-adapter key)
PROFILE_KEYS = ("jobs", "run_in", "host_argyro", "potcar_dir", "vasp_exe", "mpi_launcher")
#: keys a job-kind entry may set besides queue-adapter keys
KIND_KEYS = ("run_in", "vasp_exe", "mpi_launcher")
#: keys argyro init writes itself: never in a profile
SET_BY_INIT = ("rocket_launch", "scheduler", "_fw_name")
MPI_LAUNCHER = {"slurm": "srun", "pbs": "mpiexec", "local": "mpirun"}
VASP_EXE = "vasp_std"
#: job kinds that never hold a GPU
NO_GPU = ("analysis",)
#: the job kind whose jobs run VASP
VASP_KIND = "vasp"


@dataclass
class SiteJob:
    """The job of one kind (or the shared default job, kind ``None``)."""

    kind: str | None
    qadapter: dict  # queue-adapter settings, without scheduler and rocket_launch
    run_in: str
    argyro: str  # how the job calls argyro (host venv path, or the image's argyro)
    vasp_cmd: str


@dataclass
class Site:
    scheduler: str
    default: SiteJob
    kinds: dict[str, SiteJob] = field(default_factory=dict)
    potcar_dir: str | None = None

    @property
    def vasp_cmd(self) -> str:
        return self.kinds[VASP_KIND].vasp_cmd


def _check_keys(where: str, d: dict, allowed: set[str]) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"site profile: {where}: expected a mapping, got {type(d).__name__}")
    fixed = sorted(k for k in d if k in SET_BY_INIT)
    if fixed:
        raise ConfigError(f"site profile: {where}: {fixed} are written by argyro init, not set in a profile")
    unknown = sorted(k for k in d if k not in allowed)
    if unknown:
        raise ConfigError(f"site profile: {where}: unknown key(s) {unknown}; known: {sorted(allowed)}")


def _covered(path: str, binds: list[str]) -> bool:
    """Whether ``path`` is already visible in the container at the same place through ``binds``."""
    p = PurePosixPath(path)
    for b in binds:
        parts = str(b).split(":")
        src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
        if src == dst and (p == PurePosixPath(src) or PurePosixPath(src) in p.parents):
            return True
    return False


def _job(kind: str | None, shared: dict, entry: dict, scheduler: str, host_argyro: str, potcar_dir: str | None) -> SiteJob:
    where = f"jobs.{kind}" if kind else "top level"
    s = dict(shared)
    for k, v in entry.items():
        s[k] = {**s.get("env", {}), **(v or {})} if k == "env" else v
    run_in = s.pop("run_in", None) or ("container" if s.get("container_runtime", "none") != "none" else "host")
    if run_in not in RUN_IN:
        raise ConfigError(f"site profile: {where}: run_in {run_in!r}: expected one of {', '.join(RUN_IN)}")
    launcher = s.pop("mpi_launcher", None)
    launcher = MPI_LAUNCHER[scheduler] if launcher is None else launcher  # "": VASP without an MPI launcher
    exe = s.pop("vasp_exe", None) or VASP_EXE
    gpus = int(s.get("gpus") or 0)
    if kind in NO_GPU and gpus:
        raise ConfigError(f"site profile: {where}: gpus {gpus}: {kind} jobs (analysis and decisions) never hold a "
                          f"GPU; set jobs.{kind}.gpus: 0")
    if run_in == "host":
        for k in ("container_runtime", "container_image", "container_binds", "container_gpu"):
            s.pop(k, None)
    else:
        if s.get("container_runtime", "none") == "none":
            raise ConfigError(f"site profile: {where}: run_in container needs container_runtime and container_image")
        s["container_gpu"] = bool(s.get("container_gpu", True)) if gpus else False
    if kind == VASP_KIND and potcar_dir:
        s["env"] = {**s.get("env", {}), POTCAR_ENV: potcar_dir}
        binds = list(s.get("container_binds") or [])
        if run_in == "container" and not _covered(potcar_dir, binds):
            s["container_binds"] = binds + [potcar_dir]
    ntasks, nodes = int(s.get("ntasks") or ADAPTER_DEFAULTS["ntasks"]), int(s.get("nodes") or ADAPTER_DEFAULTS["nodes"])
    if scheduler == "pbs" and ntasks % nodes:
        raise ConfigError(f"site profile: {where}: ntasks {ntasks} is not a multiple of nodes {nodes} (PBS places "
                          "ntasks/nodes ranks on each node)")
    if kind:
        s.setdefault("job_name", f"argyro-{kind}")
    argyro = host_argyro if run_in == "host" else "argyro"
    return SiteJob(kind, s, run_in, argyro, f"{launcher} -n {ntasks} {exe}" if launcher else exe)


def resolve(profile: dict | None, scheduler: str, argyro_cmd: str | None = None) -> Site:
    """Every job kind's job from a site profile (checked: unknown keys and kinds, GPUs of analysis jobs,
    run_in). ``argyro_cmd`` (argyro init --argyro-cmd) overrides the profile's ``host_argyro``."""
    profile = dict(profile or {})
    _check_keys("top level", profile, set(ADAPTER_KEYS) | set(PROFILE_KEYS))
    jobs = profile.pop("jobs", None) or {}
    if not isinstance(jobs, dict):
        raise ConfigError("site profile: jobs: expected a mapping of job kind -> job settings")
    unknown = sorted(k for k in jobs if k not in JOB_KINDS)
    if unknown:
        raise ConfigError(f"site profile: jobs: unknown job kind(s) {unknown}; known: {', '.join(JOB_KINDS)}")
    host_argyro = argyro_cmd or profile.pop("host_argyro", None) or "argyro"
    profile.pop("host_argyro", None)  # (when --argyro-cmd won)
    potcar_dir = profile.pop("potcar_dir", None)
    if potcar_dir is not None:
        potcar_dir = str(potcar_dir)
        if not PurePosixPath(potcar_dir).is_absolute():
            raise ConfigError(f"site profile: potcar_dir {potcar_dir!r}: expected an absolute path (jobs and "
                              "containers see it as written)")
    shared = {k: v for k, v in profile.items() if k not in ("vasp_exe", "mpi_launcher")}
    kind_defaults = {k: profile[k] for k in ("vasp_exe", "mpi_launcher") if k in profile}
    default = _job(None, shared, {}, scheduler, host_argyro, None)
    kinds = {}
    for kind in JOB_KINDS:
        entry = jobs.get(kind) or {}
        _check_keys(f"jobs.{kind}", entry, (set(ADAPTER_KEYS) | set(KIND_KEYS)))
        kinds[kind] = _job(kind, shared, {**kind_defaults, **entry}, scheduler, host_argyro, potcar_dir)
    return Site(scheduler, default, kinds, potcar_dir)


def rocket_launch(job: SiteJob, launchpad_file: str, fworker_file: str, offline: bool = False) -> str:
    """The command a job of ``job`` runs: argyro's rlaunch singleshot with that kind's FireWorker; ``offline``
    (compute nodes with no route to the database): FireWorks' offline mode, no launchpad file on the node."""
    if offline:
        return f"{job.argyro} rlaunch -w {shlex.quote(fworker_file)} singleshot --offline"
    return f"{job.argyro} rlaunch -l {shlex.quote(launchpad_file)} -w {shlex.quote(fworker_file)} singleshot"

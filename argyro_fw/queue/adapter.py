"""ArgyroQueueAdapter: a FireWorks queue adapter whose job scripts are Jinja templates
(``templates/jobs/{slurm,pbs,local}.sh.j2``) rendered with StrictUndefined.

Unlike FireWorks' own string.Template adapters, an unknown key in my_qadapter.yaml (or in a
firework's ``_queueadapter``) is an error, and a missing value is an error, never a silently
dropped line. Use in my_qadapter.yaml::
    _fw_name: '{{argyro_fw.queue.adapter.ArgyroQueueAdapter}}'
    scheduler: slurm
    rocket_launch: argyro rlaunch -l /abs/my_launchpad.yaml -w /abs/my_fworker.yaml singleshot
    ...

Jobs are sized per job kind: ``argyro init`` writes one adapter file per kind from the site
profile (:mod:`argyro_fw.queue.profile`), paired with a FireWorker whose category is that kind,
and every firework's spec carries its kind as ``_category`` (:func:`argyro_fw.flows.stages.stage_spec`).
A firework may still set its own ``_queueadapter`` (FireWorks applies it in reserved mode; its keys
are checked like these). ``ntasks`` is the job's total number of MPI ranks (PBS places
ntasks/nodes on each node). Passwords are refused in ``env``: jobs read the database password
from the file named by ``ARGYRO_DB_PASSWORD_FILE``.

Compute nodes with no route to the database (``argyro init --compute-nodes offline``): ``rocket_launch`` ends in
``singleshot --offline`` and ``results_db`` names the results database (no password). FireWorks then requires
``qlaunch -r``; :meth:`ArgyroQueueAdapter.submit_to_queue` stages the reserved firework's reads into its launch folder
(:func:`argyro_fw.collect.stage_launch`) before it submits, and the job script exports ``ARGYRO_OFFLINE=1``.
"""

from __future__ import annotations

import getpass
import os
import re
import shlex
import subprocess
from pathlib import Path

from fireworks.queue.queue_adapter import QueueAdapterBase
from fireworks.utilities.fw_serializers import serialize_fw

from .. import settings as settings_module
from ..collect import stage_launch
from ..db.embedded import EmbeddedServer
from ..errors import ArgyroError
from ..settings import load_config
from ..store.offline import OFFLINE_ENV
from ..templating import render
from .container import container_prefix

SCHEDULERS = ("slurm", "pbs", "local")
DEFAULTS = {
    "scheduler": "slurm",
    "job_name": "argyro",
    "nodes": 1,
    "ntasks": 1,
    "cpus_per_task": 1,
    "gpus": 0,
    "walltime": "01:00:00",
    "mem": None,
    "partition": None,
    "account": None,
    "qos": None,
    "modules": [],
    "env": {},
    "pre_rocket": [],
    "post_rocket": [],
    "extra_directives": [],
    "container_runtime": "none",
    "container_image": None,
    "container_binds": [],
    "container_gpu": False,
    "logdir": None,
    "results_db": None,
}
REQUIRED = ("rocket_launch",)
KNOWN = set(DEFAULTS) | set(REQUIRED) | {"_fw_name", "queue"}
SECRET = re.compile(r"pass(word|wd)?|secret|token", re.IGNORECASE)
#: a known secret shorter than this is matched only as a whole value (a substring match would refuse innocent values)
MIN_SUBSTRING_SECRET = 6


def is_offline(rocket_launch: str) -> bool:
    """Whether jobs run their firework offline (``rlaunch ... singleshot --offline``: no database on the node)."""
    return "--offline" in shlex.split(str(rocket_launch))


def known_secrets() -> list[str]:
    """The database passwords this process can know, to refuse them as values of a job script: every
    ``$ARGYRO_DB_PASSWORD*`` variable (not ``*_FILE``), the variable and the file the argyro config names
    (``db.password_env``, ``db.password_file``), the file ``$ARGYRO_DB_PASSWORD_FILE`` names, the embedded
    server's ``admin.password`` and the password files this process has loaded launchpads with. Never printed."""
    out: list[str] = []
    names = [k for k in os.environ if k.startswith("ARGYRO_DB_PASSWORD") and not k.endswith("_FILE")]
    files = [os.environ.get("ARGYRO_DB_PASSWORD_FILE"), str(EmbeddedServer().password_file)]
    files += list(getattr(settings_module, "_PASSWORD_FILES", {}).values())
    try:
        db = load_config(None).get("db") or {}
    except ArgyroError:
        db = {}
    if db.get("password_env"):
        names.append(str(db["password_env"]))
    files.append(db.get("password_file"))
    out += [os.environ[k] for k in names if os.environ.get(k)]
    for f in files:
        if f:
            try:
                text = Path(f).expanduser().read_text().strip()
            except (OSError, UnicodeDecodeError):
                continue
            if text:
                out.append(text)
    return list(dict.fromkeys(v.strip() for v in out if v.strip()))


def _holds_secret(value, secrets: list[str]) -> bool:
    if isinstance(value, (list, tuple)):
        return any(_holds_secret(v, secrets) for v in value)
    if isinstance(value, dict):
        return any(_holds_secret(v, secrets) for v in value.values())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # YAML reads an all-digit password as a number
    if not isinstance(value, str):
        return False
    return any(value.strip() == s or (len(s) >= MIN_SUBSTRING_SECRET and s in value) for s in secrets)


def refuse_secrets(s: dict) -> None:
    """Refuse a secret in the rendered settings: an ``env`` name that looks like one (``*_FILE`` allowed), or any
    value (``env`` values, rocket_launch, pre/post_rocket, ...) holding a known database password. The value is
    never printed."""
    for k in s["env"]:
        if SECRET.search(k) and not k.endswith("_FILE"):
            raise ArgyroError(f"queue adapter: env {k} looks like a secret; job scripts never hold passwords "
                              "(use ARGYRO_DB_PASSWORD_FILE pointing to a file readable only by you)")
    secrets = known_secrets()
    if not secrets:
        return
    for k, v in s["env"].items():
        if _holds_secret(v, secrets):
            raise ArgyroError(f"queue adapter: env {k}: its value holds the database password; job scripts never "
                              "hold passwords (use ARGYRO_DB_PASSWORD_FILE pointing to a file readable only by you)")
    for k, v in s.items():
        if k != "env" and _holds_secret(v, secrets):
            raise ArgyroError(f"queue adapter: {k}: its value holds the database password; job scripts never hold "
                              "passwords (use ARGYRO_DB_PASSWORD_FILE pointing to a file readable only by you)")


class ArgyroQueueAdapter(QueueAdapterBase):
    _fw_name = "{{argyro_fw.queue.adapter.ArgyroQueueAdapter}}"
    q_name = "argyro"

    def __init__(self, settings: dict | None = None, **kwargs):
        super().__init__(None)  # QueueAdapterBase is a defaultdict: no default factory
        self.update(settings or {})
        self.update(kwargs)

    def _settings(self) -> dict:
        unknown = sorted(k for k in self if k not in KNOWN)
        if unknown:
            raise ArgyroError(f"queue adapter: unknown key(s) {unknown}; known: {sorted(KNOWN - {'_fw_name'})}")
        s = dict(DEFAULTS)
        s.update({k: v for k, v in self.items() if k != "_fw_name"})
        if s.get("queue") and not s.get("partition"):  # FireWorks' name for the partition
            s["partition"] = s["queue"]
        s.pop("queue", None)
        missing = [k for k in REQUIRED if not s.get(k)]
        if missing:
            raise ArgyroError(f"queue adapter: missing required key(s) {missing}")
        if s["scheduler"] not in SCHEDULERS:
            raise ArgyroError(f"queue adapter: scheduler {s['scheduler']!r}: expected one of {', '.join(SCHEDULERS)}")
        if int(s["ntasks"]) % int(s["nodes"]):
            raise ArgyroError(f"queue adapter: ntasks {s['ntasks']} (MPI ranks of the job) is not a multiple of "
                              f"nodes {s['nodes']}")
        refuse_secrets(s)
        offline = is_offline(s["rocket_launch"])
        if offline and not s["results_db"]:
            raise ArgyroError("queue adapter: an --offline rocket_launch needs results_db (the results database the "
                              "login node stages each firework's reads from; argyro init --compute-nodes offline "
                              "writes it)")
        if OFFLINE_ENV in s["env"] and str(s["env"][OFFLINE_ENV]) != ("1" if offline else "0"):
            raise ArgyroError(f"queue adapter: env {OFFLINE_ENV}={s['env'][OFFLINE_ENV]!r} contradicts rocket_launch "
                              f"({'with' if offline else 'without'} --offline)")
        if offline:  # the job's fireworks use their launch's staged store (argyro_fw.store.offline)
            s["env"] = dict(s["env"], **{OFFLINE_ENV: "1"})
        # a value is quoted in the script, where the shell would never expand ~: expand it now (same user, same home)
        s["env"] = {k: os.path.expanduser(v) if isinstance(v, str) and v.startswith("~") else v
                    for k, v in s["env"].items()}
        return s

    def get_script_str(self, launch_dir: str) -> str:
        s = self._settings()
        launch_dir = os.path.abspath(launch_dir)
        try:
            prefix = container_prefix(s["container_runtime"], s["container_image"], list(s["container_binds"]),
                                      bool(s["container_gpu"]), launch_dir, env_names=list(s["env"]))
        except ValueError as exc:
            raise ArgyroError(f"queue adapter: {exc}") from None
        command = shlex.join(prefix) + " " + s["rocket_launch"] if prefix else s["rocket_launch"]
        ctx = dict(s, launch_dir=launch_dir, command=command, logdir=s["logdir"] or launch_dir,
                   ranks_per_node=int(s["ntasks"]) // int(s["nodes"]))
        return render(f"jobs/{s['scheduler']}.sh.j2", **ctx)

    def submit_to_queue(self, script_file: str):
        s = self._settings()
        if is_offline(s["rocket_launch"]):
            # qlaunch -r reserved the firework into this folder (FW.json, FW_offline.json): stage what it reads
            stage_launch(os.path.dirname(os.path.abspath(script_file)), s["results_db"])
        if s["scheduler"] == "slurm":
            cmd = ["sbatch", script_file]
        elif s["scheduler"] == "pbs":
            cmd = ["qsub", script_file]
        else:
            proc = subprocess.Popen(["bash", script_file], start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return proc.pid
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            self.get_qlogger("qadapter.argyro").error(f"{cmd[0]} failed: {proc.stderr.strip()}")
            return None
        m = re.search(r"(\d+)", proc.stdout)
        return int(m.group(1)) if m and s["scheduler"] == "slurm" else (proc.stdout.strip() or None)

    def get_njobs_in_queue(self, username=None):
        s = self._settings()
        user = username or getpass.getuser()
        if s["scheduler"] == "slurm":
            out = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i"], capture_output=True, text=True)
        elif s["scheduler"] == "pbs":
            out = subprocess.run(["qstat", "-u", user], capture_output=True, text=True)
            return sum(1 for ln in out.stdout.splitlines() if ln[:1].isdigit())
        else:
            return 0
        return len([ln for ln in out.stdout.splitlines() if ln.strip()])

    @serialize_fw
    def to_dict(self):
        return dict(self)

    @classmethod
    def from_dict(cls, m_dict):
        return cls({k: v for k, v in m_dict.items()})

"""FireWorks configuration files (``argyro init``) and LaunchPad objects for argyro's own code."""

from __future__ import annotations

import os
from pathlib import Path

import pymongo.errors
import yaml
from fireworks import LaunchPad

from . import compat
from .core.serialise import write_atomic
from .dft.paw import POTCAR_ENV
from .errors import ConfigError, DatabaseError
from .queue.adapter import ArgyroQueueAdapter
from .queue.profile import VASP_KIND, Site, resolve, rocket_launch
from .recovery import FW_CONFIG_FILE
from .settings import DBSettings, PingSettings
from .templating import render

SITES = ("local", "slurm", "pbs")
# where `argyro init` writes its files, and the launchpad file every `-l/--launchpad` option defaults to
DEFAULT_LAUNCHPAD_DIR = "launchpad"
LAUNCHPAD_FILE, FWORKER_FILE, QADAPTER_FILE = "my_launchpad.yaml", "my_fworker.yaml", "my_qadapter.yaml"
DEFAULT_LAUNCHPAD = f"{DEFAULT_LAUNCHPAD_DIR}/{LAUNCHPAD_FILE}"


def fworker_file(kind: str) -> str:
    """The FireWorker file of one job kind (category = kind), beside FWORKER_FILE."""
    return FWORKER_FILE.replace(".yaml", f".{kind}.yaml")


def qadapter_file(kind: str) -> str:
    """The queue-adapter file of one job kind, beside QADAPTER_FILE."""
    return QADAPTER_FILE.replace(".yaml", f".{kind}.yaml")


def init_files(
    settings: DBSettings,
    directory: str | os.PathLike = DEFAULT_LAUNCHPAD_DIR,
    site: str = "local",
    worker_name: str | None = None,
    logdir: str | None = None,
    profile: dict | None = None,
    argyro_cmd: str | None = None,
    offline: bool = False,
) -> list[Path]:
    """Render my_launchpad.yaml, my_fworker.yaml, my_qadapter.yaml and FW_config.yaml (the ping interval,
    :mod:`argyro_fw.recovery`) into ``directory``, and for a
    cluster site (slurm, pbs) one my_fworker.<kind>.yaml + my_qadapter.<kind>.yaml per job kind from
    the site ``profile`` (:mod:`argyro_fw.queue.profile`).

    No password is ever written: FireWorks gets it at run time through :mod:`argyro_fw.compat`.
    Every file is rendered and checked (each adapter renders its job script) before any is written.
    ``offline``: compute nodes with no route to the database: jobs run ``rlaunch ... singleshot --offline`` and
    the adapters name the results database the login node stages each firework's reads from (``qlaunch -r``,
    then ``argyro collect``; :mod:`argyro_fw.collect`). Returns the paths written.
    """
    if site not in SITES:
        raise ConfigError(f"--site {site!r}: expected one of {', '.join(SITES)}")
    if offline and site == "local":
        raise ConfigError("--compute-nodes offline needs a batch site (--site slurm|pbs): a local worker reaches "
                          "the database")
    d = Path(directory).expanduser().resolve()
    worker = worker_name or f"argyro-{site}"
    plan: Site = resolve(profile, site, argyro_cmd)
    ctx = dict(
        host=settings.host,
        port=settings.port,
        name=settings.name,
        username=settings.username,
        authsource=settings.authsource,
        password_env=settings.password_env,
        password_file=settings.password_file,
        tls_ca_file=settings.tls_ca_file,
        logdir=logdir,
        site=site,
        launchpad_file=str(d / LAUNCHPAD_FILE),
        vasp_cmd=plan.vasp_cmd,
        offline=offline,
    )

    def pair(job, fw_name: str, qa_name: str, worker: str) -> dict[str, str]:
        c = dict(ctx, kind=job.kind, worker_name=worker, fworker_file=str(d / fw_name), run_in=job.run_in,
                 qadapter=job.qadapter, rocket_launch=rocket_launch(job, str(d / LAUNCHPAD_FILE), str(d / fw_name), offline))
        out = {fw_name: render("launchpad/my_fworker.yaml.j2", **c)}
        if qa_name:
            out[qa_name] = render(f"launchpad/my_qadapter.{site}.yaml.j2", **c)
        return out

    texts = {LAUNCHPAD_FILE: render("launchpad/my_launchpad.yaml.j2", **ctx)}
    ping = PingSettings()  # the liveness ping `argyro recover` relies on (argyro_fw.recovery)
    texts[FW_CONFIG_FILE] = render("launchpad/FW_config.yaml.j2", ping_s=int(ping.interval_s),
                                   expiry_pings=ping.expiry_pings, expiry_s=int(ping.interval_s * ping.expiry_pings))
    qa_files = []
    if site == "local":  # no scheduler: one worker for every kind, no queue adapter
        texts.update(pair(plan.default, FWORKER_FILE, "", worker))
        texts[QADAPTER_FILE] = render("launchpad/my_qadapter.local.yaml.j2", **dict(ctx, fworker_file=str(d / FWORKER_FILE)))
    else:
        texts.update(pair(plan.default, FWORKER_FILE, QADAPTER_FILE, worker))
        qa_files.append(QADAPTER_FILE)
        for kind, job in plan.kinds.items():
            texts.update(pair(job, fworker_file(kind), qadapter_file(kind), f"{worker}-{kind}"))
            qa_files.append(qadapter_file(kind))
    for name, text in texts.items():  # all rendered and checked before any is written
        yaml.safe_load(text)
    for name in qa_files:
        qa = yaml.safe_load(texts[name])
        ArgyroQueueAdapter({k: v for k, v in qa.items() if k != "_fw_name"}).get_script_str(str(d))
    d.mkdir(parents=True, exist_ok=True)
    return [write_atomic(d / name, text) for name, text in texts.items()]


def site_potcar_dir(launchpad_file: str | os.PathLike) -> str | None:
    """The POTCAR folder VASP jobs get (``$ARGYRO_POTCAR_DIR`` in the vasp queue adapter that `argyro init`
    wrote beside ``launchpad_file``), or None when there is no such adapter or it sets none."""
    f = Path(launchpad_file).expanduser().parent / qadapter_file(VASP_KIND)
    if not f.is_file():
        return None
    try:
        qa = yaml.safe_load(f.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{f}: cannot be read ({exc})") from None
    return (qa.get("env") or {}).get(POTCAR_ENV)


def get_launchpad(launchpad_file: str | os.PathLike | None = None, settings: DBSettings | None = None):
    """A FireWorks LaunchPad from a launchpad file or from settings; checks the server answers."""
    compat.install()

    if launchpad_file is not None:
        p = Path(launchpad_file)
        if not p.is_file():
            raise ConfigError(f"launchpad file {p}: does not exist (run 'argyro init' first)")
        try:
            lp = LaunchPad.from_file(str(p))
        except Exception as exc:  # yaml or key errors from FireWorks
            raise ConfigError(f"launchpad file {p}: cannot be loaded ({exc})") from None
        where = f"{lp.host}:{lp.port}"
    else:
        assert settings is not None
        lp = LaunchPad(
            host=settings.host,
            port=settings.port,
            name=settings.name,
            username=settings.username,
            password=settings.password(),
            authsource=settings.authsource,
            mongoclient_kwargs={"retryWrites": False, "serverSelectionTimeoutMS": 5000, **settings.tls_kwargs()},
            strm_lvl="WARNING",
        )
        where = f"{settings.host}:{settings.port}"
    check_connection(lp.db, where)
    return lp


def check_connection(db, where: str) -> None:
    """Raise a one-line DatabaseError unless ``db`` answers and accepts our credentials."""
    try:
        db.list_collection_names()
    except pymongo.errors.OperationFailure as exc:
        if exc.code in (13, 18):
            raise DatabaseError(f"database at {where}: authentication failed (check the user and its password)") from None
        raise DatabaseError(f"database at {where}: {exc.details.get('errmsg', exc) if exc.details else exc}") from None
    except pymongo.errors.PyMongoError as exc:
        raise DatabaseError(f"database at {where} is not reachable ({type(exc).__name__})") from None

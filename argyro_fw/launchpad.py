"""FireWorks configuration files (``argyro init``) and LaunchPad objects for argyro's own code."""

from __future__ import annotations

import os
from pathlib import Path

import pymongo.errors
import yaml
from fireworks import LaunchPad

from . import compat
from .core.serialise import write_atomic
from .errors import ConfigError, DatabaseError
from .queue.adapter import ArgyroQueueAdapter
from .settings import DBSettings
from .templating import render

SITES = ("local", "slurm", "pbs")
# where `argyro init` writes its files, and the launchpad file every `-l/--launchpad` option defaults to
DEFAULT_LAUNCHPAD_DIR = "launchpad"
LAUNCHPAD_FILE, FWORKER_FILE, QADAPTER_FILE = "my_launchpad.yaml", "my_fworker.yaml", "my_qadapter.yaml"
DEFAULT_LAUNCHPAD = f"{DEFAULT_LAUNCHPAD_DIR}/{LAUNCHPAD_FILE}"


def init_files(
    settings: DBSettings,
    directory: str | os.PathLike = DEFAULT_LAUNCHPAD_DIR,
    site: str = "local",
    worker_name: str | None = None,
    logdir: str | None = None,
    profile: dict | None = None,
    argyro_cmd: str = "argyro",
) -> list[Path]:
    """Render my_launchpad.yaml, my_fworker.yaml and my_qadapter.yaml into ``directory``.

    No password is ever written: FireWorks gets it at run time through :mod:`argyro_fw.compat`.
    Returns the paths written.
    """
    if site not in SITES:
        raise ConfigError(f"--site {site!r}: expected one of {', '.join(SITES)}")
    d = Path(directory).expanduser().resolve()
    d.mkdir(parents=True, exist_ok=True)
    ctx = dict(
        host=settings.host,
        port=settings.port,
        name=settings.name,
        username=settings.username,
        authsource=settings.authsource,
        password_env=settings.password_env,
        logdir=logdir,
        worker_name=worker_name or f"argyro-{site}",
        site=site,
        launchpad_file=str(d / LAUNCHPAD_FILE),
        fworker_file=str(d / FWORKER_FILE),
        profile=profile or {},
        argyro_cmd=argyro_cmd,
    )
    texts = {
        LAUNCHPAD_FILE: render("launchpad/my_launchpad.yaml.j2", **ctx),
        FWORKER_FILE: render("launchpad/my_fworker.yaml.j2", **ctx),
        QADAPTER_FILE: render(f"launchpad/my_qadapter.{site}.yaml.j2", **ctx),
    }
    for name, text in texts.items():  # all rendered and checked before any is written
        yaml.safe_load(text)
    if site != "local":
        qa = yaml.safe_load(texts[QADAPTER_FILE])
        ArgyroQueueAdapter({k: v for k, v in qa.items() if k != "_fw_name"}).get_script_str(str(d))
    return [write_atomic(d / name, text) for name, text in texts.items()]


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
            mongoclient_kwargs={"retryWrites": False, "serverSelectionTimeoutMS": 5000},
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

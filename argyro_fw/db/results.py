"""The results database (calculations, structures, analyses) as seen from FireTasks and the CLI.

Inside a firework, the connection comes from the FireWorker env ``argyro_db`` (written by
``argyro init``: host, port, name, username, authsource; never a password) so that results land
in the same database as the LaunchPad; outside, from :func:`argyro_fw.settings.resolve`.
"""

from __future__ import annotations

from typing import Any

import pymongo

from ..settings import DBSettings, resolve


def settings_from_spec(fw_spec: dict | None) -> DBSettings:
    env = (fw_spec or {}).get("_fw_env", {}) or {}
    d = env.get("argyro_db")
    if not d:
        return resolve()
    return DBSettings(host=d["host"], port=int(d["port"]), name=d["name"], username=d.get("username"),
                      authsource=d.get("authsource"), password_env=d.get("password_env", "ARGYRO_DB_PASSWORD"),
                      source="fworker env argyro_db")


def results_db(fw_spec: dict | None = None, settings: DBSettings | None = None) -> Any:
    """A pymongo Database for results."""
    s = settings or settings_from_spec(fw_spec)
    return pymongo.MongoClient(**s.client_kwargs())[s.name]

"""Riding out a database outage: a restart of the server (seconds) or a short network cut must not fail a
worker, its firework or the study's records.

:func:`ride_out` calls a function; when the connection to the server is lost (pymongo's ``ConnectionFailure``:
the server closed the connection, or none answered within the client's selection timeout) it waits for the
server to answer ``ping`` again (every second, at most :func:`outage_limit_s`: ``$ARGYRO_DB_OUTAGE_S``,
default 600 s, for each wait: a worker whose store call, report and launcher each meet the same long outage
waits up to a few times that) and calls the function again; past the limit the error is raised. It is used
only for calls that may be repeated: the results store's writes are upserts by key and its reads are reads; FireWorks' ping
and completion of a launch set the same values again (:mod:`argyro_fw.recovery`). The store does it only in a
worker process (:func:`mark_worker`): interactive commands keep failing at once with a named error.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable, TypeVar

from pymongo.errors import ConnectionFailure, PyMongoError

from ..errors import ConfigError

T = TypeVar("T")
OUTAGE_ENV = "ARGYRO_DB_OUTAGE_S"
DEFAULT_OUTAGE_S = 600.0
log = logging.getLogger("argyro.db")


_worker = threading.Event()


def mark_worker() -> None:
    """This process runs fireworks (it checked one out): the results store rides out outages from now on. A
    command-line process never is one, so ``argyro results`` with no server still fails at once."""
    _worker.set()


def in_worker() -> bool:
    return _worker.is_set()


def outage_limit_s() -> float:
    """How long a worker waits for the database to come back ($ARGYRO_DB_OUTAGE_S, default 600 s)."""
    raw = os.environ.get(OUTAGE_ENV)
    if raw is None:
        return DEFAULT_OUTAGE_S
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"${OUTAGE_ENV}={raw!r}: expected seconds (a number >= 0)") from None
    if value < 0:
        raise ConfigError(f"${OUTAGE_ENV}={raw!r}: expected seconds (a number >= 0)")
    return value


def wait_for_server(client, limit_s: float, what: str) -> bool:
    """Wait until ``client``'s server answers ``ping`` (True), at most ``limit_s`` seconds (False)."""
    deadline = time.monotonic() + limit_s
    log.warning("argyro: %s lost the database connection; waiting up to %.0f s for the server", what, limit_s)
    while True:
        try:
            client.admin.command("ping")
            log.warning("argyro: the database answers again; %s goes on", what)
            return True
        except PyMongoError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)


def ride_out(fn: Callable[[], T], client, what: str) -> T:
    """``fn()``, called again after the server is back when the connection is lost (module docstring)."""
    deadline = time.monotonic() + outage_limit_s()
    while True:
        try:
            return fn()
        except ConnectionFailure:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_for_server(client, left, what):
                raise

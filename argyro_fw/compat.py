"""Fixes applied to FireWorks at run time, in argyro's own processes.

1. ``fireworks.core.rocket`` calls ``monty.io.zopen(path)`` without a mode; every monty that the
   current pymatgen accepts (>= 2026.7.16) refuses that, which breaks FireWorks' offline mode
   (``rlaunch --offline``) for everyone. We give rocket.py a ``zopen`` whose mode defaults to
   text ("rt"), as old monty did.
2. Password injection: argyro never writes a database password into my_launchpad.yaml. When a
   launchpad file names a ``username`` but no ``password``, the password is read at run time from
   the environment variable named by ``argyro_password_env`` (default ``ARGYRO_DB_PASSWORD``) or
   the file named by ``$ARGYRO_DB_PASSWORD_FILE``.
3. Race-free fw_id/launch_id counters (``argyro_fw.fw_counters``): the embedded server returns a
   stale pre-image from a concurrent ``$inc``, which gave two rockets one launch_id.

``install()`` is idempotent; ``argyro lpad|rlaunch|qlaunch`` call it before handing over to
FireWorks' own command-line entry points, and importing any argyro FireTask module calls it too.
"""

from __future__ import annotations

import os
from pathlib import Path

import fireworks.core.rocket as rocket
from fireworks.core.launchpad import LaunchPad
from monty.io import zopen

from .fw_counters import patch_launchpad

_installed = False


def _zopen_default_text(filename, mode: str = "rt", **kwargs):
    if "b" not in mode and "t" not in mode:
        mode = mode + "t"
    return zopen(filename, mode, **kwargs)


def launchpad_password(d: dict) -> str | None:
    """The password for launchpad dict ``d`` from the environment (never from the file)."""
    env_name = d.get("argyro_password_env") or "ARGYRO_DB_PASSWORD"
    if os.environ.get(env_name):
        return os.environ[env_name]
    pfile = os.environ.get("ARGYRO_DB_PASSWORD_FILE")
    if pfile and Path(pfile).is_file():
        return Path(pfile).read_text().strip()
    return None


def install() -> None:
    """Apply the fixes above to the imported FireWorks modules (once per process)."""
    global _installed
    if _installed:
        return
    rocket.zopen = _zopen_default_text
    patch_launchpad(LaunchPad)

    original = LaunchPad.from_dict.__func__

    def from_dict(cls, d):
        if d.get("username") and not d.get("password"):
            pw = launchpad_password(d)
            if pw:
                d = dict(d, password=pw)
        return original(cls, d)

    LaunchPad.from_dict = classmethod(from_dict)
    _installed = True

"""Fixes applied to FireWorks at run time, in argyro's own processes.

1. ``fireworks.core.rocket`` calls ``monty.io.zopen(path)`` without a mode; every monty that the
   current pymatgen accepts (>= 2026.7.16) refuses that, which breaks FireWorks' offline mode
   (``rlaunch --offline``) for everyone. We give rocket.py a ``zopen`` whose mode defaults to
   text ("rt"), as old monty did.
2. Password injection: argyro never writes a database password into my_launchpad.yaml. When a
   launchpad file names a ``username`` but no ``password``, the password is read at load time from
   the file named by ``argyro_password_file`` (the embedded server's ``admin.password``), else the
   environment variable named by ``argyro_password_env`` (default ``ARGYRO_DB_PASSWORD``), else the
   file named by ``$ARGYRO_DB_PASSWORD_FILE`` (:func:`argyro_fw.settings.patch_launchpad_auth`; FireWorks'
   own ``lpad``/``rlaunch``/``qlaunch`` get the same through the ``.pth`` hook of ``argyro install-hook``).
3. Race-free fw_id/launch_id counters (``argyro_fw.fw_counters``): the embedded server returns a
   stale pre-image from a concurrent ``$inc``, which gave two rockets one launch_id.

``install()`` is idempotent; ``argyro lpad|rlaunch|qlaunch`` call it before handing over to
FireWorks' own command-line entry points, and importing any argyro FireTask module calls it too.
"""

from __future__ import annotations

import fireworks.core.rocket as rocket
from fireworks.core.launchpad import LaunchPad
from monty.io import zopen

from .fw_counters import patch_launchpad
from .settings import patch_launchpad_auth

_installed = False


def _zopen_default_text(filename, mode: str = "rt", **kwargs):
    if "b" not in mode and "t" not in mode:
        mode = mode + "t"
    return zopen(filename, mode, **kwargs)


def install() -> None:
    """Apply the fixes above to the imported FireWorks modules (once per process)."""
    global _installed
    if _installed:
        return
    rocket.zopen = _zopen_default_text
    patch_launchpad(LaunchPad)
    patch_launchpad_auth(LaunchPad)
    _installed = True

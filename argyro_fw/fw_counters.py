"""Race-free id counters for FireWorks on the embedded server.

FireWorks hands out fw_ids and launch_ids with ``fw_id_assigner.find_one_and_update({}, {"$inc":
...})`` and reads the counter from the *pre-image* the server returns. SecantusDB 0.7.0b3 applies
the ``$inc`` atomically but returns a pre-image read before its write lock, so two concurrent
callers can be handed the same value (reproduced: 6 processes x 300 ``$inc`` gave 1800 updates
but only ~1250 distinct pre-images; with ``return_document=AFTER`` all 1800 were distinct). In
FireWorks that means two rockets with one launch_id, and the second launch document overwrites
the first.

The fix here is on the client: the counter collection asks for the post-image (which the
server takes from the write itself) and subtracts the increment, which gives exactly the
pre-image a correct server would have returned. It is correct on any MongoDB, so it is applied
unconditionally.

It reaches every process that loads FireWorks in argyro's environment:

- argyro's own processes call :func:`patch_launchpad` through ``argyro_fw.compat.install``;
- FireWorks' own console scripts (``rlaunch``, ``lpad``, ``qlaunch``) get it through
  ``argyro_fireworks_counters.pth`` (written by ``argyro fw install-hook``, which ``make install``
  and the container build run): the .pth registers :class:`_LaunchPadFinder`, which patches
  ``fireworks.core.launchpad`` right after it is imported. Nothing else is imported at start-up.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path

PTH_NAME = "argyro_fireworks_counters.pth"
PTH_LINE = "import argyro_fw.fw_counters as _a; _a.register()\n"


class CounterCollection:
    """A pymongo collection whose ``$inc``-only find_one_and_update returns a race-free pre-image."""

    def __init__(self, collection):
        self._collection = collection

    def __getattr__(self, name):
        return getattr(self._collection, name)

    def find_one_and_update(self, filter, update, *args, **kwargs):  # noqa: A002 (pymongo's name)
        from pymongo import ReturnDocument  # loaded at every interpreter start (.pth hook): stays light

        plain_inc = (
            not args
            and isinstance(update, dict)
            and set(update) == {"$inc"}
            and all("." not in k for k in update["$inc"])
            and kwargs.get("return_document", ReturnDocument.BEFORE) == ReturnDocument.BEFORE
            and kwargs.get("projection") is None
            and not kwargs.get("upsert")
        )
        if not plain_inc:
            return self._collection.find_one_and_update(filter, update, *args, **kwargs)
        kwargs["return_document"] = ReturnDocument.AFTER
        post = self._collection.find_one_and_update(filter, update, **kwargs)
        if post is None:
            return None
        pre = dict(post)
        for key, step in update["$inc"].items():
            pre[key] = post[key] - step
        return pre


def patch_launchpad(launchpad_cls) -> None:
    """Make ``launchpad_cls().fw_id_assigner`` a :class:`CounterCollection` (idempotent)."""
    from .recovery import patch_launchpad as patch_workers  # here, not at the top: the .pth loads this module

    patch_workers(launchpad_cls)  # ping interval, worker record, late finishes (argyro_fw.recovery)
    if getattr(launchpad_cls, "_argyro_counters", False):
        return

    def _get(self):
        return self.__dict__["_argyro_fw_id_assigner"]

    def _set(self, collection):
        if not isinstance(collection, CounterCollection):
            collection = CounterCollection(collection)
        self.__dict__["_argyro_fw_id_assigner"] = collection

    launchpad_cls.fw_id_assigner = property(_get, _set)
    launchpad_cls._argyro_counters = True


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        patch_launchpad(module.LaunchPad)
        from .settings import patch_launchpad_auth  # here, not at the top: the .pth loads this module at every start

        patch_launchpad_auth(module.LaunchPad)  # the password of a launchpad file, read from its password file


class _LaunchPadFinder(importlib.abc.MetaPathFinder):
    """Patches ``fireworks.core.launchpad`` as it is imported; ignores every other module."""

    target = "fireworks.core.launchpad"

    def find_spec(self, fullname, path, target=None):
        if fullname != self.target:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def register() -> None:
    """Install the import hook (from the .pth file); patch at once if FireWorks is loaded."""
    mod = sys.modules.get(_LaunchPadFinder.target)
    if mod is not None:
        patch_launchpad(mod.LaunchPad)
        return
    if not any(isinstance(f, _LaunchPadFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LaunchPadFinder())


def install_pth(site_dir: str | Path | None = None) -> Path:
    """Write the .pth file into ``site_dir`` (default: this environment's purelib). Idempotent."""
    import sysconfig  # this module loads at every interpreter start (.pth hook): stays light

    site = Path(site_dir or sysconfig.get_paths()["purelib"])
    pth = site / PTH_NAME
    if not pth.exists() or pth.read_text() != PTH_LINE:
        tmp = pth.with_suffix(".tmp")
        tmp.write_text(PTH_LINE)
        tmp.replace(pth)
    return pth

"""Where argyro keeps its files: $ARGYRO_HOME (default ~/.argyro) and the Jinja templates."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import ConfigError


def argyro_home() -> Path:
    """The argyro home directory: ``$ARGYRO_HOME`` or ``~/.argyro``."""
    return Path(os.environ.get("ARGYRO_HOME", Path.home() / ".argyro")).expanduser().resolve()


def templates_dir() -> Path:
    """The Jinja templates: ``$ARGYRO_TEMPLATES`` if set, else the package data ``argyro_fw/templates``
    found through :mod:`importlib.resources` (the same in a source checkout and in an installed copy)."""
    env = os.environ.get("ARGYRO_TEMPLATES")
    if env:
        return Path(env).expanduser()
    root = resources.files("argyro_fw").joinpath("templates")
    if not isinstance(root, Path):  # e.g. a zipped install: no folder on disk for Jinja to read
        raise ConfigError(f"argyro templates are not on the file system ({root}); set ARGYRO_TEMPLATES")
    return root

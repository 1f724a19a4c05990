"""Where argyro keeps its files: $ARGYRO_HOME (default ~/.argyro) and the Jinja templates."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def argyro_home() -> Path:
    """The argyro home directory: ``$ARGYRO_HOME`` or ``~/.argyro``."""
    return Path(os.environ.get("ARGYRO_HOME", Path.home() / ".argyro")).expanduser().resolve()


def templates_dir() -> Path:
    """The ``templates/`` folder: ``$ARGYRO_TEMPLATES``, the source checkout's, or the installed copy."""
    env = os.environ.get("ARGYRO_TEMPLATES")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent / "templates"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "argyro" / "templates"

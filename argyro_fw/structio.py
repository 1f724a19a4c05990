"""Reading structures from files with errors that name the file and what was expected."""

from __future__ import annotations

from pathlib import Path

import ase.io
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .errors import ArgyroError


def read_structure(path: str | Path) -> Structure:
    """A periodic pymatgen Structure from any format pymatgen or ASE reads (POSCAR, CIF, extxyz, ...)."""
    p = Path(path)
    if not p.is_file():
        raise ArgyroError(f"structure file {p}: does not exist")
    try:
        return Structure.from_file(str(p))
    except Exception:
        pass
    try:
        atoms = ase.io.read(str(p))
    except Exception as exc:
        raise ArgyroError(f"structure file {p}: not a structure pymatgen or ASE can read ({type(exc).__name__})") from None
    if not all(atoms.pbc) or atoms.cell.rank < 3:
        raise ArgyroError(f"structure file {p}: not periodic in 3 dimensions (a cell with three vectors is expected)")
    return AseAtomsAdaptor.get_structure(atoms)

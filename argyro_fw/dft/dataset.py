"""MACE-ready datasets: ASE Atoms frames with REF_energy / REF_forces / REF_stress, written as
extended XYZ, and the frame selections of METHOD.md section 5.

Units: REF_energy eV, REF_forces eV/Angstrom, REF_stress eV/Angstrom^3 (ASE sign, Voigt-free 3x3).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from ..core.serialise import atomic_path
from ..errors import ArgyroError
from .parse import VaspResult


def frames_from_result(result: VaspResult, config_type: str, indices: Sequence[int] | None = None) -> list[Atoms]:
    """One Atoms per selected ionic step, with REF_* labels and ``config_type`` in ``info``."""
    idx = range(len(result.steps)) if indices is None else indices
    frames = []
    for i in idx:
        st = result.steps[i]
        at = AseAtomsAdaptor.get_atoms(st.structure)
        at.info.update(REF_energy=st.energy, config_type=config_type, step=int(i), source=result.directory)
        if st.stress is not None:  # MD frames carry none (VASP's ISIF 0): MACE then gives them no stress weight
            at.info["REF_stress"] = st.stress.copy()
        at.arrays["REF_forces"] = st.forces.copy()
        frames.append(at)
    return frames


def every_kth(n: int, k: int, start: int = 0) -> list[int]:
    """Indices start, start+k, ... below n."""
    if k < 1:
        raise ArgyroError(f"stride k must be >= 1, got {k}")
    return list(range(start, n, k))


def evenly_spaced(n: int, count: int) -> list[int]:
    """``count`` indices spread evenly over 0..n-1, first and last included (count <= n)."""
    if count < 1 or count > n:
        raise ArgyroError(f"cannot pick {count} evenly spaced frames out of {n}")
    if count == 1:
        return [n - 1]
    return sorted({int(round(x)) for x in np.linspace(0, n - 1, count)})


def temperature_buckets(n_by_temperature: dict[float, int], per_temperature: int) -> dict[float, list[int]]:
    """Evenly spaced indices per temperature run (METHOD.md 5: 75 frames at each of 400-1000 K)."""
    return {t: evenly_spaced(n, per_temperature) for t, n in n_by_temperature.items()}


def canonical(atoms: Atoms) -> Atoms:
    """A copy with positions and cell rounded to 1e-6 Angstrom: such values survive an extxyz
    round trip (8 decimals) exactly, so a frame's hash is the same before and after writing."""
    a = Atoms(atoms.get_chemical_symbols(), positions=np.round(atoms.get_positions(), 6),
              cell=np.round(np.asarray(atoms.cell), 6), pbc=atoms.pbc)
    a.info.update(atoms.info)
    for k, v in atoms.arrays.items():
        if k not in ("numbers", "positions"):
            a.arrays[k] = v.copy()
    return a


def structure_hash(atoms: Atoms, decimals: int = 4) -> str:
    """A hash of species, cell and positions rounded to ``decimals`` Angstrom: the identity of a
    frame for "never label twice". Hash canonical frames (:func:`canonical`)."""
    atoms = canonical(atoms)
    h = hashlib.sha256()
    h.update(" ".join(atoms.get_chemical_symbols()).encode())
    h.update(np.round(np.asarray(atoms.cell), decimals).tobytes())
    h.update(np.round(atoms.get_positions(), decimals).tobytes())
    return h.hexdigest()[:24]


def write_extxyz(frames: Sequence[Atoms], path: str | Path) -> Path:
    """Write frames to extended XYZ through a temporary file (no half-written dataset)."""
    if not frames:
        raise ArgyroError(f"{path}: no frames to write")
    clean = []
    for at in frames:
        a = at.copy()
        a.calc = None
        clean.append(a)
    with atomic_path(path) as tmp:
        ase.io.write(tmp, clean, format="extxyz")
    return Path(path)

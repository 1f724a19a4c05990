"""Parse a finished VASP directory with pymatgen into plain, database-ready data.

Energies in eV, forces in eV/Angstrom, stress in eV/Angstrom^3 with ASE's sign convention
(positive = tensile; VASP prints kBar with the opposite sign: stress_ase = -0.1 GPa * stress_vasp).
The training energy is the free energy TOTEN (``e_fr_energy``), the one the forces are the
derivatives of; ``e_0_energy`` (sigma -> 0) is kept alongside.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from monty.io import zopen
from pymatgen.io.vasp import Vasprun

from ..errors import ArgyroError

KBAR_TO_EV_A3 = -0.1 * units.GPa  # VASP kBar (compressive positive) -> ASE eV/A^3 (tensile positive)


class VaspParseError(ArgyroError):
    """A VASP output is missing, truncated or unreadable."""


@dataclass
class IonicStep:
    energy: float  # eV, free energy TOTEN
    e_0_energy: float  # eV, energy(sigma -> 0)
    forces: np.ndarray  # (N, 3) eV/A
    stress: np.ndarray  # (3, 3) eV/A^3, ASE sign
    structure: Any  # pymatgen Structure


@dataclass
class VaspResult:
    directory: str
    steps: list[IonicStep]
    final_structure: Any
    incar: dict
    kpoints: dict | None
    converged_electronic: bool
    converged_ionic: bool
    input_checksum: str | None
    vasp_version: str
    extra: dict = field(default_factory=dict)

    @property
    def final_energy(self) -> float:
        return self.steps[-1].energy

    def to_doc(self, max_steps_in_doc: int = 2000) -> dict:
        """A MongoDB document (numbers as lists). Steps beyond ``max_steps_in_doc`` stay in files."""
        steps = self.steps if len(self.steps) <= max_steps_in_doc else self.steps[-1:]
        return {
            "directory": self.directory,
            "final_energy_eV": self.final_energy,
            "final_e0_energy_eV": self.steps[-1].e_0_energy,
            "n_ionic_steps": len(self.steps),
            "n_atoms": len(self.final_structure),
            "formula": self.final_structure.composition.formula,
            "ionic_steps": [
                {"energy_eV": s.energy, "e_0_energy_eV": s.e_0_energy, "forces_eV_A": s.forces.tolist(),
                 "stress_eV_A3": s.stress.tolist()}
                for s in steps
            ],
            "ionic_steps_truncated": len(steps) != len(self.steps),
            "final_structure": self.final_structure.as_dict(),
            "incar": self.incar,
            "kpoints": self.kpoints,
            "converged_electronic": self.converged_electronic,
            "converged_ionic": self.converged_ionic,
            "input_checksum": self.input_checksum,
            "vasp_version": self.vasp_version,
        }


def _find(directory: Path, name: str) -> Path | None:
    for cand in (directory / name, directory / f"{name}.gz", directory / f"{name}.bz2", directory / f"{name}.xz"):
        if cand.is_file():
            return cand
    return None


def inputs_checksum(directory: str | Path) -> str | None:
    """sha256 of INCAR, KPOINTS, POSCAR as written (None if any is missing)."""
    d = Path(directory)
    h = hashlib.sha256()
    for name in ("INCAR", "KPOINTS", "POSCAR"):
        f = _find(d, name)
        if f is None:
            return None
        with zopen(f, "rt") as fh:
            h.update(name.encode() + b"\0" + fh.read().encode() + b"\0")
    return h.hexdigest()


def parse_vasp_dir(directory: str | Path) -> VaspResult:
    """Parse ``vasprun.xml[.gz]`` in ``directory``. Raises VaspParseError naming the file."""
    d = Path(directory)
    f = _find(d, "vasprun.xml")
    if f is None:
        raise VaspParseError(f"{d}: no vasprun.xml (did VASP run?)")
    try:
        vr = Vasprun(str(f), parse_potcar_file=False, parse_dos=False, parse_eigen=False, exception_on_bad_xml=True)
    except Exception as exc:  # lxml/ElementTree syntax errors, EOF in gzip, missing tags: all "unreadable"
        raise VaspParseError(f"{f}: truncated or unreadable vasprun.xml ({type(exc).__name__}: {exc})") from None
    if not vr.ionic_steps:
        raise VaspParseError(f"{f}: holds no ionic step")
    steps = []
    for i, st in enumerate(vr.ionic_steps):
        try:
            forces = np.asarray(st["forces"], dtype=float)
            stress = np.asarray(st.get("stress", np.zeros((3, 3))), dtype=float) * KBAR_TO_EV_A3
            steps.append(IonicStep(float(st["e_fr_energy"]), float(st["e_0_energy"]), forces, stress, st["structure"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise VaspParseError(f"{f}: ionic step {i} is incomplete ({exc})") from None
        if not (np.all(np.isfinite(forces)) and np.isfinite(steps[-1].energy)):
            raise VaspParseError(f"{f}: ionic step {i} has non-finite energy or forces")
    kp = vr.kpoints.as_dict() if vr.kpoints is not None else None
    return VaspResult(
        directory=str(d.resolve()),
        steps=steps,
        final_structure=vr.final_structure,
        incar=dict(vr.incar),
        kpoints=kp,
        converged_electronic=bool(vr.converged_electronic),
        converged_ionic=bool(vr.converged_ionic),
        input_checksum=inputs_checksum(d),
        vasp_version=str(vr.vasp_version),
    )

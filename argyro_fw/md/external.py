"""The CPU engine: real LAMMPS integrates (fix nvt / fix npt, dumps, restarts) while a Python
callback of ``fix external pf/callback`` sets MACE forces, the energy and the virial.

Virial in LAMMPS metal units is eV: virial = -stress * V (ASE stress in eV/A^3, sign: positive
tensile), order xx yy zz xy xz yz.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from .lammps_lib import lammps_module


def box_to_cell(lmp) -> tuple[np.ndarray, np.ndarray]:
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lo, hi = np.array(boxlo), np.array(boxhi)
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    return cell, lo


class MaceCallback:
    """Callable for ``lmp.set_fix_external_callback``: MACE through an ASE calculator."""

    def __init__(self, lmp, calc, elements: list[str], fix_id: str = "ext"):
        self.lmp, self.calc, self.elements, self.fix_id = lmp, calc, elements, fix_id
        self.atoms: Atoms | None = None
        self.calls = 0

    def __call__(self, caller, step, nlocal, tag, x, f):
        cell, lo = box_to_cell(self.lmp)
        order = np.argsort(tag[:nlocal])
        types = self.lmp.numpy.extract_atom("type")[:nlocal]
        if self.atoms is None or len(self.atoms) != nlocal:
            self.atoms = Atoms([self.elements[t - 1] for t in types[order]], pbc=True)
            self.atoms.calc = self.calc
        self.atoms.set_cell(cell, scale_atoms=False)
        self.atoms.set_positions(np.asarray(x[:nlocal])[order] - lo)
        forces = self.atoms.get_forces()
        energy = self.atoms.get_potential_energy()
        stress = self.atoms.get_stress(voigt=True)  # xx yy zz yz xz xy, eV/A^3
        vol = abs(np.linalg.det(cell))
        f[order] = forces
        virial = -vol * np.array([stress[0], stress[1], stress[2], stress[5], stress[4], stress[3]])
        self.lmp.fix_external_set_energy_global(self.fix_id, float(energy))
        self.lmp.fix_external_set_virial_global(self.fix_id, virial.tolist())
        self.calls += 1


def start_lammps(log_file: str | None = None, screen: bool = False):
    lammps = lammps_module()
    args = ["-log", log_file or "none"]
    if not screen:
        args += ["-screen", "none"]
    return lammps.lammps(cmdargs=args)


def run_external(input_text: str, calc, elements: list[str], log_file: str | None = None):
    """Run a whole LAMMPS input with the MACE callback attached to fix ``ext``."""
    lmp = start_lammps(log_file)
    cb = MaceCallback(lmp, calc, elements)
    lines = input_text.splitlines()
    # everything up to and including the fix external line, then attach the callback, then the rest
    k = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["fix", "ext"])
    lmp.commands_list(lines[: k + 1])
    lmp.set_fix_external_callback("ext", cb)
    lmp.commands_list(lines[k + 1:])
    return lmp, cb

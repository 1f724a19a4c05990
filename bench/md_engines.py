"""Steps per second of the LAMMPS CPU engine (fix external + MACE) and of ASE MD with the same
MACE calculator on the same cell, and their ratio.

The model is a tiny MACE trained here in a few seconds (the speed of a production model is
dominated by the model itself; this measures the engines' overhead around it). Cell: the
52-atom ordered Li6PS5Cl cell as a 2x2x2 supercell (416 atoms, METHOD.md's bulk MLMD cell).

Usage: python bench/md_engines.py [--steps 100]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from ase import units
from ase.md.nvtberendsen import NVTBerendsen
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from pymatgen.io.ase import AseAtomsAdaptor

from argyro_fw.md.protocol import MDProtocol
from argyro_fw.md.runner import run_md
from argyro_fw.mlip.calculators import mace_calculator
from argyro_fw.demo.toy import label, rattled, train_tiny_mace
from argyro_fw.structures.bulk import ordered_argyrodite


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    cell = AseAtomsAdaptor.get_atoms(ordered_argyrodite()) * (2, 2, 2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("training a tiny MACE model ...", file=sys.stderr)
        model = train_tiny_mace(label(rattled(AseAtomsAdaptor.get_atoms(ordered_argyrodite()), 20)), tmp / "m")
        # LAMMPS: NVT only, args.steps steps (+ the step-0 force call)
        p = MDProtocol(temperature=600, nvt_ps=args.steps * 0.001, npt_ns=0.0, dump_every=args.steps,
                       thermo_every=args.steps, restart_every=args.steps)
        t0 = time.perf_counter()
        run_md(tmp / "lmp", cell, p, model)
        t_lmp = time.perf_counter() - t0
        # ASE: the same number of steps with the same calculator
        at = cell.copy()
        at.calc = mace_calculator(model)
        MaxwellBoltzmannDistribution(at, temperature_K=600)
        dyn = NVTBerendsen(at, 1.0 * units.fs, temperature_K=600, taut=100 * units.fs)
        dyn.run(1)
        t0 = time.perf_counter()
        dyn.run(args.steps)
        t_ase = time.perf_counter() - t0
    lmp_sps, ase_sps = args.steps / t_lmp, args.steps / t_ase
    print(f"cell: {len(cell)} atoms, {args.steps} steps, tiny MACE (8 channels, L=0, r_max 4 A), CPU 2 cores")
    print(f"LAMMPS CPU engine (fix external):   {lmp_sps:7.2f} steps/s  (incl. model load and LAMMPS setup)")
    print(f"ASE MD (same calculator):           {ase_sps:7.2f} steps/s")
    print(f"ratio LAMMPS / ASE:                 {lmp_sps / ase_sps:7.2f}")


if __name__ == "__main__":
    main()

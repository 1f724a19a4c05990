"""Exploration and committee MD with ASE (METHOD.md section 5): NVT Langevin, 1 fs, friction
0.1 1/fs; frames recorded every ``record_every`` steps."""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from ..dft.dataset import canonical
from ..study.config import ActiveLearningCfg


def langevin_frames(atoms: Atoms, calc, temperature_K: float, steps: int, record_every: int = ActiveLearningCfg.record_every,
                    timestep_fs: float = 1.0, friction_per_fs: float = 0.1, seed: int = 0) -> list[Atoms]:
    """Run NVT Langevin and return the recorded frames (positions and cell only)."""
    a = atoms.copy()
    a.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(a, temperature_K=temperature_K, rng=rng)
    dyn = Langevin(a, timestep_fs * units.fs, temperature_K=temperature_K, friction=friction_per_fs / units.fs,
                   rng=np.random.RandomState(seed))
    frames: list[Atoms] = []

    def record():
        f = canonical(Atoms(a.get_chemical_symbols(), positions=a.get_positions(), cell=a.cell.array, pbc=True))
        f.info.update(md_step=int(dyn.nsteps), temperature_K=float(temperature_K))
        frames.append(f)

    dyn.attach(record, interval=record_every)
    dyn.run(steps)
    return frames

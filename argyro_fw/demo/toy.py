"""Toy data and tiny MACE models for tests and the demo (no download, CPU, seconds).

The toy labeller is a smooth Lennard-Jones pair potential over all species (ASE's
``LennardJones``): physically meaningless for Li6PS5Cl, but it gives consistent energies, forces
and stresses so that real MACE training, LAMMPS and the analysis can be exercised end to end.
It is named as a stand-in wherever it is used.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.lj import LennardJones

from ..dft.dataset import write_extxyz


def toy_labeller() -> LennardJones:
    """LJ stand-in labeller (sigma 2.2 A, epsilon 0.02 eV, smooth cutoff at 4.5 A)."""
    return LennardJones(sigma=2.2, epsilon=0.02, rc=4.5, smooth=True)


def label(frames: list[Atoms], calc=None, config_type: str = "toy") -> list[Atoms]:
    calc = calc or toy_labeller()
    out = []
    for at in frames:
        a = at.copy()
        a.calc = calc
        a.info.update(REF_energy=a.get_potential_energy(), REF_stress=a.get_stress(voigt=False), config_type=config_type)
        a.arrays["REF_forces"] = a.get_forces()
        a.calc = None
        out.append(a)
    return out


def rattled(atoms: Atoms, n: int, amplitude: float = 0.08, strain: float = 0.02, seed: int = 0) -> list[Atoms]:
    """``n`` copies with Gaussian displacements (Angstrom) and small random cell strains."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = atoms.copy()
        eps = np.eye(3) + strain * (rng.random((3, 3)) - 0.5)
        a.set_cell(a.cell.array @ eps, scale_atoms=True)
        a.positions += rng.normal(0, amplitude, a.positions.shape)
        out.append(a)
    return out


def train_tiny_mace(frames: list[Atoms], workdir: str | Path, name: str = "tiny", seed: int = 1,
                    epochs: int = 5, r_max: float = 4.0, channels: int = 8) -> Path:
    """Train a tiny MACE model with ``mace_run_train`` (float64, CPU); returns the .model path."""
    wd = Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    train = write_extxyz(frames, wd / "train.xyz")
    cmd = [str(Path(sys.executable).parent / "mace_run_train"), f"--name={name}", f"--train_file={train}",
           "--valid_fraction=0.1", "--E0s=average", "--model=MACE", f"--num_channels={channels}", "--max_L=0",
           f"--r_max={r_max}", f"--max_num_epochs={epochs}", "--batch_size=4", "--device=cpu",
           "--default_dtype=float64", f"--seed={seed}", "--energy_key=REF_energy", "--forces_key=REF_forces",
           "--stress_key=REF_stress", "--num_interactions=2", "--correlation=2", "--save_cpu",
           f"--model_dir={wd}", f"--log_dir={wd / 'logs'}", f"--checkpoints_dir={wd / 'checkpoints'}",
           f"--results_dir={wd / 'results'}"]
    proc = subprocess.run(cmd, cwd=wd, capture_output=True, text=True)
    model = wd / f"{name}.model"
    if proc.returncode != 0 or not model.exists():
        raise RuntimeError(f"mace_run_train failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return model

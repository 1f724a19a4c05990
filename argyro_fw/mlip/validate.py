"""Validation of a model on a labelled test set: energy RMSE (meV/atom), force RMSE (meV/A)."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ..study.config import ActiveLearningCfg
from .calculators import mace_calculator


def predictions(model: str, frames: list[Atoms], device: str = ActiveLearningCfg.device) -> tuple[np.ndarray, np.ndarray]:
    """(reference, predicted) force components (eV/A) of ``model`` on labelled ``frames``."""
    calc = mace_calculator(str(model), device=device)
    ref, pred = [], []
    for at in frames:
        a = at.copy()
        a.calc = calc
        pred.append(a.get_forces().ravel())
        ref.append(at.arrays["REF_forces"].ravel())
    return np.concatenate(ref), np.concatenate(pred)


def rmse(model: str, frames: list[Atoms], device: str = ActiveLearningCfg.device) -> dict[str, float]:
    calc = mace_calculator(str(model), device=device)
    de, df = [], []
    for at in frames:
        a = at.copy()
        a.calc = calc
        de.append((a.get_potential_energy() - at.info["REF_energy"]) / len(a))
        df.append((a.get_forces() - at.arrays["REF_forces"]).ravel())
    return {"energy_rmse_meV_atom": float(np.sqrt(np.mean(np.square(de))) * 1000),
            "force_rmse_meV_A": float(np.sqrt(np.mean(np.square(np.concatenate(df)))) * 1000),
            "n_frames": len(frames)}

"""Committee uncertainty, frame selection and the convergence test (METHOD.md section 5).

Per-frame uncertainty: the largest, over atoms, of the norm of the standard deviation across the
committee of the predicted force vectors (eV/Angstrom). Convergence (documented default): the
iteration is converged when the 95th percentile of the per-frame uncertainty of the committee MD
frames is below ``threshold`` (0.05 eV/Angstrom); configurable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ..study.config import ActiveLearningCfg
from .calculators import mace_calculator


def committee_forces(frames: list[Atoms], models: list[str], device: str = ActiveLearningCfg.device) -> np.ndarray:
    """(n_frames, n_models, N, 3) forces, eV/A, from a MACE committee (one calculator)."""
    if len(models) < 2:
        raise ValueError("a committee needs >= 2 models")
    calc = mace_calculator(list(models), device=device)
    out = []
    for at in frames:
        a = at.copy()
        a.calc = calc
        a.get_potential_energy()
        out.append(np.array(calc.results["forces_comm"]))
    return np.array(out)


def force_uncertainty(forces_comm: np.ndarray) -> np.ndarray:
    """Per-frame max over atoms of |std over models of F| (eV/A) from (frames, models, N, 3)."""
    std = forces_comm.std(axis=1)  # (frames, N, 3)
    return np.linalg.norm(std, axis=-1).max(axis=-1)



def committee_md_plan(models: list[str], temperatures: list[float]) -> list[tuple[str, float]]:
    """(model, temperature K) of each committee MD run: every exploration temperature and every member at least
    once (run i: member i mod M at temperature i mod T; the study's 3 members and 400-1000 K give 4 runs)."""
    n = max(len(models), len(temperatures))
    return [(models[i % len(models)], float(temperatures[i % len(temperatures)])) for i in range(n)]


@dataclass
class Convergence:
    threshold: float = ActiveLearningCfg.threshold  # eV/A
    percentile: float = ActiveLearningCfg.percentile

    def converged(self, uncertainty: np.ndarray) -> bool:
        return bool(np.percentile(uncertainty, self.percentile) < self.threshold)


def most_uncertain(uncertainty: np.ndarray, k: int, exclude: set[int] | None = None) -> list[int]:
    """Indices of the ``k`` most uncertain frames, excluding ``exclude``."""
    order = [int(i) for i in np.argsort(-uncertainty) if int(i) not in (exclude or set())]
    return order[:k]

"""ASE calculators of MACE models (explorers, committee members, the MD engines' CPU path)."""

from __future__ import annotations

from pathlib import Path

from ..study.config import ActiveLearningCfg


def mace_calculator(model: str | Path | list, device: str = ActiveLearningCfg.device, dtype: str = "float64"):
    """A MACECalculator of one model (or a committee: a list of paths), float64 by default."""
    from mace.calculators import MACECalculator  # heavy (torch): imported when a calculator is made

    paths = [str(m) for m in model] if isinstance(model, (list, tuple)) else str(model)
    return MACECalculator(model_paths=paths, device=device, default_dtype=dtype)

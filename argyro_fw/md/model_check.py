"""Checks made before LAMMPS starts: the model file exists and its species cover the cell."""

from __future__ import annotations

from pathlib import Path

from ase.data import chemical_symbols

from ..errors import ArgyroError


def model_elements(model_path: str | Path) -> list[str]:
    """Chemical symbols a MACE model knows (from its atomic_numbers)."""
    import torch

    p = Path(model_path)
    if not p.is_file():
        raise ArgyroError(f"MACE model {p}: does not exist")
    try:
        model = torch.load(str(p), map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ArgyroError(f"MACE model {p}: cannot be loaded ({type(exc).__name__})") from None
    z = getattr(model, "atomic_numbers", None)
    if z is None:
        raise ArgyroError(f"MACE model {p}: has no atomic_numbers (not a MACE model?)")
    return [chemical_symbols[int(x)] for x in z]


def check_model_covers(model_path: str | Path, symbols: list[str]) -> list[str]:
    known = model_elements(model_path)
    missing = sorted(set(symbols) - set(known))
    if missing:
        raise ArgyroError(f"MACE model {model_path}: knows {known}, but the cell also has {missing}")
    return known

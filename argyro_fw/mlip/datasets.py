"""Checks on training data made before any training starts, and the replay-set selection."""

from __future__ import annotations

from pathlib import Path

import ase.io
import numpy as np

from ..core.serialise import atomic_path
from ..dft.dataset import evenly_spaced, write_extxyz
from ..errors import ArgyroError


def check_dataset(path: str | Path, e0s: dict[str, float] | None = None, energy_key: str = "REF_energy",
                  forces_key: str = "REF_forces") -> dict:
    """Every frame has a finite energy and finite forces; every species has an E0 (when E0s are
    given). Raises ArgyroError naming the file, frame and field. Returns counts."""
    p = Path(path)
    if not p.is_file():
        raise ArgyroError(f"dataset {p}: does not exist")
    species: set[str] = set()
    n = 0
    for k, at in enumerate(ase.io.iread(str(p), format="extxyz")):
        e = at.info.get(energy_key)
        if e is None or not np.isfinite(e):
            raise ArgyroError(f"dataset {p}: frame {k} has no finite {energy_key}")
        f = at.arrays.get(forces_key)
        if f is None or not np.all(np.isfinite(f)):
            raise ArgyroError(f"dataset {p}: frame {k} has NaN/missing {forces_key}")
        species |= set(at.get_chemical_symbols())
        n += 1
    if n == 0:
        raise ArgyroError(f"dataset {p}: holds no frame")
    if e0s is not None:
        missing = sorted(species - set(e0s))
        if missing:
            raise ArgyroError(f"dataset {p}: no E0 for species {missing} (E0s given for {sorted(e0s)})")
    return {"frames": n, "species": sorted(species)}


def select_replay(pt_file: str | Path, out: str | Path, n: int = 100_000, elements: list[str] | None = None,
                  seed: int = 0) -> int:
    """Reservoir-sample ``n`` frames of the foundation model's pre-training data (streamed), keeping
    only frames whose species are a subset of ``elements`` when given. Returns the count written."""
    rng = np.random.default_rng(seed)
    keep: list = []
    seen = 0
    allowed = set(elements) if elements else None
    for at in ase.io.iread(str(pt_file)):
        if allowed is not None and not set(at.get_chemical_symbols()) <= allowed:
            continue
        seen += 1
        if len(keep) < n:
            keep.append(at)
        else:
            j = rng.integers(0, seen)
            if j < n:
                keep[j] = at
    if not keep:
        raise ArgyroError(f"replay data {pt_file}: no frame with species within {sorted(allowed or [])}")
    with atomic_path(out) as tmp:
        ase.io.write(tmp, keep, format="extxyz")
    return len(keep)


def assemble_initial_dataset(sources: list[dict], out: str | Path) -> dict:
    """The initial training set of METHOD.md 5 from labelled trajectories (extxyz with REF_* keys,
    e.g. parsed AIMD/relaxation runs): each source {path, n, config_type} contributes ``n`` evenly
    spaced frames (the study: 75 per bulk AIMD temperature x 4, 100 Li-metal ramp frames, 50 frames
    of the interface relaxation = 450). Returns {config_type: count, 'total': N}."""
    frames, counts = [], {}
    for src in sources:
        unknown = set(src) - {"path", "n", "config_type"}
        if unknown or "path" not in src or "n" not in src:
            raise ValueError(f"initial-dataset source {src}: expected keys path, n[, config_type]")
        traj = list(ase.io.read(src["path"], ":"))
        picked = [traj[i] for i in evenly_spaced(len(traj), min(int(src["n"]), len(traj)))]
        ct = src.get("config_type", Path(src["path"]).stem)
        for a in picked:
            a.info["config_type"] = ct
        frames += picked
        counts[ct] = counts.get(ct, 0) + len(picked)
    write_extxyz(frames, out)
    counts["total"] = len(frames)
    return counts

"""Per-frame structural metrics of METHOD.md section 7 from per-atom neighbour counts.

``counts[a, k]`` is the number of atoms of species k within 3 Angstrom of atom a. All functions
are pure and documented with the rule they apply.
"""

from __future__ import annotations

import numpy as np

#: Coordination series of the HDF5 contract: (centre, neighbour)
CN_PAIRS = (("S", "P"), ("S", "Li"), ("P", "Li"), ("Cl", "Li"))
ANIONS = ("S", "P", "Cl")


def mean_cn(counts: np.ndarray, codes: np.ndarray, centre: int | None, neighbour: int | None) -> float:
    """CN(A-B): mean number of B atoms within the cutoff of each A atom; NaN if there is no A."""
    if centre is None:
        return float("nan")
    mask = codes == centre
    if not mask.any():
        return float("nan")
    if neighbour is None:
        return 0.0
    return float(counts[mask, neighbour].mean())


def intact_ps4(counts: np.ndarray, codes: np.ndarray, p: int | None, s: int | None) -> np.ndarray:
    """Boolean mask of P atoms with exactly four S neighbours (intact PS4 units)."""
    if p is None or s is None:
        return np.zeros(len(codes), dtype=bool)
    return (codes == p) & (counts[:, s] == 4)


def crystallinity_percent(counts: np.ndarray, codes: np.ndarray, s: int | None, li: int | None) -> float:
    """Degree of crystallisation (%): S atoms with exactly 8 Li neighbours (antifluorite Li2S
    environment) / all S atoms * 100. Rule for cells without S: NaN (undefined, not 0)."""
    if s is None or not (codes == s).any():
        return float("nan")
    if li is None:
        return 0.0
    sm = codes == s
    return float(100.0 * np.count_nonzero(counts[sm, li] == 8) / np.count_nonzero(sm))


def neighbours_in(pairs: tuple[np.ndarray, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Per atom: the number of its neighbours (pairs within the cutoff, each pair once) that are in ``mask``."""
    i, j = pairs
    n = len(mask)
    return np.bincount(i[mask[j]], minlength=n) + np.bincount(j[mask[i]], minlength=n)


def sei_lithium(pairs: tuple[np.ndarray, np.ndarray], codes: np.ndarray, li: int | None, anion_mask: np.ndarray,
                argyrodite_mask: np.ndarray) -> np.ndarray:
    """SEI Li (METHOD.md 7): Li with >= 3 neighbours among S, P, Cl within 3 Angstrom, counting only the S, P,
    Cl that are not part of an intact PS4 unit (``argyrodite_mask``). Without that exclusion every Li of the
    argyrodite (four S/Cl neighbours, two of them PS4 S) would be SEI Li."""
    if li is None:
        return np.zeros(len(codes), dtype=bool)
    return (codes == li) & (neighbours_in(pairs, anion_mask & ~argyrodite_mask) >= 3)


def sei_anions(pairs: tuple[np.ndarray, np.ndarray], sei_li: np.ndarray, anion_mask: np.ndarray,
               argyrodite_mask: np.ndarray) -> np.ndarray:
    """The anions of the SEI: S, P, Cl bound (within 3 Angstrom) to at least one SEI Li and not part of an
    intact PS4 unit."""
    return anion_mask & ~argyrodite_mask & (neighbours_in(pairs, sei_li) > 0)


def sei_composition(codes: np.ndarray, anions: np.ndarray, anion_codes: list[int | None]) -> tuple[float, ...]:
    """Anion fractions (S, P, Cl order of ``anion_codes``) of the SEI formula Li2 S(1-x-y) P(x) Cl(y): they sum to
    1; NaN when the SEI has no anion (no SEI Li)."""
    n = [int(np.count_nonzero(anions & (codes == c))) if c is not None else 0 for c in anion_codes]
    tot = sum(n)
    return tuple(k / tot for k in n) if tot else (float("nan"),) * len(n)


def li_msd(positions: list[np.ndarray], cell: np.ndarray, symbols: list[str], frame_ps: float,
           species: str = "Li") -> tuple[np.ndarray, np.ndarray]:
    """(time lags in ps, MSD in Å2) of ``species`` from frames of a fixed cell (an NVT AIMD), averaged over every
    time origin. Positions are unwrapped by the minimum image of each step (frames close enough that no atom moves
    half a cell between them)."""
    mask = np.array([s == species for s in symbols])
    if not mask.any():
        raise ValueError(f"MSD: no {species} atom in the frames")
    cell = np.asarray(cell, float)
    inv = np.linalg.inv(cell)
    frac = np.array([np.asarray(p, float)[mask] @ inv for p in positions])
    steps = np.diff(frac, axis=0)
    steps -= np.round(steps)
    unwrapped = np.concatenate([frac[:1], frac[:1] + np.cumsum(steps, axis=0)]) @ cell
    n = len(unwrapped)
    lags = np.arange(n)
    msd = np.array([np.mean(np.sum((unwrapped[k:] - unwrapped[: n - k]) ** 2, axis=-1)) for k in lags])
    return lags * float(frame_ps), msd

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


def sei_lithium(counts: np.ndarray, codes: np.ndarray, li: int | None, anion_codes: list[int]) -> np.ndarray:
    """Li atoms with >= 3 neighbours among S, P, Cl (METHOD.md: they belong to the SEI)."""
    if li is None or not anion_codes:
        return np.zeros(len(codes), dtype=bool)
    return (codes == li) & (counts[:, anion_codes].sum(axis=1) >= 3)

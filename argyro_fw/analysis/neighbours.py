"""Per-frame neighbour statistics from one compiled neighbour list (vesin), METHOD.md section 7.

One half neighbour list at the RDF cutoff (4 Angstrom) per frame gives everything: pairs within
the coordination cutoff (3 Angstrom) for coordination numbers and per-atom neighbour counts by
species, and distance histograms for the RDFs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vesin import NeighborList

COORD_CUTOFF = 3.0  # Angstrom, METHOD.md 7
RDF_CUTOFF = 4.0  # Angstrom, METHOD.md 7


@dataclass
class FrameNeighbours:
    """Neighbour statistics of one frame."""

    counts: np.ndarray  # (N, n_species) int: neighbours of each atom by species within COORD_CUTOFF
    rdf_hist: np.ndarray  # (n_species, n_species, n_bins) pair counts (unordered pairs on i<=j)
    volume: float  # Angstrom^3
    pairs: tuple[np.ndarray, np.ndarray] | None = None  # (i, j) of the pairs within COORD_CUTOFF, i < j


class NeighbourCounter:
    """Computes :class:`FrameNeighbours` for frames of a fixed species list."""

    def __init__(self, symbols: list[str], coord_cutoff: float = COORD_CUTOFF, rdf_cutoff: float = RDF_CUTOFF,
                 rdf_bins: int = 200):
        self.species = sorted(set(symbols), key=symbols.index)
        self.codes = np.array([self.species.index(s) for s in symbols], dtype=np.int64)
        self.n = len(symbols)
        self.ns = len(self.species)
        self.coord_cutoff = coord_cutoff
        self.rdf_cutoff = max(rdf_cutoff, coord_cutoff)
        self.rdf_bins = rdf_bins
        self.rdf_edges = np.linspace(0.0, self.rdf_cutoff, rdf_bins + 1)
        self._nl = NeighborList(cutoff=self.rdf_cutoff, full_list=False)

    def index(self, symbol: str) -> int | None:
        return self.species.index(symbol) if symbol in self.species else None

    def rdfs(self, hist: np.ndarray, volume: float, n_frames: int, pairs) -> dict[str, np.ndarray]:
        """{"A-B": g_AB(r)} of the species ``pairs`` present, from the (n_species, n_species, n_bins) pair counts
        ``hist`` summed over ``n_frames`` frames of mean ``volume`` (:func:`rdf_from_histogram`)."""
        out = {}
        for a, b in pairs:
            ia, ib = self.index(a), self.index(b)
            if ia is None or ib is None:
                continue
            lo, hi = min(ia, ib), max(ia, ib)
            na, nb = int(np.count_nonzero(self.codes == ia)), int(np.count_nonzero(self.codes == ib))
            out[f"{a}-{b}"] = rdf_from_histogram(hist[lo, hi], self.rdf_edges, na, nb, volume, n_frames, ia == ib)
        return out

    def frame(self, positions: np.ndarray, cell: np.ndarray) -> FrameNeighbours:
        i, j, d = self._nl.compute(points=positions, box=cell, periodic=True, quantities="ijd")
        i = i.astype(np.int64, copy=False)
        j = j.astype(np.int64, copy=False)
        ci, cj = self.codes[i], self.codes[j]
        close = d < self.coord_cutoff
        ic, jc, cic, cjc = i[close], j[close], ci[close], cj[close]
        ns = self.ns
        counts = (np.bincount(ic * ns + cjc, minlength=self.n * ns) + np.bincount(jc * ns + cic, minlength=self.n * ns))
        counts = counts.reshape(self.n, ns)
        lo = np.minimum(ci, cj)
        hi = np.maximum(ci, cj)
        b = np.minimum((d / self.rdf_cutoff * self.rdf_bins).astype(np.int64), self.rdf_bins - 1)
        hist = np.bincount((lo * ns + hi) * self.rdf_bins + b, minlength=ns * ns * self.rdf_bins)
        return FrameNeighbours(counts, hist.reshape(ns, ns, self.rdf_bins), float(abs(np.linalg.det(cell))), (ic, jc))


def rdf_from_histogram(hist: np.ndarray, edges: np.ndarray, n_a: int, n_b: int, volume: float, n_frames: int,
                       same: bool) -> np.ndarray:
    """g_AB(r) from unordered pair counts accumulated over ``n_frames`` frames of mean ``volume``.

    Normalised so that g -> 1 for an ideal gas: g = pairs / (n_frames * N_pairs/V * shell volume),
    N_pairs = n_a * n_b (A != B) or n_a * (n_a - 1) / 2 (A == B).
    """
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    n_pairs = n_a * (n_a - 1) / 2.0 if same else float(n_a * n_b)
    if n_pairs == 0 or n_frames == 0:
        return np.full(len(shell), np.nan)
    return hist / (n_frames * n_pairs / volume * shell)

"""Frames per second of the full per-frame analysis suite, against an ASE-neighbour-list baseline.

Data: kinisi's LiPS.exyz (Li896 P384 S1408, 2688 atoms, 200 frames, triclinic), the study's cell
size. Both paths compute the same per-frame reductions (coordination numbers, intact PS4,
crystallinity, SEI regions, RDF histograms, flux); they differ only in the neighbour list
(vesin, compiled, vs ase.neighborlist). Reading the extxyz file is timed separately (ASE's
extxyz reader is the slow part of that format; LAMMPS dumps are read with numpy). Peak memory is
the process's maximum resident set size.

Usage: python bench/analysis.py [--frames 200] [--baseline-frames 20]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

import kinisi
from argyro_fw.analysis import neighbours as nb
from argyro_fw.analysis.pipeline import AnalysisOptions, FrameAccumulator
from argyro_fw.analysis.trajectory import read_chunks

DATA = Path(kinisi.__file__).parent / "tests" / "inputs" / "LiPS.exyz"


class AseNeighbourCounter(nb.NeighbourCounter):
    """The same statistics with ase.neighborlist.neighbor_list (the baseline)."""

    def frame(self, positions, cell):
        from ase import Atoms
        from ase.neighborlist import neighbor_list

        at = Atoms(numbers=np.ones(len(positions)), positions=positions, cell=cell, pbc=True)
        i, j, d = neighbor_list("ijd", at, self.rdf_cutoff)
        keep = i < j  # half list, as vesin's
        i, j, d = i[keep], j[keep], d[keep]
        ci, cj = self.codes[i], self.codes[j]
        close = d < self.coord_cutoff
        ns = self.ns
        counts = (np.bincount(i[close] * ns + cj[close], minlength=self.n * ns)
                  + np.bincount(j[close] * ns + ci[close], minlength=self.n * ns)).reshape(self.n, ns)
        lo, hi = np.minimum(ci, cj), np.maximum(ci, cj)
        b = np.minimum((d / self.rdf_cutoff * self.rdf_bins).astype(np.int64), self.rdf_bins - 1)
        hist = np.bincount((lo * ns + hi) * self.rdf_bins + b, minlength=ns * ns * self.rdf_bins)
        return nb.FrameNeighbours(counts, hist.reshape(ns, ns, self.rdf_bins), float(abs(np.linalg.det(cell))),
                                  (i[close], j[close]))


def run(acc, frames) -> float:
    t0 = time.perf_counter()
    for x, cell in frames:
        acc.add(x, cell)
    return len(frames) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--baseline-frames", type=int, default=20)
    args = ap.parse_args()
    t0 = time.perf_counter()
    symbols, chunks = read_chunks(DATA, "extxyz", chunk_size=50)
    frames = []
    for ch in chunks:
        frames.extend(zip(ch.positions, ch.cells))
        if len(frames) >= args.frames:
            break
    frames = frames[: args.frames]
    read_fps = len(frames) / (time.perf_counter() - t0)
    opts = AnalysisOptions(membranes={"a": 0.25, "b": 0.5, "c": 0.75}, progress=False)
    acc = FrameAccumulator(symbols, opts)
    run(acc, frames[:5])  # warm-up (vesin's first call)
    acc = FrameAccumulator(symbols, opts)
    fast = run(acc, frames)
    base = FrameAccumulator(symbols, opts)
    base.nc = AseNeighbourCounter(symbols)
    slow = run(base, frames[: args.baseline_frames])
    # same answers from both neighbour lists
    for key in ("cn_S-P", "cn_S-Li", "cryst", "ps4"):
        np.testing.assert_allclose(acc.series[key][: args.baseline_frames], base.series[key], equal_nan=True)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"cell: {len(symbols)} atoms, {len(frames)} frames of {DATA.name}")
    print(f"analysis suite, vesin neighbour list:   {fast:8.1f} frames/s")
    print(f"analysis suite, ASE neighbour list:     {slow:8.1f} frames/s (baseline, {args.baseline_frames} frames)")
    print(f"speed-up over the baseline:             {fast / slow:8.1f} x")
    print(f"reading the extxyz file with ASE:       {read_fps:8.1f} frames/s")
    print(f"peak memory (max RSS):                  {rss_mb:8.0f} MiB")


if __name__ == "__main__":
    main()

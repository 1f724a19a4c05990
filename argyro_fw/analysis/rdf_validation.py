"""RDF validation of a model against AIMD (METHOD.md 5: "average RDFs against AIMD, S-P above all").

Average partial RDFs g_AB(r) over the frames of a trajectory (the analysis' own neighbour histograms,
:mod:`argyro_fw.analysis.neighbours`), the difference of two sets of RDFs (RMS over r, and the first-peak
positions), and their HDF5 file (``/<T>K/<A-B>/{aimd,model}`` over ``/r_A``, units in attrs) and PNG (one panel per
temperature, S-P drawn first and thickest). Pure functions on ASE frames and numpy arrays; the MD that makes the
model's trajectory is the caller's.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from ..core.serialise import atomic_path
from .neighbours import RDF_CUTOFF, NeighbourCounter
from .pipeline import RDF_PAIRS

#: the pair the study looks at first (PS4 units: S-P)
KEY_PAIR = "S-P"


def average_rdfs(frames: list[Atoms], pairs=RDF_PAIRS, cutoff: float = RDF_CUTOFF,
                 bins: int = 200) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(bin centres in Å, {"A-B": g_AB(r)}) averaged over ``frames`` (same atoms in the same order)."""
    if not frames:
        raise ValueError("RDF: no frames")
    symbols = frames[0].get_chemical_symbols()
    nc = NeighbourCounter(symbols, coord_cutoff=min(cutoff, 3.0), rdf_cutoff=cutoff, rdf_bins=bins)
    hist = np.zeros((nc.ns, nc.ns, bins))
    volume = 0.0
    for a in frames:
        if a.get_chemical_symbols() != symbols:
            raise ValueError("RDF: the frames do not hold the same atoms in the same order")
        fn = nc.frame(a.get_positions(), a.cell.array)
        hist += fn.rdf_hist
        volume += fn.volume
    volume /= len(frames)
    centres = 0.5 * (nc.rdf_edges[1:] + nc.rdf_edges[:-1])
    return centres, nc.rdfs(hist, volume, len(frames), pairs)


def rdf_difference(r: np.ndarray, reference: np.ndarray, model: np.ndarray) -> dict[str, float]:
    """RMS difference of two RDFs over r, and the positions (Å) of their highest peaks."""
    ok = np.isfinite(reference) & np.isfinite(model)
    rms = float(np.sqrt(np.mean((model[ok] - reference[ok]) ** 2))) if ok.any() else float("nan")
    peak = (lambda g: float(r[int(np.nanargmax(g))]) if np.isfinite(g).any() and np.nanmax(g) > 0 else float("nan"))
    return {"rms": rms, "peak_reference_A": peak(reference), "peak_model_A": peak(model)}


def compare(reference: list[Atoms], model: list[Atoms]) -> dict:
    """RDFs of both trajectories and their differences: {"r_A", "aimd": {pair: g}, "model": {pair: g},
    "difference": {pair: {rms, peak_reference_A, peak_model_A}}}."""
    r, g_ref = average_rdfs(reference)
    _, g_mod = average_rdfs(model)
    pairs = [p for p in g_ref if p in g_mod]
    return {"r_A": r, "aimd": {p: g_ref[p] for p in pairs}, "model": {p: g_mod[p] for p in pairs},
            "difference": {p: rdf_difference(r, g_ref[p], g_mod[p]) for p in pairs},
            "frames": {"aimd": len(reference), "model": len(model)}}


def write_h5(results: dict[float, dict], path: str | Path, attrs: dict | None = None) -> Path:
    """``results``: {temperature K: :func:`compare` output} -> one HDF5 file (written atomically)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h:
            for k, v in (attrs or {}).items():
                h.attrs[k] = v
            for T, res in sorted(results.items()):
                g = h.create_group(f"{T:g}K")
                g.attrs["temperature_K"] = float(T)
                g.attrs["frames_aimd"] = int(res["frames"]["aimd"])
                g.attrs["frames_model"] = int(res["frames"]["model"])
                r = g.create_dataset("r_A", data=res["r_A"])
                r.attrs["units"] = "Angstrom"
                for pair, ref in res["aimd"].items():
                    pg = g.create_group(pair)
                    for name, data in (("aimd", ref), ("model", res["model"][pair])):
                        ds = pg.create_dataset(name, data=data)
                        ds.attrs["units"] = "dimensionless (g -> 1 for an ideal gas)"
                    for k, v in res["difference"][pair].items():
                        pg.attrs[k] = v
    return path


def read_h5(path: str | Path) -> dict[float, dict]:
    """The inverse of :func:`write_h5` (without the differences)."""
    out = {}
    with h5py.File(path, "r") as h:
        for g in h.values():
            pairs = [k for k in g if k != "r_A"]
            out[float(g.attrs["temperature_K"])] = {"r_A": g["r_A"][:], "aimd": {p: g[p]["aimd"][:] for p in pairs},
                                                    "model": {p: g[p]["model"][:] for p in pairs}}
    return out


def plot_png(results: dict[float, dict], path: str | Path) -> Path:
    """One panel per temperature: AIMD solid, model dashed; S-P first and thickest."""
    import matplotlib  # heavy, used only when a figure is written

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted(results)
    fig, axes = plt.subplots(1, len(temps), figsize=(5.5 * len(temps), 3.8), squeeze=False)
    for ax, T in zip(axes[0], temps):
        res = results[T]
        pairs = sorted(res["aimd"], key=lambda p: (p != KEY_PAIR, p))
        for pair in pairs:
            lw = 2.2 if pair == KEY_PAIR else 1.0
            line, = ax.plot(res["r_A"], res["aimd"][pair], lw=lw, label=f"{pair} AIMD")
            ax.plot(res["r_A"], res["model"][pair], lw=lw, ls="--", color=line.get_color(), label=f"{pair} model")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_title(f"{T:g} K")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path

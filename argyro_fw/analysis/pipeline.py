"""The streaming analysis of one trajectory into one HDF5 file (the contract of issue 5).

Frames are read in chunks and reduced per frame; only per-frame scalars, cumulative flux counts
and summed RDF histograms are kept, so memory does not grow with the trajectory length. The HDF5
file is written to a temporary name and renamed when complete.

Definitions (METHOD.md 7 and 9): SEI thickness through the whole run (sei.py), SEI composition from
the anions bound to SEI Li (metrics.py), Li flux through membranes placed on the frame that ends the
NVT equilibration (``AnalysisOptions.nvt_ps``) with whole-run and windowed values and physical
direction names at the interfaces (flux.py, :func:`study_membranes`), event times (events.py).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .. import __version__
from ..core.serialise import atomic_path
from ..study.config import AnalysisCfg
from .events import event_times
from .flux import FluxCounter, flux_per_nm2_ns, window_flux
from .metrics import (ANIONS, CN_PAIRS, crystallinity_percent, intact_ps4, mean_cn, sei_anions, sei_composition,
                      sei_lithium)
from .neighbours import COORD_CUTOFF, RDF_CUTOFF, NeighbourCounter
from .sei import find_regions
from .trajectory import read_chunks

RDF_PAIRS = (("S", "P"), ("S", "Li"), ("P", "Li"), ("Cl", "Li"), ("Li", "Li"), ("S", "S"))


def file_checksum(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _default_flux_windows() -> dict:
    return copy.deepcopy(AnalysisCfg().flux_windows)


@dataclass
class AnalysisOptions:
    timestep_ps: float = 0.1  # time between stored frames, ps (after the stride: x stride)
    stride: int = 1
    chunk_size: int = 200
    fmt: str | None = None
    type_map: list[str] | None = None
    membranes: dict[str, float] = field(default_factory=dict)  # name -> fractional z; "auto" adds the study's
    auto_membranes: bool = True
    membrane_thickness_A: float = 3.0
    min_li_core_A: float = 4.0  # a Li-only gap narrower than this is no Li metal (see sei.py)
    progress: bool = True
    # membranes are placed on, and flux counted from, the first frame at t >= nvt_ps (the end of the MD's NVT
    # equilibration; the trajectory's time starts at 0 with the NVT stage); 0: from the first frame
    nvt_ps: float = 0.0
    # flux windows, name -> [t0_ns, t1_ns] of trajectory time (default: the study config's analysis.flux_windows)
    flux_windows: dict = field(default_factory=_default_flux_windows)


#: the study's membranes (METHOD.md 7, 9) and the names of their directions (left -> right is +c)
INTERFACE_DIRECTIONS = {"interface": ("electrolyte_to_metal", "metal_to_electrolyte"),  # the Li metal lies above
                        "interface_below": ("metal_to_electrolyte", "electrolyte_to_metal")}  # ... below


def study_membranes(reg) -> dict[str, float]:
    """Fractional z of the study's membranes for one frame's :class:`~argyro_fw.analysis.sei.Regions`:

    - ``interface`` / ``interface_below``: the outermost non-Li atom in the Li metal above / below the
      electrolyte (the two interfaces of the periodic cell);
    - ``electrode_centre``: the middle of the Li-metal core;
    - ``electrolyte_centre`` and ``electrolyte_quarter``: 1/2 and 1/4 (from the lower interface) of the
      electrolyte between the two interfaces (the amorphous-SEI membrane of METHOD.md 7).
    Empty without Li metal."""
    if reg is None or not reg.has_li_metal:
        return {}
    up, down = reg.interfaces()
    L = reg.non_li_extent
    z = {"interface": up, "interface_below": down, "electrode_centre": reg.origin + L + 0.5 * (1.0 - L),
         "electrolyte_centre": reg.origin + 0.5 * L, "electrolyte_quarter": reg.origin + 0.25 * L}
    return {k: float(np.mod(v, 1.0)) for k, v in z.items()}


class FrameAccumulator:
    """Per-frame reductions of METHOD.md section 7 (no file I/O: usable on in-memory frames)."""

    def __init__(self, symbols: list[str], opts: AnalysisOptions):
        self.symbols = symbols
        self.opts = opts
        self.nc = NeighbourCounter(symbols, COORD_CUTOFF, RDF_CUTOFF)
        ix = self.nc.index
        self.li, self.p, self.s, self.cl = ix("Li"), ix("P"), ix("S"), ix("Cl")
        self.codes = self.nc.codes
        self.anion_codes = [ix(a) for a in ANIONS]  # None for an absent species
        self.li_mask = self.codes == self.li if self.li is not None else np.zeros(len(symbols), bool)
        self.nonli_mask = np.isin(self.codes, [c for c in self.anion_codes if c is not None])
        self.series: dict[str, list] = {k: [] for k in (
            "cn_S-P", "cn_S-Li", "cn_P-Li", "cn_Cl-Li", "ps4", "cryst", "sei_thickness", "sei_total", "non_li_extent",
            "ps4_extent", "sei_comp", "li_per_anion", "sei_li")}
        self.rdf_hist = np.zeros((self.nc.ns, self.nc.ns, self.nc.rdf_bins))
        self.volume_sum = 0.0
        self.n_frames = 0
        self.times_ps: list[float] = []
        self.flux: list[FluxCounter] = []
        self.flux_from_ps = float("nan")  # time of the frame the membranes were placed on
        self.n_p = int(np.count_nonzero(self.codes == self.p)) if self.p is not None else 0

    def _place_membranes(self, reg) -> None:
        """The given membranes and (``auto_membranes``) the study's, from this frame's regions."""
        th = self.opts.membrane_thickness_A
        placed = dict(self.opts.membranes)
        if self.opts.auto_membranes:
            placed = {**study_membranes(reg), **placed}
        for name, pos in placed.items():
            lr, rl = INTERFACE_DIRECTIONS.get(name, ("+c", "-c")) if name not in self.opts.membranes else ("+c", "-c")
            self.flux.append(FluxCounter(name, float(pos), th, lr, rl, start_frame=self.n_frames))
        self.flux_from_ps = self.times_ps[-1]

    def add(self, positions: np.ndarray, cell: np.ndarray, time_ps: float | None = None) -> None:
        """One frame; ``time_ps`` its time (default: frame count x stride x timestep)."""
        t = float(time_ps) if time_ps is not None else self.n_frames * self.opts.stride * self.opts.timestep_ps
        self.times_ps.append(t)
        fn = self.nc.frame(positions, cell)
        counts, codes = fn.counts, self.codes
        ix = self.nc.index
        for a, b in CN_PAIRS:
            self.series[f"cn_{a}-{b}"].append(mean_cn(counts, codes, ix(a), ix(b)))
        intact_p = intact_ps4(counts, codes, self.p, self.s)
        self.series["ps4"].append(np.count_nonzero(intact_p) / self.n_p if self.n_p else float("nan"))
        self.series["cryst"].append(crystallinity_percent(counts, codes, self.s, self.li))
        fz = positions @ np.linalg.inv(cell)[:, 2]  # fractional z only
        # argyrodite atoms: intact P and the S bonded to them (S within the cutoff of an intact P)
        arg_mask = intact_p.copy()
        if intact_p.any():
            arg_mask |= self._s_of_intact(fn.pairs, intact_p)
        spacing = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[0], cell[1]))
        reg = (find_regions(fz, arg_mask, self.nonli_mask, self.li_mask, self.opts.min_li_core_A / spacing)
               if self.li is not None else None)
        if np.isnan(self.flux_from_ps) and t >= self.opts.nvt_ps - 1e-6 * max(1.0, self.opts.nvt_ps):
            self._place_membranes(reg)
        if reg is not None and reg.has_li_metal:
            self.series["sei_thickness"].append(tuple(x * spacing for x in reg.thickness_parts()))
            self.series["sei_total"].append(reg.thickness_total() * spacing)
            self.series["non_li_extent"].append(reg.non_li_extent * spacing)
            self.series["ps4_extent"].append(reg.ps4_extent * spacing)
        else:
            self.series["sei_thickness"].append((np.nan, np.nan))
            for k in ("sei_total", "non_li_extent", "ps4_extent"):
                self.series[k].append(np.nan)
        # SEI composition (METHOD.md 7): the anions bound to SEI Li, wherever they are
        sei_li = sei_lithium(fn.pairs, codes, self.li, self.nonli_mask, arg_mask)
        anions = sei_anions(fn.pairs, sei_li, self.nonli_mask, arg_mask)
        n_an = int(np.count_nonzero(anions))
        self.series["sei_comp"].append(sei_composition(codes, anions, self.anion_codes))
        self.series["li_per_anion"].append(np.count_nonzero(sei_li) / n_an if n_an else np.nan)
        self.series["sei_li"].append(int(np.count_nonzero(sei_li)))
        self.rdf_hist += fn.rdf_hist
        self.volume_sum += fn.volume
        for fc in self.flux:
            fc.update(fz[self.li_mask], cell)
        self.n_frames += 1
    def _s_of_intact(self, pairs, intact_p) -> np.ndarray:
        """S atoms within the coordination cutoff of an intact P (from this frame's pair list)."""
        gi, gj = pairs
        out = np.zeros(len(self.codes), bool)
        out[gj[intact_p[gi] & (self.codes[gj] == self.s)]] = True
        out[gi[intact_p[gj] & (self.codes[gi] == self.s)]] = True
        return out

    def rdfs(self) -> dict[str, np.ndarray]:
        return self.nc.rdfs(self.rdf_hist, self.volume_sum / max(self.n_frames, 1), self.n_frames, RDF_PAIRS)


def analyze_trajectory(path: str | Path, out_h5: str | Path, opts: AnalysisOptions | None = None) -> dict:
    """Analyse ``path`` into ``out_h5``; returns the summary (scalars) also stored as attrs."""
    opts = opts or AnalysisOptions()
    path = Path(path)
    symbols, chunks = read_chunks(path, opts.fmt, opts.chunk_size, opts.stride, opts.type_map)
    acc = FrameAccumulator(symbols, opts)
    bar = tqdm(desc=f"analyse {path.name}", unit="frame", disable=not opts.progress, mininterval=1.0)
    for ch in chunks:
        # the chunk's frame index counts the file's frames; timestep_ps is the time between them
        for x, cell, k in zip(ch.positions, ch.cells, ch.frame_index):
            acc.add(x, cell, float(k) * opts.timestep_ps)
        bar.update(len(ch.positions))
    bar.close()
    return write_h5(out_h5, acc, np.asarray(acc.times_ps, float), path, opts)


def flux_results(fc: FluxCounter, time_ps: np.ndarray, windows: dict) -> dict:
    """Whole-run and per-window flux (atoms/nm^2/ns) of one membrane, counted from its start frame; for an
    interface membrane also under the physical names of its two directions."""
    t = np.asarray(time_ps, float)[fc.start_frame:]
    area = float(np.mean(fc.areas_nm2)) if fc.areas_nm2 else float("nan")
    out = {"lr": flux_per_nm2_ns(fc.cumulative_lr, t, area), "rl": flux_per_nm2_ns(fc.cumulative_rl, t, area),
           "direction_lr": fc.direction_lr, "direction_rl": fc.direction_rl, "position_frac": fc.position_frac,
           "area_nm2": area, "from_ps": float(t[0]) if len(t) else float("nan"), "windows": {}}
    for name, (t0, t1) in windows.items():
        out["windows"][name] = {"t0_ns": float(t0), "t1_ns": float(t1),
                                "lr": window_flux(fc.cumulative_lr, t, area, t0, t1),
                                "rl": window_flux(fc.cumulative_rl, t, area, t0, t1)}
    for d in ("lr", "rl"):
        named = out[f"direction_{d}"]
        if not named.startswith(("+", "-")):
            out[named] = out[d]
            for w in out["windows"].values():
                w[named] = w[d]
    return out


def write_h5(out_h5: str | Path, acc: FrameAccumulator, time_ps: np.ndarray, source: Path, opts: AnalysisOptions) -> dict:
    out_h5 = Path(out_h5)
    out_h5.parent.mkdir(parents=True, exist_ok=True)
    s = acc.series
    n = acc.n_frames
    ps4 = np.asarray(s["ps4"], float)
    cryst = np.asarray(s["cryst"], float)
    ev = event_times(time_ps, ps4, cryst)
    thick = np.asarray(s["sei_thickness"], float).reshape(-1, 2)
    total = np.asarray(s["sei_total"], float)
    comp = np.asarray(s["sei_comp"], float).reshape(-1, 3)
    summary: dict = {}
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(coord_cutoff_A=COORD_CUTOFF, rdf_cutoff_A=RDF_CUTOFF, source=str(source.resolve()),
                       source_sha256=file_checksum(source), code_version=__version__, n_frames=n,
                       n_atoms=len(acc.symbols), timestep_ps=opts.timestep_ps, stride=opts.stride,
                       species=",".join(acc.nc.species), nvt_ps=opts.nvt_ps, flux_from_ps=acc.flux_from_ps)
        d = h.create_dataset("time_ps", data=time_ps)
        d.attrs["units"] = "ps"
        for a, b in CN_PAIRS:
            d = h.create_dataset(f"coordination/{a}-{b}", data=np.asarray(s[f"cn_{a}-{b}"], float))
            d.attrs.update(units="neighbours", cutoff_A=COORD_CUTOFF, definition=f"mean number of {b} within 3 A of each {a}")
        d = h.create_dataset("ps4_intact_fraction", data=ps4)
        d.attrs.update(units="fraction", definition="P with exactly 4 S within 3 A / all P")
        d = h.create_dataset("crystallinity_percent", data=cryst)
        d.attrs.update(units="%", definition="S with exactly 8 Li within 3 A / all S; NaN without S")
        d = h.create_dataset("sei/thickness_total_A", data=total)
        d.attrs.update(units="Angstrom", definition="extent along c of the non-Li region (outermost S/P/Cl in the Li "
                       "metal at one interface to the one at the other) minus the extent of the intact-PS4 region; "
                       "the whole non-Li extent once no PS4 is intact; NaN without Li metal (METHOD.md 9)")
        d = h.create_dataset("sei/thickness_A", data=thick)
        d.attrs.update(units="Angstrom", columns="interface above the argyrodite (+c), interface below",
                       definition="the two parts of thickness_total_A, intact-PS4 edge to the outermost S/P/Cl in the "
                       "Li metal; NaN once no PS4 is intact")
        h.create_dataset("sei/non_li_extent_A", data=np.asarray(s["non_li_extent"], float)).attrs["units"] = "Angstrom"
        h.create_dataset("sei/ps4_extent_A", data=np.asarray(s["ps4_extent"], float)).attrs["units"] = "Angstrom"
        d = h.create_dataset("sei/composition", data=comp)
        d.attrs.update(units="fraction", columns="S,P,Cl", definition="Li2 S(1-x-y) P(x) Cl(y) anion fractions of the "
                       "S, P, Cl bound to SEI Li (Li with >= 3 S/P/Cl neighbours within 3 A outside intact PS4 units); "
                       "NaN without SEI Li")
        d = h.create_dataset("sei/li_per_anion", data=np.asarray(s["li_per_anion"], float))
        d.attrs.update(units="Li per anion", definition="SEI Li / SEI anions")
        d = h.create_dataset("sei/n_li", data=np.asarray(s["sei_li"], np.int64))
        d.attrs.update(units="atoms", definition="number of SEI Li")
        rdfs = acc.rdfs()
        h.create_dataset("rdf/r_A", data=0.5 * (acc.nc.rdf_edges[1:] + acc.nc.rdf_edges[:-1])).attrs["units"] = "Angstrom"
        for name, g in rdfs.items():
            h.create_dataset(f"rdf/{name}", data=g).attrs["units"] = "g(r), dimensionless"
        fluxes = {}
        windows = {k: (float(v[0]), float(v[1])) for k, v in (opts.flux_windows or {}).items()}
        for fc in acc.flux:
            res = flux_results(fc, time_ps, windows)
            pad = np.zeros(fc.start_frame, np.int64)  # no count before the membranes were placed
            g = h.create_group(f"flux/{fc.name}")
            g.create_dataset("cumulative_lr", data=np.concatenate([pad, fc.cumulative_lr]).astype(np.int64))
            g.create_dataset("cumulative_rl", data=np.concatenate([pad, fc.cumulative_rl]).astype(np.int64))
            g.attrs.update(position_frac=fc.position_frac, thickness_A=fc.thickness_A, area_nm2=res["area_nm2"],
                           flux_lr=res["lr"], flux_rl=res["rl"], units="atoms/nm2/ns", direction="lr = along +c",
                           direction_lr=fc.direction_lr, direction_rl=fc.direction_rl, from_ps=res["from_ps"])
            for wname, w in res["windows"].items():
                g.attrs.update({f"window_{wname}_ns": [w["t0_ns"], w["t1_ns"]], f"flux_lr_{wname}": w["lr"],
                                f"flux_rl_{wname}": w["rl"]})
            fluxes[fc.name] = res
        g = h.create_group("events")
        g.attrs.update({k: float(v) for k, v in ev.items()})
        summary = {
            "n_frames": n,
            "duration_ps": float(time_ps[-1] - time_ps[0]) if len(time_ps) > 1 else 0.0,
            "final": {
                "cn": {f"{a}-{b}": _tail_mean(np.asarray(s[f"cn_{a}-{b}"], float)) for a, b in CN_PAIRS},
                "ps4_intact_fraction": _tail_mean(ps4),
                "crystallinity_percent": _tail_mean(cryst),
                "sei_thickness_A": [_tail_mean(thick[:, k]) for k in (0, 1)],
                "sei_thickness_total_A": _tail_mean(total),
                "sei_composition": [_tail_mean(comp[:, k]) for k in range(3)],
                "sei_li_per_anion": _tail_mean(np.asarray(s["li_per_anion"], float)),
            },
            "sei_thickness_total_max_A": float(np.nanmax(total)) if np.any(np.isfinite(total)) else float("nan"),
            "flux": fluxes,
            "flux_from_ps": acc.flux_from_ps,
            "events": {k: float(v) for k, v in ev.items() if k.endswith("_ns")},
        }
    return summary


def _tail_mean(y: np.ndarray) -> float:
    y = np.asarray(y, float)
    if y.size == 0 or not np.any(np.isfinite(y)):
        return float("nan")
    tail = y[-max(1, len(y) // 10):]
    return float(np.nanmean(tail)) if np.any(np.isfinite(tail)) else float("nan")

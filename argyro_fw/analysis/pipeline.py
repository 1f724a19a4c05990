"""The streaming analysis of one trajectory into one HDF5 file (the contract of issue 5).

Frames are read in chunks and reduced per frame; only per-frame scalars, cumulative flux counts
and summed RDF histograms are kept, so memory does not grow with the trajectory length. The HDF5
file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from .. import __version__
from ..core.serialise import atomic_path
from .events import event_times
from .flux import FluxCounter, flux_per_nm2_ns
from .metrics import ANIONS, CN_PAIRS, crystallinity_percent, intact_ps4, mean_cn, sei_lithium
from .neighbours import COORD_CUTOFF, RDF_CUTOFF, NeighbourCounter, rdf_from_histogram
from .sei import find_regions, sei_zone_masks
from .trajectory import read_chunks

RDF_PAIRS = (("S", "P"), ("S", "Li"), ("P", "Li"), ("Cl", "Li"), ("Li", "Li"), ("S", "S"))


def file_checksum(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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


class FrameAccumulator:
    """Per-frame reductions of METHOD.md section 7 (no file I/O: usable on in-memory frames)."""

    def __init__(self, symbols: list[str], opts: AnalysisOptions):
        self.symbols = symbols
        self.opts = opts
        self.nc = NeighbourCounter(symbols, COORD_CUTOFF, RDF_CUTOFF)
        ix = self.nc.index
        self.li, self.p, self.s, self.cl = ix("Li"), ix("P"), ix("S"), ix("Cl")
        self.codes = self.nc.codes
        self.anion_codes = [c for c in (ix(a) for a in ANIONS) if c is not None]
        self.li_mask = self.codes == self.li if self.li is not None else np.zeros(len(symbols), bool)
        self.nonli_mask = np.isin(self.codes, self.anion_codes)
        self.series: dict[str, list] = {k: [] for k in (
            "cn_S-P", "cn_S-Li", "cn_P-Li", "cn_Cl-Li", "ps4", "cryst", "sei_thickness", "sei_comp", "li_per_anion")}
        self.rdf_hist = np.zeros((self.nc.ns, self.nc.ns, self.nc.rdf_bins))
        self.volume_sum = 0.0
        self.n_frames = 0
        self.flux: list[FluxCounter] = [FluxCounter(n, f, opts.membrane_thickness_A) for n, f in opts.membranes.items()]
        self.n_p = int(np.count_nonzero(self.codes == self.p)) if self.p is not None else 0

    def _auto_membranes(self, reg) -> None:
        """The study's membranes from frame 0: the interface (outermost non-Li atom in the Li metal,
        above the argyrodite), electrode centre, electrolyte centre, and 1/4 of the electrolyte."""
        if reg is None or not reg.has_li_metal:
            return
        z = {
            "interface": reg.hi + reg.core_start,
            "electrode_centre": reg.hi + 0.5 * (reg.core_start + reg.core_end),
            "electrolyte_centre": 0.5 * (reg.lo + reg.hi),
            "electrolyte_quarter": reg.lo + 0.25 * (reg.hi - reg.lo),
        }
        names = {f.name for f in self.flux}
        for name, pos in z.items():
            if name not in names:
                self.flux.append(FluxCounter(name, float(np.mod(pos, 1.0)), self.opts.membrane_thickness_A))

    def add(self, positions: np.ndarray, cell: np.ndarray) -> None:
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
        if self.n_frames == 0 and self.opts.auto_membranes:
            self._auto_membranes(reg)
        if reg is not None and reg.has_li_metal:
            t_up, t_down = reg.thickness_frac()
            self.series["sei_thickness"].append((t_up * spacing, t_down * spacing))
            zone = sei_zone_masks(fz, reg, COORD_CUTOFF / spacing) & ~arg_mask
            n_an = [int(np.count_nonzero(zone & (codes == ix(a)))) if ix(a) is not None else 0 for a in ANIONS]
            tot = sum(n_an)
            sei_li = sei_lithium(counts, codes, self.li, self.anion_codes) & zone
            self.series["sei_comp"].append(tuple(x / tot for x in n_an) if tot else (np.nan,) * 3)
            self.series["li_per_anion"].append(np.count_nonzero(sei_li) / tot if tot else np.nan)
        else:
            self.series["sei_thickness"].append((np.nan, np.nan))
            self.series["sei_comp"].append((np.nan,) * 3)
            self.series["li_per_anion"].append(np.nan)
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
        nc = self.nc
        vol = self.volume_sum / max(self.n_frames, 1)
        out = {}
        for a, b in RDF_PAIRS:
            ia, ib = nc.index(a), nc.index(b)
            if ia is None or ib is None:
                continue
            lo, hi = min(ia, ib), max(ia, ib)
            na, nb = int(np.count_nonzero(nc.codes == ia)), int(np.count_nonzero(nc.codes == ib))
            out[f"{a}-{b}"] = rdf_from_histogram(self.rdf_hist[lo, hi], nc.rdf_edges, na, nb, vol, self.n_frames, ia == ib)
        return out


def analyze_trajectory(path: str | Path, out_h5: str | Path, opts: AnalysisOptions | None = None) -> dict:
    """Analyse ``path`` into ``out_h5``; returns the summary (scalars) also stored as attrs."""
    opts = opts or AnalysisOptions()
    path = Path(path)
    symbols, chunks = read_chunks(path, opts.fmt, opts.chunk_size, opts.stride, opts.type_map)
    acc = FrameAccumulator(symbols, opts)
    frame_index: list[np.ndarray] = []
    bar = tqdm(desc=f"analyse {path.name}", unit="frame", disable=not opts.progress, mininterval=1.0)
    for ch in chunks:
        for x, cell in zip(ch.positions, ch.cells):
            acc.add(x, cell)
        frame_index.append(ch.frame_index)
        bar.update(len(ch.positions))
    bar.close()
    idx = np.concatenate(frame_index)
    time_ps = idx * opts.timestep_ps  # idx counts the file's frames; timestep_ps is the time between them
    return write_h5(out_h5, acc, time_ps, path, opts)


def write_h5(out_h5: str | Path, acc: FrameAccumulator, time_ps: np.ndarray, source: Path, opts: AnalysisOptions) -> dict:
    out_h5 = Path(out_h5)
    out_h5.parent.mkdir(parents=True, exist_ok=True)
    s = acc.series
    ps4 = np.asarray(s["ps4"], float)
    cryst = np.asarray(s["cryst"], float)
    ev = event_times(time_ps, ps4, cryst)
    summary: dict = {}
    with atomic_path(out_h5) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(coord_cutoff_A=COORD_CUTOFF, rdf_cutoff_A=RDF_CUTOFF, source=str(source.resolve()),
                       source_sha256=file_checksum(source), code_version=__version__, n_frames=acc.n_frames,
                       n_atoms=len(acc.symbols), timestep_ps=opts.timestep_ps, stride=opts.stride,
                       species=",".join(acc.nc.species))
        d = h.create_dataset("time_ps", data=time_ps)
        d.attrs["units"] = "ps"
        for a, b in CN_PAIRS:
            d = h.create_dataset(f"coordination/{a}-{b}", data=np.asarray(s[f"cn_{a}-{b}"], float))
            d.attrs.update(units="neighbours", cutoff_A=COORD_CUTOFF, definition=f"mean number of {b} within 3 A of each {a}")
        d = h.create_dataset("ps4_intact_fraction", data=ps4)
        d.attrs.update(units="fraction", definition="P with exactly 4 S within 3 A / all P")
        d = h.create_dataset("crystallinity_percent", data=cryst)
        d.attrs.update(units="%", definition="S with exactly 8 Li within 3 A / all S; NaN without S")
        d = h.create_dataset("sei/thickness_A", data=np.asarray(s["sei_thickness"], float).reshape(-1, 2))
        d.attrs.update(units="Angstrom", columns="interface above the argyrodite (+c), interface below")
        d = h.create_dataset("sei/composition", data=np.asarray(s["sei_comp"], float).reshape(-1, 3))
        d.attrs.update(units="fraction", columns="S,P,Cl", definition="Li2 S(1-x-y) P(x) Cl(y) anion fractions")
        d = h.create_dataset("sei/li_per_anion", data=np.asarray(s["li_per_anion"], float))
        d.attrs["units"] = "Li per anion"
        rdfs = acc.rdfs()
        h.create_dataset("rdf/r_A", data=0.5 * (acc.nc.rdf_edges[1:] + acc.nc.rdf_edges[:-1])).attrs["units"] = "Angstrom"
        for name, g in rdfs.items():
            h.create_dataset(f"rdf/{name}", data=g).attrs["units"] = "g(r), dimensionless"
        fluxes = {}
        for fc in acc.flux:
            area = float(np.mean(fc.areas_nm2))
            lr = flux_per_nm2_ns(fc.cumulative_lr, time_ps, area)
            rl = flux_per_nm2_ns(fc.cumulative_rl, time_ps, area)
            g = h.create_group(f"flux/{fc.name}")
            g.create_dataset("cumulative_lr", data=np.asarray(fc.cumulative_lr))
            g.create_dataset("cumulative_rl", data=np.asarray(fc.cumulative_rl))
            g.attrs.update(position_frac=fc.position_frac, thickness_A=fc.thickness_A, area_nm2=area,
                           flux_lr=lr, flux_rl=rl, units="atoms/nm2/ns", direction="lr = along +c")
            fluxes[fc.name] = (lr, rl)
        g = h.create_group("events")
        g.attrs.update({k: float(v) for k, v in ev.items()})
        summary = {
            "n_frames": acc.n_frames,
            "duration_ps": float(time_ps[-1] - time_ps[0]) if len(time_ps) > 1 else 0.0,
            "final": {
                "cn": {f"{a}-{b}": _tail_mean(np.asarray(s[f"cn_{a}-{b}"], float)) for a, b in CN_PAIRS},
                "ps4_intact_fraction": _tail_mean(ps4),
                "crystallinity_percent": _tail_mean(cryst),
                "sei_thickness_A": [_tail_mean(np.asarray(s["sei_thickness"], float).reshape(-1, 2)[:, k]) for k in (0, 1)],
                "sei_composition": [_tail_mean(np.asarray(s["sei_comp"], float).reshape(-1, 3)[:, k]) for k in range(3)],
            },
            "flux": {k: {"lr": v[0], "rl": v[1]} for k, v in fluxes.items()},
            "events": {k: float(v) for k, v in ev.items() if k.endswith("_ns")},
        }
    return summary


def _tail_mean(y: np.ndarray) -> float:
    y = np.asarray(y, float)
    if y.size == 0 or not np.any(np.isfinite(y)):
        return float("nan")
    tail = y[-max(1, len(y) // 10):]
    return float(np.nanmean(tail)) if np.any(np.isfinite(tail)) else float("nan")

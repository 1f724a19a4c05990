"""Files around the diffusion analysis: trajectory -> kinisi -> HDF5, and the Arrhenius file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from .. import __version__
from ..core.serialise import atomic_path
from .diffusion import DiffusionResult, arrhenius_fit
from .pipeline import file_checksum
from .trajectory import TrajectoryError, read_chunks


def load_frames(path: str | Path, fmt: str | None = None, stride: int = 1, type_map: list[str] | None = None) -> list[Atoms]:
    """All frames (after ``stride``) as ASE Atoms (positions and cell only)."""
    symbols, chunks = read_chunks(path, fmt, 500, stride, type_map)
    frames = []
    for ch in chunks:
        for x, cell in zip(ch.positions, ch.cells):
            frames.append(Atoms(symbols, positions=x, cell=cell, pbc=True))
    return frames


def diffusion_to_h5(res: DiffusionResult, out: str | Path, source: str | Path | None = None) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(code_version=__version__, temperature_K=res.temperature_K)
        if source is not None:
            h.attrs.update(source=str(Path(source).resolve()), source_sha256=file_checksum(source))
        g = h.create_group(f"diffusion/{res.specie}")
        for name, val, unit in (("D_cm2_s", res.D_cm2_s, "cm^2/s"), ("D_std_cm2_s", res.D_std_cm2_s, "cm^2/s"),
                                ("sigma_S_cm", res.sigma_S_cm, "S/cm"), ("sigma_std_S_cm", res.sigma_std_S_cm, "S/cm"),
                                ("sigma_mstd_S_cm", res.sigma_mstd_S_cm, "S/cm"),
                                ("sigma_mstd_std_S_cm", res.sigma_mstd_std_S_cm, "S/cm")):
            g.create_dataset(name, data=val).attrs["units"] = unit
        g.create_dataset("msd_A2", data=res.msd_A2).attrs["units"] = "Angstrom^2"
        g.create_dataset("msd_std_A2", data=res.msd_std_A2).attrs["units"] = "Angstrom^2"
        g.create_dataset("dt_ps", data=res.dt_ps).attrs["units"] = "ps"
        g.attrs.update(temperature_K=res.temperature_K, n_atoms=res.n_atoms, volume_A3=res.volume_A3,
                       start_dt_ps=res.start_dt_ps,
                       sigma_definition="sigma_S_cm: Nernst-Einstein from D; sigma_mstd_S_cm: kinisi, mean squared total displacement")
    return out


def read_diffusion_h5(path: str | Path, specie: str = "Li") -> dict:
    p = Path(path)
    try:
        with h5py.File(p, "r") as h:
            g = h[f"diffusion/{specie}"]
            return {k: float(g[k][()]) for k in ("D_cm2_s", "D_std_cm2_s", "sigma_S_cm", "sigma_std_S_cm",
                                                  "sigma_mstd_S_cm", "sigma_mstd_std_S_cm")} | {
                "temperature_K": float(g.attrs["temperature_K"])}
    except (OSError, KeyError) as exc:
        raise TrajectoryError(f"{p}: not an argyro diffusion file with /diffusion/{specie} ({exc})") from None


def arrhenius_to_h5(inputs: list[str | Path], out: str | Path, specie: str = "Li", T_extrapolate: float = 300.0) -> dict:
    rows = sorted((read_diffusion_h5(p, specie) for p in inputs), key=lambda r: r["temperature_K"])
    T = np.array([r["temperature_K"] for r in rows])
    if len(set(T)) < 2:
        raise TrajectoryError("an Arrhenius fit needs diffusion files at >= 2 different temperatures")
    fits = {
        "D": arrhenius_fit(T, [r["D_cm2_s"] for r in rows], [r["D_std_cm2_s"] for r in rows], T_extrapolate=T_extrapolate),
        "sigma": arrhenius_fit(T, [r["sigma_S_cm"] for r in rows], [r["sigma_std_S_cm"] for r in rows], times_T=True,
                               T_extrapolate=T_extrapolate),
    }
    mstd = [r["sigma_mstd_S_cm"] for r in rows]
    if all(np.isfinite(mstd)) and all(m > 0 for m in mstd):
        fits["sigma_mstd"] = arrhenius_fit(T, mstd, [r["sigma_mstd_std_S_cm"] for r in rows], times_T=True,
                                           T_extrapolate=T_extrapolate)
    out = Path(out)
    summary = {}
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(code_version=__version__, sources=[str(Path(p).resolve()) for p in inputs], specie=specie)
        h.create_dataset("temperature_K", data=T).attrs["units"] = "K"
        for key, col in (("D_cm2_s", "D_cm2_s"), ("sigma_S_cm", "sigma_S_cm"), ("sigma_mstd_S_cm", "sigma_mstd_S_cm")):
            h.create_dataset(key, data=[r[col] for r in rows])
        for name, f in fits.items():
            g = h.create_group(f"arrhenius/{name}")
            g.attrs.update(Ea_eV=f.Ea_eV, Ea_std_eV=f.Ea_std_eV, prefactor=f.prefactor,
                           value_at_T=f.value_300K, value_at_T_std=f.value_300K_std, T_extrapolated_K=T_extrapolate,
                           units="cm^2/s" if name == "D" else "S/cm")
            summary[name] = {"Ea_eV": f.Ea_eV, "Ea_std_eV": f.Ea_std_eV, f"at_{T_extrapolate:g}K": f.value_300K,
                             f"at_{T_extrapolate:g}K_std": f.value_300K_std}
    return summary

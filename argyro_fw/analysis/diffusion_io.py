"""Files around the diffusion analysis: trajectory -> kinisi -> HDF5, and the Arrhenius file."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from .. import __version__
from ..core.serialise import atomic_path
from .diffusion import BULK_FLUX_PLANES, DiffusionResult, arrhenius_fit
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
                                ("sigma_mstd_std_S_cm", res.sigma_mstd_std_S_cm, "S/cm"),
                                ("flux_pos_c_nm2_ns", res.flux_pos_c_nm2_ns, "atoms/nm2/ns"),
                                ("flux_neg_c_nm2_ns", res.flux_neg_c_nm2_ns, "atoms/nm2/ns")):
            g.create_dataset(name, data=val).attrs["units"] = unit
        g.create_dataset("msd_A2", data=res.msd_A2).attrs["units"] = "Angstrom^2"
        g.create_dataset("msd_std_A2", data=res.msd_std_A2).attrs["units"] = "Angstrom^2"
        g.create_dataset("dt_ps", data=res.dt_ps).attrs["units"] = "ps"
        g.attrs.update(temperature_K=res.temperature_K, n_atoms=res.n_atoms, volume_A3=res.volume_A3,
                       start_dt_ps=res.start_dt_ps, flux_from_ps=res.flux_from_ps,
                       flux_definition="Li crossings of 3 A membranes normal to c at fractional z "
                                       f"{', '.join(f'{p:g}' for p in BULK_FLUX_PLANES)} (mean), +c and -c",
                       sigma_definition="sigma_S_cm: Nernst-Einstein from D; sigma_mstd_S_cm: kinisi, mean squared total displacement")
    return out


def read_diffusion_h5(path: str | Path, specie: str = "Li") -> dict:
    p = Path(path)
    try:
        with h5py.File(p, "r") as h:
            g = h[f"diffusion/{specie}"]
            out = {k: float(g[k][()]) for k in ("D_cm2_s", "D_std_cm2_s", "sigma_S_cm", "sigma_std_S_cm",
                                                 "sigma_mstd_S_cm", "sigma_mstd_std_S_cm")}
            out |= {k: float(g[k][()]) if k in g else float("nan") for k in ("flux_pos_c_nm2_ns", "flux_neg_c_nm2_ns")}
            return out | {"temperature_K": float(g.attrs["temperature_K"])}
    except (OSError, KeyError) as exc:
        raise TrajectoryError(f"{p}: not an argyro diffusion file with /diffusion/{specie} ({exc})") from None


def arrhenius_to_h5(inputs: list[str | Path], out: str | Path, specie: str = "Li", T_extrapolate: float = 300.0,
                    seed: int = 42) -> dict:
    """kinisi Arrhenius fits (:func:`~argyro_fw.analysis.diffusion.arrhenius_fit`) of D, of sigma (ln sigma against
    1/T, METHOD.md 9) and of the MSTD sigma over the diffusion files -> ``out`` and a summary per quantity."""
    rows = sorted((read_diffusion_h5(p, specie) for p in inputs), key=lambda r: r["temperature_K"])
    T = np.array([r["temperature_K"] for r in rows])
    if len(set(T)) < 2:
        raise TrajectoryError("an Arrhenius fit needs diffusion files at >= 2 different temperatures")
    fits = {
        "D": arrhenius_fit(T, [r["D_cm2_s"] for r in rows], [r["D_std_cm2_s"] for r in rows], T_extrapolate=T_extrapolate,
                           seed=seed),
        "sigma": arrhenius_fit(T, [r["sigma_S_cm"] for r in rows], [r["sigma_std_S_cm"] for r in rows],
                               T_extrapolate=T_extrapolate, seed=seed),
    }
    mstd = [r["sigma_mstd_S_cm"] for r in rows]
    if all(np.isfinite(mstd)) and all(m > 0 for m in mstd):
        fits["sigma_mstd"] = arrhenius_fit(T, mstd, [r["sigma_mstd_std_S_cm"] for r in rows],
                                           T_extrapolate=T_extrapolate, seed=seed)
    out = Path(out)
    summary = {}
    at = f"at_{T_extrapolate:g}K"
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h:
        h.attrs.update(code_version=__version__, sources=[str(Path(p).resolve()) for p in inputs], specie=specie)
        h.create_dataset("temperature_K", data=T).attrs["units"] = "K"
        for key in ("D_cm2_s", "D_std_cm2_s", "sigma_S_cm", "sigma_std_S_cm", "sigma_mstd_S_cm", "sigma_mstd_std_S_cm",
                    "flux_pos_c_nm2_ns", "flux_neg_c_nm2_ns"):
            h.create_dataset(key, data=[r[key] for r in rows])
        for name, f in fits.items():
            g = h.create_group(f"arrhenius/{name}")
            g.attrs.update(Ea_eV=f.Ea_eV, Ea_std_eV=f.Ea_std_eV, Ea_ci95_eV=list(f.Ea_ci95_eV), prefactor=f.prefactor,
                           value_at_T=f.value_300K, value_at_T_std=f.value_300K_std,
                           value_at_T_ci95=list(f.value_300K_ci95), T_extrapolated_K=T_extrapolate,
                           units="cm^2/s" if name == "D" else "S/cm", n_samples=f.n_samples,
                           fit=f"ln({'D' if name == 'D' else 'sigma'}) against 1/T",
                           method="kinisi.arrhenius.Arrhenius, emcee MCMC, posterior mean and sd")
            g.create_dataset("Ea_samples_eV", data=f.Ea_samples_eV).attrs["units"] = "eV"
            summary[name] = {"Ea_eV": f.Ea_eV, "Ea_std_eV": f.Ea_std_eV, "Ea_ci95_eV": list(f.Ea_ci95_eV),
                             "prefactor": f.prefactor, at: f.value_300K, f"{at}_std": f.value_300K_std,
                             f"{at}_ci95": list(f.value_300K_ci95), "fit": g.attrs["fit"],
                             "method": "kinisi Arrhenius (MCMC)"}
        flux = {k: [r[k] for r in rows] for k in ("flux_pos_c_nm2_ns", "flux_neg_c_nm2_ns")}
        if any(np.isfinite(v).any() for v in flux.values()):
            summary["bulk_flux"] = {"temperature_K": T.tolist(), "pos_c": flux["flux_pos_c_nm2_ns"],
                                    "neg_c": flux["flux_neg_c_nm2_ns"], "units": "atoms/nm2/ns"}
    return summary

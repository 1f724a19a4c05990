"""Li diffusion and conductivity with kinisi (METHOD.md section 1), and Arrhenius fits.

- D from the Li mean squared displacement (Einstein relation) by kinisi's Bayesian regression;
  D in cm^2/s, with its sample standard deviation.
- sigma by Nernst-Einstein from D: sigma = N q^2 D / (V k_B T), N Li atoms in the mean volume V.
- sigma from the charge diffusion coefficient (mean squared total displacement of all Li, which
  includes correlated motion), kinisi's ConductivityAnalyzer; S/cm.
- Arrhenius: ln D = ln D0 - Ea / (k_B T), least squares weighted by the D uncertainties;
  extrapolated to 300 K. Same for sigma*T (sigma T = A exp(-Ea/kBT)).

kinisi holds the Li trajectory in memory: use a stride for long runs (the MSD converges on
frame spacings much longer than 0.1 ps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

KB_EV = 8.617333262e-5  # eV/K
E_C = 1.602176634e-19  # C
KB_J = 1.380649e-23  # J/K


@dataclass
class DiffusionResult:
    specie: str
    temperature_K: float
    D_cm2_s: float
    D_std_cm2_s: float
    dt_ps: np.ndarray
    msd_A2: np.ndarray
    msd_std_A2: np.ndarray
    sigma_S_cm: float  # Nernst-Einstein from D
    sigma_std_S_cm: float
    sigma_mstd_S_cm: float  # from the mean squared total displacement (kinisi ConductivityAnalyzer)
    sigma_mstd_std_S_cm: float
    n_atoms: int
    volume_A3: float
    start_dt_ps: float


def nernst_einstein(D_cm2_s: float | np.ndarray, n_atoms: int, volume_A3: float, temperature_K: float,
                    charge: float = 1.0) -> float | np.ndarray:
    """sigma (S/cm) = N (z e)^2 D / (V k_B T)."""
    D_m2_s = np.asarray(D_cm2_s) * 1e-4
    V_m3 = volume_A3 * 1e-30
    sigma_S_m = n_atoms * (charge * E_C) ** 2 * D_m2_s / (V_m3 * KB_J * temperature_K)
    return sigma_S_m / 100.0


def kinisi_diffusion(frames: list[Atoms], specie: str, temperature_K: float, md_timestep_ps: float,
                     step_skip: int = 1, start_dt_ps: float | None = None, seed: int = 42, progress: bool = False,
                     conductivity: bool = True) -> DiffusionResult:
    """D and sigma of ``specie`` from ASE frames (kinisi, seeded sampler).

    ``md_timestep_ps``: the MD integration time step; ``step_skip``: MD steps between stored
    frames (kinisi's own parameters: its uncertainty model uses both, so give the true values,
    e.g. 0.002 ps and 50 for the study's AIMD output every 0.1 ps).
    ``start_dt_ps``: start of the diffusive regime for the fit (default: 10 % of the run).
    """
    frame_dt_ps = md_timestep_ps * step_skip
    import scipp as sc
    from kinisi.analyze import ConductivityAnalyzer, DiffusionAnalyzer

    if temperature_K <= 0:
        raise ValueError(f"temperature must be > 0 K, got {temperature_K}")
    if len(frames) < 10:
        raise ValueError(f"diffusion needs >= 10 frames, got {len(frames)}")
    n_sp = sum(1 for s in frames[0].get_chemical_symbols() if s == specie)
    if n_sp == 0:
        raise ValueError(f"no {specie} atoms in the trajectory")
    start = start_dt_ps if start_dt_ps is not None else 0.1 * frame_dt_ps * (len(frames) - 1)
    params = dict(specie=specie, time_step=md_timestep_ps * sc.Unit("ps"), step_skip=step_skip * sc.Unit("dimensionless"),
                  progress=progress)
    da = DiffusionAnalyzer.from_ase(frames, **params)
    da.diffusion(start * sc.Unit("ps"), random_state=np.random.RandomState(seed), progress=progress)
    D = da.D.to(unit="cm^2/s").values
    msd = da.msd
    volume = float(np.mean([abs(a.cell.volume) for a in frames]))
    ne = nernst_einstein(D, n_sp, volume, temperature_K)
    s_m, s_s = float("nan"), float("nan")
    if conductivity:
        ca = ConductivityAnalyzer.from_ase(frames, ionic_charge=1 * sc.Unit("e"), **params)
        ca.conductivity(start * sc.Unit("ps"), temperature_K * sc.Unit("K"), random_state=np.random.RandomState(seed),
                        progress=progress)
        sig = ca.sigma.to(unit="S/cm").values
        s_m, s_s = float(np.mean(sig)), float(np.std(sig, ddof=1))
    return DiffusionResult(
        specie=specie, temperature_K=temperature_K, D_cm2_s=float(np.mean(D)), D_std_cm2_s=float(np.std(D, ddof=1)),
        dt_ps=np.asarray(da.dt.to(unit="ps").values), msd_A2=np.asarray(msd.values),
        msd_std_A2=np.sqrt(np.asarray(msd.variances)) if msd.variances is not None else np.full(len(msd.values), np.nan),
        sigma_S_cm=float(np.mean(ne)), sigma_std_S_cm=float(np.std(ne, ddof=1)),
        sigma_mstd_S_cm=s_m, sigma_mstd_std_S_cm=s_s, n_atoms=n_sp, volume_A3=volume, start_dt_ps=start,
    )


@dataclass
class ArrheniusFit:
    Ea_eV: float
    Ea_std_eV: float
    prefactor: float  # D0 (cm^2/s) or A (S K/cm)
    value_300K: float
    value_300K_std: float


def arrhenius_fit(T_K: np.ndarray, values: np.ndarray, stds: np.ndarray | None = None, times_T: bool = False,
                  T_extrapolate: float = 300.0) -> ArrheniusFit:
    """Weighted least squares of ln(y) = ln(y0) - Ea/(kB T); y = D, or sigma*T when ``times_T``.

    Returns Ea (eV) with its standard error, the prefactor and the value extrapolated to
    ``T_extrapolate`` (for sigma: divided by T again) with a propagated standard error.
    """
    T = np.asarray(T_K, float)
    y = np.asarray(values, float) * (T if times_T else 1.0)
    if len(T) < 2:
        raise ValueError("an Arrhenius fit needs >= 2 temperatures")
    if np.any(y <= 0):
        raise ValueError("Arrhenius fit needs positive values")
    ln_y = np.log(y)
    if stds is not None and np.all(np.asarray(stds) > 0):
        rel = np.asarray(stds, float) / np.asarray(values, float)
        w = 1.0 / rel**2
    else:
        w = np.ones_like(T)
    X = np.column_stack([np.ones_like(T), -1.0 / (KB_EV * T)])
    W = np.diag(w)
    cov = np.linalg.inv(X.T @ W @ X)
    beta = cov @ X.T @ W @ ln_y
    if len(T) > 2:
        resid = ln_y - X @ beta
        s2 = float(resid @ W @ resid / (len(T) - 2))
        cov = cov * max(s2, 1.0 if stds is not None else s2)
    x0 = np.array([1.0, -1.0 / (KB_EV * T_extrapolate)])
    ln_pred = float(x0 @ beta)
    ln_pred_std = float(np.sqrt(x0 @ cov @ x0))
    pred = np.exp(ln_pred) / (T_extrapolate if times_T else 1.0)
    return ArrheniusFit(Ea_eV=float(beta[1]), Ea_std_eV=float(np.sqrt(cov[1, 1])), prefactor=float(np.exp(beta[0])),
                        value_300K=float(pred), value_300K_std=float(pred * ln_pred_std))

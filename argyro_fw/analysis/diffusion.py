"""Li diffusion and conductivity with kinisi (METHOD.md section 1), and Arrhenius fits.

- D from the Li mean squared displacement (Einstein relation) by kinisi's Bayesian regression;
  D in cm^2/s, with its sample standard deviation.
- sigma by Nernst-Einstein from D: sigma = N q^2 D / (V k_B T), N Li atoms in the mean volume V.
- sigma from the charge diffusion coefficient (mean squared total displacement of all Li, which
  includes correlated motion), kinisi's ConductivityAnalyzer; S/cm.
- Arrhenius: kinisi's Bayesian Arrhenius (``kinisi.arrhenius.Arrhenius``: y = A exp(-Ea / (k_B T))
  with the Gaussian uncertainties of y, sampled by MCMC), for y = D and for y = sigma: Ea(sigma) is
  the slope of ln(sigma) against 1/T (METHOD.md 9), not of ln(sigma T). Ea and the value
  extrapolated to 300 K are the posterior means with standard deviations and 95 % intervals.
- Bulk Li flux (METHOD.md 7, bulk argyrodite): crossings of 3 Angstrom membranes normal to c,
  +c and -c, atoms/nm^2/ns, mean over four planes at fractional z 1/8, 3/8, 5/8, 7/8.

kinisi holds the Li trajectory in memory: use a stride for long runs (the MSD converges on
frame spacings much longer than 0.1 ps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from .flux import plane_flux

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
    flux_pos_c_nm2_ns: float = float("nan")  # bulk Li flux along +c, atoms/nm^2/ns (mean over BULK_FLUX_PLANES)
    flux_neg_c_nm2_ns: float = float("nan")  # along -c
    flux_from_ps: float = 0.0  # the flux counts frames from this time on


#: fractional z of the bulk flux membranes (equivalent planes of a homogeneous phase)
BULK_FLUX_PLANES = (0.125, 0.375, 0.625, 0.875)


def nernst_einstein(D_cm2_s: float | np.ndarray, n_atoms: int, volume_A3: float, temperature_K: float,
                    charge: float = 1.0) -> float | np.ndarray:
    """sigma (S/cm) = N (z e)^2 D / (V k_B T)."""
    D_m2_s = np.asarray(D_cm2_s) * 1e-4
    V_m3 = volume_A3 * 1e-30
    sigma_S_m = n_atoms * (charge * E_C) ** 2 * D_m2_s / (V_m3 * KB_J * temperature_K)
    return sigma_S_m / 100.0


def kinisi_diffusion(frames: list[Atoms], specie: str, temperature_K: float, md_timestep_ps: float,
                     step_skip: int = 1, start_dt_ps: float | None = None, seed: int = 42, progress: bool = False,
                     conductivity: bool = True, flux: bool = True, flux_from_ps: float = 0.0) -> DiffusionResult:
    """D and sigma of ``specie`` from ASE frames (kinisi, seeded sampler).

    ``md_timestep_ps``: the MD integration time step; ``step_skip``: MD steps between stored
    frames (kinisi's own parameters: its uncertainty model uses both, so give the true values,
    e.g. 0.002 ps and 50 for the study's AIMD output every 0.1 ps).
    ``start_dt_ps``: start of the diffusive regime for the fit (default: 10 % of the run).
    ``flux``: also the bulk Li flux through :data:`BULK_FLUX_PLANES`, counted from ``flux_from_ps`` (e.g. the
    end of the NVT equilibration) to the end.
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
    f_pos = f_neg = float("nan")
    if flux:
        f_pos, f_neg = bulk_flux(frames, specie, frame_dt_ps, flux_from_ps)
    return DiffusionResult(
        flux_pos_c_nm2_ns=f_pos, flux_neg_c_nm2_ns=f_neg, flux_from_ps=flux_from_ps,
        specie=specie, temperature_K=temperature_K, D_cm2_s=float(np.mean(D)), D_std_cm2_s=float(np.std(D, ddof=1)),
        dt_ps=np.asarray(da.dt.to(unit="ps").values), msd_A2=np.asarray(msd.values),
        msd_std_A2=np.sqrt(np.asarray(msd.variances)) if msd.variances is not None else np.full(len(msd.values), np.nan),
        sigma_S_cm=float(np.mean(ne)), sigma_std_S_cm=float(np.std(ne, ddof=1)),
        sigma_mstd_S_cm=s_m, sigma_mstd_std_S_cm=s_s, n_atoms=n_sp, volume_A3=volume, start_dt_ps=start,
    )


def bulk_flux(frames: list[Atoms], specie: str, frame_dt_ps: float, from_ps: float = 0.0) -> tuple[float, float]:
    """(+c, -c) flux of ``specie`` in atoms/nm^2/ns through :data:`BULK_FLUX_PLANES` from ``from_ps`` on."""
    first = int(np.ceil(from_ps / frame_dt_ps - 1e-9)) if from_ps > 0 else 0
    use = frames[first:]
    if len(use) < 2:
        return float("nan"), float("nan")
    mask = np.array(use[0].get_chemical_symbols()) == specie
    fz = [a.get_scaled_positions(wrap=False)[mask, 2] for a in use]
    t = (first + np.arange(len(use))) * frame_dt_ps
    pos, neg, _ = plane_flux(fz, [a.cell.array for a in use], t, list(BULK_FLUX_PLANES))
    return pos, neg


@dataclass
class ArrheniusFit:
    """The posterior of an Arrhenius fit y = A exp(-Ea / (k_B T)): means, standard deviations, 95 % intervals."""

    Ea_eV: float
    Ea_std_eV: float
    prefactor: float  # A: D0 (cm^2/s) or sigma0 (S/cm), posterior mean
    value_300K: float  # y at T_extrapolate (named for the default 300 K)
    value_300K_std: float
    Ea_ci95_eV: tuple[float, float] = (float("nan"), float("nan"))
    value_300K_ci95: tuple[float, float] = (float("nan"), float("nan"))
    T_extrapolate_K: float = 300.0
    n_samples: int = 0
    Ea_samples_eV: np.ndarray | None = None


#: equal relative uncertainty given to values without one (the fit is then a plain fit of ln y)
DEFAULT_RELATIVE_STD = 0.01


def arrhenius_fit(T_K: np.ndarray, values: np.ndarray, stds: np.ndarray | None = None, T_extrapolate: float = 300.0,
                  seed: int = 42, n_samples: int = 1000, n_burn: int = 500, n_walkers: int = 32) -> ArrheniusFit:
    """Bayesian Arrhenius fit with kinisi (``kinisi.arrhenius.Arrhenius``, emcee MCMC): y = A exp(-Ea/(k_B T)),
    y with Gaussian uncertainties ``stds`` (values without a positive finite one get
    :data:`DEFAULT_RELATIVE_STD` of their value). For y = sigma this is Ea(sigma), the slope of ln(sigma)
    against 1/T (METHOD.md 9).

    kinisi's priors default to +-50 % of the maximum-likelihood values, which can cut the posterior of the
    prefactor (Ea and ln A are strongly correlated); here the priors are wide normals around the least-squares
    line of ln y against 1/T (Ea: sd 1 eV; A: sd 10 A), the starting point of kinisi's maximum a posteriori
    search and MCMC. The sampler is seeded with ``seed`` (numpy's global generator is restored afterwards).
    """
    import scipp as sc
    from kinisi.arrhenius import Arrhenius
    from scipy import stats  # scipy.stats: the frozen distributions kinisi takes as priors

    T = np.asarray(T_K, float)
    y = np.asarray(values, float)
    if len(T) < 2 or len(set(T.tolist())) < 2:
        raise ValueError("an Arrhenius fit needs >= 2 different temperatures")
    if np.any(~np.isfinite(y)) or np.any(y <= 0) or np.any(T <= 0):
        raise ValueError("an Arrhenius fit needs positive values and temperatures")
    e = np.full(len(y), np.nan) if stds is None else np.asarray(stds, float)
    e = np.where(np.isfinite(e) & (e > 0), e, DEFAULT_RELATIVE_STD * y)
    slope, icpt = np.polyfit(1.0 / T, np.log(y), 1)  # the priors' centre (and where the search starts)
    ea0, a0 = -slope * KB_EV, float(np.exp(icpt))
    data = sc.DataArray(sc.array(dims=["temperature"], values=y, variances=e**2, unit="cm^2/s"),
                        coords={"temperature": sc.array(dims=["temperature"], values=T, unit="K")})
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        fit = Arrhenius(data, priors=[stats.norm(ea0, 1.0), stats.norm(a0, 10.0 * a0)])
        fit.mcmc(n_samples=n_samples, n_burn=n_burn, n_walkers=n_walkers)
    finally:
        np.random.set_state(state)
    ea = np.asarray(fit.activation_energy.values, float)
    pre = np.asarray(fit.preexponential_factor.values, float)
    at = np.asarray(fit.extrapolate(T_extrapolate * sc.Unit("K")).values, float)
    return ArrheniusFit(Ea_eV=float(np.mean(ea)), Ea_std_eV=float(np.std(ea, ddof=1)), prefactor=float(np.mean(pre)),
                        value_300K=float(np.mean(at)), value_300K_std=float(np.std(at, ddof=1)),
                        Ea_ci95_eV=(float(np.percentile(ea, 2.5)), float(np.percentile(ea, 97.5))),
                        value_300K_ci95=(float(np.percentile(at, 2.5)), float(np.percentile(at, 97.5))),
                        T_extrapolate_K=float(T_extrapolate), n_samples=len(ea), Ea_samples_eV=ea)

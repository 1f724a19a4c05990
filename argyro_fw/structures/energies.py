"""The energy equations of METHOD.md sections 2-3. Energies in eV, areas in Angstrom^2, surface
and interface energies in eV/nm^2 (1 nm^2 = 100 Angstrom^2)."""

from __future__ import annotations

import numpy as np

from ..core.chemistry import ELEMENTS, REFERENCE_PHASES  # noqa: F401  (re-exported for the equations' users)


def chemical_potentials(e_fu: dict[str, float]) -> dict[str, float]:
    """mu_Li, mu_P, mu_S, mu_Cl (eV) from the energies per formula unit of Li6PS5Cl, Li3P, Li2S
    and LiCl: four equations E(phase) = sum_i n_i mu_i, four unknowns, solved exactly."""
    missing = set(REFERENCE_PHASES) - set(e_fu)
    if missing:
        raise ValueError(f"energies per formula unit missing for {sorted(missing)}")
    A = np.array([[REFERENCE_PHASES[p].get(el, 0) for el in ELEMENTS] for p in REFERENCE_PHASES], float)
    b = np.array([e_fu[p] for p in REFERENCE_PHASES], float)
    mu = np.linalg.solve(A, b)
    return dict(zip(ELEMENTS, mu.tolist()))


def surface_energy(e_slab: float, e_bulk_stoich: float, excess: dict[str, float], mu: dict[str, float],
                   area_A2: float) -> float:
    """gamma_surf (eV/nm^2) = [E_slab - E_bulk - sum_i n_i mu_i] / (2A).

    ``e_bulk_stoich``: bulk energy of the slab's stoichiometric part; ``excess``: n_i, the atoms of
    species i beyond it (negative for a deficit); ``area_A2``: in-plane area of one face.
    """
    return (e_slab - e_bulk_stoich - sum(n * mu[el] for el, n in excess.items())) / (2.0 * area_A2 / 100.0)


def interface_energy(e_total: float, e_bulk1: float, e_bulk2: float, excess: dict[str, float],
                     mu: dict[str, float], area_A2: float) -> float:
    """gamma_inter (eV/nm^2) = [E_total - E_bulk1 - E_bulk2 - sum_i n_i mu_i] / (2A)."""
    return (e_total - e_bulk1 - e_bulk2 - sum(n * mu[el] for el, n in excess.items())) / (2.0 * area_A2 / 100.0)


def strain_energy(e_strained: float, e_relaxed: float, area_A2: float) -> float:
    """E_str(slab) (eV/nm^2) = [E(slab strained to the interface a, b) - E(freely relaxed)] / (2A)."""
    return (e_strained - e_relaxed) / (2.0 * area_A2 / 100.0)


def interface_energy_min(gamma_inter: float, e_str_slab1: float, e_str_slab2: float) -> float:
    """gamma_inter_min = gamma_inter - (E_str(slab1) + E_str(slab2)), all eV/nm^2."""
    return gamma_inter - (e_str_slab1 + e_str_slab2)


def excess_vs_bulk(slab_counts: dict[str, int], bulk_counts: dict[str, int]) -> tuple[float, dict[str, float]]:
    """(k, n_i): the number of bulk formula units k in the slab's stoichiometric part and the
    excess n_i = N_i(slab) - k * N_i(bulk unit). k is fixed by the element with the smallest ratio
    (so every n_i >= 0 except for elements absent from the slab), P by default for Li6PS5Cl."""
    ratios = {el: slab_counts.get(el, 0) / n for el, n in bulk_counts.items() if n}
    ref = "P" if "P" in ratios else min(ratios, key=ratios.get)
    k = ratios[ref]
    return k, {el: slab_counts.get(el, 0) - k * bulk_counts.get(el, 0) for el in set(slab_counts) | set(bulk_counts)}

"""Bulk Li6PS5Cl (METHOD.md section 1) from the crystal facts, ordered and anion-disordered.

Crystal facts (F-43m, No. 216, a = 9.859 Angstrom, one standard setting): P 4b (0,0,1/2); S of the
PS4 tetrahedra 16e (x,-x,1/2+x), x = 0.1195; Cl 4a (0,0,0); free S 4d (1/4,1/4,3/4); Li 48h
(0.3148, 0.018, 0.6852), half occupied.

Li ordering rule (documented choice): the 48 h sites form 24 close pairs (about 1.9 Angstrom
apart, across the 24g site between them); exactly one Li per pair (so no two Li closer than a pair
distance), and among the 2^24 choices the one with the lowest Ewald energy (formal charges), found
by steepest-descent single-pair flips from several seeded random starts. Deterministic.

Anion disorder (METHOD.md 1): swap two of the four free S (4d) with two of the four Cl (4a):
36 swaps, grouped by the symmetry of the Li-free F-43m anion framework into inequivalent
candidates (the study: 2); each candidate keeps the ordered Li arrangement. DFT relaxes all and
the workflow keeps the lowest in energy.
"""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from ..core.chemistry import A_EXP, ELEMENTS, FORMAL_CHARGE

X_16E = 0.1195
LI_48H = (0.3148, 0.018, 0.6852)


def argyrodite_site_model(a: float = A_EXP) -> Structure:
    """The crystal-facts model: Li half-occupying 48h (partial occupancy 0.5), F-43m."""
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(a), ["P", "S", "Cl", "S", {"Li": 0.5}],
        [[0, 0, 0.5], [X_16E, -X_16E, 0.5 + X_16E], [0, 0, 0], [0.25, 0.25, 0.75], list(LI_48H)],
    )


def _frame_and_li_sites(a: float) -> tuple[Structure, np.ndarray]:
    model = argyrodite_site_model(a)
    li_frac = np.array([s.frac_coords for s in model if s.species.elements[0].symbol == "Li"])
    frame = Structure.from_sites([s for s in model if s.species.elements[0].symbol != "Li"])
    return frame, li_frac


def li_pairs(lattice: Lattice, li_frac: np.ndarray) -> list[tuple[int, int]]:
    """The 24 pairs of 48h sites: each site with its nearest 48h neighbour (mutual)."""
    d = lattice.get_all_distances(li_frac, li_frac)
    np.fill_diagonal(d, np.inf)
    nn = d.argmin(axis=1)
    pairs = sorted({tuple(sorted((i, int(nn[i])))) for i in range(len(li_frac)) if nn[int(nn[i])] == i})
    if len(pairs) * 2 != len(li_frac):
        raise RuntimeError("48h sites do not form mutual nearest-neighbour pairs")
    return pairs


def _with_charges(s: Structure) -> Structure:
    s = s.copy()
    s.add_oxidation_state_by_element(FORMAL_CHARGE)
    return s


def order_li(frame: Structure, li_frac: np.ndarray, restarts: int = 8, seed: int = 0) -> tuple[Structure, float]:
    """(structure, Ewald energy in eV) with one Li per 48h pair minimising the Ewald energy."""
    pairs = li_pairs(frame.lattice, li_frac)
    full = Structure(frame.lattice, list(frame.species) + ["Li"] * len(li_frac),
                     np.vstack([frame.frac_coords, li_frac]))
    m = EwaldSummation(_with_charges(full)).total_energy_matrix
    nf = len(frame)
    li_idx = np.arange(nf, nf + len(li_frac))
    # energy(selection) = E_frame + 2 * sum_sel m[frame, li] + sum_sel,sel m[li, li]
    fl = m[:nf][:, li_idx].sum(axis=0)  # frame-Li interaction of each Li site
    ll = m[np.ix_(li_idx, li_idx)]
    rng = np.random.default_rng(seed)
    best_sel, best_e = None, np.inf
    for r in range(restarts):
        choice = np.zeros(len(pairs), dtype=int) if r == 0 else rng.integers(0, 2, len(pairs))
        sel = np.array([p[c] for p, c in zip(pairs, choice)])

        def energy(sel):
            return 2 * fl[sel].sum() + ll[np.ix_(sel, sel)].sum()

        e = energy(sel)
        improved = True
        while improved:
            improved = False
            for k, p in enumerate(pairs):
                trial = sel.copy()
                trial[k] = p[1] if sel[k] == p[0] else p[0]
                et = energy(trial)
                if et < e - 1e-9:
                    sel, e, improved = trial, et, True
        if e < best_e - 1e-9:
            best_sel, best_e = sorted(sel.tolist()), e
    ordered = Structure(frame.lattice, list(frame.species) + ["Li"] * len(best_sel),
                        np.vstack([frame.frac_coords, li_frac[best_sel]]))
    ordered = ordered.get_sorted_structure(key=lambda s: ELEMENTS.index(s.specie.symbol))
    return ordered, float(EwaldSummation(_with_charges(ordered)).total_energy)


def ordered_argyrodite(a: float = A_EXP) -> Structure:
    """Ordered Li24 P4 S20 Cl4: Cl on 4a, free S on 4d, Li ordered by the Ewald rule above."""
    frame, li = _frame_and_li_sites(a)
    return order_li(frame, li)[0]


def disordered_candidates(a: float = A_EXP) -> list[dict]:
    """Symmetrically inequivalent 50:50 free-S/Cl swaps (2 of 4 each), Li ordered as in the
    ordered cell. Returns dicts: structure, swapped (4d indices, 4a indices), multiplicity."""
    frame, li = _frame_and_li_sites(a)
    ordered = ordered_argyrodite(a)
    li_pos = np.array([s.frac_coords for s in ordered if s.specie.symbol == "Li"])
    cl = [i for i, s in enumerate(frame) if s.specie.symbol == "Cl"]
    # free S: S not within 2.5 A of P
    p_idx = [i for i, s in enumerate(frame) if s.specie.symbol == "P"]
    free_s = [i for i, s in enumerate(frame) if s.specie.symbol == "S"
              and min(frame.get_distance(i, j) for j in p_idx) > 2.5]
    swaps, frames = [], []
    for s_pick in itertools.combinations(free_s, 2):
        for c_pick in itertools.combinations(cl, 2):
            f = frame.copy()
            for i in s_pick:
                f.replace(i, "Cl")
            for i in c_pick:
                f.replace(i, "S")
            swaps.append((s_pick, c_pick))
            frames.append(f)
    groups = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False).group_structures(frames)
    out = []
    for g in groups:
        k = next(i for i, f in enumerate(frames) if f is g[0])
        s = Structure(g[0].lattice, list(g[0].species) + ["Li"] * len(li_pos), np.vstack([g[0].frac_coords, li_pos]))
        s = s.get_sorted_structure(key=lambda x: ELEMENTS.index(x.specie.symbol))
        out.append({"structure": s, "swapped_4d": list(swaps[k][0]), "swapped_4a": list(swaps[k][1]),
                    "multiplicity": len(g)})
    return out

"""The study's run-time decisions as pure functions (no database, no FireWorks): surface energies of
the terminations, the interfaces built for the top surfaces, and the interface energies with the
strain correction. The fireworks in :mod:`argyro_fw.flows.study` call these and store the results.
Energies in eV, areas in Å², surface and interface energies in eV/nm².
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy.optimize import linear_sum_assignment

from ..structures.balance import balance
from ..structures.energies import (
    REFERENCE_PHASES,
    excess_vs_bulk,
    interface_energy,
    interface_energy_min,
    strain_energy,
    surface_energy,
)
from ..structures.interfaces import InterfaceMaker, build_interface, match_candidates, spacegroup, symmetric_interface

FU = REFERENCE_PHASES["Li6PS5Cl"]


def gamma_surface(e_slab: float, slab: dict, context: dict) -> float:
    """gamma_surf (eV/nm2) of a slab record (composition, area_A2) with the study's e_fu and mu."""
    k, n = excess_vs_bulk(slab["composition"], FU)
    return surface_energy(e_slab, k * context["e_fu"]["Li6PS5Cl"], n, context["mu"], slab["area_A2"])


def choose_interfaces(cfg, top: list[dict], slab_structures: dict[str, Structure], li_a: float | None = None) -> list[dict]:
    """Per top surface, METHOD.md 3 and 9 in the study's order: lattice match (``li_a``: the engine-relaxed bcc Li
    lattice constant, else ``interfaces.li_a``; the slab carries the engine-relaxed argyrodite lattice), the interface
    made symmetric by removing Li-metal layers, then charge balancing (every removal set up to symmetry ranked by
    Ewald energy, or a recorded uniform sample when there are more than ``balance_max_sets``; of the
    ``balance_top_k`` lowest, the first whose interface keeps a face-flipping operation, else the lowest; the ranked
    list is kept in ``balance``); with the parts needed for the strain correction and spglib's space group. Pure (no
    database)."""

    out = []
    ic = cfg.interfaces
    maker = InterfaceMaker(li_planes=list(ic.li_planes), li_a=float(li_a or ic.li_a), li_layers=ic.li_layers,
                           max_area=ic.max_area, max_candidates=ic.candidates, symprec=ic.symprec)
    for t in top:
        slab = slab_structures[t["key"]]
        cands = match_candidates(slab, maker)
        if not cands:
            continue
        built = [symmetric_interface(slab, c, maker) for c in cands]
        k_best = next((k for k, b in enumerate(built) if b["symmetric"]), 0)
        cand, sym_unbalanced = cands[k_best], built[k_best]
        layer_maker = dataclasses.replace(maker, li_layers=sym_unbalanced["li_layers"])
        res = balance(slab, top_k=ic.balance_top_k, keep=ic.balance_candidates, max_sets=ic.balance_max_sets,
                      seed=ic.balance_seed)
        best, pick = None, None
        for c in res.candidates:  # lowest Ewald energy first: the first that keeps the interface symmetric
            b = build_interface(c["structure"], cand, layer_maker)
            best, pick = (best, pick) if best is not None else (b, c)
            if b["symmetric"]:
                best, pick = b, c
                break
        best.update(li_layers=sym_unbalanced["li_layers"], li_layers_removed=sym_unbalanced["li_layers_removed"],
                    spacegroup=spacegroup(best["structure"]))
        key = f"interface/{t['id']}__Li{best['li_plane']}"
        parts = interface_parts(best)
        charged = None
        if res.removal:  # Table 4's model before charge balancing: the symmetric interface with every slab atom
            parts["total_charged"] = sym_unbalanced["structure"]
            charged = {el.symbol: int(n) for el, n in sym_unbalanced["structure"].composition.items()}
        out.append({"key": key, "surface": t["key"], "termination": t["termination"], "miller": t["miller"],
                    "gamma_surf_eV_nm2": t["gamma_surf_eV_nm2"], "li_plane": best["li_plane"],
                    "mismatch_pct": best["mismatch_pct"], "area_A2": best["area_A2"], "symmetric": best["symmetric"],
                    "spacegroup": best["spacegroup"], "spacegroup_before_balance": sym_unbalanced["spacegroup"],
                    "li_a_A": maker.li_a, "li_layers": best["li_layers"], "li_layers_removed": best["li_layers_removed"],
                    "removed_for_balance": res.removal, "balance_candidates": len(res.ranked),
                    "balance_capped": res.truncated, "balance_choice": pick["rank"],
                    "balance": dict(res.record(), chosen_rank=pick["rank"], chosen_symmetric=bool(best["symmetric"])),
                    "li_metal_atoms": best["li_metal_atoms"],
                    "argyrodite_atoms": best["argyrodite_atoms"],
                    "composition": {el.symbol: int(n) for el, n in best["structure"].composition.items()},
                    "composition_charged": charged, "li_metal_atoms_charged": sym_unbalanced["li_metal_atoms"],
                    # in-plane area as the surface records have it (c is normal to a, b)
                    "arg_free_area_A2": float(parts["arg_free"].lattice.volume / parts["arg_free"].lattice.c),
                    "parts": parts})
    return out


def interface_parts(built: dict) -> dict[str, Structure]:
    """The calculations an interface needs before its relaxation: ``total`` (the interface cell) and the argyrodite
    and Li slabs alone at their own in-plane lattice (``arg_free``, ``li_free``), each with the interface cell's c (so
    vacuum replaces the other slab). The strained slabs follow the relaxed interface (:func:`strained_parts`)."""
    cell: Structure = built["structure"]
    n_arg = built["argyrodite_atoms"]
    lat = cell.lattice

    def with_inplane(species, frac, vecs2) -> Structure:
        v = np.asarray(vecs2, float)
        m = np.array([[*v[0], 0.0], [*v[1], 0.0], [0.0, 0.0, lat.c]])
        return Structure(Lattice(m), species, frac)

    return {"total": cell,
            "arg_free": with_inplane(cell.species[:n_arg], cell.frac_coords[:n_arg], built["substrate_in_plane_A"]),
            "li_free": with_inplane(cell.species[n_arg:], cell.frac_coords[n_arg:], built["film_in_plane_A"])}


#: Å: the largest displacement of any atom under a site order taken as the engine's (a relaxation moves atoms less)
SITE_ORDER_TOL_A = 2.0


def site_map(relaxed: Structure, built: Structure) -> np.ndarray:
    """For each site of ``built``, the index of the same atom in ``relaxed``. An engine keeps the site order (the
    CHGNet stand-in) or sorts it as VASP's inputs do (``get_sorted_structure``, a stable sort): the first of these two
    orders whose species agree and under which no atom moved more than :data:`SITE_ORDER_TOL_A` is taken, exactly.
    Otherwise, per species, the assignment with the least summed squared minimum-image displacement (scipy's
    ``linear_sum_assignment``), in fractional coordinates measured in ``relaxed``'s lattice."""
    if len(relaxed) != len(built) or relaxed.composition != built.composition:
        raise ValueError(f"relaxed interface {relaxed.composition.formula} is not the built one "
                         f"{built.composition.formula}: a relaxation keeps its atoms")
    n = len(built)
    for order in (np.arange(n), np.array(sorted(range(n), key=lambda i: built[i]))):
        # relaxed site j is built site order[j]
        if all(relaxed[j].specie == built[int(i)].specie for j, i in enumerate(order)):
            d = relaxed.lattice.get_distance_and_image  # minimum image, relaxed lattice
            if max(d(built.frac_coords[int(i)], relaxed.frac_coords[j])[0] for j, i in enumerate(order)) \
                    <= SITE_ORDER_TOL_A:
                out = np.empty(n, dtype=int)
                out[order] = np.arange(n)
                return out
    out = np.full(n, -1)
    for el in built.composition.elements:
        ib = [i for i, s in enumerate(built) if s.specie == el]
        ir = [i for i, s in enumerate(relaxed) if s.specie == el]
        dist = relaxed.lattice.get_all_distances(built.frac_coords[ib], relaxed.frac_coords[ir])
        rows, cols = linear_sum_assignment(dist ** 2)
        out[np.asarray(ib)[rows]] = np.asarray(ir)[cols]
    return out


def strained_parts(relaxed: Structure, built: Structure, n_arg: int) -> dict[str, Structure]:
    """METHOD.md 3 and 9: the argyrodite and Li slabs strained to the *relaxed* interface: its lattice (a, b; c keeps
    the other slab's room as vacuum) with the atoms where the relaxation left them. ``built``: the interface as built
    (its first ``n_arg`` sites are the argyrodite), to tell the two slabs apart in ``relaxed`` (:func:`site_map`)."""
    m = site_map(relaxed, built)
    arg, li = m[:n_arg], m[n_arg:]
    return {"arg_strained": Structure(relaxed.lattice, [relaxed[i].specie for i in arg], relaxed.frac_coords[arg]),
            "li_strained": Structure(relaxed.lattice, [relaxed[i].specie for i in li], relaxed.frac_coords[li])}


def interface_energies(E: dict, itf: dict, context: dict) -> dict:
    """Tables 3 and 4 of one interface (eV/nm2) from its energies: gamma_inter of the charge-balanced model, E_str of
    both slabs (strained to the relaxed interface, METHOD.md 9) and gamma_inter_min; and, when balancing removed atoms,
    gamma_surf of the argyrodite slab after balancing (``arg_free``, its own area, in the interface cell's c) beside
    the termination's before it (the surface stage's slab), and gamma_inter of the symmetric model before balancing
    (``total_charged``) when its energy is there."""
    key = itf["key"]
    area = itf["area_A2"]

    def gamma_inter(total: str, counts: dict, n_li_metal: int) -> float:
        arg_counts = dict(counts, Li=counts.get("Li", 0) - n_li_metal)  # relaxation keeps the atoms
        k, n = excess_vs_bulk(arg_counts, FU)
        return interface_energy(E[f"{key}/{total}"]["energy_eV"], n_li_metal * context["e_li_atom"],
                                k * context["e_fu"]["Li6PS5Cl"], n, context["mu"], area)

    counts, n_li_metal = dict(itf["composition"]), itf["li_metal_atoms"]
    arg_counts = dict(counts, Li=counts.get("Li", 0) - n_li_metal)
    k, n = excess_vs_bulk(arg_counts, FU)
    g = gamma_inter("total", counts, n_li_metal)
    e_arg = strain_energy(E[f"{key}/arg_strained"]["energy_eV"], E[f"{key}/arg_free"]["energy_eV"], area)
    e_li = strain_energy(E[f"{key}/li_strained"]["energy_eV"], E[f"{key}/li_free"]["energy_eV"], area)
    out = {"gamma_inter_eV_nm2": g, "E_str_argyrodite_eV_nm2": e_arg, "E_str_li_eV_nm2": e_li,
           "gamma_inter_min_eV_nm2": interface_energy_min(g, e_arg, e_li), "bulk_formula_units": k,
           "excess_vs_bulk": n}
    if itf.get("composition_charged"):  # balancing removed atoms: Table 4's before and after
        out["gamma_surf_charged_eV_nm2"] = itf.get("gamma_surf_eV_nm2")
        if itf.get("arg_free_area_A2"):
            out["gamma_surf_balanced_eV_nm2"] = gamma_surface(
                E[f"{key}/arg_free"]["energy_eV"], {"composition": arg_counts, "area_A2": itf["arg_free_area_A2"]},
                context)
        if f"{key}/total_charged" in E:
            out["gamma_inter_charged_eV_nm2"] = gamma_inter("total_charged", dict(itf["composition_charged"]),
                                                            itf["li_metal_atoms_charged"])
    return out

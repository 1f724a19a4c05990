"""Test structures built from crystal facts (METHOD.md section 1) with pymatgen's space groups.

These are fixtures for the analysis tests, not the toolkit's structure builders: the argyrodite
Li sublattice here simply keeps one site of each close 48h pair.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor


def li2s(a: float = 5.70) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "S"], [[0.25, 0.25, 0.25], [0, 0, 0]])


def licl(a: float = 5.13) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def bcc_li(a: float = 3.44) -> Structure:
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(a), ["Li"], [[0, 0, 0]])


def argyrodite(a: float = 9.859) -> Structure:
    """Li24 P4 S20 Cl4, F-43m, one Li of each close 48h pair kept."""
    x = 0.1195
    s = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(a), ["P", "S", "Cl", "S", "Li"],
        [[0, 0, 0.5], [x, -x, 0.5 + x], [0, 0, 0], [0.25, 0.25, 0.75], [0.3148, 0.018, 0.6852]],
        tol=1e-3,
    )
    s.merge_sites(tol=0.01, mode="delete")
    li = [i for i, site in enumerate(s) if site.specie.symbol == "Li"]
    drop = set()
    for i in li:
        if i in drop:
            continue
        for j in li:
            if j > i and j not in drop and s.get_distance(i, j) < 2.0:
                drop.add(j)
                break
    s.remove_sites(sorted(drop))
    return s


def _layer_atoms(struct: Structure, reps_xy: tuple[int, int], reps_z: int, a_xy: float) -> Atoms:
    at = AseAtomsAdaptor.get_atoms(struct) * (reps_xy[0], reps_xy[1], reps_z)
    cell = at.cell.array.copy()
    scale = a_xy / cell[0, 0]
    at.set_cell([[a_xy, 0, 0], [0, a_xy, 0], [0, 0, cell[2, 2]]], scale_atoms=False)
    pos = at.get_positions()
    pos[:, :2] *= scale
    at.set_positions(pos)
    return at


def stack_li_li2s_argyrodite(n_li2s_planes: int = 4, li_cells: int = 4) -> tuple[Atoms, float]:
    """Periodic Li | Li2S | argyrodite | Li2S | (Li) stack along c, in-plane cell of the argyrodite.

    The argyrodite slab (2 conventional cells) is cut to its intact-PS4 span (no free S/Cl beyond
    the outermost PS4). Each Li2S slab has ``n_li2s_planes`` S planes spaced d = a(Li2S)/2, the
    first at d from the argyrodite edge: its thickness, argyrodite edge to outermost S, is
    n * d. Returns (atoms, expected thickness in Angstrom).
    """
    a_arg = 9.859
    arg = AseAtomsAdaptor.get_atoms(argyrodite(a_arg)) * (1, 1, 3)
    z = arg.get_positions()[:, 2]
    sym = np.array(arg.get_chemical_symbols())
    from vesin import NeighborList

    i, j, d = NeighborList(cutoff=2.5, full_list=True).compute(arg.get_positions(), arg.cell.array, True, "ijd")
    i, j = i.astype(int), j.astype(int)
    # whole PS4 units whose P lies in [0.4 a, 2.1 a): 4 P planes, 8 units, none cut by the boundary
    p_sel = (sym == "P") & (z >= 0.4 * a_arg) & (z < 2.1 * a_arg)
    s_sel = np.zeros(len(sym), bool)
    s_sel[j[p_sel[i] & (sym[j] == "S")]] = True
    ps4 = p_sel | s_sel
    zlo, zhi = z[ps4].min(), z[ps4].max()
    keep = ps4 | ((sym != "P") & ~np.isin(np.arange(len(sym)), j[(sym[i] == "P") & (sym[j] == "S")])
                  & (z > zlo + 1e-6) & (z < zhi - 1e-6))
    arg = arg[keep]
    arg.positions[:, 2] -= zlo
    t_arg = zhi - zlo

    # Li2S: 2x2 conventional cells strained in-plane to the argyrodite's; S planes every a/2
    l2s = li2s()
    d_s = l2s.lattice.a / 2
    n_cells = (n_li2s_planes + 1) // 2 + 1
    block = _layer_atoms(l2s, (2, 2), n_cells, a_arg)
    bz = block.get_positions()[:, 2]
    bsym = np.array(block.get_chemical_symbols())
    s_planes = np.unique(np.round(bz[bsym == "S"], 4))[:n_li2s_planes]
    top_s = s_planes[-1]
    sel = (bz >= s_planes[0] - 1e-6) & (bz <= top_s + d_s / 2 + 1e-6)  # S planes and the Li just above the last
    block = block[sel]
    block.positions[:, 2] -= s_planes[0]
    li_metal = _layer_atoms(bcc_li(), (3, 3), li_cells, a_arg)
    t_li = li_metal.cell[2, 2]

    parts = []
    zcur = 0.0
    # upper Li2S: first S plane at d from the argyrodite top edge
    up = block.copy()
    up.positions[:, 2] += t_arg + d_s
    lower = block.copy()
    lower.positions[:, 2] = -lower.positions[:, 2] - d_s  # mirror below the argyrodite
    thick_l2s = (n_li2s_planes - 1) * d_s + d_s + d_s / 2  # extent beyond the edge incl. the Li just outside
    limetal = li_metal.copy()
    limetal.positions[:, 2] += t_arg + thick_l2s + 1.7
    all_atoms = arg + up + lower + limetal
    c = t_arg + 2 * thick_l2s + t_li + 2 * 1.7
    all_atoms.set_cell([[a_arg, 0, 0], [0, a_arg, 0], [0, 0, c]])
    all_atoms.pbc = True
    all_atoms.wrap()
    return all_atoms, n_li2s_planes * d_s

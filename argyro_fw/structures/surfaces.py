"""Symmetric surface terminations of the argyrodite bulk (METHOD.md section 2).

How a termination is built (documented choices):

1. The oriented unit cell of the Miller plane comes from pymatgen's ``SlabGenerator``; heights are
   measured along the plane normal (Å), the bulk period along the normal is d = V / A.
2. The crystal is cut into *units* that are never split: a PS4 tetrahedron (P plus its four S
   within 2.5 Å, at the P height), a Cl, a free S, a Li. A cut plane lies in a gap between
   consecutive unit heights (gaps narrower than ``min_gap`` Å are not cut).
3. For every bottom cut within one period, the top cut is tried at every gap that gives a slab at
   least ``min_thickness`` Å thick and less than one period thicker. The anion framework (P, S,
   Cl) of the slab must have a symmetry operation that maps one face onto the other (spglib,
   ``symprec``); frameworks without one are not symmetric terminations.
4. The Li sublattice of an ordered cell is P1, so the Li arrangement is made symmetric under that
   operation: the Li of the lower half are kept and the upper half becomes their image (a Li
   that would land within 1.5 Å of another Li in the central band is dropped together with its
   image). Only involutions (2-fold axes, mirrors, inversion) are used, since the lower half plus
   its image is closed only under an operation of order 2; among them the one that changes the Li
   count least.
5. Every slab is then checked independently: spglib must find an operation of the *whole* slab
   (Li included) whose rotation sends the normal to minus the normal. Slabs that fail are not
   reported. Cuts that give the same label and composition on framework slabs that StructureMatcher
   finds identical (e.g. one F-centring translation apart) are one termination, listed once with the
   first Li arrangement.

A termination is named by the species in the outer ``label_depth`` Å of a face, in the order Li, P,
S, Cl, with the PS4 S counted as part of P (so "Li-P-S-Cl" means Li, PS4, free S and Cl are all on
the face), as METHOD.md names them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..core.chemistry import ARGYRODITE, ELEMENTS, FORMAL_CHARGE
from ..errors import ArgyroError
from ..study.config import SurfacesCfg
from .charges import formal_charge
from .energies import REFERENCE_PHASES, excess_vs_bulk

PLANES = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)]
SPECIES_ORDER = list(ELEMENTS)


@dataclass
class SurfaceMaker:
    """Settings of the termination search (lengths in Å, symprec in Å)."""
    min_thickness: float = SurfacesCfg.min_thickness
    vacuum: float = SurfacesCfg.vacuum
    min_gap: float = 0.5
    symprec: float = 0.1
    label_depth: float = 1.2
    ps_bond: float = 2.5

    def terminations(self, bulk: Structure, miller: tuple[int, int, int]) -> list[dict]:
        return symmetric_terminations(bulk, miller, self)


def _check_bulk(bulk: Structure, miller) -> None:
    if not isinstance(bulk, Structure) or not all(bulk.lattice.pbc):
        raise ArgyroError("surfaces need a periodic bulk structure")
    unknown = sorted({s.specie.symbol for s in bulk} - set(FORMAL_CHARGE))
    if unknown:
        raise ArgyroError(f"unknown element(s) {unknown} in the bulk: expected only {sorted(FORMAL_CHARGE)}")
    if bulk.composition.reduced_formula != ARGYRODITE:
        raise ArgyroError(f"bulk {bulk.composition.reduced_formula}: terminations are cut from a {ARGYRODITE} "
                          "argyrodite cell (METHOD.md 2); other phases have no PS4 units to keep intact")
    m = tuple(int(x) for x in miller)
    if len(m) != 3 or not any(m) or any(x not in (0, 1) for x in m):
        raise ArgyroError(f"Miller index {miller}: expected three indices in {{0, 1}}, not all zero "
                          "(the planes of METHOD.md 2)")
    if m == (1, 1, 1):
        raise ArgyroError("Miller index (1, 1, 1): METHOD.md 2 skips (111) (no symmetric termination)")


def _units(cell: Structure, normal: np.ndarray, ps_bond: float) -> list[dict]:
    """Units of the cell: dicts with species, cart (n, 3) and height (Å along the normal)."""
    units, used = [], set()
    for i, site in enumerate(cell):
        if site.specie.symbol != "P":
            continue
        nbrs = [n for n in cell.get_neighbors(site, ps_bond) if n.specie.symbol == "S"]
        if len(nbrs) != 4:
            raise ArgyroError(f"P at {np.round(site.coords, 2)} has {len(nbrs)} S within {ps_bond} Å, expected 4 (PS4)")
        used.update(n.index for n in nbrs)
        cart = np.vstack([site.coords] + [n.coords for n in nbrs])
        units.append({"species": ["P", "S", "S", "S", "S"], "cart": cart, "height": float(site.coords @ normal),
                      "kind": "P"})
    for i, site in enumerate(cell):
        el = site.specie.symbol
        if el == "P" or i in used:
            continue
        kind = "Sfree" if el == "S" else el
        units.append({"species": [el], "cart": site.coords[None, :], "height": float(site.coords @ normal), "kind": kind})
    return units


def _gaps(heights: np.ndarray, period: float, min_gap: float) -> list[float]:
    """Cut positions (Å): midpoints of gaps >= min_gap between sorted heights in [0, period)."""
    h = np.sort(np.mod(heights, period))
    ext = np.append(h, h[0] + period)
    cuts = [(ext[k] + ext[k + 1]) / 2 for k in range(len(h)) if ext[k + 1] - ext[k] >= min_gap]
    return sorted(np.mod(cuts, period))


def _flip_ops(s: Structure, symprec: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rotation, translation) of ``s``'s symmetry operations, in fractional coordinates of ``s``'s lattice
    (c perpendicular to a, b), that send the normal (c) to minus the normal."""
    try:
        data = SpacegroupAnalyzer(s, symprec=symprec).get_symmetry_dataset()
    except Exception:  # spglib finds nothing at all
        return []
    rots = data.rotations if hasattr(data, "rotations") else data["rotations"]
    trans = data.translations if hasattr(data, "translations") else data["translations"]
    return [(np.array(r), np.array(t)) for r, t in zip(rots, trans)
            if r[2, 2] == -1 and r[2, 0] == 0 and r[2, 1] == 0]


def is_symmetric_slab(slab: Structure, symprec: float = 0.1) -> bool:
    """True when spglib finds an operation of the whole slab mapping one face onto the other.

    ``slab`` must have c perpendicular to a and b (as the slabs built here have)."""
    return bool(_flip_ops(slab, symprec))


def _slab_structure(lattice2d: np.ndarray, normal: np.ndarray, species, cart, bottom: float, thickness: float,
                    vacuum: float) -> Structure:
    """A slab with c = normal x (thickness + vacuum), atoms centred along c."""
    c = normal * (thickness + vacuum)
    lat = Lattice(np.vstack([lattice2d, c]))
    shift = normal * (vacuum / 2 - bottom)
    return Structure(lat, species, np.asarray(cart) + shift, coords_are_cartesian=True, to_unit_cell=True)


def _label(slab: Structure, kinds: list[str], depth: float) -> str:
    z = slab.cart_coords[:, 2]
    top = z.max()
    face = {kinds[i] for i in range(len(slab)) if z[i] >= top - depth}
    order = [("Li", "Li"), ("P", "P"), ("Sfree", "S"), ("Cl", "Cl")]
    return "-".join(name for kind, name in order if kind in face)


def _symmetrise_li(frame: Structure, li_cart: np.ndarray, op, centre: float, band: float = 0.3) -> np.ndarray:
    """Li positions (Cartesian) made symmetric under ``op`` (fractional rotation, translation of ``frame``)."""
    rot, tr = op
    lat = frame.lattice
    frac = lat.get_fractional_coords(li_cart)
    z = li_cart[:, 2]
    lower = frac[z < centre - band]
    middle = frac[np.abs(z - centre) <= band]
    image = (rot @ lower.T).T + tr
    keep = [lower, image]
    if len(middle):
        mid_img = (rot @ middle.T).T + tr
        for f, g in zip(middle, mid_img):
            d = lat.get_all_distances(f[None, :], g[None, :])[0, 0]
            if d < 0.3:
                keep.append(f[None, :])
            elif d > 1.5:
                keep.append(np.vstack([f, g]))
    out = np.vstack([k for k in keep if len(k)]) if any(len(k) for k in keep) else np.zeros((0, 3))
    # drop one of any two Li closer than 1.5 A (symmetric pairs are dropped together)
    if len(out) > 1:
        d = lat.get_all_distances(out, out)
        np.fill_diagonal(d, np.inf)
        bad = np.where((d < 1.5).any(axis=1))[0]
        out = np.delete(out, bad, axis=0)
    return lat.get_cartesian_coords(out % 1.0)


def symmetric_terminations(bulk: Structure, miller, maker: SurfaceMaker | None = None) -> list[dict]:
    """Every symmetric termination of ``bulk`` on ``miller``: list of dicts (structure + metadata)."""
    maker = maker or SurfaceMaker()
    _check_bulk(bulk, miller)
    miller = tuple(int(x) for x in miller)
    ouc = SlabGenerator(bulk, miller, 10, 10, primitive=False, center_slab=False).oriented_unit_cell
    m = ouc.lattice.matrix
    normal = np.cross(m[0], m[1])
    area = float(np.linalg.norm(normal))
    normal /= area
    period = float(m[2] @ normal)
    # rotate so that a lies along x and the normal along z
    e1 = m[0] / np.linalg.norm(m[0])
    e2 = np.cross(normal, e1)
    rot = np.vstack([e1, e2, normal])
    lattice2d = (rot @ m[:2].T).T
    nrep = int(np.ceil((maker.min_thickness + 2 * period) / period)) + 2
    big = ouc * (1, 1, nrep)
    units = _units(big, normal, maker.ps_bond)
    heights = np.array([u["height"] for u in units])
    cuts = _gaps(heights, period, maker.min_gap)
    base = period  # start one period in, so that every unit needed lies inside the supercell
    results, seen = [], []
    for cut in cuts:
        bottom = base + cut
        tops = [bottom + maker.min_thickness + ((c2 - (bottom + maker.min_thickness)) % period) for c2 in cuts]
        for top in sorted(set(np.round(tops, 6))):
            inside = [u for u in units if bottom < u["height"] < top]
            species = [el for u in inside for el in u["species"]]
            kinds = [u["kind"] for u in inside for _ in u["species"]]
            cart = (rot @ np.vstack([u["cart"] for u in inside]).T).T
            thickness = top - bottom
            z_norm = np.array([0.0, 0.0, 1.0])
            fw_idx = [k for k, el in enumerate(species) if el != "Li"]
            frame = _slab_structure(lattice2d, z_norm, [species[k] for k in fw_idx], cart[fw_idx], bottom,
                                    thickness, maker.vacuum)
            ops = _flip_ops(frame, maker.symprec)
            if not ops:
                continue
            li_cart = _slab_structure(lattice2d, z_norm, ["Li"] * (len(species) - len(fw_idx)),
                                      cart[[k for k, el in enumerate(species) if el == "Li"]], bottom, thickness,
                                      maker.vacuum).cart_coords
            centre = float(frame.cart_coords[:, 2].mean())  # the framework is symmetric about its mean height
            n_li = len(li_cart)
            best = None
            for op in ops:
                if not np.array_equal(op[0] @ op[0], np.eye(3, dtype=int)):
                    continue  # only involutions (2-fold axes, mirrors, inversion) make lower + image closed
                li_sym = _symmetrise_li(frame, li_cart, op, centre)
                if best is None or abs(len(li_sym) - n_li) < abs(len(best) - n_li):
                    best = li_sym
            if best is None:
                continue
            slab = Structure(frame.lattice, ["Li"] * len(best) + list(frame.species),
                             np.vstack([best, frame.cart_coords]) if len(best) else frame.cart_coords,
                             coords_are_cartesian=True)
            if not is_symmetric_slab(slab, maker.symprec):
                continue
            fkinds = ["Li"] * len(best) + [kinds[k] for k in fw_idx]
            key = (_label(slab, fkinds, maker.label_depth), slab.composition.formula)
            matcher = StructureMatcher(primitive_cell=False, attempt_supercell=False, scale=False)
            if any(key == k and matcher.fit(frame, f) for k, f in seen):
                break  # the same termination (e.g. one F-centring translation away) is already listed
            seen.append((key, frame))
            results.append(_describe(slab, fkinds, bulk, miller, thickness, maker, n_li))
            break  # one slab per termination: the thinnest symmetric one
    return results


def _describe(slab: Structure, kinds, bulk, miller, thickness, maker, n_li_cut) -> dict:
    counts = Counter(s.specie.symbol for s in slab)
    n_fu, ex = excess_vs_bulk(dict(counts), REFERENCE_PHASES["Li6PS5Cl"])
    excess = {el: round(float(ex.get(el, 0.0)), 6) for el in SPECIES_ORDER}
    area = float(slab.lattice.volume / slab.lattice.c)
    label = _label(slab, kinds, maker.label_depth)
    z = slab.cart_coords[:, 2]
    return {
        "structure": slab,
        "miller": list(miller),
        "termination": label,
        "composition": {el: int(counts.get(el, 0)) for el in SPECIES_ORDER},
        "formula": slab.composition.formula,
        "formal_charge": formal_charge(slab),
        "excess_vs_bulk": excess,
        "bulk_formula_units": float(n_fu),  # Li6PS5Cl units in the stoichiometric part (E_bulk = this x E_fu)
        "area_A2": area,
        "thickness_A": float(z.max() - z.min()),
        "cut_thickness_A": float(thickness),
        "vacuum_A": float(slab.lattice.c - (z.max() - z.min())),
        "symmetric": True,
        "li_changed_by_symmetrisation": len([k for k in kinds if k == "Li"]) - n_li_cut,
    }


def all_terminations(bulk: Structure, planes=PLANES, maker: SurfaceMaker | None = None, progress: bool = False) -> list[dict]:
    """Symmetric terminations of every plane in ``planes`` (default the six of METHOD.md 2)."""
    maker = maker or SurfaceMaker()
    for m in planes:
        _check_bulk(bulk, m)
    it = planes
    if progress:
        from tqdm import tqdm

        it = tqdm(planes, desc="planes", unit="plane")
    out = []
    for m in it:
        for k, t in enumerate(symmetric_terminations(bulk, m, maker)):
            t["id"] = f"{''.join(map(str, m))}_{k}_{t['termination']}"
            out.append(t)
    return out


__all__ = ["SurfaceMaker", "symmetric_terminations", "all_terminations", "is_symmetric_slab", "PLANES"]

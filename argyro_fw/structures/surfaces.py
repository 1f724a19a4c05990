"""Symmetric surface terminations of the argyrodite bulk (METHOD.md sections 2 and 8, issue 14 item 1).

Terminations are cut from the disordered bulk cell *as relaxed by the study's engine* (VASP; CHGNet in the
demo and the tests): the relaxed structure is passed in, atoms stay where the relaxation put them, and the
Li content follows the bulk's own Li ordering (no Li is added, moved or mirrored). How a termination is built
(documented choices):

1. The oriented unit cell of the Miller plane comes from pymatgen's ``SlabGenerator``; heights are measured
   along the plane normal (Å).
2. Every atom gets a kind: ``P``, ``Sp`` (an S within ``ps_bond`` of a P: PS4 sulfur), ``S`` (free S2-),
   ``Cl`` or ``Li``. The framework (every atom but Li) falls into *layers*: atoms whose heights differ by
   less than ``layer_gap`` (Å) are one layer. On the axial planes a period holds eight layers: the P layer
   (P and the 4a anions), a PS4 S half-layer, the 4d anion layer, a PS4 S half-layer, ...; on the diagonal
   planes four: the P layer (P, in-plane PS4 S, free anions) and a PS4 S half-layer, twice.
3. A slab is a run of whole framework layers, at least ``min_thickness`` thick: per starting layer the
   thinnest symmetric run. *Symmetric* (both faces equivalent) means that the framework's layer sequence is a
   palindrome by composition: layer k from the bottom holds the same numbers of P, PS4 S, free S and Cl as
   layer k from the top, for every k (the composition-per-face comparison, layer by layer, through the whole
   slab). spglib is not the criterion: with its Li a relaxed cell (and our Ewald-ordered cell) is P1 at any
   tolerance, and the framework of a well-relaxed cell is distorted by up to ~1 Å from a mirror image, so a
   tolerance would decide the result. Each termination records the smallest spglib tolerance (of
   :data:`FLIP_TOLERANCES`, Å) at which its framework has a face-flipping operation (``framework_flip_A``,
   None above them); :func:`is_symmetric_slab` remains for exact models. Runs with the same layer sequence are
   one termination (listed once, from the lowest starting layer).
4. Which Li belong to the slab (``li_rule``): every Li between the slab's outermost framework layers, and on
   each face those of the gap to the next framework layer outward (the layer that was cut off):
   "midpoint" (default) the Li on the slab's side of the middle of that gap, i.e. the cut plane lies halfway
   between the two framework layers; "anion" the Li whose nearest anion (S, Cl) is in the slab; "gap" all Li
   up to the next framework layer beyond the outermost non-cap layer F, so that an S cap adds S only and
   "S(X)" keeps the Li of "X". No Li is added, moved or mirrored: the counts follow the bulk's Li ordering.
   Against Table 2 (the study's candidate class, relaxed with CHGNet): "gap" gives the study's compositions
   on 17 of its 18 axial rows at the study's thickness (one "Li-S/Cl" has one Li fewer) but charges of
   +6..+9 (stripped) and -6..-9 (S-capped) on the diagonal planes, where the study has 0 and +-1; "midpoint"
   gives the study's charges on the axial stripped-P faces ("Li-P-...") and the S-capped 4d faces
   ("S(Li-S)", ...) and 0, +-1 on the diagonal planes, but 4-6 fewer Li on the uncapped 4d faces ("Li-S",
   "Li-Cl", "Li-S/Cl"), whose cage Li sit at the middle of the gap, and near-neutral intact-PS4 faces
   ("S(Li-P-...)", the study: -6..-4).
5. Faces whose outermost layer holds only PS4 S are *S-capped*: a PS4 S half-layer above the face layer F,
   without the P it belongs to (above a 4d anion layer) or with it (an intact PS4 layer above a P layer).
   The study's "S(...)" terminations are these.

Naming (the rule read off Table 2, METHOD.md 8): a face is named by the species of its outermost framework
layer F, preceded by "Li" when a slab Li lies within ``label_depth`` Å of F: "P" for the P (its PS4 S
counted as part of it), then the free anions: with P each one that is present ("Li-P-S-Cl", "Li-P-Cl",
"Li-P-S"); without P a single species ("Li-S", "Li-Cl") or, for a mixed S/Cl layer (the anion-disorder
sites), "Li-S/Cl". An S-capped face is "S(" + the name of F + ")". The normalised composition divides the
slab formula by :data:`~argyro_fw.study.reference.TABLE2_COMPOSITION_DIVISOR` (4), as Table 2 does.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..core.chemistry import ARGYRODITE, ELEMENTS, FORMAL_CHARGE
from ..errors import ArgyroError
from ..study.config import InterfacesCfg, SurfacesCfg
from ..study.reference import TABLE2_COMPOSITION_DIVISOR
from .charges import formal_charge
from .energies import REFERENCE_PHASES, excess_vs_bulk

PLANES = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)]
SPECIES_ORDER = list(ELEMENTS)
#: the framework kinds of a layer's composition, in this order: P, PS4 S, free S, Cl
LAYER_KINDS = ("P", "Sp", "S", "Cl")
LI_RULES = ("gap", "midpoint", "anion")
#: spglib tolerances (Å) tried, in order, for the recorded face-flipping operation of a termination's framework
FLIP_TOLERANCES = (0.1, 0.3, 0.5, 1.0)


@dataclass
class SurfaceMaker:
    """Settings of the termination search (lengths in Å)."""
    min_thickness: float = SurfacesCfg.min_thickness
    vacuum: float = SurfacesCfg.vacuum
    layer_gap: float = SurfacesCfg.layer_gap
    li_rule: str = SurfacesCfg.li_rule
    label_depth: float = SurfacesCfg.label_depth
    ps_bond: float = SurfacesCfg.ps_bond

    def __post_init__(self):
        if self.li_rule not in LI_RULES:
            raise ArgyroError(f"li_rule {self.li_rule!r}: expected one of {', '.join(LI_RULES)}")
        for k in ("min_thickness", "vacuum", "layer_gap", "ps_bond"):
            if not float(getattr(self, k)) > 0:
                raise ArgyroError(f"surfaces {k}: expected a positive length (Å), got {getattr(self, k)!r}")

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


def site_kinds(cell: Structure, ps_bond: float) -> list[str]:
    """Kind of every site: P, Sp (S within ``ps_bond`` Å of a P), S (free S2-), Cl or Li."""
    kinds = []
    for site in cell:
        el = site.specie.symbol
        if el == "S":
            near_p = any(n.specie.symbol == "P" for n in cell.get_neighbors(site, ps_bond))
            kinds.append("Sp" if near_p else "S")
        else:
            kinds.append(el)
    return kinds


def _flip_ops(s: Structure, symprec: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(rotation, translation) of ``s``'s symmetry operations, in fractional coordinates of ``s``'s lattice
    (c perpendicular to a, b), that send the normal (c) to minus the normal."""
    try:
        data = SpacegroupAnalyzer(s, symprec=symprec).get_symmetry_dataset()
    except Exception:  # noqa: BLE001  (spglib finds nothing at all: its errors vary by version)
        return []
    rots = data.rotations if hasattr(data, "rotations") else data["rotations"]
    trans = data.translations if hasattr(data, "translations") else data["translations"]
    return [(np.array(r), np.array(t)) for r, t in zip(rots, trans)
            if r[2, 2] == -1 and r[2, 0] == 0 and r[2, 1] == 0]


def is_symmetric_slab(slab: Structure, symprec: float = InterfacesCfg.symprec) -> bool:
    """True when spglib finds an operation of the whole slab mapping one face onto the other (exact models;
    a slab of a relaxed P1 cell has none, see the module notes). ``slab`` must have c perpendicular to a, b."""
    return bool(_flip_ops(slab, symprec))


def _slab_structure(lattice2d: np.ndarray, species, cart, bottom: float, thickness: float,
                    vacuum: float) -> Structure:
    """A slab with c along z of length thickness + vacuum, atoms centred along c (cart: z = height)."""
    lat = Lattice(np.vstack([lattice2d, [0.0, 0.0, thickness + vacuum]]))
    shift = np.array([0.0, 0.0, vacuum / 2 - bottom])
    return Structure(lat, species, np.asarray(cart) + shift, coords_are_cartesian=True, to_unit_cell=True)


def face_name(layer: dict, li_near: bool) -> str:
    """The study's name of a face whose outermost (non-cap) layer is ``layer`` (see the module notes)."""
    c = layer["comp"]
    parts = ["Li"] if li_near else []
    if c["P"]:
        parts += ["P"] + [k for k in ("S", "Cl") if c[k]]
    elif c["S"] and c["Cl"]:
        parts.append("S/Cl")
    else:
        parts += [k for k in ("S", "Cl") if c[k]]
    return "-".join(parts) or "S"


def _is_cap(layer: dict) -> bool:
    c = layer["comp"]
    return c["Sp"] > 0 and not (c["P"] or c["S"] or c["Cl"])


def normalised_composition(counts: dict, divisor: int = TABLE2_COMPOSITION_DIVISOR) -> str:
    """Table 2's composition: the slab formula divided by ``divisor``, coefficient 1 left out ("Li8 P S7 Cl1.5")."""
    out = []
    for el in SPECIES_ORDER:
        n = counts.get(el, 0) / divisor
        if n:
            out.append(el if n == 1 else f"{el}{n:g}")
    return " ".join(out)


class _Stack:
    """The oriented unit cell repeated along the normal, its framework layers and its Li (heights in Å)."""

    def __init__(self, bulk: Structure, miller, maker: SurfaceMaker):
        ouc = SlabGenerator(bulk, miller, 10, 10, primitive=False, center_slab=False).oriented_unit_cell
        m = ouc.lattice.matrix
        normal = np.cross(m[0], m[1])
        normal /= np.linalg.norm(normal)
        self.period = float(m[2] @ normal)
        e1 = m[0] / np.linalg.norm(m[0])
        self.rot = np.vstack([e1, np.cross(normal, e1), normal])  # a along x, the normal along z
        self.lattice2d = (self.rot @ m[:2].T).T
        nrep = int(np.ceil((maker.min_thickness + 2 * self.period) / self.period)) + 3
        self.big = ouc * (1, 1, nrep)
        self.kinds = np.array(site_kinds(self.big, maker.ps_bond))
        self.cart = (self.rot @ self.big.cart_coords.T).T
        self.h = self.cart[:, 2]
        fw = np.where(self.kinds != "Li")[0]
        self.li = np.where(self.kinds == "Li")[0]
        order = fw[np.argsort(self.h[fw])]
        groups, cur = [], [order[0]]
        for a, b in itertools.pairwise(order):
            if self.h[b] - self.h[a] > maker.layer_gap:
                groups.append(cur)
                cur = []
            cur.append(b)
        groups.append(cur)
        self.layers = []
        for g in groups:
            g = np.array(g)
            comp = Counter(self.kinds[g])
            self.layers.append({"idx": g, "lo": float(self.h[g].min()), "hi": float(self.h[g].max()),
                                "comp": {k: int(comp.get(k, 0)) for k in LAYER_KINDS}})

    def key(self, k: int) -> tuple:
        return tuple(self.layers[k]["comp"][x] for x in LAYER_KINDS)

    def face_li(self, inner: int, outer: int, rule: str, slab_fw: np.ndarray) -> np.ndarray:
        """Li of the gap between the face layer ``inner`` and the next framework layer outward ``outer``
        that belong to the slab under ``rule``."""
        fi, fo = self.layers[inner], self.layers[outer]
        lo, hi = (fo["hi"], fi["lo"]) if outer < inner else (fi["hi"], fo["lo"])
        gap = self.li[(self.h[self.li] > lo) & (self.h[self.li] < hi)]
        if rule == "gap" or not len(gap):
            return gap
        if rule == "midpoint":
            mid = (lo + hi) / 2
            return gap[self.h[gap] > mid] if outer < inner else gap[self.h[gap] < mid]
        anions = np.where(np.isin(self.kinds, ["Sp", "S", "Cl"]))[0]
        d = self.big.lattice.get_all_distances(self.big.frac_coords[gap], self.big.frac_coords[anions])
        nearest = anions[d.argmin(axis=1)]
        return gap[np.isin(nearest, slab_fw)]


def symmetric_terminations(bulk: Structure, miller, maker: SurfaceMaker | None = None) -> list[dict]:
    """Every symmetric termination of ``bulk`` (the engine-relaxed cell) on ``miller``: list of dicts
    (structure + metadata), the thinnest palindromic run of framework layers per layer sequence."""
    maker = maker or SurfaceMaker()
    _check_bulk(bulk, miller)
    miller = tuple(int(x) for x in miller)
    st = _Stack(bulk, miller, maker)
    L = st.layers
    results, seen = [], set()
    for i in range(1, len(L) - 1):
        if not st.period <= L[i]["lo"] < 2 * st.period:
            continue
        for j in range(i + 1, len(L) - 1):
            thickness = L[j]["hi"] - L[i]["lo"]
            if thickness < maker.min_thickness:
                continue
            if thickness >= maker.min_thickness + st.period:
                break
            seq = tuple(st.key(k) for k in range(i, j + 1))
            if seq != seq[::-1]:
                continue
            if seq in seen:
                break
            seen.add(seq)
            results.append(_build(st, i, j, miller, maker))
            break
    return results


def _build(st: _Stack, i: int, j: int, miller, maker: SurfaceMaker) -> dict:
    L, h = st.layers, st.h
    fw = np.concatenate([L[k]["idx"] for k in range(i, j + 1)])
    inside = st.li[(h[st.li] >= L[i]["lo"]) & (h[st.li] <= L[j]["hi"])]
    # the face layer F of each face (under an S cap) and the next framework layer outward N
    cap_b, cap_t = _is_cap(L[i]), _is_cap(L[j])
    fb, ft = (i + 1 if cap_b else i), (j - 1 if cap_t else j)
    if maker.li_rule == "gap":  # the gap beyond F (an S cap is N: "S(X)" keeps the Li of "X")
        extra = [st.face_li(fb, fb - 1, "gap", fw), st.face_li(ft, ft + 1, "gap", fw)]
    else:  # the gap beyond the outermost layer (the cap where there is one)
        extra = [st.face_li(i, i - 1, maker.li_rule, fw), st.face_li(j, j + 1, maker.li_rule, fw)]
    li = np.unique(np.concatenate([inside] + extra)).astype(int)
    idx = np.concatenate([li, fw]).astype(int)
    zs = h[idx]
    bottom, top = float(zs.min()), float(zs.max())
    species = ["Li" if st.kinds[k] == "Li" else st.big[k].specie.symbol for k in idx]
    slab = _slab_structure(st.lattice2d, species, st.cart[idx], bottom, top - bottom, maker.vacuum)
    slab = slab.get_sorted_structure(key=lambda s: ELEMENTS.index(s.specie.symbol))
    framework = slab.copy()
    framework.remove_species(["Li"])

    def li_near(k: int) -> bool:
        hl = h[li]
        return bool(np.any((hl >= L[k]["lo"] - maker.label_depth) & (hl <= L[k]["hi"] + maker.label_depth)))

    def name(f: int, cap: bool) -> str:
        n = face_name(L[f], li_near(f))
        return f"S({n})" if cap else n

    label_b, label_t = name(fb, cap_b), name(ft, cap_t)
    # Li of each face: outside the second framework layer from that face
    li_bottom = int(np.sum(h[li] < L[i + 1]["lo"]))
    li_top = int(np.sum(h[li] > L[j - 1]["hi"]))
    counts = Counter(s.specie.symbol for s in slab)
    n_fu, ex = excess_vs_bulk(dict(counts), REFERENCE_PHASES["Li6PS5Cl"])
    z = slab.cart_coords[:, 2]
    comp = {el: int(counts.get(el, 0)) for el in SPECIES_ORDER}
    return {
        "structure": slab,
        "miller": list(miller),
        "termination": label_b if label_b == label_t else f"{label_b}|{label_t}",
        "composition": comp,
        "normalised_composition": normalised_composition(comp),
        "formula": slab.composition.formula,
        "formal_charge": formal_charge(slab),
        "excess_vs_bulk": {el: round(float(ex.get(el, 0.0)), 6) for el in SPECIES_ORDER},
        "bulk_formula_units": float(n_fu),  # Li6PS5Cl units in the stoichiometric part (E_bulk = this x E_fu)
        "area_A2": float(slab.lattice.volume / slab.lattice.c),
        "thickness_A": float(z.max() - z.min()),
        "vacuum_A": float(slab.lattice.c - (z.max() - z.min())),
        "symmetric": True,  # the framework is symmetric (module notes, 3); the Li follow the bulk
        "framework_flip_A": next((p for p in FLIP_TOLERANCES if _flip_ops(framework, p)), None),
        "s_capped": bool(cap_b),
        "layers": [" ".join(f"{k}{v}" for k, v in L[k2]["comp"].items() if v) for k2 in range(i, j + 1)],
        "li_faces": [li_bottom, li_top],
        "li_rule": maker.li_rule,
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
            t["id"] = f"{''.join(map(str, m))}_{k}_{t['termination'].replace('/', '')}"
            out.append(t)
    return out


def termination_table(terms: list[dict]) -> list[dict]:
    """Rows of the termination table (METHOD.md 8, Table 2's columns without gamma_surf): plane, termination,
    normalised composition (formula / 4), formal charge, and the slab formula, atoms, thickness and face Li."""
    return [{"plane": "".join(map(str, t["miller"])), "termination": t["termination"],
             "composition": t["normalised_composition"], "charge": int(t["formal_charge"]), "formula": t["formula"],
             "n_atoms": len(t["structure"]), "thickness_A": round(float(t["thickness_A"]), 2),
             "li_faces": list(t["li_faces"]), "s_capped": bool(t["s_capped"])} for t in terms]


__all__ = ["PLANES", "SurfaceMaker", "all_terminations", "face_name", "is_symmetric_slab", "normalised_composition",
           "site_kinds", "symmetric_terminations", "termination_table"]

"""Li-metal | argyrodite interfaces by lattice matching (METHOD.md section 3).

Steps (documented choices):

1. In-plane lattices: the argyrodite slab's a, b (its c is the normal, as the slabs of
   :mod:`argyro_fw.structures.surfaces` have) and the bcc Li surface's in-plane vectors (pymatgen's
   ``SlabGenerator`` oriented cell of the Li plane).
2. Supercells of both, over all in-plane rotations, are matched with pymatgen's ZSL algorithm
   (``ZSLGenerator``; ``max_area`` Å², ``max_length_tol``). A candidate's mismatch (%) is the
   largest relative length difference of the two pairs of matched vectors, with the angle
   difference (deg) reported too. Candidates are ranked by mismatch, then area.
3. The common cell's a, b are the average of the two supercells' (METHOD.md); both slabs are
   strained onto it.
4. Stacking: argyrodite slab, gap, Li slab, gap, periodic along c, so the cell holds two
   equivalent interfaces. The Li slab's lateral displacement is scanned on an ``n_shift`` x
   ``n_shift`` grid of the common cell, plus the shifts that solve for a common face-flipping
   operation of both slabs (:func:`symmetric_shifts`); the displacement kept is the one that makes the cell
   symmetric (spglib finds an operation sending the normal to minus itself) with the largest
   closest approach, else the largest closest approach. The gap (Å, between outermost atomic
   planes) is widened in 0.1 Å steps until no two atoms are closer than ``min_distance``.

Lengths Å, areas Å², angles deg.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.interfaces.zsl import ZSLGenerator
from pymatgen.core import Lattice, Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..core.chemistry import LI_A_PBE
from ..errors import ArgyroError
from ..study.config import InterfacesCfg, MlmdCfg
from .balance import balance
from .phases import bcc_li
from .surfaces import SurfaceMaker, _flip_ops, is_symmetric_slab, symmetric_terminations

LI_PLANES = {"100": (1, 0, 0), "110": (1, 1, 0), "111": (1, 1, 1)}


@dataclass
class InterfaceMaker:
    """Settings of the lattice matcher and the stacking (Å, Å², deg)."""
    li_planes: list[str] = field(default_factory=lambda: list(InterfacesCfg().li_planes))
    li_a: float = LI_A_PBE
    li_layers: int = InterfacesCfg.li_layers
    max_area: float = InterfacesCfg.max_area
    max_length_tol: float = 0.03
    max_angle_tol: float = 0.01
    max_candidates: int = 5
    gap: float = 2.2
    min_distance: float = 1.5
    n_shift: int = 4
    symprec: float = InterfacesCfg.symprec

    def candidates(self, slab: Structure) -> list[dict]:
        return match_candidates(slab, self)

    def build(self, slab: Structure, candidate: dict) -> dict:
        return build_interface(slab, candidate, self)


def _check_slab(slab: Structure) -> None:
    m = slab.lattice.matrix
    if abs(m[2] @ m[0]) > 1e-3 * np.linalg.norm(m[2]) * np.linalg.norm(m[0]) or \
            abs(m[2] @ m[1]) > 1e-3 * np.linalg.norm(m[2]) * np.linalg.norm(m[1]):
        raise ArgyroError("argyrodite slab: its c vector must be normal to a and b (a slab from `argyro build surfaces`)")


def _plane_xy(v: np.ndarray) -> np.ndarray:
    """Two in-plane 3-vectors -> 2x2 (rows) in a frame with the first along x, handedness kept."""
    n = np.cross(v[0], v[1])
    n /= np.linalg.norm(n)
    e1 = v[0] / np.linalg.norm(v[0])
    e2 = np.cross(n, e1)
    return np.array([[r @ e1, r @ e2] for r in v])


def li_slab(plane: str, a: float, layers: int) -> tuple[np.ndarray, np.ndarray, float]:
    """bcc Li slab of ``layers`` atomic planes: (in-plane vectors 2x2 in its xy frame, atoms (n, 3)
    Cartesian in that frame with the bottom plane at z = 0, interplanar spacing); Å."""
    if plane not in LI_PLANES:
        raise ArgyroError(f"Li plane {plane!r}: expected one of {', '.join(LI_PLANES)}")
    if layers < 1:
        raise ArgyroError(f"Li layers {layers}: expected at least 1")
    ouc = SlabGenerator(bcc_li(a), LI_PLANES[plane], 5, 5, primitive=True, center_slab=False).oriented_unit_cell
    m = ouc.lattice.matrix
    n = np.cross(m[0], m[1])
    n /= np.linalg.norm(n)
    e1 = m[0] / np.linalg.norm(m[0])
    e2 = np.cross(n, e1)
    rot = np.vstack([e1, e2, n])
    period = float(m[2] @ n)
    reps = layers + 2
    cart = np.vstack([ouc.cart_coords + k * m[2] for k in range(reps)]) @ rot.T
    heights = np.unique(np.round(cart[:, 2], 4))
    spacing = float(np.min(np.diff(heights))) if len(heights) > 1 else period
    keep = cart[:, 2] <= heights[layers - 1] + 1e-3
    cart = cart[keep]
    cart[:, 2] -= cart[:, 2].min()
    return (rot @ m[:2].T).T[:, :2], cart, spacing


def _transform(sl: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Integer 2x2 T with sl = T @ base (rows are vectors)."""
    t = np.linalg.lstsq(base.T, sl.T, rcond=None)[0].T
    ti = np.rint(t).astype(int)
    if np.abs(t - ti).max() > 1e-4:
        raise RuntimeError("supercell vectors are not lattice vectors")
    return ti


def mismatch(film_sl: np.ndarray, sub_sl: np.ndarray) -> tuple[float, float]:
    """(largest relative length mismatch %, angle difference deg) of matched 2x2 vector pairs."""
    lf, ls = np.linalg.norm(film_sl, axis=1), np.linalg.norm(sub_sl, axis=1)
    strain = float(np.max(np.abs(lf / ls - 1.0)) * 100.0)

    def angle(v):
        return np.degrees(np.arccos(np.clip(v[0] @ v[1] / np.linalg.norm(v[0]) / np.linalg.norm(v[1]), -1, 1)))

    return strain, float(abs(angle(film_sl) - angle(sub_sl)))


def match_candidates(slab: Structure, maker: InterfaceMaker | None = None) -> list[dict]:
    """Lattice-matched (Li plane, supercells) candidates for ``slab``, best first."""
    maker = maker or InterfaceMaker()
    _check_slab(slab)
    sub = _plane_xy(slab.lattice.matrix[:2])
    zsl = ZSLGenerator(max_area=maker.max_area, max_length_tol=maker.max_length_tol,
                       max_angle_tol=maker.max_angle_tol, max_area_ratio_tol=0.09)
    out = []
    for plane in maker.li_planes:
        film, _, _ = li_slab(plane, maker.li_a, 1)
        f3, s3 = np.c_[film, np.zeros(2)], np.c_[sub, np.zeros(2)]
        seen = set()
        for m in zsl(f3, s3):
            fsl, ssl = np.array(m.film_sl_vectors)[:, :2], np.array(m.substrate_sl_vectors)[:, :2]
            tf, ts = _transform(fsl, film), _transform(ssl, sub)
            key = (plane, tuple(tf.ravel()), tuple(ts.ravel()))
            if key in seen:
                continue
            seen.add(key)
            mis, dang = mismatch(fsl, ssl)
            area = float(abs(np.linalg.det(ssl)))
            out.append({"li_plane": plane, "film_matrix": tf.tolist(), "substrate_matrix": ts.tolist(),
                        "mismatch_pct": mis, "angle_diff_deg": dang, "area_A2": area,
                        "li_in_plane_A": film.tolist(), "slab_in_plane_A": sub.tolist()})
    out.sort(key=lambda c: (round(c["mismatch_pct"], 3), c["area_A2"]))
    unique, keys = [], set()
    for c in out:  # equivalent supercell choices (same plane, mismatch and area) are listed once
        k = (c["li_plane"], round(c["mismatch_pct"], 4), round(c["angle_diff_deg"], 4), round(c["area_A2"], 2))
        if k not in keys:
            keys.add(k)
            unique.append(c)
    return unique[: maker.max_candidates]


def mlmd_cell(slab_maker_bulk: Structure, miller, termination: int = 0, layers: int = MlmdCfg.layers,
              li_layers: int = MlmdCfg.li_layers, li_plane: str = "100", supercell=(2, 2, 1),
              max_mismatch: float = MlmdCfg.max_mismatch, li_a: float = LI_A_PBE, max_area: float = MlmdCfg.max_area,
              balance_slab: bool = True, termination_label: str | None = None, balance_choice: int = 0) -> dict:
    """A large MLMD interface cell (METHOD.md 6): the argyrodite termination ``termination`` of
    ``miller`` at least ``layers`` x d_hkl thick (d_hkl = a / sqrt(h2 + k2 + l2) of the cubic cell),
    charge-balanced (lowest Ewald choice), on ``li_layers`` planes of Li(``li_plane``), using the
    smallest-area lattice match with mismatch <= ``max_mismatch`` %, repeated by ``supercell``.
    ``termination_label`` (e.g. "Li-S") picks the first termination with that label instead of an index.
    ``balance_choice``: which symmetry-distinct charge-balancing choice (0: lowest Ewald energy; METHOD.md 6's
    variants use 0, 1, 2); ``balance_slab=False`` keeps the symmetric, charged slab (the fully symmetric model)."""

    a = float(np.cbrt(slab_maker_bulk.lattice.volume))
    d_hkl = a / np.sqrt(sum(int(x) ** 2 for x in miller))
    terms = symmetric_terminations(slab_maker_bulk, miller, SurfaceMaker(min_thickness=layers * d_hkl))
    if termination_label is not None:
        named = [k for k, t in enumerate(terms) if t["termination"] == termination_label]
        if not named:
            raise ArgyroError(f"no {termination_label!r} termination of {tuple(miller)} at {layers} layers")
        termination = named[0]
    if not 0 <= termination < len(terms):
        raise ArgyroError(f"termination {termination}: plane {tuple(miller)} has {len(terms)} symmetric terminations "
                          f"(0..{len(terms) - 1})")
    term = terms[termination]
    slab = term["structure"]
    removed = {}
    if balance_slab:
        res = balance(slab)  # every removal set ranked by Ewald energy up to symmetry; the top choices come back
        if not 0 <= balance_choice < len(res.candidates):
            raise ArgyroError(f"balance choice {balance_choice}: this slab has {len(res.candidates)} distinct "
                              "charge-balancing choices")
        slab, removed = res.candidates[balance_choice]["structure"], res.removal
    maker = InterfaceMaker(li_planes=[li_plane], li_a=li_a, li_layers=li_layers, max_area=max_area, max_candidates=50)
    cands = [c for c in match_candidates(slab, maker) if c["mismatch_pct"] <= max_mismatch]
    if not cands:
        raise ArgyroError(f"no Li({li_plane}) match within {max_mismatch} % for this slab (max area {maker.max_area} Å2)")
    cand = min(cands, key=lambda c: (c["area_A2"], c["mismatch_pct"]))
    res = build_interface(slab, cand, maker)
    cell = res["structure"].copy()
    cell.make_supercell(list(supercell))
    res.update(structure=cell, termination=term["termination"], miller=list(miller), layers=layers,
               li_layers=li_layers, supercell=list(supercell), removed_for_balance=removed,
               balance_choice=balance_choice if balance_slab else None, n_atoms=len(cell),
               formula=cell.composition.formula)
    return res


def symmetric_interface(slab: Structure, cand: dict, maker: InterfaceMaker | None = None, min_li_layers: int = 2) -> dict:
    """METHOD.md 3 and 9: the interface cell of ``cand`` made symmetric by removing Li-metal layers (the study removed
    one Li(100) layer for (100)/(100)): ``maker.li_layers`` first, then one layer fewer at a time down to
    ``min_li_layers``; the first cell with a face-flipping operation is returned, else the one with all layers.
    Adds ``li_layers`` (used), ``li_layers_removed`` and ``spacegroup`` (spglib, symprec 0.1) to the built dict."""
    maker = maker or InterfaceMaker()
    first = None
    for n in range(maker.li_layers, max(1, min_li_layers) - 1, -1):
        built = build_interface(slab, cand, dataclasses.replace(maker, li_layers=n))
        built.update(li_layers=n, li_layers_removed=maker.li_layers - n)
        first = first or built
        if built["symmetric"]:
            break
    else:
        built = first
    built["spacegroup"] = spacegroup(built["structure"])
    return built


def spacegroup(cell: Structure, symprec: float = InterfacesCfg.symprec) -> str:
    """spglib's international symbol of ``cell`` (symprec in Å)."""
    try:
        return SpacegroupAnalyzer(cell, symprec=symprec).get_space_group_symbol()
    except Exception:  # spglib finds no cell: report P1 rather than fail the interface
        return "P1"


def symmetric_shifts(sub_cell: Structure, film_cell: Structure, symprec: float = InterfacesCfg.symprec) -> list[np.ndarray]:
    """In-plane shifts tau (fractional) of the film that make substrate + shifted film share a face-flipping
    operation: for a substrate operation (R, t) and a film operation (R, t_f) with the same rotation, the
    shifted film is invariant under (R, t) when t + (R - I) tau = t_f modulo a lattice vector."""

    out = []
    kept = np.empty((0, 2))  # the same shifts as one array: the duplicate check below, vectorised
    ops_f = _flip_ops(film_cell, symprec)
    for rs, ts in _flip_ops(sub_cell, symprec):
        for rf, tf in ops_f:
            if not np.array_equal(rs, rf):
                continue
            a = (rs - np.eye(3))[:2, :2]
            for m in range(-2, 3):
                for n in range(-2, 3):
                    b = (tf - ts)[:2] + np.array([m, n])
                    tau = np.linalg.lstsq(a, b, rcond=None)[0]
                    if np.abs(a @ tau - b).max() < 1e-3:
                        tau = np.mod(tau, 1.0)
                        if not (np.abs(((tau - kept) + 0.5) % 1.0 - 0.5).max(axis=1) < 1e-3).any():
                            out.append(tau)
                            kept = np.vstack([kept, tau])
    return out


def _film_equivalent(shifts: list[np.ndarray], film_matrix: np.ndarray, tol: float = 1e-6) -> list[bool]:
    """For each shift (fractional in the film supercell ``film_matrix`` @ film cell), whether an earlier one differs
    from it by a translation of the film's own in-plane cell: the film is periodic in that cell, so both give the
    same atoms (in another order) and the same score; only the first of each such class needs building."""
    seen = np.empty((0, 2))
    out = []
    for tau in shifts:
        u = np.mod(np.asarray(tau) @ film_matrix, 1.0)  # the shift in the film cell's own fractional coordinates
        dup = bool((np.abs(((u - seen) + 0.5) % 1.0 - 0.5).max(axis=1) < tol).any())
        out.append(dup)
        if not dup:
            seen = np.vstack([seen, u])
    return out


def _min_distance(s: Structure) -> float:
    d = s.distance_matrix
    np.fill_diagonal(d, np.inf)
    return float(d.min())


def build_interface(slab: Structure, cand: dict, maker: InterfaceMaker | None = None) -> dict:
    """The periodic interface cell of candidate ``cand`` (from :func:`match_candidates`)."""
    maker = maker or InterfaceMaker()
    _check_slab(slab)
    sub = _plane_xy(slab.lattice.matrix[:2])
    film, li_cart, _ = li_slab(cand["li_plane"], maker.li_a, maker.li_layers)
    ts, tf = np.array(cand["substrate_matrix"]), np.array(cand["film_matrix"])
    ssl, fsl = ts @ sub, tf @ film
    # align the film supercell with the substrate's: rotate f1 onto s1, mirror if handedness differs
    def rot2(theta):
        return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    mirror = np.sign(np.linalg.det(fsl)) != np.sign(np.linalg.det(ssl))
    M = np.diag([1.0, -1.0]) if mirror else np.eye(2)
    fsl_m = fsl @ M.T
    th = np.arctan2(ssl[0, 1], ssl[0, 0]) - np.arctan2(fsl_m[0, 1], fsl_m[0, 0])
    R = rot2(th) @ M
    fsl_al = fsl @ R.T
    common = (ssl + fsl_al) / 2.0

    # argyrodite slab supercell, atoms as (fractional in ssl, z)
    sup = slab.copy()
    sup.make_supercell([[int(ts[0, 0]), int(ts[0, 1]), 0], [int(ts[1, 0]), int(ts[1, 1]), 0], [0, 0, 1]])
    z_s = sup.cart_coords[:, 2] if np.allclose(sup.lattice.matrix[2][:2], 0) else sup.cart_coords @ (
        sup.lattice.matrix[2] / np.linalg.norm(sup.lattice.matrix[2]))
    frac_s = sup.frac_coords[:, :2] % 1.0
    zs = z_s - z_s.min()
    t_sub = float(zs.max())
    # Li slab tiled over the film supercell
    inv_f = np.linalg.inv(fsl)
    pts = []
    rng = range(-int(np.abs(tf).sum()) - 1, int(np.abs(tf).sum()) + 2)
    for i in rng:
        for j in rng:
            shift = i * film[0] + j * film[1]
            xy = li_cart[:, :2] + shift
            fr = xy @ inv_f
            ok = np.all((fr > -1e-6) & (fr < 1 - 1e-6), axis=1)
            pts.append(np.c_[fr[ok], li_cart[ok, 2]])
    li = np.vstack(pts)
    li = li[np.unique(np.round(li, 5), axis=0, return_index=True)[1]]
    t_li = float(li[:, 2].max())

    c0 = t_sub + t_li + 2 * maker.gap
    lat0 = Lattice(np.array([[*common[0], 0.0], [*common[1], 0.0], [0.0, 0.0, c0]]))
    # symmetry is that of the framework (P, S, Cl) and the Li metal: the argyrodite's Li keep the bulk's own ordering,
    # which has no face flip (METHOD.md 2 terminations are cut without moving Li)
    arg_li = [i for i, sp in enumerate(sup.species) if sp.symbol == "Li"]
    frame = [i for i in range(len(sup)) if i not in set(arg_li)]
    sub_cell = Structure(lat0, [sup.species[i] for i in frame], np.c_[frac_s[frame], zs[frame] / c0])
    film_cell = Structure(lat0, ["Li"] * len(li), np.c_[li[:, :2] % 1.0, (li[:, 2] + t_sub + maker.gap) / c0])
    shifts = symmetric_shifts(sub_cell, film_cell, maker.symprec)
    shifts += [np.array([gx, gy]) / maker.n_shift for gx in range(maker.n_shift) for gy in range(maker.n_shift)]
    best = None
    for shift, same in zip(shifts, _film_equivalent(shifts, tf)):
        if same:  # an earlier shift gave these atoms already
            continue
        gap = maker.gap
        while True:
            c = t_sub + t_li + 2 * gap
            lat = Lattice(np.array([[*common[0], 0.0], [*common[1], 0.0], [0.0, 0.0, c]]))
            species = list(sup.species) + ["Li"] * len(li)
            frac = np.vstack([np.c_[frac_s, zs / c], np.c_[(li[:, :2] + shift) % 1.0, (li[:, 2] + t_sub + gap) / c]])
            cell = Structure(lat, species, frac)
            dmin = _min_distance(cell)
            if dmin >= maker.min_distance or gap > maker.gap + 3.0:
                break
            gap += 0.1
        if dmin < maker.min_distance:
            continue
        without = cell.copy()
        without.remove_sites(arg_li)
        sym = is_symmetric_slab(without, maker.symprec)
        score = (sym, dmin)
        if best is None or score > best[0]:
            best = (score, cell, shift, gap)
    if best is None:
        raise ArgyroError(f"no displacement of the Li({cand['li_plane']}) slab keeps atoms {maker.min_distance} Å apart")
    (sym, dmin), cell, shift, gap = best
    n_li_metal = len(li)
    mis, dang = mismatch(fsl, ssl)
    return {
        "structure": cell,
        "li_plane": cand["li_plane"],
        "mismatch_pct": mis,
        "angle_diff_deg": dang,
        "area_A2": float(abs(np.linalg.det(common))),
        "common_in_plane_A": common.tolist(),
        "substrate_in_plane_A": ssl.tolist(),  # the slab supercell's own a, b (unstrained), in the cell's frame
        "film_in_plane_A": fsl_al.tolist(),  # the Li supercell's own a, b (unstrained), aligned with the cell
        "film_matrix": tf.tolist(),
        "substrate_matrix": ts.tolist(),
        "li_metal_atoms": n_li_metal,
        "argyrodite_atoms": len(sup),
        "gap_A": round(gap, 3),
        "lateral_shift_frac": shift.tolist(),
        "min_distance_A": dmin,
        "symmetric": bool(sym),
        "formula": cell.composition.formula,
    }

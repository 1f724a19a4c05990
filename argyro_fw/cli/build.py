"""``argyro build bulk|phase|balance``: structures as files plus a JSON summary in -o DIR."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.chemistry import A_EXP, LI_A_PBE
from ..core.serialise import write_atomic
from ..errors import ArgyroError
from ..study.config import InterfacesCfg


def register(sub) -> None:
    p = sub.add_parser("build", help="build structures (bulk, phases, surfaces, interfaces, MLMD cells, charge balancing)")
    bsub = p.add_subparsers(dest="build_command", metavar="WHAT", required=True)
    b = bsub.add_parser("bulk", help="ordered Li6PS5Cl or the inequivalent anion-disordered candidates")
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("--ordered", action="store_true")
    g.add_argument("--disordered", action="store_true")
    b.add_argument("--a", type=float, default=A_EXP, help=f"lattice constant, Angstrom (default {A_EXP}, experiment)")
    b.add_argument("-o", "--output", required=True, metavar="DIR")
    b.set_defaults(func=cmd_bulk)
    ph = bsub.add_parser("phase", help="bcc Li, Li2S, LiCl or Li3P from crystal facts")
    ph.add_argument("name", choices=["li", "li2s", "licl", "li3p"])
    ph.add_argument("--supercell", type=int, nargs=3, metavar=("NA", "NB", "NC"))
    ph.add_argument("-o", "--output", required=True, metavar="DIR")
    ph.set_defaults(func=cmd_phase)
    sf = bsub.add_parser(
        "surfaces", help="every symmetric termination of the six {0,1} Miller planes (or --miller)",
        description="Cut BULK along (100), (010), (001), (110), (101), (011) (or the planes given with --miller), "
        "enumerate the terminations whose two faces are related by a symmetry operation (checked with spglib), "
        "write one POSCAR per slab and surfaces.json (miller, termination, composition, formal charge, excess vs "
        "bulk, area, thickness, vacuum, symmetric).")
    sf.add_argument("bulk", metavar="BULK", help="bulk structure file (POSCAR, CIF, extxyz ...)")
    sf.add_argument("--miller", type=int, nargs=3, action="append", metavar=("H", "K", "L"),
                    help="only this plane (repeatable); indices in {0,1}")
    sf.add_argument("--min-thickness", type=float, default=15.0, help="slab thickness at least, Angstrom (default 15)")
    sf.add_argument("--vacuum", type=float, default=15.0, help="vacuum, Angstrom (default 15)")
    sf.add_argument("-o", "--output", required=True, metavar="DIR")
    sf.set_defaults(func=cmd_surfaces)
    itf = bsub.add_parser(
        "interface", help="lattice-match bcc Li planes to an argyrodite slab and build periodic interface cells",
        description="ZSL lattice matching of bcc Li surfaces against the slab over supercells and rotations; "
        "candidates ranked by mismatch (%%) then area; cells with a, b the average of the two; the Li slab's "
        "lateral shift scanned; no two atoms closer than --min-distance. Writes POSCAR_interface_N and interfaces.json.")
    itf.add_argument("slab", metavar="ARGYRODITE_SLAB", help="slab file with c normal to a, b (from `build surfaces`)")
    itf.add_argument("--li-planes", nargs="+", default=list(InterfacesCfg().li_planes), choices=["100", "110", "111"],
                     help=f"bcc Li planes to match (default {' '.join(InterfacesCfg().li_planes)}, the study's)")
    itf.add_argument("--li-layers", type=int, default=InterfacesCfg.li_layers,
                     help=f"atomic planes of Li (default {InterfacesCfg.li_layers})")
    itf.add_argument("--li-a", type=float, default=LI_A_PBE, help=f"bcc Li lattice constant, Angstrom (default {LI_A_PBE}, PBE)")
    itf.add_argument("--max-area", type=float, default=InterfacesCfg.max_area,
                     help=f"largest matched area, Angstrom^2 (default {InterfacesCfg.max_area:g}: the argyrodite's 1x1 "
                     "face, as the study's DFT models)")
    itf.add_argument("--candidates", type=int, default=5, help="how many ranked candidates to build (default 5)")
    itf.add_argument("--balance", action="store_true", help="charge-balance the slab first (lowest Ewald choice)")
    itf.add_argument("--min-distance", type=float, default=1.5, help="closest allowed approach, Angstrom (default 1.5)")
    itf.add_argument("-o", "--output", required=True, metavar="DIR")
    itf.set_defaults(func=cmd_interface)
    ml = bsub.add_parser(
        "mlmd-cell", help="a large charge-balanced Li | argyrodite cell for MLMD (METHOD.md 6)",
        description="Termination TERM of plane --miller of BULK, at least --layers x d_hkl thick, charge balanced, "
        "on --li-layers planes of Li(--li-plane) with the smallest-area match within --max-mismatch %%, "
        "repeated by --supercell.")
    ml.add_argument("bulk", metavar="BULK")
    ml.add_argument("--miller", type=int, nargs=3, required=True, metavar=("H", "K", "L"))
    ml.add_argument("--termination", type=int, default=0, help="index in the plane's terminations (default 0)")
    ml.add_argument("--layers", type=int, default=6)
    ml.add_argument("--li-layers", type=int, default=6)
    ml.add_argument("--li-plane", default="100", choices=["100", "110", "111"])
    ml.add_argument("--supercell", type=int, nargs=3, default=[2, 2, 1], metavar=("NA", "NB", "NC"))
    ml.add_argument("--max-mismatch", type=float, default=1.5, help="percent (default 1.5)")
    ml.add_argument("-o", "--output", required=True, metavar="DIR")
    ml.set_defaults(func=cmd_mlmd_cell)
    bl = bsub.add_parser("balance", help="remove the fewest atoms that make the formal charge zero; ranked choices")
    bl.add_argument("structure", metavar="SLAB_OR_INTERFACE")
    bl.add_argument("--max-candidates", type=int, default=500, help="how many of the ranked symmetry-distinct choices are written (every removal set is ranked)")
    bl.add_argument("--max-atoms", type=int, default=12, help="largest removal considered")
    bl.add_argument("--keep", type=int, default=10, help="write the N lowest-energy candidates (default 10)")
    bl.add_argument("-o", "--output", required=True, metavar="DIR")
    bl.set_defaults(func=cmd_balance)


def _write(structures: list[tuple[str, object]], summary: dict, out: Path, name: str = "summary.json") -> None:
    """Everything is prepared before the first file is written; the summary last."""
    texts = [(fname, s.to(fmt="poscar")) for fname, s in structures]
    body = json.dumps(summary, indent=1)
    for fname, text in texts:
        write_atomic(out / fname, text)
    write_atomic(out / name, body)
    print(out / name)


#: compressed files pymatgen and ASE read (gzip, bzip2, xz): binary, yet structure files
_COMPRESSED = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def read_structure(path: str | Path):
    """:func:`argyro_fw.structio.read_structure`, with one line naming a binary file that is no structure (an image,
    a model, a tarball) instead of the reader's error: ``structure file FILE: not a text file (binary content at
    byte N)``. Binary structure formats (ASE .traj, compressed POSCARs) are still read."""
    from ..structio import read_structure as read
    from ..textfile import binary_offset_of_file, not_text

    try:
        return read(path)
    except ArgyroError:
        off = binary_offset_of_file(path)
        if off is None:
            raise
        try:
            with open(path, "rb") as fh:
                compressed = fh.read(6).startswith(_COMPRESSED)
        except OSError:
            compressed = False
        if compressed:
            raise
        raise ArgyroError(f"structure file {not_text(path, off)}") from None


def _plain(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "structure"}


def cmd_surfaces(args) -> int:
    from ..structures.surfaces import PLANES, SurfaceMaker, all_terminations

    bulk = read_structure(args.bulk)
    planes = [tuple(m) for m in args.miller] if args.miller else PLANES
    maker = SurfaceMaker(min_thickness=args.min_thickness, vacuum=args.vacuum)
    terms = all_terminations(bulk, planes, maker, progress=True)
    files = [(f"POSCAR_{t['id']}", t["structure"]) for t in terms]
    counts = {"".join(map(str, m)): sum(1 for t in terms if tuple(t["miller"]) == tuple(m)) for m in planes}
    summary = {"bulk": str(args.bulk), "settings": _plain(vars(maker)), "counts": counts, "total": len(terms),
               "slabs": [dict(_plain(t), file=f) for (f, _), t in zip(files, terms)]}
    _write(files, summary, Path(args.output), "surfaces.json")
    return 0


def cmd_interface(args) -> int:
    from ..structures.balance import balance
    from ..structures.interfaces import InterfaceMaker, build_interface, match_candidates

    slab = read_structure(args.slab)
    removed = {}
    if args.balance:
        res = balance(slab)
        slab, removed = res.candidates[0]["structure"], res.removal
    maker = InterfaceMaker(li_planes=args.li_planes, li_layers=args.li_layers, li_a=args.li_a, max_area=args.max_area,
                           max_candidates=args.candidates, min_distance=args.min_distance)
    cands = match_candidates(slab, maker)
    if not cands:
        raise ArgyroError(f"{args.slab}: no lattice match of Li {args.li_planes} within {maker.max_length_tol * 100:.0f} % "
                          f"and {maker.max_area} Angstrom^2")
    built = [build_interface(slab, c, maker) for c in cands]
    files = [(f"POSCAR_interface_{k}", b["structure"]) for k, b in enumerate(built)]
    summary = {"slab": str(args.slab), "removed_for_balance": removed, "settings": vars(maker),
               "interfaces": [dict(_plain(b), file=f, rank=k) for k, ((f, _), b) in enumerate(zip(files, built))]}
    _write(files, summary, Path(args.output), "interfaces.json")
    return 0


def cmd_mlmd_cell(args) -> int:
    from ..structures.interfaces import mlmd_cell

    res = mlmd_cell(read_structure(args.bulk), tuple(args.miller), args.termination, args.layers, args.li_layers,
                    args.li_plane, tuple(args.supercell), args.max_mismatch)
    _write([("POSCAR_mlmd", res["structure"])], _plain(res), Path(args.output), "mlmd_cell.json")
    return 0


def _describe(s) -> dict:
    from ..structures.charges import formal_charge

    return {"formula": s.composition.formula, "n_atoms": len(s), "formal_charge": formal_charge(s),
            "lattice_abc_A": list(s.lattice.abc), "lattice_angles_deg": list(s.lattice.angles)}


def cmd_bulk(args) -> int:
    from ..structures.bulk import disordered_candidates, ordered_argyrodite

    out = Path(args.output)
    if args.ordered:
        s = ordered_argyrodite(args.a)
        _write([("POSCAR_ordered", s)], {"ordered": _describe(s), "li_rule": "one Li per 48h pair, lowest Ewald energy"}, out)
    else:
        cands = disordered_candidates(args.a)
        files = [(f"POSCAR_disordered_{k}", c["structure"]) for k, c in enumerate(cands)]
        summary = {"candidates": [dict(_describe(c["structure"]), file=f, multiplicity=c["multiplicity"],
                                       swapped_4d=c["swapped_4d"], swapped_4a=c["swapped_4a"])
                                  for (f, _), c in zip(files, cands)],
                   "note": "relax all with DFT; the workflow keeps the lowest energy"}
        _write(files, summary, out)
    return 0


def cmd_phase(args) -> int:
    from ..structures.phases import phase

    s = phase(args.name, tuple(args.supercell) if args.supercell else None)
    _write([(f"POSCAR_{args.name}", s)], {args.name: _describe(s)}, Path(args.output))
    return 0


def cmd_balance(args) -> int:
    from ..structures.balance import balance

    s = read_structure(args.structure)
    res = balance(s, max_candidates=args.max_candidates, max_atoms=args.max_atoms)
    keep = res.candidates[: args.keep]
    files = [(f"POSCAR_balanced_{k}", c["structure"]) for k, c in enumerate(keep)]
    summary = {"input": _describe(s), "removal": res.removal, "n_removed": res.n_removed,
               "combinations_total": res.combinations_total, "combinations_tried": res.combinations_tried,
               "capped": res.capped, "energy": "Ewald (formal charges), eV",
               "ranked": [{"file": f, "energy_eV": c["energy_eV"], "removed_indices": c["removed_indices"],
                           "multiplicity": c["multiplicity"]} for (f, _), c in zip(files, keep)]}
    _write(files, summary, Path(args.output))
    return 0

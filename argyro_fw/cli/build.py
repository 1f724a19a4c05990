"""``argyro build bulk|phase|balance``: structures as files plus a JSON summary in -o DIR."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ArgyroError
from ..templating import write_atomic


def register(sub) -> None:
    p = sub.add_parser("build", help="build structures (bulk argyrodite, phases, charge balancing)")
    bsub = p.add_subparsers(dest="build_command", metavar="WHAT", required=True)
    b = bsub.add_parser("bulk", help="ordered Li6PS5Cl or the inequivalent anion-disordered candidates")
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("--ordered", action="store_true")
    g.add_argument("--disordered", action="store_true")
    b.add_argument("--a", type=float, default=9.859, help="lattice constant, Angstrom (default 9.859, experiment)")
    b.add_argument("-o", "--output", required=True, metavar="DIR")
    b.set_defaults(func=cmd_bulk)
    ph = bsub.add_parser("phase", help="bcc Li, Li2S, LiCl or Li3P from crystal facts")
    ph.add_argument("name", choices=["li", "li2s", "licl", "li3p"])
    ph.add_argument("--supercell", type=int, nargs=3, metavar=("NA", "NB", "NC"))
    ph.add_argument("-o", "--output", required=True, metavar="DIR")
    ph.set_defaults(func=cmd_phase)
    bl = bsub.add_parser("balance", help="remove the fewest atoms that make the formal charge zero; ranked choices")
    bl.add_argument("structure", metavar="SLAB_OR_INTERFACE")
    bl.add_argument("--max-candidates", type=int, default=500, help="cap on the combinations tried (reported)")
    bl.add_argument("--max-atoms", type=int, default=12, help="largest removal considered")
    bl.add_argument("--keep", type=int, default=10, help="write the N lowest-energy candidates (default 10)")
    bl.add_argument("-o", "--output", required=True, metavar="DIR")
    bl.set_defaults(func=cmd_balance)


def _write(structures: list[tuple[str, object]], summary: dict, out: Path) -> None:
    """Everything is prepared before the first file is written; the summary last."""
    texts = [(name, s.to(fmt="poscar")) for name, s in structures]
    for name, text in texts:
        write_atomic(out / name, text)
    write_atomic(out / "summary.json", json.dumps(summary, indent=1))
    print(out / "summary.json")


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
    from ..structio import read_structure
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

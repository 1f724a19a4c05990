"""``argyro render vasp`` and ``argyro vasp run|parse``: VASP inputs, runs and parsing by hand."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.serialise import to_plain, write_atomic
from ..dft.inputs import MIN_DISTANCE_A
from ..errors import ArgyroError
from ..templating import render


def register_render(rsub) -> None:
    p = rsub.add_parser(
        "vasp",
        help="write INCAR, KPOINTS, POSCAR (+POTCAR if $ARGYRO_POTCAR_DIR is set) and run.sh",
        description="Render the VASP inputs argyro would run (METHOD.md section 4) into -o DIR.",
    )
    p.add_argument("structure", metavar="STRUCTURE", help="structure file (POSCAR, CIF, extxyz ...); for --kind e0 an element symbol")
    p.add_argument("--kind", required=True, choices=["relax", "static", "aimd", "label", "e0"])
    p.add_argument("--system", choices=["bulk", "slab", "interface"], help="relax: ISIF 3 for bulk, 2 otherwise; aimd: POTIM 1 fs for interfaces (default: guessed from the vacuum)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--temperature", type=float, metavar="K", help="AIMD temperature (TEBEG = TEEND)")
    g.add_argument("--ramp", type=float, nargs=2, metavar=("T0", "T1"), help="AIMD temperature ramp (TEBEG, TEEND) in K")
    p.add_argument("--ps", type=float, metavar="N", help="AIMD duration in ps (NSW = N*1000/POTIM)")
    p.add_argument("--potim", type=float, metavar="FS", help="AIMD time step in fs (default 2, 1 for interfaces)")
    p.add_argument("--kpoints", choices=["auto", "grid", "gamma"], help="AIMD k-points (default auto: grid for <= 54 atoms)")
    p.add_argument("--strain-to", type=float, nargs="+", metavar="X", help="relax with in-plane cell set to A B [GAMMA] (strain-energy step)")
    p.add_argument("--potcar-dir", metavar="DIR", help="PAW folder (<symbol>/POTCAR); default $ARGYRO_POTCAR_DIR")
    p.add_argument("--require-potcar", action="store_true", help="fail if no POTCAR can be assembled")
    p.add_argument("--min-distance", type=float, default=MIN_DISTANCE_A, metavar="A",
                   help=f"refuse a structure with two atoms closer than this, Å (default {MIN_DISTANCE_A})")
    p.add_argument("--vasp-cmd", default="srun vasp_std", help="VASP command for run.sh (default 'srun vasp_std')")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    p.set_defaults(func=cmd_render_vasp)


def register(sub) -> None:
    p = sub.add_parser("vasp", help="run VASP under custodian, or parse a finished VASP folder")
    vsub = p.add_subparsers(dest="vasp_command", metavar="ACTION", required=True)
    r = vsub.add_parser("run", help="run VASP in DIR under custodian (corrections recorded)")
    r.add_argument("directory", metavar="DIR")
    r.add_argument("--kind", required=True, choices=["relax", "static", "aimd", "label", "e0"])
    r.add_argument("--vasp-cmd", required=True, help="the VASP command, e.g. 'srun vasp_std'")
    r.add_argument("--max-errors", type=int, default=5)
    r.set_defaults(func=cmd_run)
    q = vsub.add_parser("parse", help="parse DIR/vasprun.xml: summary JSON, optional extxyz and DB document")
    q.add_argument("directory", metavar="DIR")
    q.add_argument("--kind", default="relax", help="kind recorded with the result (default relax)")
    q.add_argument("--extxyz", metavar="FILE", help="write every ionic step as a MACE dataset (REF_energy/forces/stress)")
    q.add_argument("--config-type", default=None, help="config_type of the dataset frames (default: kind)")
    q.add_argument("--store", action="store_true", help="also store the document in the calculations collection")
    q.set_defaults(func=cmd_parse)


def _maker_options(args) -> dict:
    opts: dict = {}
    if args.system:
        opts["system"] = args.system
    if args.kind in ("aimd",):
        if args.temperature is not None:
            opts["temperature"] = args.temperature
        if args.ramp:
            opts["temperature"], opts["end_temperature"] = args.ramp
        if args.ps is not None:
            opts["ps"] = args.ps
        if args.potim is not None:
            opts["potim"] = args.potim
        if args.kpoints:
            opts["kpoints"] = args.kpoints
    elif any(v is not None for v in (args.temperature, args.ramp, args.ps, args.potim, args.kpoints)):
        raise ArgyroError("--temperature/--ramp/--ps/--potim/--kpoints apply to --kind aimd only")
    if args.strain_to:
        if args.kind != "relax" or len(args.strain_to) not in (2, 3):
            raise ArgyroError("--strain-to A B [GAMMA] applies to --kind relax")
        opts["strain_to"] = tuple(args.strain_to)
    if args.kind in ("label", "e0", "static") and "system" in opts:
        opts.pop("system")
    return opts


def cmd_render_vasp(args) -> int:
    from ..dft.inputs import element_structure, maker, write_inputs
    from .build import read_structure

    if args.kind == "e0" and not Path(args.structure).exists():
        structure = element_structure(args.structure)
    else:
        structure = read_structure(args.structure)
    inp = maker(args.kind, **_maker_options(args)).inputs(structure)
    out = Path(args.output)
    script = render("vasp/run.sh.j2", directory=str(out.resolve()), kind=args.kind, vasp_cmd=args.vasp_cmd)
    paths = write_inputs(inp, out, potcar=True if args.require_potcar else None, potcar_directory=args.potcar_dir,
                         min_distance=args.min_distance)
    paths["run.sh"] = write_atomic(out / "run.sh", script, mode=0o755)
    for name in sorted(paths):
        print(paths[name])
    if "POTCAR" not in paths:
        print("note: no POTCAR written (set $ARGYRO_POTCAR_DIR to your PAW_PBE folder)")
    return 0


def cmd_run(args) -> int:
    from ..dft.run import corrections, run_vasp

    log = run_vasp(args.directory, args.kind, args.vasp_cmd, max_errors=args.max_errors)
    corr = corrections(log)
    write_atomic(Path(args.directory) / "argyro_corrections.json", json.dumps(to_plain(corr)))
    print(f"VASP finished in {args.directory}; custodian corrections: {len(corr)}")
    return 0


def cmd_parse(args) -> int:
    from ..dft.dataset import frames_from_result, write_extxyz
    from ..dft.parse import parse_vasp_dir

    result = parse_vasp_dir(args.directory)
    if args.extxyz:
        write_extxyz(frames_from_result(result, args.config_type or args.kind), Path(args.directory) / args.extxyz
                     if not Path(args.extxyz).is_absolute() else args.extxyz)
    summary = {"directory": result.directory, "formula": result.final_structure.composition.formula,
               "n_ionic_steps": len(result.steps), "final_energy_eV": result.final_energy,
               "converged_ionic": result.converged_ionic, "input_checksum": result.input_checksum}
    if args.store:
        from .. import store
        from ..settings import resolve

        doc = dict(result.to_doc(), kind=args.kind, engine="vasp")
        store.put_calculation(store.database(settings=resolve(args.uri, args.config)), doc)
    print(json.dumps(summary, indent=1))
    return 0

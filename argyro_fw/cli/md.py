"""``argyro render lammps`` and ``argyro md run``: LAMMPS-MACE MD inputs and walltime-safe runs."""

from __future__ import annotations

import json
from pathlib import Path

from .. import engines
from ..core.chemistry import ELEMENTS
from ..core.serialise import write_atomic
from ..errors import ArgyroError
from ..md.protocol import BAROSTATS, MDProtocol
from ..study.config import MlmdCfg
from ..templating import render


def _protocol_args(p) -> None:
    p.add_argument("--temperature", type=float, default=MDProtocol.temperature, metavar="K")
    p.add_argument("--ns", type=float, default=MlmdCfg.npt_ns, help=f"NPT duration after the NVT stage, ns (default {MlmdCfg.npt_ns:g})")
    p.add_argument("--nvt-ps", type=float, default=MlmdCfg.nvt_ps, help=f"NVT equilibration, ps (default {MlmdCfg.nvt_ps:g})")
    p.add_argument("--barostat", choices=list(BAROSTATS), default=MDProtocol.barostat)
    p.add_argument("--dump-every", type=int, default=MlmdCfg.dump_every,
                   help=f"steps between frames (default {MlmdCfg.dump_every})")
    p.add_argument("--restart-every", type=int, default=MlmdCfg.restart_every,
                   help=f"steps between restart files (default {MlmdCfg.restart_every})")
    p.add_argument("--seed", type=int, default=MDProtocol.seed)


def register_render(rsub) -> None:
    p = rsub.add_parser("lammps", help="write system.data, in.lammps, the model conversion and run.sh for LAMMPS-MACE MD")
    p.add_argument("structure", metavar="STRUCTURE")
    p.add_argument("--model", required=True, help="MACE model file (.model)")
    p.add_argument("--engine", choices=list(engines.MD), default="mliap",
                   help="mliap: GPU (KOKKOS + ML-IAP, in the container); external: CPU (fix external callback)")
    p.add_argument("--lmp", default=MlmdCfg.lmp_binary, help=f"LAMMPS binary of the GPU path (default {MlmdCfg.lmp_binary})")
    _protocol_args(p)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="the run directory")
    p.set_defaults(func=cmd_render_lammps)
    register_render_mace(rsub)


def register(sub) -> None:
    p = sub.add_parser("md", help="run (or continue) LAMMPS-MACE MD in a run directory")
    msub = p.add_subparsers(dest="md_command", metavar="ACTION", required=True)
    r = msub.add_parser("run", help="run the remaining segments of DIR, then merge the trajectory")
    _run_args(r)
    r.set_defaults(func=cmd_md_run)
    e = msub.add_parser("extend", help="extend a (finished) run's NPT stage to --ns in total and run to the new end, "
                                       "appending to the same merged trajectory")
    _run_args(e)
    e.add_argument("--ns", type=float, required=True, help="the new NPT duration in total, ns (e.g. 10)")
    e.set_defaults(func=cmd_md_extend)


def _run_args(r) -> None:
    r.add_argument("run_dir", metavar="DIR")
    r.add_argument("--model", required=True)
    r.add_argument("--engine", choices=list(engines.MD), default="external")
    r.add_argument("--mliap-model", help="converted model (<model>-mliap_lammps.pt) for --engine mliap")
    r.add_argument("--lmp", default=MlmdCfg.lmp_binary)
    r.add_argument("--max-segments", type=int, help="stop after N segments (walltime-sized chunks)")


def _protocol(args, elements):
    from ..md.protocol import MDProtocol

    return MDProtocol(temperature=args.temperature, npt_ns=args.ns, nvt_ps=args.nvt_ps, barostat=args.barostat,
                      dump_every=args.dump_every, thermo_every=args.dump_every, restart_every=args.restart_every,
                      seed=args.seed, elements=elements)


def cmd_render_lammps(args) -> int:
    from pymatgen.io.ase import AseAtomsAdaptor

    from ..md.engines import mliap_path
    from ..md.protocol import render_input
    from ..md.runner import prepare_run_dir
    from ..structio import read_structure

    atoms = AseAtomsAdaptor.get_atoms(read_structure(args.structure))
    order = [el for el in ELEMENTS if el in set(atoms.get_chemical_symbols())]
    order += sorted(set(atoms.get_chemical_symbols()) - set(order))
    protocol = _protocol(args, order)
    model = Path(args.model).resolve()
    out = Path(args.output).resolve()
    mliap = mliap_path(model)
    text = render_input(protocol, args.engine, str(out / "system.data"), str(out / "segment_0" / "traj.lammpstrj"),
                        str(out / "restart"), mliap_model=mliap if args.engine == "mliap" else None)
    script = render("lammps/run.sh.j2", engine=args.engine, run_dir=str(out), model=str(model), mliap_model=mliap,
                    lmp=args.lmp)
    convert = render("lammps/convert_model.sh.j2", model_dir=str(model.parent), model=model.name, head="Default")
    prepare_run_dir(out, atoms, protocol, model)  # checks the model's species before anything runs
    write_atomic(out / "in.lammps", text)
    write_atomic(out / "run.sh", script, mode=0o755)
    write_atomic(out / "convert_model.sh", convert, mode=0o755)
    for name in ("system.data", "protocol.json", "in.lammps", "convert_model.sh", "run.sh"):
        print(out / name)
    return 0


def cmd_md_run(args) -> int:
    from ..md.runner import read_protocol, run_md

    d = Path(args.run_dir)
    res = run_md(d, None, read_protocol(d), args.model, engine=args.engine, mliap_model=args.mliap_model,
                 lmp_binary=args.lmp, max_segments=args.max_segments)
    print(json.dumps(res, indent=1))
    return 0


def cmd_md_extend(args) -> int:
    from ..md.runner import extend_run, run_md

    d = Path(args.run_dir)
    protocol = extend_run(d, args.ns)
    print(f"{d}: NPT extended to {protocol.npt_ns:g} ns ({protocol.total_steps} steps); continuing", flush=True)
    res = run_md(d, None, protocol, args.model, engine=args.engine, mliap_model=args.mliap_model,
                 lmp_binary=args.lmp, max_segments=args.max_segments)
    print(json.dumps(res, indent=1))
    return 0


def register_render_mace(rsub) -> None:
    p = rsub.add_parser("mace", help="write the exact mace_run_train command and job script (committee or multihead)")
    p.add_argument("--kind", required=True, choices=["committee", "multihead"])
    p.add_argument("--foundation", required=True, metavar="MODEL", help="foundation model file")
    p.add_argument("--train", required=True, metavar="XYZ", help="training set (extxyz, REF_* keys)")
    p.add_argument("--valid", metavar="XYZ")
    p.add_argument("--replay", metavar="XYZ", help="multihead: the pre-selected replay set (pt_train_file)")
    p.add_argument("--e0", action="append", default=[], metavar="EL=EV", help="isolated-atom energy (repeatable)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--name", default=None)
    p.add_argument("--device", default="cuda")
    p.add_argument("-o", "--output", required=True, metavar="DIR")
    p.set_defaults(func=cmd_render_mace)


def cmd_render_mace(args) -> int:
    from ..mlip.commands import CommitteeFinetune, MultiheadFinetune, lammps_conversion_argv, shell

    e0s = {}
    for item in args.e0:
        el, _, v = item.partition("=")
        try:
            e0s[el] = float(v)
        except ValueError:
            raise ArgyroError(f"--e0 {item!r}: expected EL=ENERGY_EV") from None
    out = Path(args.output).resolve()
    name = args.name or (f"committee_{args.seed}" if args.kind == "committee" else "final")
    common = dict(name=name, train_file=str(Path(args.train).resolve()), foundation_model=str(Path(args.foundation).resolve()),
                  valid_file=str(Path(args.valid).resolve()) if args.valid else None, seed=args.seed, device=args.device,
                  workdir=str(out), e0s=e0s or "foundation")
    if args.kind == "committee":
        cmd = CommitteeFinetune(**common)
        convert = None
    else:
        cmd = MultiheadFinetune(**common, pt_train_file=str(Path(args.replay).resolve()) if args.replay else "")
        convert = shell(lammps_conversion_argv(str(out / f"{name}.model")))
    argv = cmd.argv()
    script = render("mace/train.sh.j2", kind=args.kind, name=name, workdir=str(out), command=shell(argv), convert=convert)
    write_atomic(out / "train.sh", script, mode=0o755)
    write_atomic(out / "command.json", json.dumps(argv, indent=1))
    print(out / "train.sh")
    return 0

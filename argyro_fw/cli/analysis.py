"""``argyro analyze|diffusion|arrhenius|plot``: trajectory analysis into HDF5 and PNG."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ArgyroError

FMT_HELP = "trajectory format: lammps-dump, extxyz, xdatcar, ase-traj (default: from the file name)"


def register(sub) -> None:
    p = sub.add_parser("analyze", help="coordination, RDF, PS4, crystallinity, SEI, events and Li flux -> HDF5",
                       description="Stream a trajectory and write the METHOD.md section 7 analysis to -o FILE.h5.")
    p.add_argument("trajectory", metavar="TRAJ")
    p.add_argument("-o", "--output", required=True, metavar="FILE.h5")
    p.add_argument("--format", dest="fmt", help=FMT_HELP)
    p.add_argument("--types", help="LAMMPS dump: elements of types 1, 2, ... (e.g. Li,P,S,Cl)")
    p.add_argument("--timestep-ps", type=float, default=0.1, help="time between frames in the file, ps (default 0.1)")
    p.add_argument("--stride", type=int, default=1, help="analyse every N-th frame (default 1)")
    p.add_argument("--membrane", action="append", default=[], metavar="NAME=FRAC",
                   help="a flux membrane at fractional z (repeatable); the study's membranes are added automatically "
                        "when the first frame has a Li | argyrodite interface")
    p.add_argument("--no-auto-membranes", action="store_true", help="only the --membrane ones")
    p.add_argument("--nvt-ps", type=float, default=0.0, metavar="PS",
                   help="place the membranes on, and count the flux from, the first frame at t >= PS: the end of the "
                        "MD's NVT equilibration (the study's runs: 10); default 0, the first frame")
    p.add_argument("--flux-window", action="append", default=[], metavar="NAME=T0:T1",
                   help="a flux window in ns of trajectory time (repeatable; replaces the default window of that "
                        "name; defaults: the study config's analysis.flux_windows)")
    p.add_argument("--store", action="store_true", help="store a summary document in the analyses collection")
    p.add_argument("--interface", help="label stored with the summary (e.g. 100/100)")
    p.add_argument("--temperature", type=float, help="temperature (K) stored with the summary")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_analyze)

    d = sub.add_parser("diffusion", help="kinisi D (with uncertainty) and sigma (Nernst-Einstein and MSTD) -> HDF5")
    d.add_argument("trajectory", metavar="TRAJ")
    d.add_argument("--specie", default="Li")
    d.add_argument("--temperature", type=float, required=True, metavar="K")
    d.add_argument("--md-timestep-ps", type=float, default=0.001, help="MD integration time step, ps (default 0.001)")
    d.add_argument("--step-skip", type=int, default=100, help="MD steps between frames in the file (default 100: 0.1 ps)")
    d.add_argument("--stride", type=int, default=1, help="use every N-th frame (multiplies --step-skip)")
    d.add_argument("--start-dt-ps", type=float, help="start of the diffusive regime (default 10 %% of the run)")
    d.add_argument("--format", dest="fmt", help=FMT_HELP)
    d.add_argument("--types", help="LAMMPS dump: elements of types 1, 2, ...")
    d.add_argument("--seed", type=int, default=42, help="random seed of kinisi's sampler")
    d.add_argument("--flux-from-ps", type=float, default=0.0, metavar="PS",
                   help="count the bulk Li flux from this time on (the end of the NVT equilibration); default 0")
    d.add_argument("-o", "--output", required=True, metavar="FILE.h5")
    d.set_defaults(func=cmd_diffusion)

    a = sub.add_parser("arrhenius", help="kinisi Arrhenius fits of D and sigma (ln sigma vs 1/T) from diffusion files; "
                                         "extrapolation to 300 K")
    a.add_argument("inputs", nargs="+", metavar="DIFFUSION.h5")
    a.add_argument("--specie", default="Li")
    a.add_argument("--extrapolate-to", type=float, default=300.0, metavar="K")
    a.add_argument("--seed", type=int, default=42, help="random seed of the MCMC sampler")
    a.add_argument("-o", "--output", required=True, metavar="FILE.h5")
    a.set_defaults(func=cmd_arrhenius)

    q = sub.add_parser("plot", help="one PNG per series of an argyro HDF5 file")
    q.add_argument("h5", metavar="FILE.h5")
    q.add_argument("-o", "--output", required=True, metavar="DIR")
    q.set_defaults(func=cmd_plot)


def _types(args):
    return [t.strip() for t in args.types.split(",")] if args.types else None


def _membranes(items):
    out = {}
    for it in items:
        name, _, frac = it.partition("=")
        try:
            f = float(frac)
        except ValueError:
            raise ArgyroError(f"--membrane {it!r}: expected NAME=FRAC with FRAC a number in [0, 1)") from None
        if not name or not (0.0 <= f < 1.0):
            raise ArgyroError(f"--membrane {it!r}: expected NAME=FRAC with FRAC in [0, 1)")
        out[name] = f
    return out


def _windows(items) -> dict:
    out = {}
    for it in items:
        name, _, span = it.partition("=")
        t0, _, t1 = span.partition(":")
        try:
            w = [float(t0), float(t1)]
        except ValueError:
            raise ArgyroError(f"--flux-window {it!r}: expected NAME=T0:T1 (ns)") from None
        if not name or not 0 <= w[0] < w[1]:
            raise ArgyroError(f"--flux-window {it!r}: expected NAME=T0:T1 with 0 <= T0 < T1 (ns)")
        out[name] = w
    return out


def cmd_analyze(args) -> int:
    from ..analysis.pipeline import AnalysisOptions, analyze_trajectory

    if args.timestep_ps <= 0:
        raise ArgyroError(f"--timestep-ps must be > 0, got {args.timestep_ps}")
    if args.nvt_ps < 0:
        raise ArgyroError(f"--nvt-ps must be >= 0, got {args.nvt_ps}")
    opts = AnalysisOptions(timestep_ps=args.timestep_ps, stride=args.stride,
                           fmt=args.fmt, type_map=_types(args), membranes=_membranes(args.membrane),
                           auto_membranes=not args.no_auto_membranes, progress=not args.quiet, nvt_ps=args.nvt_ps)
    opts.flux_windows.update(_windows(args.flux_window))
    summary = analyze_trajectory(args.trajectory, args.output, opts)
    if args.store:
        from .. import store
        from ..settings import resolve

        store.put_analysis(store.database(settings=resolve(args.uri, args.config)), summary, args.output,
                           args.trajectory, interface=args.interface, temperature_K=args.temperature)
    print(json.dumps(summary, indent=1, default=float))
    return 0


def cmd_diffusion(args) -> int:
    from ..analysis.diffusion import kinisi_diffusion
    from ..analysis.diffusion_io import diffusion_to_h5, load_frames

    frames = load_frames(args.trajectory, args.fmt, args.stride, _types(args))
    try:
        res = kinisi_diffusion(frames, args.specie, args.temperature, args.md_timestep_ps, args.step_skip * args.stride,
                               args.start_dt_ps, seed=args.seed, flux_from_ps=args.flux_from_ps)
    except ValueError as exc:
        raise ArgyroError(f"{args.trajectory}: {exc}") from None
    diffusion_to_h5(res, args.output, args.trajectory)
    print(json.dumps({"D_cm2_s": res.D_cm2_s, "D_std_cm2_s": res.D_std_cm2_s, "sigma_S_cm": res.sigma_S_cm,
                      "sigma_mstd_S_cm": res.sigma_mstd_S_cm, "temperature_K": res.temperature_K,
                      "flux_pos_c_nm2_ns": res.flux_pos_c_nm2_ns, "flux_neg_c_nm2_ns": res.flux_neg_c_nm2_ns}, indent=1))
    return 0


def cmd_arrhenius(args) -> int:
    from ..analysis.diffusion_io import arrhenius_to_h5

    try:
        summary = arrhenius_to_h5(args.inputs, args.output, args.specie, args.extrapolate_to, seed=args.seed)
    except ValueError as exc:
        raise ArgyroError(str(exc)) from None
    print(json.dumps(summary, indent=1))
    return 0


def cmd_plot(args) -> int:
    from ..analysis.plots import plot_h5

    if not Path(args.h5).is_file():
        raise ArgyroError(f"{args.h5}: does not exist")
    for p in plot_h5(args.h5, args.output):
        print(p)
    return 0

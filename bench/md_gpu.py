"""GPU check and benchmark of LAMMPS ML-IAP + MACE, for the first GPU node of a site (in the image).

What it does, with one MACE model and one cell:

1. converts the model to LAMMPS ML-IAP twice, in float64: with cuEquivariance (what
   ``mace_create_lammps_model MODEL --format=mliap`` writes) and without (plain e3nn);
2. frame 1: LAMMPS (``run 0``, KOKKOS on the GPU) energy and forces with each conversion against
   ASE's MACECalculator on the same structure (float64, e3nn): PASS needs
   max |F_lammps - F_ase| < 1e-4 eV/Å and |E_lammps - E_ase| / N < 1e-6 eV/atom;
3. N MD steps (NVT 300 K, 1 fs, after a warm-up) with each conversion: steps/s and ns/day;
4. no cuEquivariance fallback ("Falling back to naive implementation", the 15-30x slowdown of
   mace #1471) while converting or running, and ``python -W error -c "import
   cuequivariance_ops_torch, cuequivariance_torch"`` exits 0.

Prints a table and PASS or FAIL (exit 0 / 1). On a machine without a GPU it says so and exits 0
(SKIPPED), so it can sit in any checklist.

The model: --model (the study's model, e.g. its final.model: realistic speed). Without it, a MACE
of medium size (128 channels, L=1, correlation 3, 2 interactions, r_max 5 Å) with random weights
is built here: right for the comparison and for speed, meaningless as physics.
The cell: --structure (any file ASE reads, e.g. the study's MLMD cell POSCAR_mlmd); without it the
MLMD interface cell argyro builds by default (``argyro build mlmd-cell``: Li(100) | Li6PS5Cl(100)
Li-S termination, 6 + 6 layers, 2x2x1).

Usage (in the GPU image, on a GPU node):
    apptainer exec --nv argyro-gpu-hopper90.sif python /opt/argyro/bench/md_gpu.py \
        [--model final.model] [--structure POSCAR_mlmd] [--steps 200] [--out md_gpu_run]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

# e3nn 0.4.4 (mace's) loads its constants with torch.load, which torch >= 2.6 refuses by default
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

FORCE_TOL = 1e-4  # eV/Å, float64
ENERGY_TOL = 1e-6  # eV/atom, float64
TIMESTEP_FS = 1.0
FALLBACK = re.compile(r"Falling back to naive|cuequivariance_ops_torch is not available", re.I)


def gpu_or_reason() -> str | None:
    """None when a CUDA GPU is usable from torch, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False" + ("" if shutil.which("nvidia-smi") else ", no nvidia-smi")
    return None


def build_random_mace(elements: list[str], path: Path, seed: int = 0) -> Path:
    """A MACE of medium size with random weights (float64), saved as a full model like mace_run_train's."""
    import numpy as np
    import torch
    from ase.data import atomic_numbers
    from e3nn import o3
    from mace import modules

    torch.manual_seed(seed)
    z = sorted(atomic_numbers[e] for e in elements)
    block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
    model = modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, interaction_cls=block,
        interaction_cls_first=block, num_interactions=2, num_elements=len(z),
        hidden_irreps=o3.Irreps("128x0e + 128x1o"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.linspace(-2.0, -1.0, len(z)), avg_num_neighbors=30.0, atomic_numbers=z,
        correlation=3, gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64], radial_type="bessel",
        atomic_inter_scale=20.0, atomic_inter_shift=0.0,  # forces of order 0.1-1 eV/Å on this cell
    ).double()
    torch.save(model, path)
    return path


def default_cell():
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.structures.bulk import ordered_argyrodite
    from argyro_fw.structures.interfaces import mlmd_cell

    res = mlmd_cell(ordered_argyrodite(), (1, 0, 0), termination_label="Li-S")
    return AseAtomsAdaptor.get_atoms(res["structure"])


def convert(model_path: Path, out: Path, cueq: bool, head: str | None) -> tuple[Path, list[str]]:
    """The ML-IAP model (float64): as mace_create_lammps_model --format=mliap (cueq=True) or without
    the cuEquivariance conversion. Returns the file and the warnings issued on the way."""
    import torch
    from mace.calculators.lammps_mliap_mace import LAMMPS_MLIAP_MACE

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = torch.load(model_path, map_location="cpu", weights_only=False).double().to("cpu")
        if cueq:
            from mace.cli.convert_e3nn_cueq import run as run_e3nn_to_cueq

            model = run_e3nn_to_cueq(copy.deepcopy(model))
        model.lammps_mliap = True
        heads = list(getattr(model, "heads", None) or [None])
        if head is None and len(heads) > 1:
            raise SystemExit(f"md_gpu: the model has heads {heads}: pick one with --head")
        wrapper = LAMMPS_MLIAP_MACE(model, head=head) if head else LAMMPS_MLIAP_MACE(model)
        torch.save(wrapper, out)
    return out, [f"{w.category.__name__}: {w.message}" for w in caught]


def lammps_input(data: str, model: str, elements: list[str], steps: int, warmup: int) -> str:
    return f"""units           metal
atom_style      atomic
atom_modify     map yes
newton          on
boundary        p p p
read_data       {data}
pair_style      mliap unified {model} 0
pair_coeff      * * {" ".join(elements)}
thermo_style    custom step temp pe
thermo_modify   norm no
dump            f all custom 1 forces.dump id fx fy fz
dump_modify     f sort id format float %22.14e
run             0
print           "ARGYRO_PE $(pe:%.12f)"
undump          f
velocity        all create 300.0 4928459 mom yes rot yes dist gaussian
fix             nvt all nvt temp 300.0 300.0 0.1
timestep        {TIMESTEP_FS / 1000.0}
thermo          {max(1, steps // 4)}
run             {warmup}
run             {steps}
"""


def run_lammps(lmp: str, work: Path, model: Path, elements: list[str], steps: int, warmup: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    (work / "in.lammps").write_text(lammps_input("../cell.data", str(model), elements, steps, warmup))
    cmd = [lmp, "-k", "on", "g", "1", "-sf", "kk", "-pk", "kokkos", "newton", "on", "neigh", "half",
           "-in", "in.lammps", "-log", "log.lammps"]
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    out = proc.stdout + proc.stderr
    (work / "lmp.out").write_text(out)
    res = {"rc": proc.returncode, "wall_s": time.perf_counter() - t0, "fallback": bool(FALLBACK.search(out)),
           "tail": "\n".join(out.strip().splitlines()[-15:])}
    pe = re.search(r"^ARGYRO_PE (\S+)", out, re.M)
    loops = re.findall(r"Loop time of (\S+) on \d+ procs for (\d+) steps", out)
    if pe:
        res["pe"] = float(pe.group(1))
    if loops and int(loops[-1][1]) == steps and steps > 0:
        res["steps_per_s"] = steps / float(loops[-1][0])
        res["ns_per_day"] = res["steps_per_s"] * TIMESTEP_FS * 86400 / 1e6
    dump = work / "forces.dump"
    if dump.exists():
        import numpy as np

        lines = dump.read_text().splitlines()
        start = lines.index(next(ln for ln in lines if ln.startswith("ITEM: ATOMS"))) + 1
        arr = np.array([[float(x) for x in ln.split()] for ln in lines[start:] if ln.strip()])
        res["forces"] = arr[np.argsort(arr[:, 0])][:, 1:4]
    return res


def import_check() -> tuple[bool, str]:
    proc = subprocess.run([sys.executable, "-W", "error", "-c", "import cuequivariance_ops_torch, cuequivariance_torch"],
                          capture_output=True, text=True)
    return proc.returncode == 0, proc.stderr.strip().splitlines()[-1] if proc.returncode else "ok"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="MACE model file (default: a random-weight medium MACE built here)")
    ap.add_argument("--head", help="head of a multi-head model")
    ap.add_argument("--structure", help="cell (any ASE-readable file; default: argyro's default MLMD interface cell)")
    ap.add_argument("--steps", type=int, default=200, help="timed MD steps per variant (default 200)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed MD steps first (default 20)")
    ap.add_argument("--lmp", default="lmp", help="LAMMPS binary (KOKKOS + ML-IAP + PYTHON)")
    ap.add_argument("--out", default="md_gpu_run", help="work folder (default ./md_gpu_run)")
    args = ap.parse_args()

    reason = gpu_or_reason()
    if reason is not None:
        print(f"md_gpu: no GPU on this machine ({reason}): SKIPPED. Run it on a GPU node in the GPU image, e.g. "
              "apptainer exec --nv argyro-gpu-hopper90.sif python /opt/argyro/bench/md_gpu.py")
        return 0

    import ase.io
    import numpy as np
    import torch
    from mace.calculators import MACECalculator

    lmp = shutil.which(args.lmp)
    if lmp is None:
        print(f"md_gpu: FAIL: no LAMMPS binary '{args.lmp}' on PATH (the GPU image has /opt/lammps/bin/lmp)")
        return 1
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0)
    cc = ".".join(map(str, torch.cuda.get_device_capability(0)))
    print(f"md_gpu: GPU {gpu} (compute capability {cc}), torch {torch.__version__} (CUDA {torch.version.cuda}), "
          f"image Kokkos arch {os.environ.get('ARGYRO_KOKKOS_ARCH', '?')}")
    failures: list[str] = []
    ok, msg = import_check()
    print(f"import check (python -W error -c 'import cuequivariance_ops_torch, cuequivariance_torch'): {msg}")
    if not ok:
        failures.append("cuEquivariance import check")

    atoms = ase.io.read(args.structure) if args.structure else default_cell()
    elements = sorted(set(atoms.get_chemical_symbols()), key=lambda s: ase.data.atomic_numbers[s])
    ase.io.write(out / "cell.data", atoms, format="lammps-data", specorder=elements, atom_style="atomic", masses=True)
    # the reference reads the same data file back (LAMMPS may have rotated a triclinic cell)
    ref_atoms = ase.io.read(out / "cell.data", format="lammps-data", atom_style="atomic",
                            Z_of_type={i + 1: ase.data.atomic_numbers[e] for i, e in enumerate(elements)})
    n = len(ref_atoms)
    model = Path(args.model).resolve() if args.model else build_random_mace(elements, out / "random_medium.model")
    print(f"cell: {n} atoms {ref_atoms.get_chemical_formula()}, model: {model.name}"
          f"{' (random weights)' if not args.model else ''}, {args.steps} timed steps of {TIMESTEP_FS} fs")

    calc = MACECalculator(model_paths=str(model), device="cuda", default_dtype="float64", enable_cueq=False,
                          **({"head": args.head} if args.head else {}))
    ref_atoms.calc = calc
    e_ref, f_ref = ref_atoms.get_potential_energy(), ref_atoms.get_forces()

    rows = {}
    for variant, cueq in (("cuequivariance", True), ("e3nn", False)):
        path, conv_warn = convert(model, out / f"model-{variant}-mliap_lammps.pt", cueq, args.head)
        res = run_lammps(lmp, out / variant, path, elements, args.steps, args.warmup)
        res["fallback"] = res["fallback"] or any(FALLBACK.search(w) for w in conv_warn)
        rows[variant] = res
        if res["rc"] != 0 or "forces" not in res or "pe" not in res:
            failures.append(f"{variant}: LAMMPS failed (exit {res['rc']}), see {out / variant / 'lmp.out'}")
            print(f"--- {variant}: LAMMPS output (last lines)\n{res['tail']}")
            continue
        res["dF"] = float(np.abs(res["forces"] - f_ref).max())
        res["dE"] = abs(res["pe"] - e_ref) / n
        if res["dF"] >= FORCE_TOL:
            failures.append(f"{variant}: max |dF| {res['dF']:.2e} eV/Å >= {FORCE_TOL:g}")
        if res["dE"] >= ENERGY_TOL:
            failures.append(f"{variant}: |dE|/N {res['dE']:.2e} eV/atom >= {ENERGY_TOL:g}")
        if res["fallback"]:
            failures.append(f"{variant}: cuEquivariance fell back to its naive implementation")
        if "steps_per_s" not in res:
            failures.append(f"{variant}: no timing for the {args.steps}-step run")

    print(f"\nframe 1 vs ASE MACECalculator (float64): E_ase = {e_ref:.6f} eV, max |F_ase| = "
          f"{np.abs(f_ref).max():.3f} eV/Å")
    print(f"{'variant':16s} {'steps/s':>9s} {'ns/day':>8s} {'max|dF| eV/Å':>14s} {'|dE|/N eV':>11s} fallback")
    for variant, r in rows.items():
        def fmt(key, spec):
            return format(r[key], spec) if key in r else "-"
        print(f"{variant:16s} {fmt('steps_per_s', '9.2f'):>9s} {fmt('ns_per_day', '8.3f'):>8s} "
              f"{fmt('dF', '14.2e'):>14s} {fmt('dE', '11.2e'):>11s} {'YES' if r['fallback'] else 'no'}")
    a, b = rows["cuequivariance"].get("steps_per_s"), rows["e3nn"].get("steps_per_s")
    if a and b:
        print(f"cuEquivariance / e3nn speed: {a / b:.2f}x"
              + ("  (WARNING: cuEquivariance is not faster: check the versions, mace #1471)" if a < b else ""))
    print(f"work folder: {out}")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

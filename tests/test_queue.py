"""Issue 8: argyro's Jinja queue adapter, real single-node Slurm (started by .ci/run, or here),
qlaunch in reserved and non-reserved mode, scancel + argyro reconcile, golden job scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from argyro_fw.errors import ArgyroError
from argyro_fw.queue.adapter import ArgyroQueueAdapter
from conftest import BIN, REPO, free_port, run

GOLDEN = Path(__file__).parent / "golden"
GPU_SITE = dict(scheduler="slurm", rocket_launch="argyro rlaunch -l /site/lp.yaml -w /site/fw.yaml singleshot",
                job_name="md-100-100-400K", gpus=1, cpus_per_task=8, walltime="24:00:00", partition="gpu",
                account="proj42", modules=["cuda/12.4", "apptainer"], container_runtime="apptainer",
                container_image="/images/argyro.sif", container_gpu=True, container_binds=["/scratch", "/apps"],
                env={"ARGYRO_DB_PASSWORD_FILE": "/home/u/.argyro/pw", "OMP_NUM_THREADS": "8"})


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_gpu_job_scripts_match_golden(scheduler):
    q = ArgyroQueueAdapter(dict(GPU_SITE, scheduler=scheduler))
    script = q.get_script_str("/scratch/study/launcher_2026")
    golden = GOLDEN / f"{scheduler}_gpu.sh"
    if os.environ.get("ARGYRO_REGEN_GOLDEN"):
        golden.write_text(script)
    assert script == golden.read_text()


def test_unknown_or_missing_key_raises():
    with pytest.raises(ArgyroError, match="gpu_count"):
        ArgyroQueueAdapter(dict(GPU_SITE, gpu_count=2)).get_script_str("/x")
    with pytest.raises(ArgyroError, match="rocket_launch"):
        ArgyroQueueAdapter({"scheduler": "slurm"}).get_script_str("/x")
    with pytest.raises(ArgyroError, match="secret"):
        ArgyroQueueAdapter(dict(GPU_SITE, env={"ARGYRO_DB_PASSWORD": "x"})).get_script_str("/x")
    with pytest.raises(ArgyroError, match="container_image"):
        ArgyroQueueAdapter(dict(GPU_SITE, container_image=None)).get_script_str("/x")


def test_job_script_never_holds_the_password(tmp_path):
    secret = "Hunter2-db-secret"
    env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "h"), ARGYRO_DB_PASSWORD=secret,
               ARGYRO_DB_URI="mongodb://alice@127.0.0.1:1/study?authSource=admin")
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--no-check", "--profile",
         str(REPO / "sites" / "slurm-gpu-apptainer.yaml"), "--dir", str(tmp_path / "lp")], env)
    scripts = {}
    for f in (tmp_path / "lp").glob("my_qadapter*.yaml"):  # the one-size job and one per job kind
        qa = yaml.safe_load(f.read_text())
        scripts[f.name] = ArgyroQueueAdapter({k: v for k, v in qa.items() if k != "_fw_name"}).get_script_str(str(tmp_path))
    texts = list(scripts.values()) + [p.read_text() for p in (tmp_path / "lp").iterdir()]
    assert len(scripts) == 6 and all(secret not in t for t in texts)
    assert all("ARGYRO_DB_PASSWORD_FILE" in s for s in scripts.values())
    # the profile's ~/.argyro/db_password is expanded at render time (quoted, the shell would never expand it)
    home = os.path.expanduser("~")
    for s in scripts.values():
        line = next(ln for ln in s.splitlines() if ln.startswith("export ARGYRO_DB_PASSWORD_FILE="))
        assert line.split("=", 1)[1].strip("'") == f"{home}/.argyro/db_password" and "~" not in line
    assert "apptainer exec --nv" in scripts["my_qadapter.lammps-md.yaml"]


# --- real Slurm ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running Slurm: the one .ci/run started (SLURM_CONF), or one started here (root needed).
    Every command here runs in a test's tmp dir: no job output (slurm-<id>.out) lands in the checkout."""
    before = set(REPO.glob("slurm-*.out"))
    yield from _slurm(tmp_path_factory)
    assert set(REPO.glob("slurm-*.out")) <= before, "a job wrote its output into the checkout (sbatch run from REPO)"


def _slurm(tmp_path_factory):
    if shutil.which("sinfo") and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0:
        yield None
        return
    d = tmp_path_factory.mktemp("slurm")
    proc = subprocess.run(["bash", str(REPO / "containers" / "slurm" / "start.sh"), str(d)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"Slurm is not running and could not be started: {proc.stderr[-1000:]}")
    os.environ["SLURM_CONF"] = str(d / "slurm.conf")
    yield d
    subprocess.run(["bash", str(REPO / "containers" / "slurm" / "stop.sh"), str(d)])


def _slurm_launchpad(tmp_path, cli_env):
    env = dict(cli_env, SLURM_CONF=os.environ.get("SLURM_CONF", ""))
    if not env["SLURM_CONF"]:
        env.pop("SLURM_CONF")
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--dir", str(tmp_path / "lp"),
         "--argyro-cmd", str(BIN / "argyro")], env, cwd=tmp_path)
    from argyro_fw.launchpad import get_launchpad

    lp = get_launchpad(tmp_path / "lp" / "my_launchpad.yaml")
    lp.reset("", require_password=False)
    return lp, env


def _qlaunch(tmp_path, env, *args):
    lp = tmp_path / "lp"
    return run([str(BIN / "argyro"), "qlaunch", "-l", str(lp / "my_launchpad.yaml"), "-w", str(lp / "my_fworker.yaml"),
                "-q", str(lp / "my_qadapter.yaml"), *args], env, cwd=tmp_path)


def _wait(pred, timeout=180, every=1.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(every)
    return False


@pytest.mark.parametrize("reserved", [True, False], ids=["reserved", "non-reserved"])
def test_qlaunch_through_sbatch(slurm, tmp_path, cli_env, reserved):
    from fireworks import Firework, ScriptTask, Workflow

    lp, env = _slurm_launchpad(tmp_path, cli_env)
    side = tmp_path / "side"
    a, b, c = (Firework(ScriptTask.from_str(f"echo {n} >> {side}"), name=n) for n in "ABC")
    lp.add_wf(Workflow([a, b, c], {a: [b, c]}))
    flags = ["-r"] if reserved else []

    def done():
        _qlaunch(tmp_path, env, *flags, "rapidfire", "--nlaunches", "0", "-m", "4")
        return lp.fireworks.count_documents({"state": "COMPLETED"}) == 3

    assert _wait(done, timeout=240, every=2.0), [(d["name"], d["state"]) for d in lp.fireworks.find({})]
    assert sorted(side.read_text().split()) == ["A", "B", "C"] and side.read_text().split()[0] == "A"
    if reserved:
        ids = [l.get("reservation_id") or next((h.get("reservation_id") for h in l["state_history"] if h.get("reservation_id")), None)
               for l in lp.launches.find({})]
        assert all(ids) and len(set(ids)) == 3  # one sbatch job per firework
    # the jobs really went through Slurm
    assert list(tmp_path.rglob(".argyro_job_id"))


@pytest.mark.parametrize("fizzle", [False, True], ids=["rerun", "fizzle"])
def test_scancel_then_reconcile(slurm, tmp_path, cli_env, fizzle):
    from fireworks import Firework, ScriptTask, Workflow

    lp, env = _slurm_launchpad(tmp_path, cli_env)
    flag = tmp_path / "go"
    fw = Firework(ScriptTask.from_str(f"test -f {flag} || sleep 300"), name="long")
    after = Firework(ScriptTask.from_str("true"), name="after", parents=[fw])
    lp.add_wf(Workflow([fw, after]))
    _qlaunch(tmp_path, env, "-r", "singleshot")
    assert _wait(lambda: lp.fireworks.find_one({"name": "long"})["state"] == "RUNNING", 120, 0.5)
    jid = next(tmp_path.rglob(".argyro_job_id")).read_text().strip()
    subprocess.run(["scancel", jid], env=env, check=True)
    assert _wait(lambda: subprocess.run(["squeue", "-h", "-j", jid], env=env, capture_output=True, text=True).stdout.strip() == "", 60, 0.5)
    assert lp.fireworks.find_one({"name": "long"})["state"] == "RUNNING"  # FireWorks alone would wait 4 h
    out = run([str(BIN / "argyro"), "reconcile", "-l", str(tmp_path / "lp" / "my_launchpad.yaml")] +
              (["--fizzle"] if fizzle else []), env, cwd=tmp_path)
    state = lp.fireworks.find_one({"name": "long"})["state"]
    if fizzle:
        assert state == "FIZZLED" and "fizzled: [" in out.stdout
        return
    assert state == "READY"
    flag.touch()

    def done():
        _qlaunch(tmp_path, env, "-r", "rapidfire", "--nlaunches", "0", "-m", "4")
        return lp.fireworks.count_documents({"state": "COMPLETED"}) == 2

    assert _wait(done, timeout=180, every=2.0)


def test_reconcile_takes_the_exact_job_before_a_stale_job_id_file(tmp_path):
    """A firework with its own run directory (every VASP AIMD) keeps an earlier job's ``.argyro_job_id`` there: the
    job the launch's worker recorded, or for a launch still RESERVED its reservation id, wins over that file."""
    from argyro_fw.queue.reconcile import _job_id

    (tmp_path / ".argyro_job_id").write_text("101\n")  # job 101 was cut; the firework was rerun
    running = {"state": "RUNNING", "launch_dir": str(tmp_path), "argyro_worker": {"pid": 1, "job_id": "102"},
               "state_history": [{"state": "RESERVED", "reservation_id": "102"}]}
    assert _job_id(running) == "102"
    reserved = {"state": "RESERVED", "launch_dir": str(tmp_path), "reservation_id": "103"}
    assert _job_id(reserved) == "103"
    older = {"state": "RUNNING", "launch_dir": str(tmp_path), "argyro_worker": {"pid": 1}}  # no job id recorded
    assert _job_id(older) == "101"
    assert _job_id({"state": "RUNNING", "launch_dir": str(tmp_path / "none"),
                    "state_history": [{"reservation_id": "7"}]}) == "7"


def test_reconcile_clears_the_lock_a_killed_job_left(tmp_path, db_settings):
    """A job killed inside a workflow update (scancel during a checkout) leaves the workflow locked; FireWorks' rerun
    would wait 5 minutes for that lock. reconcile clears a lock that stays held and reruns the firework at once."""
    from fireworks import Firework, FWorker, LaunchPad, ScriptTask

    from argyro_fw.queue.reconcile import reconcile

    lp = LaunchPad(host=db_settings.host, port=db_settings.port, name=db_settings.name)
    lp.reset("", require_password=False)
    lp.add_wf(Firework(ScriptTask.from_str("sleep 300"), name="long"))
    fw, launch_id = lp.checkout_fw(FWorker(), str(tmp_path))
    (tmp_path / ".argyro_job_id").write_text("4243\n")
    lp.workflows.update_one({"nodes": fw.fw_id}, {"$set": {"locked": True}})
    t0 = time.monotonic()
    rep = reconcile(lp, "slurm", state_fn=lambda job: None)  # the job is gone
    assert rep.rerun == [fw.fw_id] and time.monotonic() - t0 < 60
    assert lp.get_fw_by_id(fw.fw_id).state == "READY" and not lp.workflows.find_one({"nodes": fw.fw_id}).get("locked")
    lp.connection.close()


@pytest.mark.skipif(shutil.which("scontrol") is None, reason="needs Slurm's client commands")
def test_reconcile_judges_no_job_gone_while_slurm_does_not_answer(tmp_path, db_settings, monkeypatch):
    """Slurm's own commands against a controller nobody serves ("Unable to contact slurm controller"): reconcile
    stops with a named error and reruns nothing, where reading that as "job gone" would rerun every live job."""
    from fireworks import Firework, FWorker, LaunchPad, ScriptTask

    from argyro_fw.queue.reconcile import SchedulerUnavailable, reconcile, slurm_job_state

    conf = tmp_path / "slurm.conf"  # a cluster whose controller is down
    conf.write_text(f"ClusterName=down\nSlurmctldHost=localhost\nSlurmctldPort={free_port()}\nAuthType=auth/munge\n"
                    "MessageTimeout=2\nNodeName=localhost CPUs=1 State=UNKNOWN\nPartitionName=p Nodes=localhost Default=YES\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    with pytest.raises(SchedulerUnavailable, match="Unable to contact slurm controller"):
        slurm_job_state("4244")
    lp = LaunchPad(host=db_settings.host, port=db_settings.port, name=db_settings.name)
    lp.reset("", require_password=False)
    lp.add_wf(Firework(ScriptTask.from_str("sleep 300"), name="long"))
    fw, _ = lp.checkout_fw(FWorker(), str(tmp_path))
    (tmp_path / ".argyro_job_id").write_text("4244\n")
    with pytest.raises(SchedulerUnavailable):
        reconcile(lp, "slurm")
    assert lp.get_fw_by_id(fw.fw_id).state == "RUNNING"
    lp.connection.close()

"""Issue 19, points 5-7: jobs sized per job kind, VASP on the site's MPI, POTCARs checked before VASP is added.

Every firework's spec carries its stage's job kind as FireWorks' ``_category`` (flows/stages.py);
``argyro init`` writes one FireWorker (category = kind) and one queue adapter per kind from the site
profile (queue/profile.py). Tested by rendering every kind's job script from every shipped profile,
and on the real single-node Slurm: one firework of each kind through ``argyro qlaunch`` (each job
asserts what Slurm gave it), and a VASP firework whose stand-in VASP is started by ``srun -n 2``
(tests/standins/fake_vasp.py: VASP cannot run here) with argyro's Python on the host or "in the
container" (a stand-in ``apptainer`` that records its arguments and runs the command).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest
import yaml
from fireworks.utilities.fw_serializers import load_object_from_file

from argyro_fw.errors import ConfigError
from argyro_fw.flows.stages import JOB_KINDS, STAGES, stage_spec
from argyro_fw.launchpad import fworker_file, init_files, qadapter_file
from argyro_fw.queue.adapter import ArgyroQueueAdapter
from argyro_fw.queue.profile import resolve
from argyro_fw.settings import DBSettings
from conftest import BIN, REPO, SHARED, run
from test_queue import _wait, slurm  # noqa: F401  (the Slurm fixture: the running one, or started here)

PROFILES = sorted((REPO / "sites").glob("*.yaml"))
SCHEDULER = {p: ("pbs" if p.stem.startswith("pbs") else "slurm") for p in PROFILES}
FAKE_VASP = REPO / "tests" / "standins" / "fake_vasp.py"
AL = SHARED / "data" / "vasp" / "Al-relax"
#: one stage of each job kind
STAGE_OF = {kind: next(s for s, k in STAGES.items() if k == kind) for kind in JOB_KINDS}


def _expected(profile: dict, kind: str) -> dict:
    """What the profile says a job of ``kind`` gets (the shared keys, then the kind's own)."""
    top = {k: v for k, v in profile.items() if k != "jobs"}
    return {**top, **(profile.get("jobs") or {}).get(kind, {})}


def _placeholder_paw(d: Path, elements) -> Path:
    """A PAW folder of placeholder POTCARs (TITEL/ZVAL lines only; POTCARs are licensed, never committed)."""
    for el in elements:
        (d / el).mkdir(parents=True, exist_ok=True)
        (d / el / "POTCAR").write_text(f"  PAW_PBE {el} 01Jan2000 (placeholder)\n   TITEL  = PAW_PBE {el} 01Jan2000\n"
                                       "   POMASS =    1.000; ZVAL   =    1.000\n End of Dataset\n")
    return d


# --- every firework carries its job kind -------------------------------------------------------
def test_every_stage_spec_carries_its_job_kind_as_category():
    for stage, kind in STAGES.items():
        spec = stage_spec(stage, extra=1)
        assert spec["_category"] == kind and spec["argyro_stage"] == stage and spec["extra"] == 1
        assert "_queueadapter" not in spec
    assert set(STAGES.values()) == set(JOB_KINDS)
    with pytest.raises(ValueError, match="unknown firework stage"):
        stage_spec("no-such-stage")


def test_every_firework_argyro_builds_gets_its_spec_from_stage_spec():
    """Each ``Firework(...)`` in the package (fireworks added at run time by FWActions included) passes
    ``spec=stage_spec(...)``, or the running firework's own ``fw_spec`` (an MD continuation detour: same
    stage, same kind), so every one of them carries a job kind."""
    bad, seen = [], 0
    for p in (REPO / "argyro_fw").rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Firework":
                seen += 1
                spec = next((k.value for k in node.keywords if k.arg == "spec"), None)
                if not ((isinstance(spec, ast.Call) and getattr(spec.func, "id", "") == "stage_spec")
                        or (isinstance(spec, ast.Name) and spec.id == "fw_spec")):
                    bad.append(f"{p.relative_to(REPO)}:{node.lineno}")
    assert seen >= 15 and not bad, bad


def test_paper_study_fireworks_carry_their_kind():
    from argyro_fw.flows.study import initial_workflow
    from argyro_fw.study.config import load

    wf = initial_workflow(load(REPO / "configs" / "paper.yaml"))
    assert {fw.spec["_category"] for fw in wf.fws} == {"vasp", "analysis"}
    assert all(fw.spec["_category"] == STAGES[fw.spec["argyro_stage"]] for fw in wf.fws)


# --- every kind's job from every shipped profile --------------------------------------------------
@pytest.mark.parametrize("profile_path", PROFILES, ids=[p.stem for p in PROFILES])
def test_shipped_profiles_give_every_kind_its_job(profile_path, tmp_path):
    profile = yaml.safe_load(profile_path.read_text())
    scheduler = SCHEDULER[profile_path]
    settings = DBSettings(host="db.example.org", port=27017, name="study")
    written = {p.name for p in init_files(settings, tmp_path / "lp", site=scheduler, profile=profile)}
    assert written == {"my_launchpad.yaml", "my_fworker.yaml", "my_qadapter.yaml", "FW_config.yaml"} | {
        f(k) for k in JOB_KINDS for f in (fworker_file, qadapter_file)}
    generic = yaml.safe_load((tmp_path / "lp" / "my_fworker.yaml").read_text())
    assert generic["category"] == "__none__"  # argyro's fireworks never land in the one-size job
    assert set(profile["jobs"]) == set(JOB_KINDS), "the shipped profiles size every kind explicitly"
    launch = tmp_path / "launch"
    for kind in JOB_KINDS:
        want = _expected(profile, kind)
        qa = load_object_from_file(str(tmp_path / "lp" / qadapter_file(kind)))  # what `qlaunch -q` loads
        assert isinstance(qa, ArgyroQueueAdapter)
        script = qa.get_script_str(str(launch))
        worker = yaml.safe_load((tmp_path / "lp" / fworker_file(kind)).read_text())
        assert worker["category"] == kind
        assert f"-w {tmp_path / 'lp' / fworker_file(kind)} singleshot" in script
        nodes, ntasks, cpus, gpus = want.get("nodes", 1), want["ntasks"], want["cpus_per_task"], want.get("gpus", 0)
        if scheduler == "slurm":
            for line in (f"--nodes={nodes}", f"--ntasks={ntasks}", f"--cpus-per-task={cpus}",
                         f"--time={want['walltime']}", f"--partition={want['partition']}", f"--job-name=argyro-{kind}"):
                assert f"#SBATCH {line}\n" in script, (kind, line)
            assert (f"#SBATCH --gres=gpu:{gpus}\n" in script) == bool(gpus), kind
        else:
            per_node = ntasks // nodes
            sel = f"#PBS -l select={nodes}:ncpus={per_node * cpus}:mpiprocs={per_node}" + (f":ngpus={gpus}" if gpus else "")
            assert sel + "\n" in script and f"#PBS -l walltime={want['walltime']}" in script, kind
        for m in want.get("modules", []):
            assert f"module load {m}\n" in script
        rocket = script.splitlines()[-1]
        if want.get("run_in", "host") == "container":
            image = want["container_image"]
            assert rocket.startswith(f"apptainer exec {'--nv ' if gpus else ''}--bind ") and f" {image} argyro rlaunch" in rocket
        else:
            assert rocket.startswith(f"{profile['host_argyro']} rlaunch -l "), rocket
        if kind == "analysis":
            assert gpus == 0 and "--gres" not in script and "ngpus" not in script and "--nv" not in rocket
        if kind == "vasp":
            launcher = "srun" if scheduler == "slurm" else "mpiexec"
            assert worker["env"]["vasp_cmd"] == f"{launcher} -n {ntasks} vasp_std"
            assert f"export ARGYRO_POTCAR_DIR={profile['potcar_dir']}\n" in script
            assert "apptainer" not in rocket  # VASP's part on the host, on the site's MPI
        else:
            assert "ARGYRO_POTCAR_DIR" not in script


@pytest.mark.parametrize("runtime, expect", [
    ("apptainer", ["apptainer exec --bind /scratch,/apps/paw /img.sif argyro rlaunch"]),
    ("docker", ["-v /apps/paw:/apps/paw ", "-e ARGYRO_DB_PASSWORD_FILE -e ARGYRO_POTCAR_DIR -w "]),
])
def test_vasp_python_in_the_container_gets_the_potcars(runtime, expect, tmp_path):
    profile = {"container_runtime": runtime, "container_image": "/img.sif", "container_binds": ["/scratch"],
               "potcar_dir": "/apps/paw", "env": {"ARGYRO_DB_PASSWORD_FILE": "/h/pw"},
               "jobs": {"vasp": {"ntasks": 8, "run_in": "container"}}}
    site = resolve(profile, "slurm")
    vasp = site.kinds["vasp"]
    script = ArgyroQueueAdapter(dict(vasp.qadapter, scheduler="slurm", rocket_launch="argyro rlaunch")).get_script_str(
        str(tmp_path))
    assert all(e in script for e in expect) and "export ARGYRO_POTCAR_DIR=/apps/paw" in script
    assert site.vasp_cmd == "srun -n 8 vasp_std" and vasp.run_in == "container"
    # a bind that already holds the folder is enough
    profile["container_binds"] = ["/apps"]
    assert resolve(profile, "slurm").kinds["vasp"].qadapter["container_binds"] == ["/apps"]


@pytest.mark.parametrize("profile, message", [
    ({"jobs": {"analysis": {"gpus": 1}}}, "analysis jobs (analysis and decisions) never hold a GPU"),
    ({"gpus": 1}, "analysis jobs (analysis and decisions) never hold a GPU"),  # shared GPU reaches analysis too
    ({"jobs": {"dft": {}}}, "unknown job kind(s) ['dft']"),
    ({"jobs": {"vasp": {"gpu_count": 1}}}, "jobs.vasp: unknown key(s) ['gpu_count']"),
    ({"rocket_launch": "x"}, "written by argyro init"),
    ({"jobs": {"mlip-md": {"run_in": "container"}}}, "run_in container needs container_runtime"),
    ({"jobs": {"vasp": {"run_in": "elsewhere"}}}, "run_in 'elsewhere'"),
    ({"potcar_dir": "paw"}, "potcar_dir 'paw': expected an absolute path"),
])
def test_bad_profiles_are_refused_naming_the_key(profile, message):
    with pytest.raises(ConfigError) as e:
        resolve(profile, "slurm")
    assert message in str(e.value) and "\n" not in str(e.value)


def test_kind_gpus_decide_container_gpu_and_pbs_ranks_per_node():
    prof = {"container_runtime": "apptainer", "container_image": "/i.sif", "container_gpu": True,
            "jobs": {"lammps-md": {"gpus": 2}, "analysis": {"gpus": 0}, "vasp": {"nodes": 2, "ntasks": 6}}}
    site = resolve(prof, "pbs")
    assert site.kinds["lammps-md"].qadapter["container_gpu"] is True
    assert site.kinds["analysis"].qadapter["container_gpu"] is False
    assert site.vasp_cmd == "mpiexec -n 6 vasp_std"
    with pytest.raises(ConfigError, match="not a multiple of nodes"):
        resolve({"jobs": {"vasp": {"nodes": 2, "ntasks": 5}}}, "pbs")


# --- the real single-node Slurm -------------------------------------------------------------------
def _standin_bin(tmp_path: Path) -> Path:
    """`module` (logs its arguments), `apptainer exec [...] IMAGE CMD` (logs, marks the environment as
    inside IMAGE, runs CMD) and `vasp_std` (the VASP stand-in)."""
    b = tmp_path / "standin-bin"
    b.mkdir()
    (b / "module").write_text('#!/bin/sh\necho "$*" >> "$ARGYRO_TEST_LOG.modules"\n')
    (b / "apptainer").write_text("""#!/bin/bash
set -e
[ "$1" = exec ] || exit 64
shift
args=()
while [[ "$1" == --* ]]; do
    if [ "$1" = --bind ]; then args+=("$1" "$2"); shift 2; else args+=("$1"); shift; fi
done
image=$1; shift
echo "image=$image ${args[*]} cmd=$*" >> "$ARGYRO_TEST_LOG.apptainer"
export ARGYRO_IN_CONTAINER=$image
exec "$@"
""")
    (b / "vasp_std").write_text(f"#!/bin/sh\nexec {sys.executable} {FAKE_VASP} \"$@\"\n")
    for f in b.iterdir():
        f.chmod(0o755)
    return b


def _site(tmp_path, cli_env, profile: dict):
    """argyro init --site slurm with ``profile`` (jobs call the host venv's argyro), LaunchPad reset,
    and the environment for qlaunch (SLURM_CONF, stand-ins first on PATH: sbatch passes it to jobs)."""
    prof = tmp_path / "profile.yaml"
    prof.write_text(yaml.safe_dump(profile))
    env = dict(cli_env, PATH=f"{_standin_bin(tmp_path)}:{cli_env['PATH']}", ARGYRO_TEST_LOG=str(tmp_path / "log"))
    if os.environ.get("SLURM_CONF"):
        env["SLURM_CONF"] = os.environ["SLURM_CONF"]
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--profile", str(prof), "--dir", str(tmp_path / "lp"),
         "--argyro-cmd", str(BIN / "argyro")], env, cwd=tmp_path)
    from argyro_fw.launchpad import get_launchpad

    lp = get_launchpad(tmp_path / "lp" / "my_launchpad.yaml")
    lp.reset("", require_password=False)
    return lp, env


def _qlaunch(tmp_path, env, kind, cwd, *args):
    lpd = tmp_path / "lp"
    cwd.mkdir(parents=True, exist_ok=True)
    return run([str(BIN / "argyro"), "qlaunch", "-l", str(lpd / "my_launchpad.yaml"), "-w", str(lpd / fworker_file(kind)),
                "-q", str(lpd / qadapter_file(kind)), *args], env, cwd=cwd)


def _scontrol(job_id: str, env) -> dict:
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=env, capture_output=True, text=True, check=True)
    return dict(tok.split("=", 1) for tok in out.stdout.split() if "=" in tok)


#: sizes that fit the 2-CPU test node and tell the kinds apart (walltime minutes 31-35)
TEST_JOBS = {
    "vasp": {"ntasks": 2, "cpus_per_task": 1, "walltime": "00:31:00", "run_in": "host", "modules": ["site-mpi", "site-vasp"]},
    "mace-train": {"ntasks": 1, "cpus_per_task": 2, "walltime": "00:32:00", "run_in": "container"},
    "mlip-md": {"ntasks": 1, "cpus_per_task": 1, "walltime": "00:33:00", "run_in": "container"},
    "lammps-md": {"ntasks": 2, "cpus_per_task": 1, "walltime": "00:34:00", "run_in": "container"},
    "analysis": {"ntasks": 1, "cpus_per_task": 1, "walltime": "00:35:00", "run_in": "host"},
}


def _test_profile(tmp_path) -> dict:
    return {"partition": "debug", "container_runtime": "apptainer", "container_image": "/images/argyro-test.sif",
            "container_binds": [str(tmp_path)], "potcar_dir": str(_placeholder_paw(tmp_path / "paw", ["Al"])),
            "env": {"ARGYRO_TEST_SHARED": "yes"}, "jobs": TEST_JOBS}


def test_one_firework_of_each_kind_gets_its_kinds_job(slurm, tmp_path, cli_env):  # noqa: F811
    from fireworks import Firework, ScriptTask, Workflow

    lp, env = _site(tmp_path, cli_env, _test_profile(tmp_path))
    fws = [Firework(ScriptTask.from_str("env > job.env"), name=f"probe-{kind}", spec=stage_spec(STAGE_OF[kind]))
           for kind in JOB_KINDS]
    lp.add_wf(Workflow(fws))
    # non-reserved mode: each job pulls whatever READY firework its worker's category allows
    for kind in JOB_KINDS:
        _qlaunch(tmp_path, env, kind, tmp_path / "jobs" / kind, "singleshot")
    assert _wait(lambda: lp.fireworks.count_documents({"state": "COMPLETED"}) == len(JOB_KINDS), 240, 2.0), \
        [(d["name"], d["state"]) for d in lp.fireworks.find({})]
    containers = (tmp_path / "log.apptainer").read_text()
    for kind in JOB_KINDS:
        fw = lp.fireworks.find_one({"name": f"probe-{kind}"})
        launch_dir = Path(lp.launches.find_one({"launch_id": fw["launches"][-1]})["launch_dir"])
        assert launch_dir == tmp_path / "jobs" / kind, (kind, launch_dir)  # the job of its own kind ran it
        job_env = dict(ln.split("=", 1) for ln in (launch_dir / "job.env").read_text().splitlines() if "=" in ln)
        want = TEST_JOBS[kind]
        assert job_env["SLURM_JOB_NAME"] == f"argyro-{kind}" and job_env["SLURM_JOB_PARTITION"] == "debug"
        assert job_env["SLURM_NTASKS"] == str(want["ntasks"]) and job_env["SLURM_CPUS_PER_TASK"] == str(want["cpus_per_task"])
        assert job_env["ARGYRO_TEST_SHARED"] == "yes"
        job = _scontrol((launch_dir / ".argyro_job_id").read_text().strip(), env)
        assert job["TimeLimit"] == want["walltime"] and job["NumTasks"] == str(want["ntasks"])
        assert job["CPUs/Task"] == str(want["cpus_per_task"]) and "gres/gpu" not in job.get("TRES", "")
        in_container = job_env.get("ARGYRO_IN_CONTAINER")
        assert in_container == ("/images/argyro-test.sif" if want["run_in"] == "container" else None), kind
        assert (f"-w {tmp_path / 'lp' / fworker_file(kind)}" in containers) == (want["run_in"] == "container")
        if kind == "vasp":
            assert job_env["ARGYRO_POTCAR_DIR"] == str(tmp_path / "paw")
        else:
            assert "ARGYRO_POTCAR_DIR" not in job_env
    assert (tmp_path / "log.modules").read_text().split("\n").count("load site-vasp") == 1


@pytest.mark.parametrize("run_in", ["host", "container"])
def test_vasp_firework_runs_two_srun_ranks_with_the_sites_modules(slurm, tmp_path, cli_env, db_settings, run_in):  # noqa: F811
    from fireworks import Workflow
    from pymatgen.core import Structure

    from argyro_fw.flows.dft import vasp_firework

    profile = _test_profile(tmp_path)
    profile["container_binds"] = [str(tmp_path / "lp")]  # the PAW folder is bound by argyro init, not by hand
    profile["jobs"] = dict(TEST_JOBS, vasp=dict(TEST_JOBS["vasp"], run_in=run_in))
    lp, env = _site(tmp_path, cli_env, profile)
    worker = yaml.safe_load((tmp_path / "lp" / fworker_file("vasp")).read_text())
    assert worker["env"]["vasp_cmd"] == "srun -n 2 vasp_std" and worker["category"] == "vasp"
    # vasp_cmd defaults to the worker's >>vasp_cmd<<; POTCAR written from the site's potcar_dir
    fw = vasp_firework(Structure.from_file(str(AL / "POSCAR")), "static", name="al-static", potcar=True, polling_s=0.5)
    assert fw.spec["_category"] == "vasp"
    lp.add_wf(Workflow([fw]))
    _qlaunch(tmp_path, env, "vasp", tmp_path / "jobs", "-r", "singleshot")

    def finished():
        return lp.fireworks.find_one({"name": "al-static"})["state"] in ("COMPLETED", "FIZZLED")

    assert _wait(finished, 240, 2.0)
    launch = lp.launches.find_one({})
    d = Path(launch["launch_dir"])
    assert lp.fireworks.find_one({"name": "al-static"})["state"] == "COMPLETED", (
        launch.get("action"), list(d.glob("*")), [p.read_text()[-2000:] for p in d.glob("*.err")])
    # two ranks of one srun step, inside the sbatch job of the vasp kind
    ranks = sorted(d.glob("fake_vasp.rank*"))
    assert [p.name for p in ranks] == ["fake_vasp.rank0", "fake_vasp.rank1"]
    fields = [dict(kv.split("=", 1) for kv in p.read_text().split()) for p in ranks]
    job_id = (d / ".argyro_job_id").read_text().strip()
    assert all(f["size"] == "2" and f["job"] == job_id and f["step"].isdigit() for f in fields), fields
    assert "running on    2 total cores" in (d / "vasp.out").read_text()
    assert _scontrol(job_id, env)["NumTasks"] == "2"
    assert (tmp_path / "log.modules").read_text().split("\n")[:2] == ["load site-mpi", "load site-vasp"]
    # the POTCAR came from the site's potcar_dir; argyro's Python ran where the profile says
    assert "TITEL  = PAW_PBE Al" in (d / "POTCAR").read_text()
    log = tmp_path / "log.apptainer"
    if run_in == "host":
        assert not log.exists()
    else:
        line = log.read_text().strip()
        assert line.startswith("image=/images/argyro-test.sif --bind ") and f"{tmp_path / 'paw'}" in line
        assert "argyro rlaunch" in line and fworker_file("vasp") in line
    doc = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name].calculations.find_one({})
    assert doc["final_energy_eV"] == pytest.approx(-3.74204295)


# --- POTCARs checked at `argyro study --add` ------------------------------------------------------
def test_study_add_checks_every_potcar_before_adding(tmp_path, cli_env, db_settings):
    from argyro_fw.core.chemistry import ELEMENTS

    paw = _placeholder_paw(tmp_path / "paw", [e for e in ELEMENTS if e != "Cl"])
    prof = tmp_path / "profile.yaml"
    prof.write_text(yaml.safe_dump({"potcar_dir": str(paw), "jobs": {"vasp": {"ntasks": 4}}}))
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--profile", str(prof), "--dir", str(tmp_path / "lp")], cli_env)
    lpfile = str(tmp_path / "lp" / "my_launchpad.yaml")
    from argyro_fw.launchpad import get_launchpad

    get_launchpad(lpfile).reset("", require_password=False)
    paper = str(REPO / "configs" / "paper.yaml")
    env = {k: v for k, v in cli_env.items() if k != "ARGYRO_POTCAR_DIR"}
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]

    p = run([str(BIN / "argyro"), "study", paper, "--add", "-l", lpfile], env, check=False)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert f"POTCAR for Cl: {paw / 'Cl' / 'POTCAR'} does not exist" in p.stderr and "my_qadapter.vasp.yaml" in p.stderr
    assert db.fireworks.count_documents({}) == 0

    # a POTCAR whose TITEL names another element is refused too
    (paw / "Cl").mkdir()
    (paw / "Cl" / "POTCAR").write_text("   TITEL  = PAW_PBE S 06Sep2000\n")
    p = run([str(BIN / "argyro"), "study", paper, "--add", "-l", lpfile], env, check=False)
    assert p.returncode == 2 and "does not name Cl" in p.stderr and db.fireworks.count_documents({}) == 0

    _placeholder_paw(paw, ["Cl"])
    p = run([str(BIN / "argyro"), "study", paper, "--add", "-l", lpfile], env)
    assert "added" in p.stdout and db.fireworks.count_documents({"spec._category": "vasp"}) > 0

    # without site files: $ARGYRO_POTCAR_DIR here; neither set and dft.potcar true: refused
    run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp-local")], env)
    local = str(tmp_path / "lp-local" / "my_launchpad.yaml")
    p = run([str(BIN / "argyro"), "study", paper, "--add", "-l", local], env, check=False)
    assert p.returncode == 2 and "no POTCAR folder is configured" in p.stderr and "ARGYRO_POTCAR_DIR" in p.stderr
    p = run([str(BIN / "argyro"), "study", paper, "--add", "-l", local],
            dict(env, ARGYRO_POTCAR_DIR=str(tmp_path / "nowhere")), check=False)
    assert p.returncode == 2 and "does not exist" in p.stderr and "$ARGYRO_POTCAR_DIR" in p.stderr


def test_one_potcar_variable_everywhere():
    """ARGYRO_POTCAR_DIR is the only name: no other spelling in the package, configs, sites or docs."""
    hits = []
    for p in list((REPO / "argyro_fw").rglob("*.py")) + list(REPO.glob("configs/*.yaml")) + list(REPO.glob("sites/*.yaml")) \
            + [REPO / "README.md", REPO / "containers" / "README.md"]:
        for m in re.finditer(r"ARGYRO_\w*(?:PAW|POTCAR)\w*", p.read_text()):
            if m.group(0) != "ARGYRO_POTCAR_DIR":
                hits.append(f"{p.relative_to(REPO)}: {m.group(0)}")
    assert not hits, hits

"""`argyro rehearse`: configs/paper.yaml's production branch at toy sizes, stand-ins only for vasp_std and lmp.

The fast tests check the overlay (it keeps every production choice and only shrinks sizes), the set of
FireTask classes a rehearsal must show and the rehearsal's site profile. .ci/run rehearses configs/paper.yaml
through its Slurm with every kind but vasp in the cpu image and leaves the output in ARGYRO_REHEARSAL_LOG, which
one test checks; without it (make test on its own) the slow test runs the whole rehearsal on this machine
(``--site local --container none``). Both check that every firework COMPLETED and every production FireTask
class ran.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from argyro_fw import rehearse
from argyro_fw.errors import ConfigError
from argyro_fw.study.config import load

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "configs" / "paper.yaml"


def test_overlay_keeps_every_production_choice_of_paper_yaml(tmp_path):
    paper = load(PAPER)
    cfg, written = rehearse.rehearsal_config(PAPER, tmp_path)
    assert written == tmp_path / "rehearsal-config.yaml" and load(written).to_dict() == cfg.to_dict()
    # the production branch: VASP energies and labels, ML-IAP MD with the converted model, E0s from VASP
    assert cfg.engine == "vasp"
    assert cfg.active_learning.labeller == "engine" and cfg.active_learning.explorer == "foundation"
    assert cfg.mlmd.engine == "mliap" and cfg.mlmd.lmp_binary == "lmp"
    assert cfg.final_model.convert_mliap is True and cfg.final_model.e0s == "dft"
    assert cfg.dft.vasp_cmd == ">>vasp_cmd<<" and cfg.dft.potcar is True
    assert cfg.aimd.enabled and cfg.aimd.products == paper.aimd.products
    for f in rehearse.PRODUCTION_FIELDS:  # unchanged, field by field
        a, b = paper.to_dict(), cfg.to_dict()
        for part in f.split("."):
            a, b = a[part], b[part]
        assert a == b, f
    # sizes shrunk: one plane, the top termination, one MD temperature, two bulk temperatures, a toy model
    assert cfg.surfaces.planes == [[0, 1, 0]] and cfg.surfaces.top_n == 1
    assert cfg.mlmd.temperatures == [400] and len(cfg.bulk_mlmd.temperatures) == 2
    assert cfg.active_learning.foundation_model == "toy" and cfg.final_model.pt_file == "toy"
    assert cfg.active_learning.max_iterations == 2 and cfg.workdir == str(tmp_path / "study")


def test_overlay_may_not_name_a_production_field():
    for field in ("engine", "mlmd.engine", "final_model.convert_mliap", "active_learning.labeller", "dft.vasp_cmd"):
        bad = {}
        node = bad
        *path, last = field.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = "x"
        with pytest.raises(ConfigError, match="production choices"):
            rehearse.merged(yaml.safe_load(PAPER.read_text()), bad)


def _explicit_tasks(module_file: Path) -> set[str]:
    tree = ast.parse(module_file.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.ClassDef)
            and any(isinstance(d, ast.Name) and d.id == "explicit_serialize" for d in n.decorator_list)}


def test_production_task_set_is_every_flow_task_the_study_can_add():
    expected = rehearse.production_tasks()
    # every explicit_serialize FireTask of argyro_fw/flows/*.py, less the documented exceptions
    found = {f"argyro_fw.flows.{f.stem}.{c}" for f in (REPO / "argyro_fw" / "flows").glob("*.py")
             for c in _explicit_tasks(f)}
    assert set(rehearse.NOT_IN_STUDY) <= found, "an exception names a task that does not exist"
    assert expected == found - set(rehearse.NOT_IN_STUDY)
    # the engines add only flows' tasks (the VASP engine builds flows.dft's three), never their own
    for f in (REPO / "argyro_fw" / "engines").glob("*.py"):
        assert not _explicit_tasks(f), f
    # what the issue lists: VASP write/run/parse, AIMD, labels, committee training and MD/select, final model +
    # ML-IAP conversion, LAMMPS ML-IAP MD, analysis, diffusion, Arrhenius, summary
    short = {n.rsplit(".", 1)[1] for n in expected}
    assert {"WriteVaspInputs", "RunVaspCustodian", "ParseVaspToDb", "BulkValidationTask", "ExploreLabelTask",
            "CollectLabelsTask", "LabelSelectedTask", "TrainCommitteeMemberTask", "CommitteeMDSelectTask",
            "StudyFinalModelTask", "RelaxBFGSTask", "RunLammpsMDTask", "AnalyzeTrajectoryTask", "BulkDiffusionTask",
            "ArrheniusTask", "StudySummaryTask", "ChooseBulkTask", "RankSurfacesTask", "InterfaceEnergyTask",
            "BulkModelTask"} <= short
    # the demo's stand-in tasks (CHGNet engine) are never part of it
    assert not any(".demo." in n for n in expected)


def test_local_site_with_a_container_or_profile_is_refused(tmp_path):
    from argyro_fw.errors import ArgyroError

    with pytest.raises(ArgyroError, match="need a scheduler site"):
        rehearse.run_rehearsal(PAPER, tmp_path, site="local", container="docker", image="argyro:cpu")
    with pytest.raises(ArgyroError, match="needs --image"):
        rehearse.run_rehearsal(PAPER, tmp_path, site="slurm", container="docker")
    assert not (tmp_path / "rehearsal-config.yaml").exists()  # refused before anything is written


def test_rehearsal_profile_shrinks_the_site_jobs_and_keeps_its_choices(tmp_path):
    """A site profile (the shipped GPU one) becomes the rehearsal's: every job 1 core, no GPU, no GPU check; the
    site's account, partition, modules and MPI launcher kept; VASP the stand-in under the site's launcher on the
    host; every other kind in the image with DIR bound and DIR/bin first on the image's PATH; the placeholder PAW
    library instead of the site's. Rendered by argyro init's own code (resolve + the queue adapter)."""
    from argyro_fw.flows.stages import JOB_KINDS
    from argyro_fw.queue.adapter import ArgyroQueueAdapter
    from argyro_fw.queue.profile import resolve

    site = yaml.safe_load((REPO / "sites" / "slurm-gpu-apptainer.yaml").read_text())
    prof = rehearse.rehearsal_profile(tmp_path, "slurm", "docker", "argyro:cpu", site, image_path="/opt/venv/bin:/bin")
    plan = resolve(prof, "slurm", "/venv/bin/argyro")
    assert plan.vasp_cmd == f"srun -n 1 {tmp_path / 'bin' / 'vasp_std'}"
    assert plan.potcar_dir == str(tmp_path / "potcars") != site["potcar_dir"]
    for kind in JOB_KINDS:
        job = plan.kinds[kind]
        qa = job.qadapter
        assert (qa["nodes"], qa["ntasks"], qa["cpus_per_task"], qa["gpus"]) == (1, 1, 1, 0), kind
        assert qa["account"] == "my_project" and "pre_rocket" not in qa and qa["env"]["OMP_NUM_THREADS"] == "1"
        assert qa["partition"] == site["jobs"][kind]["partition"] and qa["modules"] == site["jobs"][kind]["modules"]
        script = ArgyroQueueAdapter(dict(qa, scheduler="slurm", rocket_launch=f"{job.argyro} rlaunch singleshot")
                                    ).get_script_str(str(tmp_path / "runs"))
        rocket = script.splitlines()[-1]
        if kind == "vasp":
            assert job.run_in == "host" and rocket.startswith("/venv/bin/argyro rlaunch"), rocket
        else:
            assert job.run_in == "container" and qa["container_gpu"] is False
            assert f"export PATH={tmp_path / 'bin'}:/opt/venv/bin:/bin\n" in script
            assert rocket.startswith("docker run --rm --network host --entrypoint '' --user ")
            assert f" -v {tmp_path}:{tmp_path} " in rocket and " -e PATH " in rocket and "--gpus" not in rocket
            assert rocket.endswith(" argyro:cpu argyro rlaunch singleshot"), rocket
    # no container: every kind on the host, lmp found through DIR/bin first on PATH
    plain = resolve(rehearse.rehearsal_profile(tmp_path, "slurm", "none", None, site), "slurm")
    assert all(j.run_in == "host" for j in plain.kinds.values())
    assert plain.kinds["lammps-md"].qadapter["env"]["PATH"].startswith(f"{tmp_path / 'bin'}:")
    # apptainer keeps the image's PATH and prepends DIR/bin
    app = rehearse.rehearsal_profile(tmp_path, "slurm", "apptainer", "/x.sif", site)
    assert app["jobs"]["lammps-md"]["env"]["APPTAINERENV_PREPEND_PATH"] == str(tmp_path / "bin")
    # the stand-in vasp_std needs CHGNet, which the image does not ship
    site["jobs"]["vasp"]["run_in"] = "container"
    with pytest.raises(ConfigError, match="jobs.vasp.run_in host"):
        rehearse.rehearsal_profile(tmp_path, "slurm", "docker", "argyro:cpu", site)


def _check_rehearsal_output(out: str, queue: bool) -> None:
    m = re.search(r"all (\d+) fireworks COMPLETED", out)
    assert m and int(m.group(1)) > 50, out[-3000:]
    listed = dict(re.findall(r"^\s+(argyro_fw\.[\w.]+)\s+(\d+)", out, flags=re.MULTILINE))
    assert rehearse.production_tasks() <= set(listed), sorted(rehearse.production_tasks() - set(listed))
    assert all(int(listed[n]) >= 1 for n in rehearse.production_tasks())
    assert not any("chgnet" in n.lower() for n in listed), listed  # the VASP engine, not the demo's CHGNet
    assert "MISSING" not in out and "rehearsal PASSED" in out
    if queue:  # every kind had jobs; every kind but vasp ran in the image
        counts = dict(re.findall(r"([\w-]+) (\d+)", out.split("jobs submitted per kind", 1)[1].splitlines()[0]))
        assert set(counts) == {"vasp", "mace-train", "mlip-md", "lammps-md", "analysis"}, counts
        assert all(int(v) >= 1 for v in counts.values()) and sum(int(v) for v in counts.values()) == int(m.group(1))
        runs = dict(re.findall(r"^\s+([\w-]+)\s+job runs: (.+)$", out, flags=re.MULTILINE))
        assert "docker" not in runs["vasp"] and " rlaunch " in runs["vasp"]
        for kind in ("mace-train", "mlip-md", "lammps-md", "analysis"):
            assert runs[kind].startswith("docker run ") and " argyro:cpu argyro rlaunch " in runs[kind], runs[kind]
        took = float(re.search(r"rehearsal PASSED in (\d+) s", out).group(1))
        assert took <= 900, f"the rehearsal took {took:.0f} s, more than issue 16's 15 minutes"


def test_rehearsal_of_paper_yaml_through_slurm_in_the_image():
    """.ci/run's `argyro rehearse configs/paper.yaml --site slurm --container docker --image argyro:cpu` (every firework
    a Slurm job, every kind but vasp in the cpu image): its output says every firework COMPLETED, one job each, every
    production FireTask class ran, in at most 15 minutes. Without .ci/run's log (ARGYRO_REHEARSAL_LOG) the local
    rehearsal below covers the same study."""
    log = os.environ.get("ARGYRO_REHEARSAL_LOG")
    if not log:
        pytest.skip("ARGYRO_REHEARSAL_LOG unset: .ci/run rehearses through Slurm and the image; "
                    "test_rehearsal_of_paper_yaml_completes_every_firework runs the local rehearsal instead")
    out = Path(log).read_text()
    _check_rehearsal_output(out, queue=True)
    print(out[out.find("[5/5]"):])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_rehearsal_of_paper_yaml_completes_every_firework(tmp_path):
    """`argyro rehearse --site local --container none` end to end: rc 0, every firework COMPLETED, and the printed
    FireTask list covers every production task (no chgnet engine task among them). Under .ci/run, which has just
    rehearsed the same study through Slurm and the image (ARGYRO_REHEARSAL_LOG), the local route is not run again."""
    if os.environ.get("ARGYRO_REHEARSAL_LOG"):
        pytest.skip("ARGYRO_REHEARSAL_LOG: .ci/run rehearsed this study through Slurm and the image "
                    "(test_rehearsal_of_paper_yaml_through_slurm_in_the_image checks it)")
    t = time.time()
    proc = subprocess.run([str(Path(sys.executable).parent / "argyro"), "rehearse", str(PAPER), "--dir",
                           str(tmp_path / "r"), "--site", "local", "--container", "none"],
                          check=False, capture_output=True, text=True, timeout=1450)
    took = time.time() - t
    out = proc.stdout + proc.stderr
    try:
        assert proc.returncode == 0, out[-6000:]
        _check_rehearsal_output(out, queue=False)
        print(out[out.find("[5/5]"):])  # the tables and the FireTask list, for the CI log
        print(f"rehearsal took {took:.0f} s")
    finally:
        subprocess.run([str(Path(sys.executable).parent / "argyro"), "db", "stop", "--path", str(tmp_path / "r" / "db")],
                       check=False, capture_output=True, timeout=120)

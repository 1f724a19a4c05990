"""`argyro rehearse`: configs/paper.yaml's production branch at toy sizes, stand-ins only for vasp_std and lmp.

The fast tests check the overlay (it keeps every production choice and only shrinks sizes) and the set of
FireTask classes a rehearsal must show; the slow test runs the whole rehearsal on this machine
(``--site local --container none``) and checks that every firework COMPLETED and every production FireTask
class ran.
"""

from __future__ import annotations

import ast
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


def test_unimplemented_site_is_refused_with_a_message(tmp_path):
    from argyro_fw.errors import ArgyroError

    with pytest.raises(ArgyroError, match="not implemented yet"):
        rehearse.run_rehearsal(PAPER, tmp_path, site="slurm", container="docker")


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_rehearsal_of_paper_yaml_completes_every_firework(tmp_path):
    """`argyro rehearse --site local --container none` end to end: rc 0, every firework COMPLETED, and the printed
    FireTask list covers every production task (no chgnet engine task among them)."""
    t = time.time()
    proc = subprocess.run([str(Path(sys.executable).parent / "argyro"), "rehearse", str(PAPER), "--dir",
                           str(tmp_path / "r"), "--site", "local", "--container", "none"],
                          check=False, capture_output=True, text=True, timeout=1450)
    took = time.time() - t
    out = proc.stdout + proc.stderr
    try:
        assert proc.returncode == 0, out[-6000:]
        m = re.search(r"all (\d+) fireworks COMPLETED", out)
        assert m and int(m.group(1)) > 50, out[-3000:]
        listed = dict(re.findall(r"^\s+(argyro_fw\.[\w.]+)\s+(\d+)", out, flags=re.MULTILINE))
        assert rehearse.production_tasks() <= set(listed), sorted(rehearse.production_tasks() - set(listed))
        assert all(int(listed[n]) >= 1 for n in rehearse.production_tasks())
        assert not any("chgnet" in n.lower() for n in listed), listed  # the VASP engine, not the demo's CHGNet
        assert "MISSING" not in out and "rehearsal PASSED" in out
        print(out[out.find("[5/5]"):])  # the tables and the FireTask list, for the CI log
        print(f"rehearsal took {took:.0f} s")
    finally:
        subprocess.run([str(Path(sys.executable).parent / "argyro"), "db", "stop", "--path", str(tmp_path / "r" / "db")],
                       check=False, capture_output=True, timeout=120)

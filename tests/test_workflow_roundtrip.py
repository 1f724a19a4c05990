"""Issue 2, acceptance 1 and 2: FireWorks on the embedded server through the plain CLI tools."""

from __future__ import annotations

import subprocess
from collections import Counter

import pymongo
import yaml

from conftest import BIN, run


def _script_fw(fw_id: int, name: str, side_file) -> dict:
    return {
        "fw_id": fw_id,
        "name": name,
        "spec": {"_tasks": [{"_fw_name": "ScriptTask", "script": f"echo {name} >> {side_file}"}]},
    }


def test_lpad_add_rlaunch_roundtrip(tmp_path, cli_env, launchpad_dir, db_settings):
    """A -> (B, C) added with `lpad add`, run with `rlaunch rapidfire`; launches queryable with pymongo."""
    side = tmp_path / "side_effects.txt"
    wf = {
        "fws": [_script_fw(1, "A", side), _script_fw(2, "B", side), _script_fw(3, "C", side)],
        "links": {1: [2, 3]},
        "metadata": {"test": "roundtrip"},
        "name": "abc",
    }
    wf_file = tmp_path / "wf.yaml"
    wf_file.write_text(yaml.safe_dump(wf))
    lp = str(launchpad_dir / "my_launchpad.yaml")
    fw = str(launchpad_dir / "my_fworker.yaml")
    run([str(BIN / "lpad"), "-l", lp, "add", str(wf_file)], cli_env)
    run([str(BIN / "rlaunch"), "-l", lp, "-w", fw, "rapidfire"], cli_env, cwd=tmp_path)

    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    states = {d["name"]: d["state"] for d in db.fireworks.find({}, {"name": 1, "state": 1})}
    assert states == {"A": "COMPLETED", "B": "COMPLETED", "C": "COMPLETED"}
    launches = list(db.launches.find({}))
    assert len(launches) == 3
    assert all(l["state"] == "COMPLETED" and l["fworker"]["name"] == "argyro-local" for l in launches)
    # A ran before B and C (the link was honoured)
    lines = side.read_text().split()
    assert lines[0] == "A" and sorted(lines) == ["A", "B", "C"]
    by_id = {d["fw_id"]: d for d in db.fireworks.find({})}
    a_end = max(l["time_end"] for l in launches if l["fw_id"] == by_id[1]["fw_id"])
    assert all(l["time_start"] >= a_end for l in launches if l["fw_id"] != 1)


def test_four_concurrent_rlaunch_run_each_firework_once(tmp_path, cli_env, launchpad_dir, db_settings):
    """200 one-task fireworks, 4 concurrent `rlaunch rapidfire`: every firework runs exactly once."""
    from fireworks import Firework, ScriptTask, Workflow

    from argyro_fw.launchpad import get_launchpad

    side = tmp_path / "side"
    side.mkdir()
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    fws = [Firework(ScriptTask.from_str(f"echo {i} >> {side}/ran_{i}; echo {i} >> {side}/all"), name=f"fw{i}") for i in range(200)]
    lp.add_wf(Workflow(fws, name="many"))

    procs = []
    for k in range(4):
        wdir = tmp_path / f"worker{k}"
        wdir.mkdir()
        procs.append(
            subprocess.Popen(
                [str(BIN / "rlaunch"), "-l", str(launchpad_dir / "my_launchpad.yaml"), "-w",
                 str(launchpad_dir / "my_fworker.yaml"), "rapidfire", "--sleep", "0"],
                env=cli_env, cwd=wdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]

    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    assert Counter(d["state"] for d in db.fireworks.find({})) == {"COMPLETED": 200}
    launches = list(db.launches.find({}))
    assert len(launches) == 200
    assert len({l["fw_id"] for l in launches}) == 200
    # side effects: one file per firework, each with one line; 200 lines in the shared file
    ran = sorted(side.glob("ran_*"))
    assert len(ran) == 200
    assert all(len(f.read_text().split()) == 1 for f in ran)
    assert Counter((side / "all").read_text().split()) == Counter(str(i) for i in range(200))
    # the work really was shared (more than one worker launched something)
    assert len({l["launch_dir"].split("/worker")[1].split("/")[0] for l in launches}) > 1

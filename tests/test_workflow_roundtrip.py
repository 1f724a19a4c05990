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
    assert len({l["launch_id"] for l in launches}) == 200
    # side effects: one file per firework, each with one line; 200 lines in the shared file
    ran = sorted(side.glob("ran_*"))
    assert len(ran) == 200
    assert all(len(f.read_text().split()) == 1 for f in ran)
    assert Counter((side / "all").read_text().split()) == Counter(str(i) for i in range(200))
    # the work really was shared (more than one worker launched something)
    assert len({l["launch_dir"].split("/worker")[1].split("/")[0] for l in launches}) > 1


_COUNTER_WORKER = """
import sys
from fireworks import Firework, LaunchPad, ScriptTask, Workflow
lp = LaunchPad(host=sys.argv[1], port=int(sys.argv[2]), name=sys.argv[3])
ids = [lp.get_new_launch_id() for _ in range(150)]
for k in range(10):  # add_wf takes a block of fw_ids with one $inc
    lp.add_wf(Workflow([Firework(ScriptTask.from_str("true")) for _ in range(3)]))
print("IDS", " ".join(map(str, ids)))
"""


def test_id_counters_are_race_free_in_plain_fireworks_processes(tmp_path, db_settings):
    """6 plain Python processes (no argyro import; FireWorks only) draw launch ids and add workflows at once.

    The embedded server returns a stale pre-image from a concurrent $inc; argyro's .pth hook (written by
    `make install`) gives FireWorks race-free counters. Without it this drew ~30 % duplicate launch ids.
    """
    from fireworks import LaunchPad

    LaunchPad(host=db_settings.host, port=db_settings.port, name=db_settings.name).reset("", require_password=False)
    script = tmp_path / "worker.py"
    script.write_text(_COUNTER_WORKER)
    procs = [
        subprocess.Popen([str(BIN / "python"), str(script), db_settings.host, str(db_settings.port), db_settings.name],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        line = [l for l in out.splitlines() if l.startswith("IDS ")][-1]
        ids += [int(x) for x in line.split()[1:]]
    assert len(ids) == 900
    assert len(set(ids)) == 900
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    fw_ids = [d["fw_id"] for d in db.fireworks.find({}, {"fw_id": 1})]
    assert len(fw_ids) == 180
    assert len(set(fw_ids)) == 180

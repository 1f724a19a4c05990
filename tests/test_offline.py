"""Issue 18, item 2b: compute nodes with no route to the database (FireWorks' offline mode).

End to end (the ``offline_demo`` fixture, tests/offline_run.py): the demo study, every firework reserved by FireWorks'
reserved-mode queue launcher with the files of `argyro init --site slurm --compute-nodes offline`, its reads staged
by argyro's queue adapter, run by `rlaunch singleshot --offline` in a network namespace of its own, its results brought
back by `argyro collect`. tests/test_chaos.py compares its tables with an online run's.

Below it: the offline store on its own (staged reads, the journal, a replay repeated), `argyro init` and
`argyro collect` on the command line, and `argyro recover` and `argyro reconcile` leaving an offline launch that ended
(its results not collected yet) alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pymongo
import pytest
import yaml
from bson import ObjectId
from conftest import BIN, cli_environment, drop_db, fresh_db, run
from pymatgen.core import Lattice, Structure
from test_study import check_complete_demo

from argyro_fw import store
from argyro_fw.settings import embedded_settings
from argyro_fw.store.offline import STAGED, NotStaged, OfflineStore, Reads, journal_path, offline_launch


def _db(d: Path):
    return pymongo.MongoClient(**embedded_settings(d / "db", name="argyro_demo").client_kwargs()).argyro_demo


def _snapshot(db) -> dict:
    """Every results document, keyed by collection and _id (the store's collections only)."""
    return {c: {str(d["_id"]): d for d in db[c].find({})} for c in store.SCHEMAS}


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_demo_study_runs_offline_and_is_collected(offline_demo):
    assert offline_demo.wait() == 0, offline_demo.output()[-4000:]
    out = offline_demo.output()
    db = _db(offline_demo.d)
    check_complete_demo(db, out)
    # every firework ran once, as an offline launch that `argyro collect` completed
    launches = list(db.launches.find({}, {"launch_id": 1, "fw_id": 1, "launch_dir": 1, "state": 1}))
    assert len(launches) == db.fireworks.count_documents({}) == 68
    offline = {r["launch_id"]: r for r in db.offline_runs.find({})}
    assert set(offline) == {la["launch_id"] for la in launches}
    assert all(r["completed"] and not r["deprecated"] for r in offline.values())
    calc_dirs = set()
    for la in launches:
        d = Path(la["launch_dir"])
        script = (d / "FW_submit.script").read_text()
        assert "singleshot --offline" in script and "export ARGYRO_OFFLINE=1" in script
        # no network in the job: a network namespace of its own (or, where none can be made, a refused port)
        assert "unshare --net " in script or "refused." in script
        assert "password" not in script.lower()
        head = store.loads((d / STAGED).read_text())["header"]
        assert head["launch_id"] == la["launch_id"] and head["fw_id"] == la["fw_id"]
        journal = journal_path(d, la["launch_id"])
        for ln in journal.read_text().splitlines()[1:] if journal.exists() else []:
            op = store.loads(ln)
            if op["collection"] == "calculations":
                calc_dirs.add(op["doc"]["directory"])
        # nothing in the job tried the database
        for log in d.glob("*.out"):
            text = log.read_text()
            assert not any(w in text for w in ("ServerSelectionTimeout", "AutoReconnect", "not reachable")), log
    # every calculation document came from an offline job's journal
    assert {c["directory"] for c in db.calculations.find({}, {"directory": 1})} == calc_dirs
    # `argyro collect` of everything again (a collect cut and rerun) gives the same records
    before = _snapshot(db)
    for la in sorted(launches, key=lambda la: la["launch_id"]):  # a child's launch is reserved after its parents'
        store.replay(db, la["launch_dir"], la["launch_id"])
    assert _snapshot(db) == before


# ---------------------------------------------------------------------------------------------- the offline store

def _staged_dir(tmp_path: Path, data: dict, launch_id: int = 7) -> Path:
    d = tmp_path / "launch"
    d.mkdir()
    (d / "FW_offline.json").write_text(json.dumps({"launch_id": launch_id, "started_on": "2026-01-01T00:00:00"}))
    base = {"structures": {}, "calculations": [], "labels": {}, "label_hashes": None, "counts": []}
    (d / STAGED).write_text(store.dumps(base | data | {"header": {"launch_id": launch_id, "fw_id": 3}}))
    return d


def test_offline_store_answers_staged_reads_and_names_the_rest(tmp_path, monkeypatch):
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    cid = ObjectId()
    d = _staged_dir(tmp_path, {
        "structures": {"s/bulk/chosen": {"key": "s/bulk/chosen", "structure": li.as_dict()}, "s/gone": None},
        "calculations": [{"calc_id": str(cid), "label": "bulk/x", "engine": "e", "fields": ["final_structure"],
                          "doc": {"_id": cid, "final_structure": li.as_dict()}}],
        "labels": {"h1": {"hash": "h1", "energy": -1.5}}, "label_hashes": ["h1", "h2"],
        "counts": [{"collection": "structures", "study": "s", "n": 5}]})
    monkeypatch.chdir(d)
    monkeypatch.delenv("ARGYRO_OFFLINE", raising=False)
    assert offline_launch() is None  # files alone never make a run offline (a rerun may reuse the folder)
    monkeypatch.setenv("ARGYRO_OFFLINE", "1")  # the offline job script's
    assert offline_launch() == d
    db = store.database({"_fw_env": {"argyro_db": {"host": "192.0.2.1", "port": 9, "name": "x"}}})
    assert isinstance(db, OfflineStore)  # no client: 192.0.2.1 is never tried
    assert store.get_structure(db, "s", "bulk/chosen") == li
    with pytest.raises(LookupError, match="no structure s/gone"):  # staged as absent: the online error
        store.get_structure(db, "s", "gone")
    with pytest.raises(NotStaged, match="structure s/other was not staged"):
        store.get_structure(db, "s", "other")
    doc = store.find_calculation(db, calc_id=str(cid), label="bulk/x", engine="e", projection={"final_structure": 1})
    assert Structure.from_dict(doc["final_structure"]) == li
    with pytest.raises(NotStaged):  # the whole document was not staged, only its final structure
        store.find_calculation(db, calc_id=str(cid), label="bulk/x", engine="e")
    assert store.get_label(db, "h1")["energy"] == -1.5
    assert store.get_label(db, "h3") is None  # not labelled anywhere
    with pytest.raises(NotStaged):
        store.get_label(db, "h2")  # labelled, not staged in full
    assert store.LabelCache(db).get("h2") is None  # ... which the label cache takes as a miss
    assert store.labelled_hashes(db, ["h1", "h2", "h3"]) == {"h1", "h2"}
    assert store.count(db, "structures", {"study": "s"}) == 5
    # writes: journalled, and seen by the launch's own later reads
    store.put_structures(db, "s", "bulk", [("new", li, {"a": 1})])
    assert store.get_structure(db, "s", "new") == li
    new_id = store.put_calculation(db, {"engine": "e", "label": "bulk/y", "kind": "relax", "final_energy_eV": -3.0,
                                        "n_atoms": 2, "formula": "Li2", "ionic_steps": [], "final_structure": li.as_dict()})
    assert store.find_calculation(db, calc_id=str(new_id))["final_energy_eV"] == -3.0
    store.put_label(db, "h3", -2.0, np.zeros((2, 3)), np.zeros((3, 3)), "e", 2)
    assert store.get_label(db, "h3")["energy"] == -2.0 and store.labelled_hashes(db, ["h3"]) == {"h3"}
    store.update_study(db, "s", {"bulk.chosen": "new"})
    lines = journal_path(d, 7).read_text().splitlines()
    assert store.loads(lines[0])["header"]["launch_id"] == 7
    assert [store.loads(ln)["op"] for ln in lines[1:]] == ["replace_one", "replace_one", "update_one", "update_one"]
    # a line cut by a kill is dropped; a journal of another launch is refused
    journal_path(d, 7).write_text("\n".join(lines) + "\n" + lines[-1][:20])
    assert len(store.read_journal(d, 7)) == 4
    assert store.read_journal(d, 8) == []  # each launch has its own journal: launch 8 wrote nothing here
    journal_path(d, 8).write_text(lines[0] + "\n")
    with pytest.raises(store.JournalError, match="launch 7, not of launch 8"):
        store.read_journal(d, 8)
    monkeypatch.setenv("ARGYRO_OFFLINE", "0")
    assert offline_launch() is None
    monkeypatch.setenv("ARGYRO_OFFLINE", "1")
    (d / STAGED).unlink()
    with pytest.raises(Exception, match="argyro_staged.json does not exist"):
        offline_launch()


def test_replay_writes_the_launchs_records_and_a_second_replay_changes_nothing(tmp_path, monkeypatch, db_server):
    settings = fresh_db(db_server)
    try:
        db = store.database(settings=settings)
        li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        store.put_structures(db, "s", "bulk", [("new", li.copy(), {"v": "online"})])  # an earlier online record
        old_id = db.structures.find_one({"key": "s/new"})["_id"]
        d = _staged_dir(tmp_path, {"label_hashes": []})
        monkeypatch.chdir(d)
        off = OfflineStore(d)
        store.put_structures(off, "s", "bulk", [("new", li, {"v": "offline"})])
        cid = store.put_calculation(off, {"engine": "e", "label": "bulk/y", "kind": "relax", "final_energy_eV": -3.0,
                                          "n_atoms": 2, "formula": "Li2", "ionic_steps": [],
                                          "final_structure": li.as_dict()})
        store.put_label(off, "h3", -2.0, np.zeros((2, 3)), np.zeros((3, 3)), "e", 2)
        store.put_surface_energies(off, "s", [{"key": "surface/a", "gamma_surf_eV_nm2": 1.0, "energy_eV": -1.0}])
        store.update_study(off, "s", {"bulk.chosen": "new"})
        assert store.replay(db, d, 7) == 6
        snap = _snapshot(db)
        # the calculation keeps the id the launch handed on; the structure is the offline one, once
        assert store.find_calculation(db, calc_id=str(cid))["final_energy_eV"] == -3.0
        docs = list(db.structures.find({"key": "s/new"}))
        assert len(docs) == 1 and docs[0]["metadata"] == {"v": "offline"} and docs[0]["_id"] != old_id
        assert db.labels.count_documents({"hash": "h3"}) == 1
        assert db.studies.find_one({"name": "s"})["bulk"]["chosen"] == "new"
        assert store.replay(db, d, 7) == 6 and _snapshot(db) == snap
    finally:
        drop_db(settings)


# ------------------------------------------------------------------------------------------------ the commands

def test_init_writes_the_offline_shape_and_collect_and_recover_leave_an_ended_launch(tmp_path, db_settings):
    from fireworks import Firework, FWAction, FWorker, LaunchPad, ScriptTask

    from argyro_fw.queue.reconcile import reconcile
    from argyro_fw.recovery import lost_launches

    env = cli_environment(tmp_path, db_settings)
    lp_dir = tmp_path / "lp"
    out = run([str(BIN / "argyro"), "init", "--site", "slurm", "--compute-nodes", "offline", "--dir", str(lp_dir)], env)
    assert "argyro collect" in out.stdout and "WARNING" not in out.stderr  # a loopback database is fine offline
    qa = yaml.safe_load((lp_dir / "my_qadapter.vasp.yaml").read_text())
    assert qa["rocket_launch"].endswith("singleshot --offline") and " -l " not in qa["rocket_launch"]
    assert qa["results_db"]["port"] == db_settings.port and "password" not in qa["results_db"]
    bad = run([str(BIN / "argyro"), "init", "--site", "local", "--compute-nodes", "offline", "--dir", str(lp_dir)], env,
              check=False)
    assert bad.returncode != 0 and "needs a batch site" in bad.stderr

    # an offline launch that ended, not collected yet, with pings long ago: `argyro recover` leaves it alone
    lp = LaunchPad(host=db_settings.host, port=db_settings.port, name=db_settings.name)
    lp.reset("", require_password=False)
    lp.add_wf(Firework(ScriptTask.from_str("true"), name="x"))
    ldir = tmp_path / "launch"
    ldir.mkdir()
    fw, lid = lp.reserve_fw(FWorker(), str(ldir))
    lp.add_offline_run(lid, fw.fw_id, fw.name)
    lp.launches.update_one({"launch_id": lid}, {"$set": {"state": "RUNNING", "state_history": [
        {"state": "RUNNING", "created_on": "2026-01-01T00:00:00", "updated_on": "2026-01-01T00:00:00"}]}})
    (ldir / "FW_ping.json").write_text(json.dumps({"ping_time": "2026-01-01T00:00:00+00:00"}))
    (ldir / "FW_offline.json").write_text(json.dumps({"launch_id": lid, "started_on": "2026-01-01T00:00:00"}))
    assert lost_launches(lp, 60, 180) == [lid]  # still running by its files, silent for months: lost
    (ldir / "FW_offline.json").write_text(json.dumps({"launch_id": lid, "started_on": "2026-01-01T00:00:00",
                                                      "completed_on": "2026-01-01T00:01:00", "state": "COMPLETED",
                                                      "fwaction": {"stored_data": {"x": 1}}}))
    assert lost_launches(lp, 60, 180) == []  # ended: its results wait in its folder for `argyro collect`
    (ldir / ".argyro_job_id").write_text("4242\n")  # its job has left the scheduler, as a finished job does
    rep = reconcile(lp, "slurm", state_fn=lambda job: None)
    assert rep.checked == [(fw.fw_id, "4242", None)] and rep.rerun == []  # reconcile leaves it to collect too
    lp_file = tmp_path / "lp.yaml"
    lp_file.write_text(yaml.safe_dump({"host": db_settings.host, "port": db_settings.port, "name": db_settings.name}))
    # FireWorks cannot read that FWAction: the launch is left for the next collect, not FIZZLED
    col = run([str(BIN / "argyro"), "collect", "-l", str(lp_file)], env, check=False)
    assert col.returncode == 1 and f"firework {fw.fw_id} left for the next collect" in col.stderr
    assert lp.get_fw_by_id(fw.fw_id).state == "RESERVED"
    done = json.loads((ldir / "FW_offline.json").read_text()) | {"fwaction": FWAction(stored_data={"x": 1}).to_dict()}
    (ldir / "FW_offline.json").write_text(json.dumps(done))
    col = run([str(BIN / "argyro"), "collect", "-l", str(lp_file)], env)
    assert f"collected (completed): [{fw.fw_id}]" in col.stdout
    assert lp.get_fw_by_id(fw.fw_id).state == "COMPLETED" and lp.offline_runs.find_one({"launch_id": lid})["completed"]
    assert "collected (completed): []" in run([str(BIN / "argyro"), "collect", "-l", str(lp_file)], env).stdout
    lp.connection.close()


def test_reads_are_declared_on_the_tasks_that_read():
    """Every FireTask that reads the results store declares what (the others run offline with nothing staged)."""
    import inspect

    import argyro_fw.flows.al as al
    import argyro_fw.flows.study as study

    reads = ("get_structure", "find_calculation", "get_label", "labelled_hashes", "LabelCache", "store.count",
             "energies_from_spec(", "engine_label_detour(")
    for mod in (al, study):
        for name, cls in inspect.getmembers(mod, inspect.isclass):
            if cls.__module__ != mod.__name__ or not hasattr(cls, "run_task"):
                continue
            src = inspect.getsource(cls.run_task)
            if any(r in src for r in reads):
                assert hasattr(cls, "offline_reads"), name
    r = Reads()
    study.StudySummaryTask(study="s").offline_reads({}, r)
    assert r.counts == {(c, "s") for c in store.PER_STUDY}


def test_collect_replays_before_it_completes_runs_one_at_a_time_and_catches_up(tmp_path, db_settings, monkeypatch):
    """A launch that ends between collect's look at FW_offline.json and FireWorks' own is not completed before its
    journal is replayed; a second collect does nothing while one runs; a launch FireWorks' `lpad recover_offline`
    completed without its journal gets it replayed by the next collect."""
    from fireworks import Firework, FWAction, FWorker, LaunchPad, ScriptTask, Workflow
    from fireworks.queue.queue_launcher import setup_offline_job

    from argyro_fw import collect as collect_mod

    lp = LaunchPad(host=db_settings.host, port=db_settings.port, name=db_settings.name)
    lp.reset("", require_password=False)
    a, b = Firework(ScriptTask.from_str("true"), name="a"), Firework(ScriptTask.from_str("true"), name="b")
    lp.add_wf(Workflow([a, b], {a: [b]}))
    li = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    monkeypatch.setenv("ARGYRO_OFFLINE", "1")

    def offline_job(name: str) -> tuple[int, int, Path]:
        """Reserve the READY firework as qlaunch -r does, stage it, run its 'task' offline (one structure), end it."""
        d = tmp_path / name
        d.mkdir()
        fw, lid = lp.reserve_fw(FWorker(), str(d))
        monkeypatch.chdir(d)
        setup_offline_job(lp, fw, lid)  # FireWorks' own: FW.json, FW_offline.json, offline_runs
        store.stage(lp.db, d, fw, lid)
        store.put_structures(store.database({}), "s", "bulk", [(name, li, {})])  # the offline store: journalled
        state = json.loads((d / "FW_offline.json").read_text())
        state |= {"started_on": "2026-01-01T00:00:00", "completed_on": "2026-01-01T00:01:00", "state": "COMPLETED",
                  "fwaction": FWAction().to_dict()}
        (d / "FW_offline.json").write_text(json.dumps(state))
        return fw.fw_id, lid, d

    fw_a, lid_a, d_a = offline_job("a")
    assert lp.db.structures.count_documents({}) == 0  # nothing reached the database from the job
    # the race: collect looked while the job still ran; by the time FireWorks reads the file, it has ended
    real = collect_mod._read_offline
    running = json.loads((d_a / "FW_offline.json").read_text())
    running = {k: v for k, v in running.items() if k not in ("fwaction", "completed_on", "state")}
    monkeypatch.setattr(collect_mod, "_read_offline", lambda d: (running, running))
    rep = collect_mod.collect(lp)
    assert rep.running == [fw_a] and lp.get_fw_by_id(fw_a).state == "RUNNING"  # not completed unreplayed
    child = lp.fireworks.find_one({"name": "b"})["fw_id"]
    assert not lp.offline_runs.find_one({"launch_id": lid_a})["completed"] and lp.get_fw_by_id(child).state == "WAITING"
    monkeypatch.setattr(collect_mod, "_read_offline", real)
    # one collect at a time: while another holds the lock, nothing is done
    lp.db[collect_mod.LOCK_COLLECTION].insert_one({"_id": "collect", "owner": "login2:99",
                                                     "until": datetime.now(timezone.utc) + timedelta(seconds=60)})
    assert collect_mod.collect(lp).busy == "login2:99" and lp.get_fw_by_id(fw_a).state == "RUNNING"
    lp.db[collect_mod.LOCK_COLLECTION].delete_many({})
    rep = collect_mod.collect(lp)
    assert rep.completed == [fw_a] and rep.replayed_ops == 1 and lp.get_fw_by_id(fw_a).state == "COMPLETED"
    assert lp.db.structures.count_documents({"key": "s/a"}) == 1
    # the child, completed by FireWorks' own recover_offline (no replay): the next collect replays its journal
    fw_b, lid_b, d_b = offline_job("b")
    assert lp.recover_offline(lid_b) is None and lp.get_fw_by_id(fw_b).state == "COMPLETED"
    assert lp.db.structures.count_documents({"key": "s/b"}) == 0
    rep = collect_mod.collect(lp)
    assert rep.replayed_ops == 1 and lp.db.structures.count_documents({"key": "s/b"}) == 1
    assert lp.offline_runs.find_one({"launch_id": lid_b})["argyro_replayed"]
    assert collect_mod.collect(lp).replayed_ops == 0
    lp.connection.close()

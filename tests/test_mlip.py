"""Issue 6: MACE commands, layer freezing and multi-head replay (real mace_run_train, tiny
sizes), data checks, and a two-iteration active-learning loop on the embedded database with the
CHGNet labeller (an offline stand-in for DFT labels)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch

from argyro_fw.errors import ArgyroError
from argyro_fw.mlip.commands import CommitteeFinetune, MultiheadFinetune
from argyro_fw.mlip.datasets import check_dataset, select_replay
from argyro_fw.demo.toy import label, rattled
from conftest import BIN, run


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    """mace_run_train, CHGNet and the workers started here run one OpenMP/torch thread (as `argyro rehearse` and the
    stand-ins do): on a shared 2-core machine torch's default threads only thrash and make training several times
    slower. Numbers are not compared across thread counts anywhere in this file."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _flags(argv):
    return {a.split("=")[0]: (a.split("=", 1)[1] if "=" in a else True) for a in argv[1:]}


def test_committee_command_flags():
    f = _flags(CommitteeFinetune(name="c1", train_file="t.xyz", foundation_model="omat.model", seed=7).argv())
    expected = {"--freeze": "6", "--energy_weight": "10", "--forces_weight": "1000", "--stress_weight": "100",
                "--lr": "0.005", "--max_num_epochs": "300", "--batch_size": "16", "--ema": True, "--stage_two": True,
                "--start_stage_two": "200", "--stage_two_energy_weight": "1000", "--stage_two_forces_weight": "100",
                "--stage_two_stress_weight": "100", "--r_max": "6", "--num_channels": "128", "--loss": "universal",
                "--seed": "7", "--foundation_model": "omat.model", "--multiheads_finetuning": "False"}
    for k, v in expected.items():
        assert f[k] == v, k
    seeds = {_flags(CommitteeFinetune(name=f"c{s}", train_file="t", foundation_model="m", seed=s).argv())["--seed"]
             for s in (1, 2, 3)}
    assert len(seeds) == 3


def test_multihead_command_flags():
    cmd = MultiheadFinetune(name="final", train_file="t.xyz", foundation_model="omat.model", pt_train_file="replay.xyz",
                            e0s={"Li": -0.29, "P": -1.88, "S": -1.08, "Cl": -0.25})
    f = _flags(cmd.argv())
    expected = {"--multiheads_finetuning": "True", "--pt_train_file": "replay.xyz", "--force_mh_ft_lr": "True",
                "--lr": "0.0001", "--weight_decay": "1e-09", "--energy_weight": "1", "--forces_weight": "100",
                "--stress_weight": "100", "--max_num_epochs": "30", "--batch_size": "8",
                "--foundation_filter_elements": "True", "--foundation_model_elements": "True",
                "--E0s": "{3: -0.29, 15: -1.88, 16: -1.08, 17: -0.25}"}
    for k, v in expected.items():
        assert f[k] == v, k
    assert "--stage_two" not in f and "--swa" not in f and "--num_samples_pt" not in f
    assert "--foundation_model_readout" not in f  # store_false in mace-torch: passing it would turn the readout off
    with pytest.raises(ArgyroError, match="E0s"):
        MultiheadFinetune(name="x", train_file="t", foundation_model="m", pt_train_file="r").argv()


def _run_mace(argv, cwd):
    argv = [str(Path(sys.executable).parent / "mace_run_train")] + argv[1:]
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]


def _tiny(**kw):
    return dict(device="cpu", extra=[], **kw)


def test_freeze6_only_readouts_change(tmp_path, tiny_model, small_interface):
    from ase.calculators.lj import LennardJones

    frames = label(rattled(small_interface, 12, seed=4), LennardJones(sigma=2.3, epsilon=0.03, rc=4.5, smooth=True))
    ase.io.write(tmp_path / "new.xyz", frames, format="extxyz")
    cmd = CommitteeFinetune(name="ft", train_file=str(tmp_path / "new.xyz"), foundation_model=str(tiny_model),
                            valid_fraction=0.2, device="cpu", workdir=str(tmp_path), max_num_epochs=3, batch_size=4,
                            start_stage_two=2, r_max=4.0, num_channels=8, seed=5)
    _run_mace(cmd.argv(), tmp_path)
    a = torch.load(tiny_model, weights_only=False).state_dict()
    b = torch.load(tmp_path / "ft.model", weights_only=False).state_dict()
    for k in a:
        if k.split(".")[0] in ("node_embedding", "interactions", "products"):
            assert torch.equal(a[k], b[k]), f"{k} changed although frozen"
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("readouts") and a[k].dtype.is_floating_point)


def test_multihead_replay_has_both_heads(tmp_path, tiny_model, small_interface):
    new = label(rattled(small_interface, 12, seed=6))
    ase.io.write(tmp_path / "new.xyz", new, format="extxyz")
    pt = label(rattled(small_interface, 30, seed=8))
    ase.io.write(tmp_path / "pt_all.xyz", pt, format="extxyz")
    assert select_replay(tmp_path / "pt_all.xyz", tmp_path / "replay.xyz", n=10, elements=["Li", "P", "S", "Cl"]) == 10
    cmd = MultiheadFinetune(name="mh", train_file=str(tmp_path / "new.xyz"), foundation_model=str(tiny_model),
                            pt_train_file=str(tmp_path / "replay.xyz"), valid_fraction=0.2, device="cpu",
                            workdir=str(tmp_path), max_num_epochs=2, e0s={"Li": -0.1, "P": -0.2, "S": -0.3, "Cl": -0.05})
    _run_mace(cmd.argv(), tmp_path)
    m = torch.load(tmp_path / "mh.model", weights_only=False)
    assert sorted(m.heads) == ["Default", "pt_head"]


def test_bad_datasets_named_before_training(tmp_path, small_interface):
    frames = label(rattled(small_interface, 3, seed=1))
    frames[1].arrays["REF_forces"][5, 1] = np.nan
    ase.io.write(tmp_path / "nan.xyz", frames, format="extxyz")
    with pytest.raises(ArgyroError, match="frame 1 has NaN"):
        check_dataset(tmp_path / "nan.xyz")
    good = label(rattled(small_interface, 2, seed=2))
    ase.io.write(tmp_path / "ok.xyz", good, format="extxyz")
    with pytest.raises(ArgyroError, match=r"no E0 for species \['Cl'\]"):
        check_dataset(tmp_path / "ok.xyz", e0s={"Li": -0.1, "P": -0.2, "S": -0.3})
    assert check_dataset(tmp_path / "ok.xyz", e0s={"Li": 0, "P": 0, "S": 0, "Cl": 0})["frames"] == 2


@pytest.mark.slow
def test_two_iteration_loop_with_chgnet_labeller(tmp_path, tiny_model, small_interface, launchpad_dir, cli_env,
                                                 db_settings):
    import pymongo
    from pymatgen.io.ase import AseAtomsAdaptor

    from argyro_fw.launchpad import get_launchpad
    from argyro_fw.flows.al import active_learning_workflow
    from argyro_fw.study.config import ActiveLearningCfg, ALRun, FinalRun

    al = ActiveLearningCfg(temperatures=[600], explore_steps=20, record_every=2, n_train=6, n_valid=2, committee_size=3,
                           committee_md_steps=12, committee_record_every=3, select_k=3, max_iterations=2, threshold=0.0,
                           train_overrides=dict(max_num_epochs=2, batch_size=4, start_stage_two=1, r_max=4.0,
                                                num_channels=8),
                           initial_sources=[{"path": str(tmp_path / "aimd.xyz"), "n": 2, "config_type": "bulk_aimd"}])
    run_cfg = ALRun(name="toy-al", workdir=str(tmp_path / "al"), foundation_model=str(tiny_model),
                    structure=AseAtomsAdaptor.get_structure(small_interface).as_dict(), explorer="chgnet",
                    labeller="chgnet", e0s="foundation", al=al,
                    final=FinalRun(pt_file=str(tmp_path / "pt.xyz"), replay_n=8,
                                   e0s={"Li": -0.1, "P": -0.2, "S": -0.3, "Cl": -0.05}, overrides=dict(max_num_epochs=1)))
    ase.io.write(tmp_path / "pt.xyz", label(rattled(small_interface, 12, seed=21)), format="extxyz")
    ase.io.write(tmp_path / "aimd.xyz", label(rattled(small_interface, 5, seed=31)), format="extxyz")
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    lp.add_wf(active_learning_workflow(run_cfg))
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    lpf, fwf = str(launchpad_dir / "my_launchpad.yaml"), str(launchpad_dir / "my_fworker.yaml")
    cli_env = dict(cli_env, OMP_NUM_THREADS="1")  # the workers' trainings and CHGNet: one thread (see above)
    proc = subprocess.Popen([str(BIN / "rlaunch"), "-l", lpf, "-w", fwf, "rapidfire"], env=cli_env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    # kill in the middle of iteration 2's labelling, after at least one new label was stored
    n0 = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        fw = lp.fireworks.find_one({"name": "al-02-label"}, {"state": 1})
        if fw and fw["state"] == "RUNNING":
            if n0 is None:
                n0 = db.labels.count_documents({})
            elif db.labels.count_documents({}) > n0:
                break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert n0 is not None, "iteration 2 never started labelling"
    hashes_at_kill = {d["hash"] for d in db.labels.find({}, {"hash": 1})}
    time.sleep(1.2)
    # the killed worker ran here and its pid is gone: recover reruns its firework at once (argyro_fw.recovery)
    run([str(BIN / "argyro"), "recover", "-l", lpf, "--observe", "0.3"], cli_env)
    # two workers from here (one core each): the committee members of an iteration train at the same time
    workers = [subprocess.Popen([str(BIN / "rlaunch"), "-l", lpf, "-w", fwf, "rapidfire"], env=cli_env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for w in workers:
        out, _ = w.communicate(timeout=900)
        assert w.returncode == 0, out[-3000:]
    states = {d["name"]: d["state"] for d in lp.fireworks.find({})}
    assert all(s == "COMPLETED" for s in states.values()), states

    recs = sorted(db.al_iterations.find({"al_name": "toy-al"}), key=lambda r: r["iteration"])
    assert [r["iteration"] for r in recs] == [1, 2]
    assert recs[0]["dataset_size"] == 2 + 6  # the initial set (2 evenly spaced frames) + 6 explored frames
    assert recs[1]["dataset_size"] == recs[0]["dataset_size"] + len(recs[0]["selected"]["hashes"]) == recs[0]["dataset_size"] + 3
    assert recs[-1]["stopped"] == "max_iterations"
    for r in recs:
        assert len(set(r["models"])) == 3 and len(r["validation"]) == 3
        assert len({round(v["force_rmse_meV_A"], 6) for v in r["validation"].values()}) == 3  # distinct models
        assert r["uncertainty_eV_A"]["max"] > 0
        assert {Path(p).name for p in r["plots"]} == {"uncertainty.png", "force_parity.png"}
        assert all(Path(p).stat().st_size > 1000 for p in r["plots"])
    # no frame labelled twice: one label per hash, and the rerun computed only what the kill left
    hashes = [d["hash"] for d in db.labels.find({})]
    selected = set(recs[0]["selected"]["hashes"])
    assert len(hashes) == len(set(hashes)) and selected <= set(hashes) and len(selected) == 3
    done_before_kill = len(selected & hashes_at_kill)
    assert done_before_kill >= 1
    relabel = [l["action"]["stored_data"]["labels_computed"] for l in
               lp.launches.find({"fw_id": lp.fireworks.find_one({"name": "al-02-label"})["fw_id"], "state": "COMPLETED"})]
    assert relabel == [3 - done_before_kill]
    fin = lp.launches.find_one({"fw_id": lp.fireworks.find_one({"name": "al-final-multihead"})["fw_id"],
                                "state": "COMPLETED"})["action"]["stored_data"]
    assert sorted(fin["heads"]) == ["Default", "pt_head"] and Path(fin["final_model"]).is_file()
    train2 = ase.io.read(recs[1]["dataset_file"], ":")
    assert set(recs[0]["selected"]["hashes"]) <= {a.info.get("frame_hash") for a in train2}


def test_render_mace_cli(tmp_path):
    out = tmp_path / "final"
    run([str(BIN / "argyro"), "render", "mace", "--kind", "multihead", "--foundation", "/models/omat.model",
         "--train", "/data/train.xyz", "--replay", "/data/replay.xyz", "--e0", "Li=-0.29", "--e0", "P=-1.88",
         "--e0", "S=-1.08", "--e0", "Cl=-0.25", "-o", str(out)], dict(os.environ))
    argv = json.loads((out / "command.json").read_text())
    f = _flags(argv)
    assert f["--lr"] == "0.0001" and f["--force_mh_ft_lr"] == "True" and f["--pt_train_file"] == "/data/replay.xyz"
    script = (out / "train.sh").read_text()
    assert "mace_create_lammps_model" in script and "--head=Default" in script and "--format=mliap" in script
    p = run([str(BIN / "argyro"), "render", "mace", "--kind", "committee", "--foundation", "/m", "--train", "/t",
             "--seed", "3", "-o", str(tmp_path / "c3")], dict(os.environ))
    assert _flags(json.loads((tmp_path / "c3" / "command.json").read_text()))["--seed"] == "3"


def test_initial_dataset_counts(tmp_path, small_interface):
    """METHOD.md 5's initial set, toy-sized: N evenly spaced frames per labelled source."""
    from argyro_fw.mlip.datasets import assemble_initial_dataset

    sources = []
    for T in (400, 600, 800, 1000):
        ase.io.write(tmp_path / f"aimd_{T}.xyz", label(rattled(small_interface, 10, seed=T)), format="extxyz")
        sources.append({"path": str(tmp_path / f"aimd_{T}.xyz"), "n": 3, "config_type": f"bulk_aimd_{T}K"})
    ase.io.write(tmp_path / "li.xyz", label(rattled(small_interface, 8, seed=1)), format="extxyz")
    sources.append({"path": str(tmp_path / "li.xyz"), "n": 4, "config_type": "li_metal_ramp"})
    counts = assemble_initial_dataset(sources, tmp_path / "initial.xyz")
    assert counts["total"] == 16 and counts["bulk_aimd_400K"] == 3 and counts["li_metal_ramp"] == 4
    frames = ase.io.read(tmp_path / "initial.xyz", ":")
    assert len(frames) == 16 and frames[-1].info["config_type"] == "li_metal_ramp"
    assert check_dataset(tmp_path / "initial.xyz")["frames"] == 16
    with pytest.raises(ValueError, match="path, n"):
        assemble_initial_dataset([{"path": "x"}], tmp_path / "bad.xyz")


def test_killed_training_resumes_from_its_checkpoint(tmp_path, tiny_model, small_interface):
    """A committee training SIGKILLed after a checkpoint of epoch K >= 2 continues from that checkpoint when run
    again (``--restart_latest``): the rerun loads it, its first epoch is K (not 0), and it writes the model."""
    import re

    from argyro_fw.mlip.commands import run_mace_train

    frames = label(rattled(small_interface, 16, seed=12))
    ase.io.write(tmp_path / "new.xyz", frames, format="extxyz")
    d = tmp_path / "m"
    d.mkdir()
    cmd = CommitteeFinetune(name="c1", train_file=str(tmp_path / "new.xyz"), foundation_model=str(tiny_model),
                            valid_fraction=0.25, device="cpu", workdir=str(d), max_num_epochs=10, batch_size=4,
                            start_stage_two=8, r_max=4.0, num_channels=8, seed=3)

    def newest_epoch() -> int:
        eps = [int(m.group(1)) for p in (d / "checkpoints").glob("*.pt") if (m := re.search(r"_epoch-(\d+)\.pt$", p.name))]
        return max(eps, default=-1)

    argv = [str(Path(sys.executable).parent / "mace_run_train")] + cmd.argv()[1:]
    proc = subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None and newest_epoch() < 2:
        time.sleep(0.05)
    time.sleep(0.5)  # a checkpoint is written by one torch.save; let it close
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    k = newest_epoch()
    assert k >= 2, "no checkpoint of epoch >= 2 before the kill"
    assert not (d / "c1.model").exists(), "training finished before it could be killed"
    run_mace_train(cmd.argv(), d, d / "c1.model", "committee training")
    assert (d / "c1.model").is_file()
    log = (d / "train.log").read_text()
    assert "resuming from the newest checkpoint" in log
    loaded, after = log.split("Loading checkpoint", 1)[1].split("\n", 1)
    assert f"_epoch-{k}.pt" in loaded
    epochs = [int(e) for e in re.findall(r"Epoch (\d+):", after)]
    assert epochs and epochs[0] == k >= 2 and epochs[-1] == 9, epochs


def test_committee_md_samples_every_temperature_and_every_member():
    """METHOD.md 5: the committee MD explores every exploration temperature (1000 K included) with 3 members."""
    from argyro_fw.mlip.committee import committee_md_plan

    plan = committee_md_plan(["m0", "m1", "m2"], [400, 600, 800, 1000])
    assert sorted(T for _, T in plan) == [400.0, 600.0, 800.0, 1000.0]
    assert {m for m, _ in plan} == {"m0", "m1", "m2"} and len(plan) == 4
    assert committee_md_plan(["a", "b", "c"], [600]) == [("a", 600.0), ("b", 600.0), ("c", 600.0)]

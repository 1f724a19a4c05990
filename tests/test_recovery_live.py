"""Issue 18 item 3: `argyro recover` never reruns a live job, reruns a dead one, and a late finish of a rerun
firework completes it once.

Real workers (`argyro rlaunch` and FireWorks' own `rlaunch`, one firework each) on the test's database, with
the ping interval that `argyro init` wrote into FW_config.yaml shortened to 5 s. A worker "on another host" runs
in its own UTS namespace (`unshare -u`, another hostname): recover cannot check its pid there and must go by
its pings.
"""

from __future__ import annotations

import datetime
import os
import signal
import subprocess
import time

import pytest
import yaml
from conftest import BIN, run
from fireworks import Firework, FWAction, ScriptTask, Workflow

from argyro_fw.launchpad import get_launchpad
from argyro_fw.recovery import FW_CONFIG_FILE, WORKER_KEY

PING_S = 5  # the test's ping interval: recover's default expiry is 4 pings = 20 s
EXPIRY_S = 4 * PING_S
LIVE_S = 60  # how long the live fireworks run: past the killed-elsewhere expiry (~EXPIRY_S after the kill) with
# more than one further expiry to spare, so a live run on another host that recover wrongly took for lost is seen


def _can_unshare() -> bool:
    return subprocess.run(["unshare", "-u", "true"], capture_output=True, check=False).returncode == 0


needs_unshare = pytest.mark.skipif(not _can_unshare(), reason="needs `unshare -u` (root) for a second host name")


@pytest.fixture
def short_ping(launchpad_dir):
    """The launchpad folder, its FW_config.yaml (written by `argyro init`) set to ping every PING_S seconds."""
    f = launchpad_dir / FW_CONFIG_FILE
    cfg = yaml.safe_load(f.read_text())
    assert cfg["PING_TIME_SECS"] == 60  # what `argyro init` writes (PingSettings)
    cfg["PING_TIME_SECS"] = PING_S
    f.write_text(yaml.safe_dump(cfg))
    return launchpad_dir


def _worker(lpdir, fw_id, env, cwd, host=None, fireworks_own=False):
    """One worker running firework ``fw_id`` in its own process group (on host ``host``: a UTS namespace)."""
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [str(BIN / "rlaunch")] if fireworks_own else [str(BIN / "argyro"), "rlaunch"]
    cmd += ["-l", str(lpdir / "my_launchpad.yaml"), "-w", str(lpdir / "my_fworker.yaml"), "singleshot", "-f", str(fw_id)]
    if host:
        cmd = ["unshare", "-u", "sh", "-c", f'hostname {host} && exec "$@"', "sh", *cmd]
    log = open(cwd / "worker.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_running(lp, fw_ids, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        docs = {d["fw_id"]: d for d in lp.launches.find({"fw_id": {"$in": list(fw_ids)}, "state": "RUNNING"})}
        if set(docs) == set(fw_ids) and all(WORKER_KEY in d for d in docs.values()):
            return docs
        time.sleep(0.2)
    raise AssertionError(f"fireworks {fw_ids} not all RUNNING with a worker record: "
                         f"{[(d['fw_id'], d['state']) for d in lp.fireworks.find({'fw_id': {'$in': list(fw_ids)}})]}")


def _last_ping(lp, fw_id) -> float:
    """Seconds since the RUNNING launch of ``fw_id`` last pinged."""
    launch = lp.launches.find_one({"fw_id": fw_id, "state": "RUNNING"}) or lp.launches.find_one({"fw_id": fw_id})
    t = max(datetime.datetime.fromisoformat(h["updated_on"]) if isinstance(h["updated_on"], str) else h["updated_on"]
            for h in launch["state_history"] if h["state"] == "RUNNING")
    t = t if t.tzinfo else t.replace(tzinfo=datetime.UTC)
    return (datetime.datetime.now(datetime.UTC) - t).total_seconds()


def _recover(lpdir, env, *extra):
    return run([str(BIN / "argyro"), "recover", "-l", str(lpdir / "my_launchpad.yaml"), "--observe", "0.2", *extra],
               env)


@needs_unshare
def test_live_runs_survive_recover_and_killed_ones_are_rerun(tmp_path, short_ping, cli_env):
    lpdir = short_ping
    lp = get_launchpad(lpdir / "my_launchpad.yaml")
    side = tmp_path / "side"
    names = {1: "live-here", 2: "live-elsewhere", 3: "killed-elsewhere", 4: "killed-here"}
    for fw_id, name in names.items():
        lp.add_wf(Workflow([Firework(ScriptTask.from_str(f"sleep {LIVE_S}; echo {name} >> {side}"), name=name,
                                     fw_id=fw_id)]))
    ids = {name: d["fw_id"] for name in names.values() for d in [lp.fireworks.find_one({"name": name})]}
    workers = {
        "live-here": _worker(lpdir, ids["live-here"], cli_env, tmp_path / "w1"),
        "live-elsewhere": _worker(lpdir, ids["live-elsewhere"], cli_env, tmp_path / "w2", host="node-b"),
        "killed-elsewhere": _worker(lpdir, ids["killed-elsewhere"], cli_env, tmp_path / "w3", host="node-c",
                                    fireworks_own=True),
        "killed-here": _worker(lpdir, ids["killed-here"], cli_env, tmp_path / "w4"),
    }
    try:
        launches = _wait_running(lp, ids.values())
        recs = {name: launches[ids[name]][WORKER_KEY] for name in ids}
        assert recs["live-elsewhere"]["host"] == "node-b" and recs["live-here"]["host"] != "node-b"
        assert {r["ping_s"] for r in recs.values()} == {PING_S}  # FW_config.yaml reached every worker
        time.sleep(PING_S + 1)  # every worker has pinged once
        for name in ("killed-elsewhere", "killed-here"):
            os.killpg(workers[name].pid, signal.SIGKILL)
            workers[name].wait()
        t_kill = time.monotonic()
        # a run on another host is lost only after EXPIRY_S without a ping; one here as soon as its pid is gone
        rerun_at = {}
        calls = 0
        while time.monotonic() - t_kill < LIVE_S + 40 and not all(
                lp.fireworks.find_one({"fw_id": ids[n]})["state"] == "COMPLETED" for n in ("live-here", "live-elsewhere")):
            silent_before = _last_ping(lp, ids["killed-elsewhere"])
            out = _recover(lpdir, cli_env).stdout
            calls += 1
            silent_after = _last_ping(lp, ids["killed-elsewhere"])
            states = {n: lp.fireworks.find_one({"fw_id": ids[n]})["state"] for n in ids}
            for n in ("live-here", "live-elsewhere"):
                assert states[n] in ("RUNNING", "COMPLETED"), (n, states, out)
                assert lp.launches.count_documents({"fw_id": ids[n]}) == 1, (n, out)  # never a second copy
            if states["live-elsewhere"] == "RUNNING":
                assert _last_ping(lp, ids["live-elsewhere"]) < 3 * PING_S  # its worker pings every PING_S
            if "killed-here" not in rerun_at:
                assert states["killed-here"] == "READY", (calls, out)  # the first recover reruns it: pid gone
                rerun_at["killed-here"] = calls
            if "killed-elsewhere" not in rerun_at:
                if states["killed-elsewhere"] == "READY":
                    assert silent_after >= EXPIRY_S, (silent_after, out)  # never before the expiry
                    rerun_at["killed-elsewhere"] = calls
                else:
                    assert states["killed-elsewhere"] == "RUNNING"
                    assert silent_before <= EXPIRY_S + 1, (silent_before, out)  # the first recover after it
            time.sleep(3)
        assert rerun_at.get("killed-here") == 1 and rerun_at.get("killed-elsewhere", 0) > 1, rerun_at
        for name in ("live-here", "live-elsewhere"):
            assert workers[name].wait(timeout=60) == 0
            assert lp.fireworks.find_one({"fw_id": ids[name]})["state"] == "COMPLETED"
        assert sorted(side.read_text().split()) == ["live-elsewhere", "live-here"]  # each ran once, the killed never
        assert calls >= 6
    finally:
        for p in workers.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def test_lost_after_shorter_than_two_pings_is_refused(short_ping, cli_env):
    proc = run([str(BIN / "argyro"), "recover", "-l", str(short_ping / "my_launchpad.yaml"), "--lost-after",
                str(2 * PING_S - 1)], cli_env, check=False)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "--lost-after 9: shorter than 2 ping intervals (5 s each" in err[0], proc.stderr
    ok = run([str(BIN / "argyro"), "recover", "-l", str(short_ping / "my_launchpad.yaml"), "--lost-after",
              str(2 * PING_S)], cli_env)
    assert "lost runs rerun: []" in ok.stdout


@needs_unshare
def test_late_finish_of_a_rerun_firework_completes_it_once(tmp_path, short_ping, cli_env):
    """A worker on another host goes silent (SIGSTOP) past the expiry: recover reruns its firework. Then it
    finishes after all: (a) before the rerun started, (b) while a second copy runs. Either way the firework
    ends COMPLETED, its FWAction (a child firework added) applied once, and a later rlaunch runs nothing twice."""
    lpdir = short_ping
    lp = get_launchpad(lpdir / "my_launchpad.yaml")
    side = tmp_path / "side"
    fw_ids = {}
    for name, fw_id in (("a", 1), ("b", 2)):
        action = tmp_path / f"action-{name}.json"
        FWAction(additions=[Firework(ScriptTask.from_str(f"echo added-{name} >> {side}"), name=f"added-{name}")]
                 ).to_file(str(action))
        # the task hands its FWAction to FireWorks as FWAction.json in the launch folder
        lp.add_wf(Workflow([Firework(ScriptTask.from_str(f"sleep 8; echo {name} >> {side}; cp {action} FWAction.json"),
                                     name=name, fw_id=fw_id)]))
        fw_ids[name] = lp.fireworks.find_one({"name": name})["fw_id"]
    first = {"a": _worker(lpdir, fw_ids["a"], cli_env, tmp_path / "a1", host="node-b"),
             "b": _worker(lpdir, fw_ids["b"], cli_env, tmp_path / "b1", host="node-c", fireworks_own=True)}
    second = None
    try:
        _wait_running(lp, fw_ids.values())
        time.sleep(1)
        for p in first.values():
            os.killpg(p.pid, signal.SIGSTOP)  # a hung node: no pings, no progress
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            _recover(lpdir, cli_env)
            if all(lp.fireworks.find_one({"fw_id": i})["state"] == "READY" for i in fw_ids.values()):
                break
            time.sleep(3)
        assert all(lp.fireworks.find_one({"fw_id": i})["state"] == "READY" for i in fw_ids.values())
        assert min(_last_ping(lp, i) for i in fw_ids.values()) >= EXPIRY_S
        # (b): a second copy of b starts; then both hung workers come back and finish first
        second = _worker(lpdir, fw_ids["b"], cli_env, tmp_path / "b2")
        deadline = time.monotonic() + 30
        while lp.fireworks.find_one({"fw_id": fw_ids["b"]})["state"] != "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.1)
        for p in first.values():
            os.killpg(p.pid, signal.SIGCONT)
        assert all(p.wait(timeout=60) == 0 for p in first.values())
        for name, i in fw_ids.items():
            fw = lp.fireworks.find_one({"fw_id": i})
            assert fw["state"] == "COMPLETED", (name, fw["state"])  # not READY: the late result is kept
        assert second.wait(timeout=60) == 0  # b's second copy finishes into a COMPLETED firework
        for name, i in fw_ids.items():
            assert lp.fireworks.find_one({"fw_id": i})["state"] == "COMPLETED"
            assert lp.fireworks.count_documents({"name": f"added-{name}"}) == 1, name  # the FWAction applied once
        run([str(BIN / "argyro"), "rlaunch", "-l", str(lpdir / "my_launchpad.yaml"), "-w",
             str(lpdir / "my_fworker.yaml"), "rapidfire"], cli_env, cwd=tmp_path)
        assert {d["name"]: d["state"] for d in lp.fireworks.find({})} == {
            "a": "COMPLETED", "b": "COMPLETED", "added-a": "COMPLETED", "added-b": "COMPLETED"}
        lines = side.read_text().split()
        # a ran once; b twice (two copies ran at once, as the scenario forces); nothing ran after the late finish
        assert sorted(lines) == ["a", "added-a", "added-b", "b", "b"], lines
    finally:
        for p in [*first.values(), second]:
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGCONT)
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()

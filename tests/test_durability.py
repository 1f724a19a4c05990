"""Issue 2, acceptance 3: the embedded server killed with SIGKILL mid-workflow loses no COMPLETED firework."""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter

import pymongo

from argyro_fw.db.embedded import EmbeddedServer
from argyro_fw.launchpad import init_files
from argyro_fw.settings import DBSettings
from conftest import BIN, free_port, run


def test_sigkill_mid_workflow_then_resume(tmp_path):
    server = EmbeddedServer(tmp_path / "db")
    port = free_port()
    server.start(port=port)
    try:
        settings = DBSettings(host="127.0.0.1", port=port, name="durable")
        lpdir = tmp_path / "launchpad"
        init_files(settings, lpdir)
        # ping every second: a launch the database lost its worker record of is recovered after 2 s of silence
        (lpdir / "FW_config.yaml").write_text((lpdir / "FW_config.yaml").read_text().replace("PING_TIME_SECS: 60",
                                                                                          "PING_TIME_SECS: 1"))
        env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "home"))
        from fireworks import Firework, ScriptTask, Workflow

        from argyro_fw.launchpad import get_launchpad

        lp = get_launchpad(lpdir / "my_launchpad.yaml")
        lp.reset("", require_password=False)
        side = tmp_path / "side"
        fws = [Firework(ScriptTask.from_str(f"sleep 0.05; echo {i} >> {side}"), name=f"step{i}", fw_id=i + 1) for i in range(40)]
        links = {fws[i]: [fws[i + 1]] for i in range(39)}  # a chain: order is enforced
        lp.add_wf(Workflow(fws, links, name="chain"))

        worker = subprocess.Popen(
            [str(BIN / "rlaunch"), "-l", str(lpdir / "my_launchpad.yaml"), "-w", str(lpdir / "my_fworker.yaml"),
             "rapidfire", "--sleep", "0"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = pymongo.MongoClient("127.0.0.1", port, retryWrites=False)
        db = client["durable"]
        deadline = time.monotonic() + 120
        while db.fireworks.count_documents({"state": "COMPLETED"}) < 12 and time.monotonic() < deadline:
            time.sleep(0.05)
        completed_before = {d["fw_id"] for d in db.fireworks.find({"state": "COMPLETED"}, {"fw_id": 1})}
        server.kill()  # SIGKILL, no clean shutdown
        assert 12 <= len(completed_before) < 40
        worker.kill()
        worker.wait()
        client.close()

        server.start(port=port)  # same path, same port
        db = pymongo.MongoClient("127.0.0.1", port, retryWrites=False)["durable"]
        still = {d["fw_id"] for d in db.fireworks.find({"state": "COMPLETED"}, {"fw_id": 1})}
        assert completed_before <= still

        time.sleep(2.5)
        rec = run([str(BIN / "argyro"), "recover", "-l", str(lpdir / "my_launchpad.yaml"), "--lost-after", "2"], env)
        print(rec.stdout)
        run([str(BIN / "rlaunch"), "-l", str(lpdir / "my_launchpad.yaml"), "-w", str(lpdir / "my_fworker.yaml"),
             "rapidfire", "--sleep", "0", "--timeout", "120"], env, cwd=tmp_path)
        states = Counter(d["state"] for d in db.fireworks.find({}))
        assert states == {"COMPLETED": 40}, [(d["fw_id"], d["state"]) for d in db.fireworks.find({"state": {"$ne": "COMPLETED"}})][:5]
        # the chain's side effects are in order; a step interrupted by the kill may have run twice
        lines = [int(x) for x in side.read_text().split()]
        assert sorted(set(lines)) == list(range(40))
        assert lines == sorted(lines)
        assert len(lines) - 40 <= 1
    finally:
        server.stop()

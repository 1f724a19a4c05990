"""Issue 18 (items 3 and 7): a worker rides out a restart of the database server (argyro_fw.db.outage).

A real `argyro rlaunch rapidfire` worker on its own embedded server runs a two-firework workflow. The first
firework's task (a PyTask) writes to the results store a few seconds after it starts; the server is SIGKILLed
just after the task starts and started again with `argyro db start --path DIR` (its recorded port) seconds
after the write was due. The write, the pings and the report of the firework's end wait for the server: both
fireworks COMPLETE with one launch each, the worker exits 0 and the record is stored once. With
``$ARGYRO_DB_OUTAGE_S`` shorter than the outage the worker gives up with the connection error instead (the wait
is bounded). A command-line process never waits: `argyro results` without a server fails at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pymongo
import pytest
from chaos import _running
from conftest import BIN, free_port, run
from fireworks import Firework, PyTask, ScriptTask, Workflow

from argyro_fw.db.embedded import EmbeddedServer
from argyro_fw.launchpad import get_launchpad

pytestmark = pytest.mark.filterwarnings("ignore")

WRITE_AFTER_S = 3.0  # the first firework writes to the store this long after it starts
DOWN_S = 8.0  # the server is down this long (killed just after the firework started)

TASK_MODULE = '''
import time
from argyro_fw import store


def slow_write(after_s, marker):
    open(marker + ".started", "w").close()
    time.sleep(after_s)
    called = time.time()
    # the FireTask side of the store: the worker's database (ARGYRO_DB_URI here)
    store.update_study(store.database(), "outage", {"called_at": called})
    with open(marker, "w") as f:
        f.write(f"{called} {time.time()}")
'''


@pytest.fixture
def site(tmp_path):
    """(server folder, port, launchpad folder, environment) of a throw-away embedded server and `argyro init`."""
    path = tmp_path / "db"
    port = free_port()
    EmbeddedServer(path).start(port=port, auth=False)
    env = {k: v for k, v in os.environ.items() if k not in ("ARGYRO_CONFIG",)}
    env.update(ARGYRO_HOME=str(tmp_path / "home"), ARGYRO_DB_URI=f"mongodb://127.0.0.1:{port}/outage",
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "mods"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "outage_task.py").write_text(TASK_MODULE)
    run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env)
    get_launchpad(tmp_path / "lp" / "my_launchpad.yaml").reset("", require_password=False)
    yield path, port, tmp_path / "lp", env
    EmbeddedServer(path).stop()


def _workflow(lp, side: Path) -> None:
    first = Firework(PyTask(func="outage_task.slow_write", args=[WRITE_AFTER_S, str(side) + ".write"]),
                     name="writes-during-outage")
    second = Firework(ScriptTask.from_str(f"echo second >> {side}"), name="after")
    lp.add_wf(Workflow([first, second], {first: [second]}))


def _kill_server(path: Path) -> None:
    pid = int((path / "secantusd.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    while _running(pid):  # until it is gone or a zombie
        time.sleep(0.05)


def _start_worker(lpdir: Path, env: dict, cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    log = open(cwd / "worker.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([str(BIN / "argyro"), "rlaunch", "-l", str(lpdir / "my_launchpad.yaml"), "-w",
                             str(lpdir / "my_fworker.yaml"), "rapidfire", "--nlaunches", "0"],
                            env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = cwd / "worker.log"
    return proc


def _finish(worker: subprocess.Popen, timeout: float) -> str:
    """The worker's output once it ended (it is killed, and the test fails, after ``timeout`` seconds)."""
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        raise AssertionError(f"the worker did not end within {timeout} s:\n{worker.log.read_text()[-4000:]}") from None
    return worker.log.read_text()


def _wait_running(side: Path, timeout: float = 60) -> None:
    """Until the first firework's task runs (its marker file)."""
    deadline = time.monotonic() + timeout
    while not Path(str(side) + ".write.started").exists():
        assert time.monotonic() < deadline, "the first firework's task never started"
        time.sleep(0.05)


def _wait_checked_out(lp, timeout: float = 60) -> None:
    """Until the first firework is RUNNING in the database (its rocket is still setting up)."""
    deadline = time.monotonic() + timeout
    while not lp.fireworks.find_one({"name": "writes-during-outage", "state": "RUNNING"}):
        assert time.monotonic() < deadline, "the first firework never started"
        time.sleep(0.02)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("moment", ["task", "checkout"])
def test_rlaunch_rides_out_a_database_restart(site, tmp_path, moment):
    """The server is killed while the first firework's task runs (its store write falls in the outage: the run goes
    on), or just after the firework was checked out (the rocket's own bookkeeping falls in it: a checkout cut in the
    middle is rerun by its own worker once the server is back)."""
    path, port, lpdir, env = site
    lp = get_launchpad(lpdir / "my_launchpad.yaml")
    _workflow(lp, tmp_path / "side")
    worker = _start_worker(lpdir, env, tmp_path / "w")
    try:
        if moment == "task":
            _wait_running(tmp_path / "side")
        else:
            _wait_checked_out(lp)
        _kill_server(path)
        t_down = time.time()
        time.sleep(DOWN_S)  # the task's write falls in the outage
        out = run([str(BIN / "argyro"), "db", "start", "--no-auth", "--path", str(path)], env).stdout  # same port
        assert f":{port}" in out, out
        t_up = time.time()
        output = _finish(worker, 120)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode == 0, output[-3000:]
    assert "lost the database connection" in output and "the database answers again" in output, output[-3000:]
    db = pymongo.MongoClient("127.0.0.1", port).outage
    fws = {f["name"]: f for f in db.fireworks.find({})}
    assert {n: f["state"] for n, f in fws.items()} == {"writes-during-outage": "COMPLETED", "after": "COMPLETED"}
    assert all(len(f["launches"]) == 1 for f in fws.values()), fws  # each COMPLETED by one run
    if moment == "task":  # the firework's run went on across the outage: it was never rerun
        assert not any(f.get("archived_launches") for f in fws.values()), fws
    # the store's write was called while the server was down and returned once it was back: stored once
    called, returned = map(float, (tmp_path / "side.write").read_text().split())
    if moment == "task":
        assert t_down < called < t_down + DOWN_S < returned <= t_up + 2, (t_down, called, t_up, returned)
    study = list(db.studies.find({"name": "outage"}))
    assert len(study) == 1 and study[0]["called_at"] == called
    assert (tmp_path / "side").read_text().split() == ["second"]


@pytest.mark.timeout(240)
def test_the_wait_is_bounded_and_a_command_does_not_wait(site, tmp_path):
    path, port, lpdir, env = site
    lp = get_launchpad(lpdir / "my_launchpad.yaml")
    _workflow(lp, tmp_path / "side")
    worker = _start_worker(lpdir, dict(env, ARGYRO_DB_OUTAGE_S="4"), tmp_path / "w")
    try:
        _wait_running(tmp_path / "side")
        _kill_server(path)
        t0 = time.monotonic()
        output = _finish(worker, 120)
        waited = time.monotonic() - t0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode != 0 and ("AutoReconnect" in output or "ServerSelectionTimeout" in output), output[-2000:]
    assert waited < 60, waited  # 4 s of waiting per call, not the default 600 s
    # a command-line process fails at once, naming the database
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "argyro"), "results", "-l", str(lpdir / "my_launchpad.yaml")], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and time.monotonic() - t0 < 30, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and str(port) in p.stdout + p.stderr, p.stderr
    # after the restart, `argyro recover` reruns the firework the worker left RUNNING and a worker completes it
    run([str(BIN / "argyro"), "db", "start", "--no-auth", "--path", str(path)], env)
    rep = run([str(BIN / "argyro"), "recover", "-l", str(lpdir / "my_launchpad.yaml"), "--observe", "0.2"], env).stdout
    first = lp.fireworks.find_one({"name": "writes-during-outage"})["fw_id"]
    assert f"lost runs rerun: [{first}]" in rep, rep
    again = _start_worker(lpdir, env, tmp_path / "w2")
    output = _finish(again, 120)
    assert again.returncode == 0, output[-2000:]
    assert {f["state"] for f in lp.fireworks.find({})} == {"COMPLETED"}


def test_the_limit_holds_for_each_outage_not_from_the_start(db_settings, monkeypatch):
    """A worker that has run longer than $ARGYRO_DB_OUTAGE_S still waits out its next outage."""
    from pymongo.errors import AutoReconnect

    from argyro_fw.recovery import riding_out_outages

    monkeypatch.setenv("ARGYRO_DB_OUTAGE_S", "1")
    lp = get_launchpad(settings=db_settings)
    calls = []

    def launcher(launchpad):
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(1.5)  # longer than the limit, then the connection is lost once (the server answers again)
            raise AutoReconnect("connection closed")
        return "went on"

    assert riding_out_outages(launcher)(lp) == "went on" and len(calls) == 2

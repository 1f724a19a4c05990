"""Shared fixtures: a real embedded MongoDB (SecantusDB) server, never an in-process mock.

If ``$ARGYRO_TEST_DB_URI`` is set (``.ci/run`` sets it to the server it started), tests use that
server; otherwise one server is started for the session in a temporary directory on a free port.
Each test gets its own database name, so tests never see each other's documents.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pymongo
import pytest

from argyro_fw.db.embedded import EmbeddedServer
from argyro_fw.settings import DBSettings, parse_uri

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def auth_server(path: Path, user: str, password: str):
    """An embedded MongoDB with authentication on (as `argyro db start` makes it: its own admin, password in
    path/admin.password) and one more root user ``user``, as a site MongoDB has; yields its port, stops it
    after (a generator for fixtures: ``yield from auth_server(...)``)."""
    server = EmbeddedServer(path)
    port = free_port()
    server.start(port=port, auth=True)
    try:
        admin = pymongo.MongoClient("127.0.0.1", port, **server.credentials())
        admin.admin.command("createUser", user, pwd=password, roles=["root"])
        admin.close()
        yield port
    finally:
        server.stop()


@pytest.fixture(scope="session")
def db_server(tmp_path_factory):
    """(host, port) of a running MongoDB wire-protocol server."""
    uri = os.environ.get("ARGYRO_TEST_DB_URI")
    if uri:
        s = parse_uri(uri, "$ARGYRO_TEST_DB_URI")
        yield s.host, s.port
        return
    server = EmbeddedServer(tmp_path_factory.mktemp("dbserver"))
    st = server.start(port=free_port(), auth=False)  # throw-away data, one per session: no login (fast)
    yield st.host, st.port
    server.stop()


def fresh_db(db_server) -> DBSettings:
    """A database of its own (a new name) on the tests' server; drop it with :func:`drop_db`."""
    host, port = db_server
    return DBSettings(host=host, port=port, name=f"t_{uuid.uuid4().hex[:12]}")


def drop_db(db: DBSettings) -> None:
    pymongo.MongoClient(db.host, db.port).drop_database(db.name)


@pytest.fixture
def db_settings(db_server) -> DBSettings:
    db = fresh_db(db_server)
    yield db
    drop_db(db)


def cli_environment(tmp_path: Path, db_settings: DBSettings) -> dict:
    """Environment for CLI subprocesses: own ARGYRO_HOME, the database as ARGYRO_DB_URI."""
    env = dict(os.environ)
    env["ARGYRO_HOME"] = str(tmp_path / "argyro-home")
    env["ARGYRO_DB_URI"] = f"mongodb://{db_settings.host}:{db_settings.port}/{db_settings.name}"
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env.pop("ARGYRO_CONFIG", None)
    return env


@pytest.fixture
def cli_env(tmp_path, db_settings):
    """Environment for CLI subprocesses: own ARGYRO_HOME, the test's database as ARGYRO_DB_URI."""
    return cli_environment(tmp_path, db_settings)


def run(cmd, env, cwd=None, timeout=300, check=True) -> subprocess.CompletedProcess:
    """Run a command (list) and return the completed process; raise with its output on failure."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def launchpad_dir(tmp_path, cli_env):
    """A launchpad/ folder written by `argyro init` for the test's database, LaunchPad reset."""
    d = tmp_path / "launchpad"
    run([str(BIN / "argyro"), "init", "--dir", str(d)], cli_env)
    from argyro_fw.launchpad import get_launchpad

    get_launchpad(d / "my_launchpad.yaml").reset("", require_password=False)
    return d


@pytest.fixture(scope="session")
def small_interface():
    """A small Li | argyrodite cell (88 atoms): the argyrodite cell stacked on 3x3x2 bcc Li strained
    to its in-plane lattice (ase.build.stack)."""
    from ase.build import stack
    from pymatgen.io.ase import AseAtomsAdaptor

    from stacks import argyrodite, bcc_li

    arg = AseAtomsAdaptor.get_atoms(argyrodite())
    li = AseAtomsAdaptor.get_atoms(bcc_li()) * (3, 3, 2)
    li.set_cell([[9.859, 0, 0], [0, 9.859, 0], [0, 0, li.cell[2, 2]]], scale_atoms=True)
    return stack(arg, li, maxstrain=0.1, distance=2.0)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, small_interface):
    """A tiny MACE model trained here (mace_run_train, 5 epochs) on LJ-labelled rattled frames of
    the small interface cell: a real model covering Li, P, S, Cl; its quality is irrelevant."""
    from argyro_fw.demo.toy import label, rattled, train_tiny_mace

    frames = label(rattled(small_interface, 30, seed=0))
    # one OpenMP/torch thread for mace_run_train unless set (as `argyro rehearse` runs it): on a shared 2-core
    # machine torch's default threads only thrash
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        return train_tiny_mace(frames, tmp_path_factory.mktemp("tiny_mace"))
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)


@pytest.fixture(scope="session")
def mliap(tmp_path_factory, tiny_model):
    """(final.model, final.model-mliap_lammps.pt): the tiny model converted by the real mace_create_lammps_model."""
    import shutil

    from argyro_fw.mlip.final import convert_to_mliap

    d = tmp_path_factory.mktemp("final")
    model = d / "final.model"
    shutil.copy(tiny_model, model)
    return model, Path(convert_to_mliap(model))


class OfflineDemo:
    """The demo study run offline by tests/offline_run.py in the background (started at the first test that asks)."""

    def __init__(self, d: Path, env: dict, reuse: bool = False):
        self.d, self.env, self.log = d, env, d / "offline_run.log"
        self.proc = None
        self.rc = None
        if reuse:  # a finished run: its exit status is in its folder (missing: it did not finish)
            rc_file = d / "offline_run.rc"
            self.rc = int(rc_file.read_text()) if rc_file.is_file() else -1
        else:
            d.mkdir(parents=True)
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "offline_run.py"), str(d)],
                                         env=env, stdout=open(self.log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                                         start_new_session=True)

    def listening(self, timeout: float = 120.0) -> None:
        """Wait until its database listens (so that a run started next does not pick the same port)."""
        import time

        deadline = time.monotonic() + timeout
        while self.proc is not None and "[1/4] embedded database" not in self.output():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.output()[-3000:]
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def wait(self, timeout: float = 1800.0) -> int:
        """The run's exit status (a reused run's from DIR/offline_run.rc; -1 when it has none)."""
        if self.rc is None:
            self.rc = self.proc.wait(timeout=timeout)
        return self.rc


@pytest.fixture(scope="session")
def offline_demo(tmp_path_factory):
    """The demo study with every firework run offline (tests/offline_run.py), in the background from the first test
    that asks for it; ``$ARGYRO_OFFLINE_DEMO`` names a run's folder to reuse instead (.ci/run makes one beside the
    rehearsal; its log is DIR/offline_run.log, its exit status DIR/offline_run.rc). Its folder has the layout of
    `argyro demo`'s (tests/test_chaos.py compares its chaos run with it)."""
    reuse = os.environ.get("ARGYRO_OFFLINE_DEMO")
    if reuse:
        yield OfflineDemo(Path(reuse), dict(os.environ), reuse=True)
        return
    d = tmp_path_factory.mktemp("offline") / "demo"
    env = {k: v for k, v in os.environ.items() if k not in ("ARGYRO_DB_URI", "ARGYRO_CONFIG")}
    env.update(ARGYRO_HOME=str(d.parent / "home"), OMP_NUM_THREADS="1")  # one thread per job, as the chaos run's
    run = OfflineDemo(d, env)
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, 9)
        subprocess.run([str(BIN / "argyro"), "db", "stop", "--path", str(d / "db")], env=env, capture_output=True)

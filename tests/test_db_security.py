"""The embedded database is safe by default (issue 18.1): `argyro db start` turns authentication on with a
per-user admin whose random password lives in a 0600 file, the server folder is private (0700/0600), another
uid (``nobody``) can neither read the files nor list or write the databases, FireWorks' own ``lpad`` and
``rlaunch`` log in through the launchpad file `argyro init` writes (which holds no password), ``--no-auth``
warns on every start, and `argyro init` / `argyro db status` refuse a port that another process holds.

Real servers (SecantusDB) and real processes of another uid; the server folder sits in a folder every user
may enter (0755), so that only the server folder's own permissions keep ``nobody`` out.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymongo
import pytest
import yaml
from conftest import BIN, free_port, run

from argyro_fw.db.embedded import EmbeddedServer, port_in_use

NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"  # the venv's python lives under /root, which nobody may not enter
SITE = str(next(Path(sys.prefix).glob("lib/python3*/site-packages")))

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path(SYSTEM_PYTHON).exists(),
                                reason="needs root (to run a process as nobody) and /usr/bin/python3")


def as_nobody(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run Python ``code`` as uid/gid nobody, no other groups (pymongo from this venv's site-packages)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": SITE}
    return subprocess.run([SYSTEM_PYTHON, "-c", code], env=env, cwd="/tmp", user=NOBODY, group=NOBODY,
                          extra_groups=[], capture_output=True, text=True, timeout=timeout, check=False)


def spawn_as_nobody(code: str) -> subprocess.Popen:
    return subprocess.Popen([SYSTEM_PYTHON, "-c", code], env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"}, cwd="/tmp",
                            user=NOBODY, group=NOBODY, extra_groups=[], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)


def open_folder() -> Path:
    """A fresh folder under /tmp that every user may enter (0755)."""
    d = Path(tempfile.mkdtemp(prefix="argyro-sec-", dir="/tmp"))
    d.chmod(0o755)
    return d


def cli_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ARGYRO_DB_URI", "ARGYRO_CONFIG", "ARGYRO_DB_PASSWORD", "ARGYRO_DB_PASSWORD_FILE")}
    env["ARGYRO_HOME"] = str(home)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def secure_db():
    """`argyro db start` with its defaults, in $ARGYRO_HOME/db under a folder everyone may enter."""
    top = open_folder()
    home = top / "home"
    home.mkdir(mode=0o755)
    env = cli_env(home)
    port = free_port()
    p = run([str(BIN / "argyro"), "db", "start", "--port", str(port)], env)
    server = EmbeddedServer(home / "db")
    try:
        yield env, server, port, p
    finally:
        server.stop()
        shutil.rmtree(top, ignore_errors=True)


def test_auth_on_by_default_and_files_private(secure_db):
    env, server, port, start = secure_db
    pw = server.password_file.read_text().strip()
    assert len(pw) >= 40  # secrets.token_urlsafe(32)
    assert pw not in start.stdout + start.stderr and "WITHOUT" not in start.stderr
    assert str(server.password_file) in start.stdout  # says where the password is, never what
    state = json.loads(server.state_file.read_text())
    assert state["auth"] is True and state["port"] == port and state["uid"] == os.getuid()
    assert len(state["server_id"]) == 32 and state["pid"] == server.status().pid
    # the folder and everything in it: private to the owner
    for root, dirs, files in os.walk(server.path):
        for name in dirs:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o700, name
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, name
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o700
    assert {"admin.password", "server.json", "secantusd.log", "secantusd.pid", "data"} <= {p.name for p in server.path.iterdir()}
    # the server id is in the database, readable with the admin's login only
    admin = pymongo.MongoClient("127.0.0.1", port, **server.credentials())
    assert admin.admin.argyro_meta.find_one({"_id": "server"})["server_id"] == state["server_id"]
    admin.close()
    # no password in the log, the server record, or what `db uri` / `db status` print
    assert pw not in server.log_file.read_text() + server.state_file.read_text()
    p = run([str(BIN / "argyro"), "db", "status"], env)
    assert pw not in p.stdout + p.stderr and "answers" in p.stdout and str(port) in p.stdout
    p = run([str(BIN / "argyro"), "db", "uri"], env)
    assert pw not in p.stdout + p.stderr
    assert p.stdout.strip() == f"mongodb://{state['username']}@127.0.0.1:{port}/argyro?authSource=admin"


def test_other_uid_cannot_read_files_list_or_write(secure_db):
    """As nobody: the data, password and state files cannot be opened, the folder not listed; without a login
    the server refuses listDatabases, find and insert; a guessed password fails."""
    _, server, port, _ = secure_db
    probe = f"""
import json, os, pymongo
out = {{}}
for name, path in [("list_dir", {str(server.path)!r}), ("list_data", {str(server.data_dir)!r})]:
    try:
        os.listdir(path); out[name] = "ok"
    except PermissionError:
        out[name] = "denied"
for name, path in [("password", {str(server.password_file)!r}), ("state", {str(server.state_file)!r}),
                   ("wiredtiger", {str(server.data_dir / 'WiredTiger')!r}), ("log", {str(server.log_file)!r})]:
    try:
        open(path).read(); out[name] = "ok"
    except PermissionError:
        out[name] = "denied"
c = pymongo.MongoClient("127.0.0.1", {port}, serverSelectionTimeoutMS=5000)
for name, op in [("list_databases", lambda: c.list_database_names()),
                 ("find", lambda: c.argyro.fireworks.find_one()),
                 ("insert", lambda: c.argyro.fireworks.insert_one({{"spec": {{"_tasks": ["id > file"]}}}}))]:
    try:
        op(); out[name] = "ok"
    except pymongo.errors.OperationFailure as e:
        out[name] = e.code
g = pymongo.MongoClient("127.0.0.1", {port}, username={server.state()['username']!r}, password="guess",
                        authSource="admin", serverSelectionTimeoutMS=5000)
try:
    g.list_database_names(); out["guessed_password"] = "ok"
except pymongo.errors.OperationFailure as e:
    out["guessed_password"] = e.code
print(json.dumps(out))
"""
    p = as_nobody(probe)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out == {"list_dir": "denied", "list_data": "denied", "password": "denied", "state": "denied",
                   "wiredtiger": "denied", "log": "denied", "list_databases": 13, "find": 13, "insert": 13,
                   "guessed_password": 18}, out
    # the owner's login still works and nothing was written by nobody
    admin = pymongo.MongoClient("127.0.0.1", port, **server.credentials())
    assert admin.argyro.fireworks.count_documents({"spec._tasks": "id > file"}) == 0
    admin.close()


def test_fireworks_own_lpad_and_rlaunch_log_in_through_init_files(secure_db, tmp_path):
    """`argyro init` writes no password (only the password file's path); FireWorks' own lpad and rlaunch
    (the venv's console scripts, through the install-hook .pth) and `argyro lpad` authenticate with it."""
    env, server, port, _ = secure_db
    pw = server.password_file.read_text().strip()
    assert (Path(SITE) / "argyro_fireworks_counters.pth").is_file(), "run `argyro install-hook` (make install)"
    d = tmp_path / "lp"
    p = run([str(BIN / "argyro"), "init", "--dir", str(d)], env)
    assert pw not in p.stdout + p.stderr
    written = [f for f in d.iterdir() if f.is_file()]
    assert len(written) >= 3
    for f in written:
        assert pw not in f.read_text(), f
    lp = d / "my_launchpad.yaml"
    assert f"argyro_password_file: \"{server.password_file}\"" in lp.read_text()
    today = datetime.date.today().strftime("%Y-%m-%d")
    out = run([str(BIN / "lpad"), "-l", str(lp), "reset", "--password", today], env)
    assert pw not in out.stdout + out.stderr
    run([str(BIN / "lpad"), "-l", str(lp), "add_scripts", "echo secured > out.txt", "-n", "hello"], env)
    out = run([str(BIN / "lpad"), "-l", str(lp), "get_wflows", "-d", "count"], env)
    assert out.stdout.strip().splitlines()[-1] == "1"
    work = tmp_path / "work"
    work.mkdir()
    out = run([str(BIN / "rlaunch"), "-l", str(lp), "-w", str(d / "my_fworker.yaml"), "singleshot"], env, cwd=work)
    assert pw not in out.stdout + out.stderr
    out = run([str(BIN / "argyro"), "lpad", "-l", str(lp), "get_fws", "-s", "COMPLETED", "-d", "count"], env)
    assert out.stdout.strip().splitlines()[-1] == "1"
    assert [f.read_text() for f in work.rglob("out.txt")] == ["secured\n"]
    # a FireTask's results database under plain FireWorks (its worker's env names the user, not the file):
    # found through the launchpad file loaded by the process
    task = ("from fireworks import FWorker, LaunchPad\n"
            "from argyro_fw import store\n"
            f"LaunchPad.from_file({str(lp)!r})\n"
            f"env = FWorker.from_file({str(d / 'my_fworker.yaml')!r}).env\n"
            "assert 'password' not in env['argyro_db']\n"
            "store.database({'_fw_env': env}).probe.insert_one({'ok': 1})\n"
            "print(store.database({'_fw_env': env}).probe.count_documents({}))\n")
    out = run([sys.executable, "-c", task], env)
    assert out.stdout.strip().splitlines()[-1] == "1"
    # the password is nowhere in the study database either
    admin = pymongo.MongoClient("127.0.0.1", port, **server.credentials())
    for coll in admin.argyro.list_collection_names():
        assert pw not in str(list(admin.argyro[coll].find({}))), coll
    admin.close()
    # and without the password file FireWorks is refused: authentication is really on
    bad = lp.read_text().replace(str(server.password_file), str(tmp_path / "missing"))
    (tmp_path / "bad.yaml").write_text(bad)
    out = run([str(BIN / "lpad"), "-l", str(tmp_path / "bad.yaml"), "get_wflows", "-d", "count"], env, check=False)
    assert out.returncode != 0 and "password file" in out.stderr and pw not in out.stderr


def test_no_auth_warns_on_every_start_and_auth_locks_an_open_folder(tmp_path):
    """--no-auth starts an open server and says so on stderr at every start (and in `db status`); a later
    default start of the same folder creates the admin, makes the files private and refuses anonymous clients."""
    top = open_folder()
    try:
        env = cli_env(top / "home")
        path = top / "open-db"
        port = free_port()
        server = EmbeddedServer(path)
        for i in range(2):
            p = run([str(BIN / "argyro"), "db", "start", "--no-auth", "--path", str(path), "--port", str(port)], env)
            assert "WARNING" in p.stderr and "WITHOUT authentication" in p.stderr and "NO authentication" in p.stdout
            pymongo.MongoClient("127.0.0.1", port).argyro.probe.insert_one({"open": True})  # anyone may write
            if i == 0:
                s = run([str(BIN / "argyro"), "db", "status", "--path", str(path)], env)
                assert "NO authentication" in s.stdout and "WITHOUT authentication" in s.stderr
            server.stop()
        assert not (path / "admin.password").exists()
        server.start(port=port, auth=True)  # what `argyro db start` does by default
        assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
        assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in server.data_dir.iterdir())
        with pytest.raises(pymongo.errors.OperationFailure) as exc:
            pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=5000).list_database_names()
        assert exc.value.code == 13
        admin = pymongo.MongoClient("127.0.0.1", port, **server.credentials())
        assert admin.argyro.probe.count_documents({"open": True}) == 2  # the data survived
        admin.close()
        server.stop()
    finally:
        EmbeddedServer(top / "open-db").stop()
        shutil.rmtree(top, ignore_errors=True)


def test_first_start_admits_only_its_own_client(tmp_path):
    """While the admin is created (authentication still off) the server admits only a client holding the
    throw-away key of the private folder (mutual TLS): another user connecting then gets nothing."""
    server = EmbeddedServer(tmp_path / "db")
    server._secure_dirs()
    server_tls, client_tls = server._provision_tls()
    assert server_tls and stat.S_IMODE(Path(client_tls["tlsCertificateKeyFile"]).stat().st_mode) == 0o600
    port = free_port()
    proc = server._spawn(port, auth=False, extra=server_tls)
    try:
        server._wait_ready(proc, port, 60, **client_tls)
        for kw in ({}, {"tls": True, "tlsAllowInvalidCertificates": True}):
            with pytest.raises(pymongo.errors.PyMongoError):
                pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=1500, **kw).list_database_names()
    finally:
        server._terminate(proc.pid)


SQUAT = """
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port}))
s.listen()
print("listening", flush=True)
s.settimeout(0.2)
end = time.time() + 120
while time.time() < end:
    try:
        c, _ = s.accept()
        c.close()
    except OSError:
        pass
"""


def _refused(p: subprocess.CompletedProcess, port: int, *words: str) -> str:
    err = p.stderr.strip()
    assert p.returncode not in (0, None) and len(err.splitlines()) == 1 and "Traceback" not in err, (p.returncode, err)
    assert f"port {port}" in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def test_squatted_port_refused_by_init_and_status(tmp_path):
    """After `argyro db stop` another uid listens on the recorded port: `argyro db status` and `argyro init`
    refuse it (rc != 0, one line naming the port and what holds it) and write nothing; the same for a plain
    second SecantusDB of ours on that port, and for a running server whose stored server id differs from
    server.json's."""
    top = open_folder()
    env = cli_env(top / "home")
    port = free_port()
    squatter = None
    other = EmbeddedServer(top / "other-db")
    server = EmbeddedServer(top / "home" / "db")
    try:
        server.start(port=port, auth=True)
        server.stop()
        recorded_pid = server.state()["pid"]

        # 1. a process of another uid on the recorded port
        squatter = spawn_as_nobody(SQUAT.format(port=port))
        assert squatter.stdout.readline().strip() == "listening"
        p = run([str(BIN / "argyro"), "db", "status"], env, check=False)
        _refused(p, port, f"pid {recorded_pid} is not running", "uid 65534")
        for extra in ([], ["--no-check"]):
            p = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp"), *extra], env, check=False)
            _refused(p, port, "uid 65534", "not by the server recorded")
            assert not (tmp_path / "lp").exists()
        # server.json naming the squatter's own pid: not ours either
        state = server.state()
        server.state_file.write_text(json.dumps(dict(state, pid=squatter.pid)))
        p = run([str(BIN / "argyro"), "db", "status"], env, check=False)
        _refused(p, port, f"pid {squatter.pid} belongs to uid 65534")
        server.state_file.write_text(json.dumps(state))
        os.killpg(squatter.pid, signal.SIGKILL)
        squatter.wait()
        squatter = None
        deadline = time.monotonic() + 10
        while port_in_use("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)

        # 2. a plain second SecantusDB (ours, another folder, no login) on the recorded port
        other.start(port=port, auth=False)
        p = run([str(BIN / "argyro"), "db", "status"], env, check=False)
        _refused(p, port, "secantusd", f"pid {recorded_pid} is not running")
        p = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env, check=False)
        _refused(p, port, "secantusd")
        assert not (tmp_path / "lp").exists()
        other.stop()

        # 3. our server runs, but the database holds another server id than server.json
        server.start(port=port, auth=True)
        state = server.state()
        server.state_file.write_text(json.dumps(dict(state, server_id="0" * 32)))
        p = run([str(BIN / "argyro"), "db", "status"], env, check=False)
        _refused(p, port, "server id", state["server_id"])
        p = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env, check=False)
        _refused(p, port, "server id")
        assert not (tmp_path / "lp").exists()
        server.state_file.write_text(json.dumps(state))
        assert "answers" in run([str(BIN / "argyro"), "db", "status"], env).stdout
    finally:
        if squatter is not None:
            os.killpg(squatter.pid, signal.SIGKILL)
            squatter.wait()
        other.stop()
        server.stop()
        shutil.rmtree(top, ignore_errors=True)


def _cluster_address() -> str | None:
    """An IPv4 address of this machine other than loopback (what compute nodes would use), if it has one."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    return next((a for a in out if "." in a and not a.startswith("127.")), None)


@pytest.fixture
def cluster_home():
    """(this machine's non-loopback address, a folder everyone may enter, the CLI environment with ARGYRO_HOME in it,
    a free port); the server of that ARGYRO_HOME is stopped afterwards."""
    addr = _cluster_address()
    if not addr:
        pytest.skip("this machine has no non-loopback IPv4 address")
    top = open_folder()
    try:
        yield addr, top, cli_env(top / "home"), free_port()
    finally:
        EmbeddedServer(top / "home" / "db").stop()
        shutil.rmtree(top, ignore_errors=True)


def test_db_start_on_a_cluster_address_needs_auth_and_init_writes_that_address(cluster_home):
    """Issue 18.2(a): `argyro db start --host ADDR` listens on ADDR only (127.0.0.1 refuses), with authentication;
    --no-auth with a non-loopback address is refused; `argyro init --site slurm` writes ADDR into the launchpad
    files (no warning) and warns when the database is this machine's loopback."""
    addr, top, env, port = cluster_home
    bad = run([str(BIN / "argyro"), "db", "start", "--no-auth", "--host", addr, "--port", str(port)], env,
              check=False)
    assert bad.returncode != 0 and f"--host {addr}: a database other machines can reach needs authentication" \
        in bad.stderr, bad.stderr
    assert not port_in_use(addr, port)
    run([str(BIN / "argyro"), "db", "start", "--host", addr, "--port", str(port)], env)
    server = EmbeddedServer(top / "home" / "db")
    assert server.host == addr and server.status().host == addr  # recorded: later commands find it
    client = pymongo.MongoClient(addr, port, serverSelectionTimeoutMS=5000, **server.credentials())
    client.argyro.probe.insert_one({"via": addr})
    assert client.argyro.probe.count_documents({"via": addr}) == 1
    client.close()
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):  # not on loopback
        pymongo.MongoClient("127.0.0.1", port, serverSelectionTimeoutMS=1500).admin.command("ping")
    with pytest.raises(pymongo.errors.OperationFailure):  # and not without the password
        pymongo.MongoClient(addr, port, serverSelectionTimeoutMS=5000).list_database_names()
    st = run([str(BIN / "argyro"), "db", "status"], env)
    assert f"{addr}:{port}" in st.stdout and "answers" in st.stdout
    init = run([str(BIN / "argyro"), "init", "--site", "slurm", "--dir", str(top / "lp")], env)
    lp = yaml.safe_load((top / "lp" / "my_launchpad.yaml").read_text())
    assert lp["host"] == addr and int(lp["port"]) == port and "WARNING" not in init.stderr
    secret = server.password_file.read_text().strip()
    assert all(secret not in f.read_text() for f in (top / "lp").iterdir())  # never the password itself
    run([str(BIN / "argyro"), "db", "stop"], env)
    # the same folder on loopback: init for a batch site says the compute nodes cannot reach it
    run([str(BIN / "argyro"), "db", "start", "--port", str(port)], env)
    init = run([str(BIN / "argyro"), "init", "--site", "slurm", "--dir", str(top / "lp2")], env)
    assert "WARNING" in init.stderr and "127.0.0.1" in init.stderr and "argyro db start --host" in init.stderr
    assert yaml.safe_load((top / "lp2" / "my_launchpad.yaml").read_text())["host"] == "127.0.0.1"


def test_db_tls_on_a_cluster_address_for_argyro_fireworks_and_store(cluster_home, tmp_path, monkeypatch):
    """`argyro db start --host ADDR --tls`: a self-signed certificate for ADDR (private, subjectAltName ADDR); a client
    without TLS or trusting another CA gets nowhere; `argyro init` writes the certificate as the CA file into the
    launchpad (mongoclient_kwargs) and the FireWorkers' argyro_db, and argyro's LaunchPad, FireWorks' own lpad and
    the FireTasks' store client all connect through TLS."""
    from argyro_fw import store
    from argyro_fw.launchpad import get_launchpad

    addr, top, env, port = cluster_home
    p = run([str(BIN / "argyro"), "db", "start", "--host", addr, "--tls", "--port", str(port)], env)
    server = EmbeddedServer(top / "home" / "db")
    cert = server.tls_cert_file
    assert "TLS, certificate" in p.stdout and cert.is_file() and stat.S_IMODE(cert.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.tls_key_file.stat().st_mode) == 0o600
    san = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName"],
                         capture_output=True, text=True, check=True).stdout
    assert f"IP Address:{addr}" in san
    creds = server.credentials()
    with pytest.raises(pymongo.errors.PyMongoError):  # plain TCP to a TLS server
        pymongo.MongoClient(addr, port, serverSelectionTimeoutMS=2000, **creds).admin.command("ping")
    other = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(tmp_path / "k.pem"), "-out", str(other), "-days", "1", "-subj",
                    "/CN=other", "-addext", f"subjectAltName=IP:{addr}"], capture_output=True, check=True)
    with pytest.raises(pymongo.errors.ServerSelectionTimeoutError):  # a CA it was not signed by
        pymongo.MongoClient(addr, port, serverSelectionTimeoutMS=2000, tls=True, tlsCAFile=str(other),
                            **creds).admin.command("ping")
    ok = pymongo.MongoClient(addr, port, serverSelectionTimeoutMS=5000, tls=True, tlsCAFile=str(cert), **creds)
    assert ok.admin.command("ping")["ok"] == 1
    ok.close()
    assert "answers" in run([str(BIN / "argyro"), "db", "status"], env).stdout
    run([str(BIN / "argyro"), "init", "--site", "slurm", "--dir", str(top / "lp")], env)
    lpf = top / "lp" / "my_launchpad.yaml"
    lp_doc = yaml.safe_load(lpf.read_text())
    assert lp_doc["host"] == addr and lp_doc["mongoclient_kwargs"]["tls"] is True
    assert lp_doc["mongoclient_kwargs"]["tlsCAFile"] == str(cert)
    worker = yaml.safe_load((top / "lp" / "my_fworker.vasp.yaml").read_text())
    assert worker["env"]["argyro_db"]["tls_ca_file"] == str(cert)
    lp = get_launchpad(lpf)  # argyro's LaunchPad from the file
    assert lp.fireworks.count_documents({}) == 0
    lpad = run([str(BIN / "lpad"), "-l", str(lpf), "get_wflows", "-d", "count"], env)  # FireWorks' own lpad
    assert lpad.stdout.strip().splitlines()[-1] == "0", lpad.stdout + lpad.stderr
    monkeypatch.setenv("ARGYRO_DB_PASSWORD_FILE", str(server.password_file))
    settings = store.settings_from_spec({"_fw_env": worker["env"]})  # what a FireTask on a compute node uses
    assert settings.tls_ca_file == str(cert)
    c = store.client(settings)
    c[settings.name].probe.insert_one({"tls": True})
    assert c[settings.name].probe.count_documents({"tls": True}) == 1
    store.close_all()

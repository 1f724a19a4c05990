"""The embedded MongoDB: a SecantusDB wire-protocol server run as its own background process.

SecantusDB is GPL-2.0: argyro never imports it, it starts ``secantusd-py`` as a separate process
and talks to it over the MongoDB wire protocol with pymongo (as one uses any database server).

Layout of a server directory (default ``$ARGYRO_HOME/db``; the folder and everything in it are
private to the owner: folders 0700, files 0600)::
    data/            WiredTiger files (survive restarts)
    admin.password   the password of the server's admin user (authentication on, the default)
    secantusd.pid    pid of the running server
    server.json      host, port, pid, uid, server id, auth, TLS and admin user name of the last start
    tls-cert.pem     with --tls: the server's self-signed certificate (clients' CA file) for its address
    tls-key.pem      with --tls: its private key
    secantusd.log    the server's log

Authentication (SCRAM-SHA-256) is on by default: the first authenticated start creates the admin
user ``argyro-<login>`` (role root) with a random password (``secrets.token_urlsafe(32)``) written to
``admin.password``. SecantusDB creates users only while authentication is off, so that first start
runs the server once without authentication on a random free port (never the recorded one) behind
mutual TLS with a throw-away key made by ``openssl`` in the private folder (no other client can
connect), creates the user, stops it and starts it with ``--auth``. A folder that an older argyro or a
--no-auth start left open gets the admin and its permissions the same way. ``auth=False`` is for
throw-away data only.

Server identity: every start draws a random server id, records it in ``server.json`` and stores it
in the database (``admin.argyro_meta``, written with the admin's credentials); :meth:`EmbeddedServer.check_identity`
refuses a server whose pid, owner, command line or stored id differ (another process on the port).

Writes are made durable with ``--sync-on-commit`` (PLATFORM.md: no acknowledged write is lost on
SIGKILL with it, at ~15 % fewer inserts/s).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pymongo
import pymongo.errors

from ..errors import DatabaseError
from ..paths import argyro_home

DEFAULT_PORT = 27017
#: the database that holds the admin user and argyro's server-identity document
ADMIN_DB = "admin"
#: collection (in ADMIN_DB) holding the server-identity document {_id: "server", server_id, pid}
META_COLLECTION = "argyro_meta"
PASSWORD_FILE = "admin.password"
_PRIVATE_DIR, _PRIVATE_FILE = 0o700, 0o600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


LOOPBACK = "127.0.0.1"
#: the server's self-signed TLS certificate and key (``argyro db start --tls``), in the private server folder
TLS_CERT_FILE = "tls-cert.pem"
TLS_KEY_FILE = "tls-key.pem"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback, which no other machine reaches."""
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def port_in_use(host: str, port: int) -> bool:
    """True if something listens on (host, port) or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def listener(port: int) -> str:
    """Who listens on TCP ``port`` (from /proc/net/tcp*): 'pid N (command), uid U', as far as we may see."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                found.append((int(f[7]), f[9]))
    if not found:
        return "an unknown process"
    uid, inode = found[0]
    target = f"socket:[{inode}]"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                cmd = "".join(c if c.isprintable() else " " for c in " ".join(_cmdline(int(proc.name)).split()))[:80]
                return f"pid {proc.name} ({cmd}), uid {uid}"
        except OSError:
            continue
    return f"a process of uid {uid}"


def server_executable() -> str:
    """Path of ``secantusd-py``: next to this Python first, then on PATH."""
    cand = Path(sys.executable).parent / "secantusd-py"
    if cand.exists():
        return str(cand)
    found = shutil.which("secantusd-py")
    if not found:
        raise DatabaseError("secantusd-py not found: install the SecantusDB package (pip install SecantusDB==0.7.0b3)")
    return found


def admin_user_name() -> str:
    """The per-user admin of one's own embedded servers: ``argyro-<login>``."""
    try:
        login = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        login = f"uid{os.getuid()}"
    return f"argyro-{login}"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600 from the first byte) through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerStatus:
    running: bool
    pid: int | None
    host: str
    port: int | None
    path: Path
    auth: bool = False
    username: str | None = None

    @property
    def uri(self) -> str:
        """The server's URI (user name when authentication is on; never a password)."""
        if self.auth and self.username:
            return f"mongodb://{self.username}@{self.host}:{self.port}/?authSource={ADMIN_DB}"
        return f"mongodb://{self.host}:{self.port}/"


class EmbeddedServer:
    """Start, stop and query one embedded server directory."""
    def __init__(self, path: str | os.PathLike | None = None, host: str | None = None):
        """``host``: the address the server listens on (``argyro db start --host``); default the address of its
        last start (server.json), else 127.0.0.1."""
        self.path = Path(path).expanduser().resolve() if path else argyro_home() / "db"
        self.host = host or str(self.state().get("host") or LOOPBACK)

    # files -------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.path / "data"

    @property
    def pid_file(self) -> Path:
        return self.path / "secantusd.pid"

    @property
    def state_file(self) -> Path:
        return self.path / "server.json"

    @property
    def log_file(self) -> Path:
        return self.path / "secantusd.log"

    @property
    def password_file(self) -> Path:
        return self.path / PASSWORD_FILE

    @property
    def tls_cert_file(self) -> Path:
        """The server's self-signed certificate (``--tls``): what clients trust as their CA file."""
        return self.path / TLS_CERT_FILE

    @property
    def tls_key_file(self) -> Path:
        return self.path / TLS_KEY_FILE

    def tls_client_kwargs(self) -> dict:
        """pymongo keyword arguments for the server's TLS (empty when it runs without ``--tls``)."""
        return {"tls": True, "tlsCAFile": str(self.tls_cert_file)} if self.state().get("tls") else {}

    def _make_tls_cert(self) -> None:
        """A self-signed certificate for ``self.host`` (its IP address, or its name, as subjectAltName) and its key,
        private to the owner (jobs of the same user read the certificate as their CA file); made again when the
        host changes."""
        openssl = shutil.which("openssl")
        if not openssl:
            raise DatabaseError("--tls needs openssl to make the server's certificate; install it or start without --tls")
        try:
            ipaddress.ip_address(self.host)
            san = f"IP:{self.host}"
        except ValueError:
            san = f"DNS:{self.host}"
        if self.tls_cert_file.is_file() and self.tls_key_file.is_file():
            out = subprocess.run([openssl, "x509", "-in", str(self.tls_cert_file), "-noout", "-ext", "subjectAltName"],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0 and san.replace("IP:", "IP Address:") in out.stdout:
                return
        proc = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(self.tls_key_file), "-out", str(self.tls_cert_file), "-days", "825",
             "-subj", f"/CN=argyro-db {self.host}", "-addext", f"subjectAltName={san}"],
            capture_output=True, text=True, check=False, umask=0o077)
        if proc.returncode != 0:
            raise DatabaseError(f"openssl could not make the TLS certificate in {self.path}: "
                                f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")

    def state(self) -> dict:
        """server.json of the last start ({} when never started or unreadable)."""
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def recorded_port(self) -> int:
        """The port of the last start (or the default when never started)."""
        try:
            return int(self.state()["port"])
        except (KeyError, TypeError, ValueError):
            return DEFAULT_PORT

    def credentials(self) -> dict:
        """pymongo keyword arguments that log in as the admin (empty when authentication is off).

        The password is read from ``admin.password`` here and handed to pymongo only."""
        state = self.state()
        if not state.get("auth"):
            return {}
        try:
            password = self.password_file.read_text().strip()
        except OSError as exc:
            raise DatabaseError(f"password file {self.password_file}: cannot be read ({exc.strerror})") from None
        return {"username": state.get("username") or admin_user_name(), "password": password, "authSource": ADMIN_DB}

    def _is_ours(self, pid: int) -> bool:
        """``pid`` is a secantusd of this directory, owned by us."""
        return _alive(pid) and _owner(pid) == os.getuid() and \
            f"--storage-path {self.data_dir} " in _cmdline(pid) + " " and "secantusd" in _cmdline(pid)

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_ours(pid) else None

    # queries -----------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        pid = self._pid()
        state = self.state()
        port = self.recorded_port() if (pid or state) else None
        host = state.get("host", self.host) if pid is not None else self.host
        return ServerStatus(running=pid is not None, pid=pid, host=host, port=port, path=self.path,
                            auth=bool(state.get("auth")), username=state.get("username"))

    def ping(self, port: int | None = None, timeout_s: float = 1.0, **client_kw) -> bool:
        """The server on ``port`` answers ``ping`` (needs no login)."""
        port = port or self.recorded_port()
        client_kw = client_kw or self.tls_client_kwargs()
        try:
            client = pymongo.MongoClient(
                self.host, port, serverSelectionTimeoutMS=int(timeout_s * 1000), connectTimeoutMS=int(timeout_s * 1000),
                **client_kw,
            )
            client.admin.command("ping")
            client.close()
            return True
        except Exception:
            return False

    def check_identity(self, connect: bool = True, timeout_s: float = 3.0) -> ServerStatus:
        """The status of this directory's server, after checking that what answers on its recorded port is it.

        Refused (DatabaseError, one line naming the port and what was found) when the recorded process is
        not alive, not ours (owner, command line) or not the one in server.json while something listens on
        the port, or (``connect``) when the server on the port does not hold the recorded server id or does
        not accept the admin's credentials. Without a server.json, or when nothing listens on a recorded
        port whose server is gone, the status says not running.
        """
        st = self.status()
        state = self.state()
        if not state:
            return st
        port = int(state.get("port", DEFAULT_PORT))
        where = f"port {port} on {self.host}"
        recorded = f"the server recorded in {self.state_file}"
        pid = state.get("pid")
        if not st.running or pid != st.pid or f"--port {port} " not in _cmdline(pid) + " ":
            if not port_in_use(self.host, port):
                return ServerStatus(False, None, self.host, port, self.path, st.auth, st.username)
            if not isinstance(pid, int) or not _alive(pid):
                why = f"pid {pid} is not running"
            elif _owner(pid) != os.getuid():
                why = f"pid {pid} belongs to uid {_owner(pid)}, not to us (uid {os.getuid()})"
            else:
                why = f"pid {pid} is not the secantusd of {self.data_dir} on port {port}"
            raise DatabaseError(f"{where} is held by {listener(port)}, not by {recorded} ({why}); "
                                "refusing to use it: stop that process or start ours on another --port")
        if not connect:
            return st
        try:
            client = pymongo.MongoClient(self.host, port, serverSelectionTimeoutMS=int(timeout_s * 1000),
                                         connectTimeoutMS=int(timeout_s * 1000), retryWrites=False, **self.credentials(),
                                         **self.tls_client_kwargs())
            doc = client[ADMIN_DB][META_COLLECTION].find_one({"_id": "server"})
            client.close()
        except pymongo.errors.OperationFailure as exc:
            raise DatabaseError(f"{where}: the server there refused {recorded}'s admin login ({exc.code}, "
                                f"{'authentication failed' if exc.code == 18 else 'not authorized'}); refusing to use it") from None
        except pymongo.errors.PyMongoError as exc:
            raise DatabaseError(f"{where}: the server there does not answer as a MongoDB server ({type(exc).__name__}); "
                                "refusing to use it") from None
        found = (doc or {}).get("server_id")
        if found != state.get("server_id"):
            raise DatabaseError(f"{where}: server id {found or 'none'} found in the database, {recorded} has "
                                f"{state.get('server_id')}: not our server; refusing to use it")
        return st

    # control -----------------------------------------------------------------------------
    def _secure_dirs(self) -> bool:
        """Make the server folder, data/ and the server's files private (0700/0600; a folder made by an older
        argyro or a --no-auth start is locked down too); True if data/ was empty (a new server)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=_PRIVATE_DIR)
        self.path.chmod(_PRIVATE_DIR)
        self.data_dir.mkdir(exist_ok=True, mode=_PRIVATE_DIR)
        fresh = not any(self.data_dir.iterdir())
        for root, dirs, files in os.walk(self.data_dir):
            os.chmod(root, _PRIVATE_DIR)
            for f in files:
                p = os.path.join(root, f)
                if not os.path.islink(p):
                    os.chmod(p, _PRIVATE_FILE)
        for p in (self.pid_file, self.state_file, self.log_file, self.password_file):
            if p.is_file() and not p.is_symlink():
                p.chmod(_PRIVATE_FILE)
        return fresh

    def _spawn(self, port: int, auth: bool, extra: list[str] | None = None) -> subprocess.Popen:
        cmd = [
            server_executable(),
            "--host", self.host,
            "--port", str(port),
            "--storage-path", str(self.data_dir),
            "--sync-on-commit",
            "--log-level", "WARNING",
        ]
        if auth:
            cmd.append("--auth")
        cmd += extra or []
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _PRIVATE_FILE)
        with os.fdopen(fd, "ab") as log:
            log.write(f"\n# argyro db start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n".encode())
            log.flush()
            # umask 077: every file the server makes (WiredTiger data, journal) is private to the owner
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                    cwd=self.path, umask=0o077)

    def _wait_ready(self, proc: subprocess.Popen, port: int, timeout_s: float, **client_kw) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DatabaseError(
                    f"the embedded database exited at start (code {proc.returncode}): {self._log_tail()}"
                )
            if self.ping(port, timeout_s=0.5, **client_kw):
                return
            time.sleep(0.1)
        self._terminate(proc.pid)
        self.pid_file.unlink(missing_ok=True)
        raise DatabaseError(f"the embedded database did not answer within {timeout_s:.0f} s; see {self.log_file}")

    def _provision_tls(self) -> tuple[list[str], dict]:
        """Server arguments and client keywords that admit only a client holding a throw-away key made here
        (mutual TLS; the key lives in the private server folder): ([], {}) when ``openssl`` is missing."""
        openssl = shutil.which("openssl")
        if not openssl:
            return [], {}
        key, cert, both = (self.path / f".provision-{n}.pem" for n in ("key", "cert", "both"))
        proc = subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=argyro-provision",
             "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, check=False, umask=0o077)
        if proc.returncode != 0:
            raise DatabaseError(f"openssl could not make the provisioning key in {self.path}: "
                                f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        _write_private(both, cert.read_text() + key.read_text())
        return (["--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-file", str(cert),
                 "--tls-require-client-cert"],
                {"tls": True, "tlsCAFile": str(cert), "tlsCertificateKeyFile": str(both)})

    def _provision(self, user: str, timeout_s: float) -> None:
        """Create (or reset) the admin ``user`` with a new random password in ``admin.password``.

        The server runs without authentication for this, on a random free port that is never recorded and
        (with ``openssl``) behind mutual TLS with a throw-away key, so no other local user can connect in
        that moment; it is stopped again, and only then is the password file replaced."""
        password = secrets.token_urlsafe(32)
        port = _free_port()
        host, self.host = self.host, LOOPBACK  # the open moment only ever on this machine's loopback
        try:
            server_tls, client_tls = self._provision_tls()
            proc = self._spawn(port, auth=False, extra=server_tls)
            try:
                self._wait_ready(proc, port, timeout_s, **client_tls)
                client = pymongo.MongoClient(self.host, port, serverSelectionTimeoutMS=5000, retryWrites=False,
                                             **client_tls)
                admin = client[ADMIN_DB]
                if admin.command("usersInfo", user)["users"]:
                    admin.command("updateUser", user, pwd=password, roles=["root"])
                else:
                    admin.command("createUser", user, pwd=password, roles=["root"])
                client.close()
            finally:
                self._terminate(proc.pid)
        finally:
            self.host = host
            for f in self.path.glob(".provision-*.pem"):
                f.unlink()
        _write_private(self.password_file, password + "\n")

    def start(self, port: int = DEFAULT_PORT, auth: bool = False, timeout_s: float = 30.0,
              tls: bool = False) -> ServerStatus:
        """Start the server in the background; return once it answers ``ping`` and holds its server id.

        With ``auth`` (what ``argyro db start`` does unless --no-auth) the admin user is created on the
        first such start (see the module docstring); ``auth=False`` leaves the data open to every local user.
        Raises DatabaseError if one already runs on this directory, if the port is taken, or if
        the server exits or does not answer within ``timeout_s``.
        """
        st = self.status()
        if st.running:
            raise DatabaseError(
                f"an embedded database is already running on {self.path} (pid {st.pid}, port {st.port}); "
                "use 'argyro db status' or 'argyro db stop'"
            )
        if not (1 <= port <= 65535):
            raise DatabaseError(f"--port {port}: expected a TCP port 1-65535")
        if not auth and not is_loopback(self.host):
            raise DatabaseError(f"--host {self.host}: a database other machines can reach needs authentication; "
                                "start it without --no-auth")
        grace = time.monotonic() + 3.0  # a just-killed server's socket can linger for a moment
        while port_in_use(self.host, port) and time.monotonic() < grace:
            time.sleep(0.2)
        if port_in_use(self.host, port):
            raise DatabaseError(
                f"port {port} on {self.host} is already in use by another process; choose another with --port"
            )
        fresh = self._secure_dirs()
        self.pid_file.unlink(missing_ok=True)
        user = admin_user_name()
        if auth and (fresh or not self.password_file.is_file()):
            self._provision(user, timeout_s)
        server_id = secrets.token_hex(16)
        tls_args = []
        if tls:
            self._make_tls_cert()
            tls_args = ["--tls-cert-file", str(self.tls_cert_file), "--tls-key-file", str(self.tls_key_file)]
        proc = self._spawn(port, auth, extra=tls_args)
        _write_private(self.pid_file, f"{proc.pid}\n")
        _write_private(self.state_file, json.dumps({
            "host": self.host, "port": port, "pid": proc.pid, "uid": os.getuid(), "server_id": server_id,
            "auth": auth, "username": user if auth else None, "tls": tls}))
        self._wait_ready(proc, port, timeout_s, **self.tls_client_kwargs())
        try:
            client = pymongo.MongoClient(self.host, port, serverSelectionTimeoutMS=5000, retryWrites=False,
                                         **self.credentials(), **self.tls_client_kwargs())
            client[ADMIN_DB][META_COLLECTION].replace_one(
                {"_id": "server"}, {"server_id": server_id, "pid": proc.pid, "uid": os.getuid()}, upsert=True)
            client.close()
        except pymongo.errors.PyMongoError as exc:
            self.stop()
            if isinstance(exc, pymongo.errors.OperationFailure) and exc.code == 18:
                raise DatabaseError(
                    f"password file {self.password_file}: does not match the admin user {user} of {self.data_dir} "
                    "(authentication failed); delete the file and start again to set a new password") from None
            raise DatabaseError(f"the embedded database on port {port} did not store its server id "
                                f"({type(exc).__name__})") from None
        return self.status()

    def _terminate(self, pid: int, timeout_s: float = 20.0) -> None:
        """SIGTERM ``pid`` and wait for it (SIGKILL after ``timeout_s``)."""
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            self._reap(pid)
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                self._reap(pid)
                time.sleep(0.05)
        self._reap(pid)

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGTERM the server recorded in the pid file (SIGKILL after ``timeout_s``).

        Returns False when none was running.
        """
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._terminate(pid, timeout_s)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the server (for durability tests): the pid file is left as a crash would."""
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                self._reap(pid)
                time.sleep(0.02)

    @staticmethod
    def _reap(pid: int) -> None:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_file.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "(no log)"
        return lines[-1][:300] if lines else "(empty log)"

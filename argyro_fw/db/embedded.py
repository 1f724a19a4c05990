"""The embedded MongoDB: a SecantusDB wire-protocol server run as its own background process.

SecantusDB is GPL-2.0: argyro never imports it, it starts ``secantusd-py`` as a separate process
and talks to it over the MongoDB wire protocol with pymongo (as one uses any database server).

Layout of a server directory (default ``$ARGYRO_HOME/db``)::
    data/            WiredTiger files (survive restarts)
    secantusd.pid    pid of the running server
    server.json      host, port and pid of the last start
    secantusd.log    the server's log

Writes are made durable with ``--sync-on-commit`` (PLATFORM.md: no acknowledged write is lost on
SIGKILL with it, at ~15 % fewer inserts/s).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pymongo

from ..errors import DatabaseError
from ..paths import argyro_home

DEFAULT_PORT = 27017


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


def port_in_use(host: str, port: int) -> bool:
    """True if something listens on (host, port) or the port cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def server_executable() -> str:
    """Path of ``secantusd-py``: next to this Python first, then on PATH."""
    cand = Path(sys.executable).parent / "secantusd-py"
    if cand.exists():
        return str(cand)
    found = shutil.which("secantusd-py")
    if not found:
        raise DatabaseError("secantusd-py not found: install the SecantusDB package (pip install SecantusDB==0.7.0b3)")
    return found


@dataclass
class ServerStatus:
    running: bool
    pid: int | None
    host: str
    port: int | None
    path: Path

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/"


class EmbeddedServer:
    """Start, stop and query one embedded server directory."""
    def __init__(self, path: str | os.PathLike | None = None, host: str = "127.0.0.1"):
        self.path = Path(path).expanduser().resolve() if path else argyro_home() / "db"
        self.host = host

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

    def recorded_port(self) -> int:
        """The port of the last start (or the default when never started)."""
        try:
            return int(json.loads(self.state_file.read_text())["port"])
        except (OSError, ValueError, KeyError):
            return DEFAULT_PORT

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if _alive(pid) and "secantusd" in _cmdline(pid):
            return pid
        return None

    # queries -----------------------------------------------------------------------------
    def status(self) -> ServerStatus:
        pid = self._pid()
        port = self.recorded_port() if (pid or self.state_file.exists()) else None
        if pid is not None:
            try:
                state = json.loads(self.state_file.read_text())
                host = state.get("host", self.host)
            except (OSError, ValueError):
                host = self.host
        else:
            host = self.host
        return ServerStatus(running=pid is not None, pid=pid, host=host, port=port, path=self.path)

    def ping(self, port: int | None = None, timeout_s: float = 1.0) -> bool:
        port = port or self.recorded_port()
        try:
            client = pymongo.MongoClient(
                self.host, port, serverSelectionTimeoutMS=int(timeout_s * 1000), connectTimeoutMS=int(timeout_s * 1000)
            )
            client.admin.command("ping")
            client.close()
            return True
        except Exception:
            return False

    # control -----------------------------------------------------------------------------
    def start(self, port: int = DEFAULT_PORT, auth: bool = False, timeout_s: float = 30.0) -> ServerStatus:
        """Start the server in the background; return once it answers ``ping``.

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
        grace = time.monotonic() + 3.0  # a just-killed server's socket can linger for a moment
        while port_in_use(self.host, port) and time.monotonic() < grace:
            time.sleep(0.2)
        if port_in_use(self.host, port):
            raise DatabaseError(
                f"port {port} on {self.host} is already in use by another process; choose another with --port"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self.pid_file.unlink(missing_ok=True)
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
        log = open(self.log_file, "ab")
        log.write(f"\n# argyro db start {time.strftime('%Y-%m-%dT%H:%M:%S')}: {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=self.path
        )
        log.close()
        self.pid_file.write_text(f"{proc.pid}\n")
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"host": self.host, "port": port, "pid": proc.pid, "auth": auth}))
        tmp.replace(self.state_file)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise DatabaseError(
                    f"the embedded database exited at start (code {proc.returncode}): {self._log_tail()}"
                )
            if self.ping(port, timeout_s=0.5):
                return self.status()
            time.sleep(0.1)
        self.stop()
        raise DatabaseError(f"the embedded database did not answer within {timeout_s:.0f} s; see {self.log_file}")

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGTERM the server recorded in the pid file (SIGKILL after ``timeout_s``).

        Returns False when none was running.
        """
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            self._reap(pid)
            time.sleep(0.05)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                self._reap(pid)
                time.sleep(0.05)
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

"""Ctrl-C (SIGINT, to the process or its whole process group) for argyro's commands.

The signal is seen by a watcher thread through :func:`signal.set_wakeup_fd`, so it acts even while the main
thread is busy in C code (LAMMPS, torch) that would delay a Python signal handler.

Commands that run fireworks in this process (``argyro demo``, ``argyro rlaunch``; :func:`install_rockets`):

1. first Ctrl-C: no new firework is checked out and none in flight is reported (a task that fails because
   its child got the SIGINT is never FIZZLED); the child processes this process started in its session get
   SIGTERM, then SIGKILL after ``GRACE_S``; every firework in flight is put back to READY (rerun; its launch
   is FIZZLED with the message "interrupted"); how to resume is printed; exit code 130. All within ~5 s.
   Processes this one started in another session are left alone: the demo's embedded database keeps
   running, as after a finished demo (``argyro db stop --path DIR/db`` stops it).
2. a second Ctrl-C: children get SIGKILL and the process exits at once. A firework in flight stays RUNNING;
   the next ``argyro recover`` (or ``argyro demo`` start) reruns it at once, since its worker's pid is dead.

Every other command (:func:`install_cli`): the first Ctrl-C raises KeyboardInterrupt in the main thread as
usual; a command still running ``WATCHDOG_S`` later is stopped with its children, and a second Ctrl-C stops
it at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from . import recovery

GRACE_S = 3.0  # children get SIGTERM, then SIGKILL this much later
PUT_BACK_S = 4.0  # the database work of putting fireworks back gets this long
WATCHDOG_S = 8.0  # a plain command still running this long after Ctrl-C is stopped
EXIT_CODE = 130

_mode: dict = {}
_count = 0
_wakeup: tuple[socket.socket, socket.socket] | None = None


# -- child processes ----------------------------------------------------------------------------------------
def descendants(root: int | None = None) -> list[tuple[int, str]]:
    """(pid, start time) of the live processes below ``root`` (default: this one) in its session; a
    subtree started in another session (a database server, a detached job) is left out."""
    root = root or os.getpid()
    sid = os.getsid(root)
    kids: dict[int, list[tuple[int, list[str]]]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = recovery._stat(int(name))
            if st and len(st) > 19:
                kids.setdefault(int(st[1]), []).append((int(name), st))
    out, todo = [], [root]
    while todo:
        for pid, st in kids.get(todo.pop(), []):
            if int(st[3]) == sid:
                todo.append(pid)
                if st[0] != "Z":
                    out.append((pid, st[19]))
    return out


def _alive(pid: int, start: str) -> bool:
    st = recovery._stat(pid)
    return bool(st) and st[0] != "Z" and st[19] == start


def stop_children(grace_s: float = GRACE_S) -> None:
    """SIGTERM every process below this one in its session, SIGKILL what is left after ``grace_s``."""
    procs = set(descendants())
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        if sig == signal.SIGTERM and grace_s <= 0:
            continue
        procs |= set(descendants())  # those spawned meanwhile
        for pid, start in procs:
            if _alive(pid, start):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in procs):
            time.sleep(0.05)


def _exit(write: Callable[[str], None] | None = None, text: str = "") -> None:
    if write and text:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal
            write(text)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(EXIT_CODE)


# -- the watcher ----------------------------------------------------------------------------------------------
def _watch(sock: socket.socket) -> None:
    global _count
    while True:
        try:
            data = sock.recv(64)
        except OSError:
            return
        if not data:
            return
        for b in data:
            if b != signal.SIGINT or not _mode:
                continue
            _count += 1
            if _count == 1:
                threading.Thread(target=_mode["first"], daemon=True, name="argyro-interrupt").start()
            else:
                _mode["second"]()


def _install(first: Callable[[], None], second: Callable[[], None], handler) -> Callable[[], None]:
    """Route SIGINT to ``first``/``second`` (run off the main thread) and ``handler`` (the Python-level one, in the
    main thread). Call from the main thread; returns a function that restores the previous handling."""
    global _wakeup, _count
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    if _wakeup is None:
        _wakeup = socket.socketpair()
        _wakeup[1].setblocking(False)
        threading.Thread(target=_watch, args=(_wakeup[0],), daemon=True, name="argyro-sigint").start()
    previous_mode, previous_handler = dict(_mode), signal.getsignal(signal.SIGINT)
    _mode.update(first=first, second=second)
    _count = 0
    signal.signal(signal.SIGINT, handler)
    previous_fd = signal.set_wakeup_fd(_wakeup[1].fileno(), warn_on_full_buffer=False)

    def restore() -> None:
        _mode.clear()
        _mode.update(previous_mode)
        signal.signal(signal.SIGINT, previous_handler)
        signal.set_wakeup_fd(previous_fd)

    return restore


def rockets_handler(signum, frame) -> None:
    """The Python-level SIGINT handler while rockets run: stop taking or reporting fireworks, raise nothing
    (an exception inside a task would FIZZLE its firework). The watcher thread does the rest."""
    recovery.stop_taking()


def install_rockets(hint: Callable[[list[int], list[int]], str], write: Callable[[str], None],
                    cleanup: Callable[[], None] | None = None) -> Callable[[], None]:
    """Ctrl-C handling for a process that runs rockets (module docstring). ``hint(put_back, left_running)``
    says how to resume; ``write`` prints to the user's terminal; ``cleanup`` runs before the exit."""

    def first() -> None:
        recovery.stop_taking()
        stop_children()
        result = {"done": [], "left": recovery.inflight_fw_ids()}

        def put_back() -> None:
            result["done"], result["left"] = recovery.put_back("interrupted by Ctrl-C (SIGINT); put back to READY")

        worker = threading.Thread(target=put_back, daemon=True)
        worker.start()
        worker.join(PUT_BACK_S)  # a database that does not answer leaves them RUNNING: `argyro recover` reruns them
        if cleanup:
            cleanup()
        _exit(write, hint(result["done"], result["left"]))

    def second() -> None:
        recovery.stop_taking()
        left = recovery.inflight_fw_ids()  # before the children die: the rocket then updates what is in flight
        try:
            stop_children(0)
            if cleanup:
                cleanup()
        finally:  # whatever fails on the way, a second Ctrl-C ends the process
            _exit(write, "\nstopped at once" + (f"; fireworks {left} stay RUNNING until `argyro recover` (or the "
                                                "next start) reruns them" if left else "") + "\n")

    return _install(first, second, rockets_handler)


def install_cli(write: Callable[[str], None] | None = None) -> Callable[[], None]:
    """Ctrl-C for every other command: KeyboardInterrupt, then a hard stop after ``WATCHDOG_S`` or a second Ctrl-C."""
    write = write or sys.stderr.write

    def first() -> None:
        time.sleep(WATCHDOG_S)
        if _mode.get("first") is not first:  # the command ended and restored the previous handling
            return
        stop_children(1.0)
        _exit(write, f"argyro: still running {WATCHDOG_S:g} s after Ctrl-C: stopped\n")

    def second() -> None:
        stop_children(0)
        _exit(write, "argyro: stopped at once\n")

    return _install(first, second, signal.default_int_handler)

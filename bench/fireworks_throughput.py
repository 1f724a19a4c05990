"""Fireworks per second on the embedded database: adding, and running with `rlaunch rapidfire`.

Starts its own SecantusDB server in a temporary directory (same flags as `argyro db start`),
adds N trivial one-task fireworks (one workflow, one insert batch, and N single-firework
workflows), then runs them with one `rlaunch rapidfire` process. Prints the figures.

Usage: python bench/fireworks_throughput.py [-n 200]
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from argyro_fw.db.embedded import EmbeddedServer
from argyro_fw.launchpad import get_launchpad, init_files
from argyro_fw.settings import DBSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200, help="number of fireworks (default 200)")
    args = ap.parse_args()
    from fireworks import Firework, ScriptTask, Workflow

    with tempfile.TemporaryDirectory(prefix="argyro-bench-") as tmp:
        tmp = Path(tmp)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = EmbeddedServer(tmp / "db")
        server.start(port=port)
        try:
            init_files(DBSettings(port=port, name="bench"), tmp / "lp")
            lp = get_launchpad(tmp / "lp" / "my_launchpad.yaml")
            lp.reset("", require_password=False)

            fws = [Firework(ScriptTask.from_str("true"), name=f"fw{i}") for i in range(args.n)]
            t0 = time.perf_counter()
            lp.add_wf(Workflow(fws, name="bench-one-wf"))
            t_add_one = time.perf_counter() - t0

            t0 = time.perf_counter()
            lp.bulk_add_wfs([Workflow([Firework(ScriptTask.from_str("true"))]) for _ in range(args.n)])
            t_add_many = time.perf_counter() - t0

            t0 = time.perf_counter()
            subprocess.run(
                [str(Path(sys.executable).parent / "rlaunch"), "-l", str(tmp / "lp" / "my_launchpad.yaml"),
                 "-w", str(tmp / "lp" / "my_fworker.yaml"), "-s", "rapidfire", "--sleep", "0"],
                cwd=tmp, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            t_run = time.perf_counter() - t0
            done = lp.fireworks.count_documents({"state": "COMPLETED"})
            assert done == 2 * args.n, f"only {done} of {2 * args.n} completed"
        finally:
            server.stop()
    print(f"add   {args.n} fireworks as one workflow:      {args.n / t_add_one:8.1f} fireworks/s ({t_add_one:.2f} s)")
    print(f"add   {args.n} one-firework workflows (bulk):  {args.n / t_add_many:8.1f} fireworks/s ({t_add_many:.2f} s)")
    print(f"run   {2 * args.n} fireworks, 1 rlaunch rapidfire: {2 * args.n / t_run:8.1f} fireworks/s ({t_run:.2f} s)")


if __name__ == "__main__":
    main()

"""Walltime-safe MD in segments: each segment continues from the newest complete restart file;
the merged trajectory keeps each segment's frames up to the next segment's start.

Run directory layout::
    system.data                 initial structure (LAMMPS data, types = protocol.elements)
    restart.<step>              LAMMPS restart files every restart_every steps
    segment_<k>/in.lammps       the input of segment k, its log and its dump traj.lammpstrj
    segment_<k>/start_step      the step segment k started from
    traj.lammpstrj              the merged trajectory (written by merge_segments)
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..analysis.trajectory import dump_frames
from ..core.serialise import atomic_path, write_atomic
from ..errors import ArgyroError
from .external import start_lammps
from .protocol import MDProtocol, render_input


def restart_files(run_dir: Path) -> list[tuple[int, Path]]:
    out = []
    for p in run_dir.glob("restart.*"):
        m = re.fullmatch(r"restart\.(\d+)", p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def restart_readable(path: Path) -> bool:
    """True if LAMMPS reads the restart file (a file cut by a kill mid-write is not)."""
    lmp = start_lammps()
    try:
        lmp.command(f"read_restart {path}")
        return True
    except Exception:
        return False
    finally:
        lmp.close()


def latest_restart(run_dir: Path) -> tuple[int, Path] | None:
    """The newest restart file LAMMPS can read; unreadable newer ones are skipped."""
    for step, p in reversed(restart_files(run_dir)):
        if restart_readable(p):
            return step, p
    return None


def next_segment(run_dir: Path, protocol: MDProtocol, engine: str, mliap_model: str | None = None) -> tuple[Path, int] | None:
    """Prepare the next segment's folder and input; None when the run is complete."""
    if (run_dir / "restart.final").exists():
        return None
    k = len(list(run_dir.glob("segment_*")))
    seg = run_dir / f"segment_{k}"
    latest = latest_restart(run_dir)
    start = latest[0] if latest else 0
    if start >= protocol.total_steps:
        return None
    text = render_input(protocol, engine, str(run_dir / "system.data"), str(seg / "traj.lammpstrj"),
                        str(run_dir / "restart"), str(latest[1]) if latest else None, start, mliap_model,
                        comment=f"segment {k} from step {start}")
    write_atomic(seg / "in.lammps", text)
    write_atomic(seg / "start_step", f"{start}\n")
    return seg, start


def _frames(dump: Path):
    """(step, frame text) of each complete frame of a LAMMPS dump (:func:`argyro_fw.analysis.trajectory.dump_frames`):
    a frame cut by the end of the file (a segment killed while writing it) is dropped with a warning; a malformed
    frame before the end is an error naming the file and line."""
    if not dump.exists():
        return
    for fr in dump_frames(dump):
        yield fr.step, fr.text()


def merge_segments(run_dir: Path, out: Path | None = None) -> tuple[Path, np.ndarray]:
    """Merge the segments' dumps: segment k's frames with step < start of segment k+1.
    Returns (merged file, steps). Streams: memory does not grow with the trajectory."""
    segs = sorted(run_dir.glob("segment_*"), key=lambda p: int(p.name.split("_")[1]))
    if not segs:
        raise ArgyroError(f"{run_dir}: no MD segment")
    starts = [int((s / "start_step").read_text()) for s in segs]
    steps: list[int] = []
    out = out or run_dir / "traj.lammpstrj"
    with atomic_path(out) as tmp, open(tmp, "w") as fh:
        for k, seg in enumerate(segs):
            stop = starts[k + 1] if k + 1 < len(segs) else None
            for step, frame in _frames(seg / "traj.lammpstrj"):
                if stop is not None and step >= stop:
                    break
                if steps and step <= steps[-1]:
                    continue
                fh.write(frame)
                steps.append(step)
    return out, np.array(steps)

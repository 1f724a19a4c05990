"""Issue 18 item 5: a LAMMPS dump cut by a kill is never read with changed values.

A real dump written by LAMMPS (through argyro's ``start_lammps``) is cut at byte offsets inside its last frame:
inside the last number, in the middle of an atom line, just before the final newline, after the header only.
The streaming reader (``read_chunks``) and the segment merge (``merge_segments``) must return exactly the
complete frames with their values unchanged, and warn that they dropped the cut frame (naming file and timestep).
A malformed frame that is not the last is an error naming the file and the line.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from argyro_fw.analysis.trajectory import TrajectoryError, TruncatedFrameWarning, dump_frames, read_chunks
from argyro_fw.md.external import start_lammps
from argyro_fw.md.segments import merge_segments

TYPES = ["Li", "S"]
N_FRAMES = 6


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """A LAMMPS dump (id type xu yu zu, 6 frames of a 2-type LJ crystal in a triclinic box) written by LAMMPS."""
    d = tmp_path_factory.mktemp("lmp")
    path = d / "traj.lammpstrj"
    lmp = start_lammps()
    try:
        lmp.commands_list([
            "units metal", "atom_style atomic", "boundary p p p",
            "lattice bcc 3.51", "region box prism 0 3 0 3 0 3 0.3 0.2 0.1 units lattice", "create_box 2 box",
            "create_atoms 1 box", "set type 1 type/fraction 2 0.25 12345",
            "mass 1 6.94", "mass 2 32.06", "pair_style lj/cut 5.0", "pair_coeff * * 0.01 2.4",
            "velocity all create 600 4928459", "fix nve all nve", "timestep 0.001",
            f"dump traj all custom 10 {path} id type xu yu zu", "dump_modify traj sort id format float %20.15g",
            f"run {10 * (N_FRAMES - 1)}",
        ])
    finally:
        lmp.close()
    return path


def _full(path):
    symbols, chunks = read_chunks(path, "lammps-dump", type_map=TYPES)
    chunks = list(chunks)
    return symbols, np.concatenate([c.positions for c in chunks]), np.concatenate([c.cells for c in chunks])


def _last_frame_offsets(data: bytes) -> dict[str, int]:
    """Byte offsets inside the last frame to cut the file at."""
    start = data.rindex(b"ITEM: TIMESTEP")
    atoms = data.index(b"ITEM: ATOMS", start)
    first_atom = data.index(b"\n", atoms) + 1
    last_line = data.rindex(b"\n", 0, len(data) - 1) + 1
    last_num = data.rindex(b" ", 0, len(data) - 1) + 1
    mid = first_atom + (len(data) - first_atom) // 2
    return {"inside the last number": last_num + (len(data) - 1 - last_num) // 2,
            "before the final newline": len(data) - 1,
            "mid-line": mid if data[mid - 1:mid] != b"\n" else mid + 3,
            "at a line end, atom lines missing": last_line,
            "header only": first_atom,
            "inside the header": atoms + 5,
            "after ITEM: TIMESTEP": start + len(b"ITEM: TIMESTEP\n"),
            "inside the timestep": start + len(b"ITEM: TIMESTEP\n") + 1}


def test_reader_drops_only_the_cut_last_frame(dump, tmp_path):
    data = dump.read_bytes()
    assert data.endswith(b"\n") and data.count(b"ITEM: TIMESTEP") == N_FRAMES
    symbols, pos, cells = _full(dump)
    assert pos.shape[0] == N_FRAMES and set(symbols) == {"Li", "S"}
    last_step = 10 * (N_FRAMES - 1)
    for what, off in _last_frame_offsets(data).items():
        cut = tmp_path / f"cut_{off}.lammpstrj"
        cut.write_bytes(data[:off])
        with pytest.warns(TruncatedFrameWarning) as rec:
            s2, p2, c2 = _full(cut)
        msg = str(rec[0].message)
        assert str(cut) in msg and "truncated last frame" in msg, (what, msg)
        if what != "after ITEM: TIMESTEP":
            assert f"timestep {last_step}" in msg or what == "inside the timestep", (what, msg)
        assert s2 == symbols
        assert p2.shape[0] == N_FRAMES - 1, what
        np.testing.assert_array_equal(p2, pos[:-1])  # bit-identical values of every complete frame
        np.testing.assert_array_equal(c2, cells[:-1])
        assert [f.step for f in dump_frames(cut)] == list(range(0, last_step, 10))


def test_merge_keeps_exactly_the_complete_frames(dump, tmp_path):
    """Two segments: the first killed inside a number of its frame at step 40 (the second restarts from 30)."""
    data = dump.read_bytes()
    full_steps = [f.step for f in dump_frames(dump)]
    frames = {f.step: f.text() for f in dump_frames(dump)}
    for what, off in _last_frame_offsets(data).items():
        run = tmp_path / f"run_{off}"
        s0, s1 = run / "segment_0", run / "segment_1"
        s0.mkdir(parents=True)
        s1.mkdir()
        (s0 / "start_step").write_text("0\n")
        (s0 / "traj.lammpstrj").write_bytes(data[:off])  # killed inside its last frame (step 50)
        (s1 / "start_step").write_text("50\n")
        (s1 / "traj.lammpstrj").write_text(frames[50][: len(frames[50]) // 2])  # killed again inside step 50
        with pytest.warns(TruncatedFrameWarning, match=re.escape(str(s1 / "traj.lammpstrj"))):
            out, steps = merge_segments(run)
        assert list(steps) == full_steps[:-1], what
        assert out.read_text() == "".join(frames[s] for s in full_steps[:-1])
        assert [f.step for f in dump_frames(out)] == full_steps[:-1]

    # complete segments overlapping (segment 1 restarted from step 30): every frame once, each frame's text unchanged
    run = tmp_path / "run_complete"
    for k, (start, steps_k) in enumerate(((0, full_steps), (30, [s for s in full_steps if s >= 30]))):
        (run / f"segment_{k}").mkdir(parents=True)
        (run / f"segment_{k}" / "start_step").write_text(f"{start}\n")
        (run / f"segment_{k}" / "traj.lammpstrj").write_text("".join(frames[s] for s in steps_k))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is dropped
        out, steps = merge_segments(run)
    assert list(steps) == full_steps and out.read_bytes() == data


def _corrupt(data: bytes, frame: int, fn) -> bytes:
    text = data.decode()
    starts = [m.start() for m in re.finditer("ITEM: TIMESTEP", text)]
    end = starts[frame + 1] if frame + 1 < len(starts) else len(text)
    return (text[: starts[frame]] + fn(text[starts[frame]:end]) + text[end:]).encode()


def _line_of(data: bytes, needle: str) -> int:
    return data.decode()[: data.decode().index(needle)].count("\n") + 1


def test_corrupt_middle_frame_is_an_error_naming_file_and_line(dump, tmp_path):
    data = dump.read_bytes()
    lines = data.decode().splitlines(keepends=True)
    frame2 = [k for k, ln in enumerate(lines) if ln.startswith("ITEM: TIMESTEP")][2]
    atom = frame2 + 9 + 3  # the 4th atom line of frame 2
    cases = {
        "a column missing": lambda ln: ln.rsplit(" ", 1)[0].rstrip() + "\n",
        "a column too many": lambda ln: ln.rstrip("\n") + " 1.0\n",
        "not a number": lambda ln: ln.replace(ln.split()[2], "1.2.3", 1),
    }
    for what, fn in cases.items():
        bad = lines.copy()
        bad[atom] = fn(bad[atom])
        f = tmp_path / f"bad_{len(what)}.lammpstrj"
        f.write_text("".join(bad))
        with pytest.raises(TrajectoryError) as exc:
            _full(f)
        msg = str(exc.value)
        assert msg.startswith(f"{f}: line {atom + 1}:") and "\n" not in msg, (what, msg)
        if what != "not a number":
            run = tmp_path / f"run_bad_{len(what)}"
            (run / "segment_0").mkdir(parents=True)
            (run / "segment_0" / "start_step").write_text("0\n")
            (run / "segment_0" / "traj.lammpstrj").write_text("".join(bad))
            with pytest.raises(TrajectoryError, match=re.escape(f"line {atom + 1}:")):
                merge_segments(run)
            assert not (run / "traj.lammpstrj").exists()

    # an atom line missing in a middle frame: the next frame's ITEM: TIMESTEP is read as an atom line
    bad = lines.copy()
    del bad[atom]
    f = tmp_path / "missing_line.lammpstrj"
    f.write_text("".join(bad))
    frame3 = [k for k, ln in enumerate(bad) if ln.startswith("ITEM: TIMESTEP")][3]
    with pytest.raises(TrajectoryError, match=re.escape(f"{f}: line {frame3 + 1}: expected 5 columns")):
        _full(f)
    # a frame whose number of atoms disagrees with its atom lines (one line too many)
    bad = lines.copy()
    bad.insert(atom, bad[atom])
    f.write_text("".join(bad))
    with pytest.raises(TrajectoryError, match=re.escape(f"{f}: line {frame3 + 2}: expected 'ITEM: TIMESTEP'")):
        _full(f)
    # a corrupt line in the last frame that the file does not cut is corruption too, not truncation
    bad = lines.copy()
    bad[-2] = bad[-2].replace(bad[-2].split()[3], "abc")
    f.write_text("".join(bad))
    with pytest.raises(TrajectoryError, match=re.escape(f"{f}: line {len(bad) - 1}:")):
        _full(f)


def test_a_dump_with_only_a_cut_frame_holds_no_frame(dump, tmp_path):
    data = dump.read_bytes()
    first_end = data.index(b"ITEM: TIMESTEP", 10)
    f = tmp_path / "only.lammpstrj"
    f.write_bytes(data[: first_end - 3])
    with pytest.warns(TruncatedFrameWarning, match="timestep 0"), \
            pytest.raises(TrajectoryError, match="holds no complete frame"):
        read_chunks(f, "lammps-dump", type_map=TYPES)


def test_a_binary_file_is_not_read_as_a_dump(dump, tmp_path):
    """A binary file named like a dump is one line naming the first binary byte, never its bytes."""
    f = tmp_path / "image.lammpstrj"
    f.write_bytes(dump.read_bytes()[:200] + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(TrajectoryError) as exc:
        read_chunks(f, "lammps-dump", type_map=TYPES)
    assert str(exc.value) == f"trajectory {f}: not a text file (binary content at byte 200)"

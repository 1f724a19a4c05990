"""Streaming trajectory readers: chunks of frames, memory independent of trajectory length.

Every reader yields :class:`Chunk` objects: ``positions`` (n, N, 3) Cartesian Angstrom, ``cells``
(n, 3, 3) Angstrom (rows are lattice vectors, any triclinic cell), ``frame_index`` (n,) into the
trajectory. Species are fixed for a trajectory. Formats:

- ``xdatcar``: VASP XDATCAR (fixed or variable cell), numpy parsing, optionally gzipped;
- ``lammps-dump``: LAMMPS text dump (``x y z``, ``xs ys zs`` or ``xu yu zu`` columns, triclinic
  boxes) with ``type`` mapped to elements by ``type_map``; this is the MD stage's format;
- ``extxyz`` and ``ase-traj``: through ``ase.io.iread``.
"""

from __future__ import annotations

import gzip
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase.data import chemical_symbols

from ..errors import ArgyroError
from ..textfile import binary_offset_of_file, not_text

FORMATS = ("xdatcar", "lammps-dump", "extxyz", "ase-traj")


class TrajectoryError(ArgyroError):
    """A trajectory is empty, truncated, mislabelled or inconsistent."""


@dataclass
class Chunk:
    positions: np.ndarray  # (n, N, 3) Angstrom
    cells: np.ndarray  # (n, 3, 3) Angstrom
    frame_index: np.ndarray  # (n,)


@dataclass
class TrajectoryInfo:
    path: Path
    fmt: str
    symbols: list[str]


def guess_format(path: str | Path) -> str:
    name = Path(path).name.lower().removesuffix(".gz")
    if "xdatcar" in name:
        return "xdatcar"
    if name.endswith((".dump", ".lammpstrj")) or "dump" in name:
        return "lammps-dump"
    if name.endswith((".xyz", ".exyz", ".extxyz")):
        return "extxyz"
    if name.endswith(".traj"):
        return "ase-traj"
    raise TrajectoryError(f"{path}: cannot tell the trajectory format from the name; pass --format ({', '.join(FORMATS)})")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def read_chunks(path: str | Path, fmt: str | None = None, chunk_size: int = 200, stride: int = 1,
                type_map: list[str] | None = None) -> tuple[list[str], Iterator[Chunk]]:
    """(symbols, iterator of chunks) for a trajectory. The header is read (and checked) now."""
    p = Path(path)
    if not p.is_file():
        raise TrajectoryError(f"trajectory {p}: does not exist")
    if p.stat().st_size == 0:
        raise TrajectoryError(f"trajectory {p}: is empty")
    fmt = fmt or guess_format(p)
    if stride < 1:
        raise TrajectoryError(f"stride must be >= 1, got {stride}")
    if fmt in ("xdatcar", "lammps-dump") and not _is_gzip(p):
        off = binary_offset_of_file(p)
        if off is not None:  # one line, never the file's bytes
            raise TrajectoryError(f"trajectory {not_text(p, off)}")
    if fmt == "xdatcar":
        return _xdatcar(p, chunk_size, stride)
    if fmt == "lammps-dump":
        return _lammps_dump(p, chunk_size, stride, type_map)
    if fmt in ("extxyz", "ase-traj"):
        return _ase(p, fmt, chunk_size, stride)
    raise TrajectoryError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")


def _batched(frames: Iterator[tuple[np.ndarray, np.ndarray]], chunk_size: int, stride: int, path: Path) -> Iterator[Chunk]:
    pos, cells, idx = [], [], []
    n_read = 0
    for k, (x, cell) in enumerate(frames):
        n_read += 1
        if k % stride:
            continue
        pos.append(x)
        cells.append(cell)
        idx.append(k)
        if len(pos) == chunk_size:
            yield Chunk(np.asarray(pos), np.asarray(cells), np.asarray(idx))
            pos, cells, idx = [], [], []
    if pos:
        yield Chunk(np.asarray(pos), np.asarray(cells), np.asarray(idx))
    if n_read == 0:
        raise TrajectoryError(f"trajectory {path}: holds no frame")


# --- XDATCAR ---------------------------------------------------------------------------------
def _read_cell(fh, path) -> tuple[float, np.ndarray, list[str], list[int]]:
    scale = float(fh.readline().split()[0])
    cell = np.array([[float(x) for x in fh.readline().split()[:3]] for _ in range(3)]) * scale
    symbols = fh.readline().split()
    counts = [int(x) for x in fh.readline().split()]
    if len(symbols) != len(counts) or not symbols:
        raise TrajectoryError(f"{path}: species line {symbols} does not match the counts {counts}")
    return scale, cell, symbols, counts


def _xdatcar(path: Path, chunk_size: int, stride: int):
    try:
        fh = _open_text(path)
        fh.readline()
        _, cell0, names, counts = _read_cell(fh, path)
    except (ValueError, IndexError) as exc:
        raise TrajectoryError(f"{path}: not an XDATCAR header ({exc})") from None
    symbols = [s for s, c in zip(names, counts) for _ in range(c)]
    n = len(symbols)

    bad = [s for s in names if s not in chemical_symbols]
    if bad:
        raise TrajectoryError(f"{path}: unknown element(s) {bad} in the species line (mislabelled file?)")

    def frames():
        cell = cell0
        k = 0
        with fh:
            while True:
                line = fh.readline()
                if not line:
                    return
                if not line.strip():
                    continue
                if "configuration" not in line.lower():
                    # variable-cell XDATCAR: a new header before each frame
                    try:
                        _, cell, _, _ = _read_cell(fh, path)
                    except (ValueError, IndexError):
                        raise TrajectoryError(f"{path}: frame {k + 1}: bad cell block") from None
                    line = fh.readline()
                block = [fh.readline() for _ in range(n)]
                try:
                    frac = np.array([b.split()[:3] for b in block], dtype=float)
                    if frac.shape != (n, 3):
                        raise ValueError
                except ValueError:
                    raise TrajectoryError(f"{path}: frame {k + 1} is truncated ({n} positions expected)") from None
                yield frac @ cell, cell
                k += 1

    return symbols, _batched(frames(), chunk_size, stride, path)


# --- LAMMPS dump -----------------------------------------------------------------------------
def lammps_box_to_cell(bounds: np.ndarray, tilts: tuple[float, float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """(cell rows, origin) from a dump's BOX BOUNDS (xlo_bound xhi_bound [xy] ...)."""
    xy, xz, yz = tilts if tilts else (0.0, 0.0, 0.0)
    xlo_b, xhi_b = bounds[0]
    ylo_b, yhi_b = bounds[1]
    zlo, zhi = bounds[2]
    xlo = xlo_b - min(0.0, xy, xz, xy + xz)
    xhi = xhi_b - max(0.0, xy, xz, xy + xz)
    ylo = ylo_b - min(0.0, yz)
    yhi = yhi_b - max(0.0, yz)
    cell = np.array([[xhi - xlo, 0, 0], [xy, yhi - ylo, 0], [xz, yz, zhi - zlo]])
    return cell, np.array([xlo, ylo, zlo])


class TruncatedFrameWarning(UserWarning):
    """The last frame of a LAMMPS dump was cut (a run killed while writing it) and was dropped."""


@dataclass
class DumpFrame:
    """One complete frame of a LAMMPS text dump: its lines as written, checked for shape."""
    step: int
    line: int  # line number (from 1) of its ITEM: TIMESTEP
    n_atoms: int
    columns: list[str]
    bounds: np.ndarray  # (3, 2) BOX BOUNDS lo/hi
    tilts: tuple[float, float, float] | None
    header: list[str]  # the lines before the atom lines, newlines kept
    atom_lines: list[str]

    def text(self) -> str:
        return "".join(self.header) + "".join(self.atom_lines)

    def data(self, path) -> np.ndarray:
        """The atom lines as floats (n, columns); a field that is not a number is an error naming its line."""
        try:
            return np.array([ln.split() for ln in self.atom_lines], dtype=float).reshape(self.n_atoms, len(self.columns))
        except ValueError:
            for k, ln in enumerate(self.atom_lines):
                for field in ln.split():
                    try:
                        float(field)
                    except ValueError:
                        raise TrajectoryError(f"{path}: line {self.header_end + k}: {field[:30]!a} is not a number "
                                              f"(timestep {self.step})") from None
            raise

    @property
    def header_end(self) -> int:
        """The line number of the first atom line."""
        return self.line + len(self.header)


class _Cut(Exception):
    """The file ends inside a frame."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class _LineReader:
    """Lines of a text file with their numbers; a line without its newline (the file was cut) raises _Cut."""

    def __init__(self, fh, path: Path):
        self.fh, self.path, self.no = fh, path, 0

    def raw(self) -> str:
        try:
            line = self.fh.readline()
        except EOFError:  # a gzip stream cut short
            line = ""
        if line:
            self.no += 1
        return line

    def line(self, what: str) -> str:
        line = self.raw()
        if not line:
            raise _Cut(f"the file ends before {what}")
        if not line.endswith("\n"):
            raise _Cut(f"the file ends inside {what} (no final newline)")
        return line

    def error(self, expected: str, got: str) -> TrajectoryError:
        return TrajectoryError(f"{self.path}: line {self.no}: expected {expected}, got {got.strip()[:60]!a}")


def _read_dump_frame(rd: _LineReader, state: dict) -> DumpFrame | None:
    """The next complete frame, None at the end of the file. A frame the end of the file cuts raises _Cut (its
    step in ``state``); a malformed line followed by more of the file is a TrajectoryError naming the line."""
    state["step"], state["line"] = None, None
    line = rd.raw()
    while line and not line.startswith("ITEM: TIMESTEP"):
        if line.startswith(("ITEM: UNITS", "ITEM: TIME")) and line.endswith("\n"):
            rd.line(f"the value of {line.strip()}")  # dump_modify units/time: a line before ITEM: TIMESTEP
        elif line.strip():
            if not line.endswith("\n"):
                raise _Cut("the file ends inside a line")
            raise rd.error("'ITEM: TIMESTEP'", line)
        line = rd.raw()
    if not line:
        return None
    if not line.endswith("\n"):
        raise _Cut("the file ends inside the ITEM: TIMESTEP line")
    header = [line]
    state["line"] = rd.no
    ln = rd.line("the timestep")
    try:
        step = int(ln)
    except ValueError:
        raise rd.error("the timestep (an integer)", ln) from None
    state["step"] = step
    header.append(ln)
    ln = rd.line("ITEM: NUMBER OF ATOMS")
    if not ln.startswith("ITEM: NUMBER OF ATOMS"):
        raise rd.error("'ITEM: NUMBER OF ATOMS'", ln)
    header.append(ln)
    ln = rd.line("the number of atoms")
    try:
        n = int(ln)
        if n < 0:
            raise ValueError
    except ValueError:
        raise rd.error("the number of atoms (an integer >= 0)", ln) from None
    header.append(ln)
    head = rd.line("ITEM: BOX BOUNDS")
    if not head.startswith("ITEM: BOX BOUNDS"):
        raise rd.error("'ITEM: BOX BOUNDS'", head)
    header.append(head)
    triclinic = "xy" in head.split()
    rows = []
    for axis in "xyz":
        ln = rd.line(f"the {axis} box bounds")
        parts = ln.split()
        if len(parts) != (3 if triclinic else 2):
            raise rd.error(f"{3 if triclinic else 2} numbers ({axis} box bounds)", ln)
        try:
            rows.append([float(v) for v in parts])
        except ValueError:
            raise rd.error(f"numbers ({axis} box bounds)", ln) from None
        header.append(ln)
    ln = rd.line("ITEM: ATOMS")
    cols = ln.split()[2:]
    if not ln.startswith("ITEM: ATOMS") or not cols:
        raise rd.error("'ITEM: ATOMS' and its column names", ln)
    header.append(ln)
    nc = len(cols)
    atom_lines = []
    for k in range(n):
        ln = rd.line(f"atom line {k + 1} of {n}")
        if len(ln.split()) != nc:
            raise rd.error(f"{nc} columns ({' '.join(cols)}) in atom line {k + 1} of {n}", ln)
        atom_lines.append(ln)
    bounds = np.array([r[:2] for r in rows])
    tilts = (rows[0][2], rows[1][2], rows[2][2]) if triclinic else None
    return DumpFrame(step, state["line"], n, cols, bounds, tilts, header, atom_lines)


def dump_frames(path: str | Path) -> Iterator[DumpFrame]:
    """The complete frames of a LAMMPS text dump (gzipped or not), streamed.

    Every frame must have its header, exactly NUMBER OF ATOMS atom lines of exactly the ATOMS columns, and end
    with a newline. A frame that the end of the file cuts (a run killed while writing it: inside a number, a line,
    or after its header) is dropped with a :class:`TruncatedFrameWarning` naming the file and the timestep; a
    malformed frame that is not the last is a :class:`TrajectoryError` naming the file and the line."""
    p = Path(path)
    with _open_text(p) as fh:
        rd = _LineReader(fh, p)
        state: dict = {}
        while True:
            try:
                fr = _read_dump_frame(rd, state)
            except _Cut as cut:
                step = state.get("step")
                where = f"timestep {step}" if step is not None else "timestep unknown"
                at = f", from line {state['line']}" if state.get("line") else ""
                warnings.warn(f"{p}: dropped the truncated last frame ({where}{at}): {cut.why}",
                              TruncatedFrameWarning, stacklevel=2)
                return
            if fr is None:
                return
            yield fr


def _lammps_dump(path: Path, chunk_size: int, stride: int, type_map: list[str] | None):
    it = dump_frames(path)
    first = next(it, None)
    if first is None:
        raise TrajectoryError(f"trajectory {path}: holds no complete frame")
    n, cols = first.n_atoms, first.columns
    if "type" not in cols:
        raise TrajectoryError(f"{path}: dump has no 'type' column")
    data0 = first.data(path)
    order_first = np.argsort(data0[:, cols.index("id")]) if "id" in cols else np.arange(n)
    types = data0[order_first, cols.index("type")].astype(int)
    if not type_map:
        raise TrajectoryError(f"{path}: a LAMMPS dump needs the element of each type (--types Li,P,S,Cl)")
    if types.max() > len(type_map):
        raise TrajectoryError(f"{path}: atom type {types.max()} but only {len(type_map)} elements given in --types")
    symbols = [type_map[t - 1] for t in types]
    for key in (("xu", "yu", "zu"), ("x", "y", "z"), ("xs", "ys", "zs")):
        if all(c in cols for c in key):
            pos_cols = [cols.index(c) for c in key]
            scaled = key[0] == "xs"
            break
    else:
        raise TrajectoryError(f"{path}: no position columns (xu yu zu, x y z or xs ys zs) in {cols}")

    def convert(frame: DumpFrame, data: np.ndarray | None = None):
        if frame.n_atoms != n or frame.columns != cols:
            raise TrajectoryError(f"{path}: line {frame.line}: timestep {frame.step} has {frame.n_atoms} atoms and "
                                  f"columns {frame.columns}; expected {n} and {cols} as in the first frame")
        data = frame.data(path) if data is None else data
        order = np.argsort(data[:, cols.index("id")]) if "id" in cols else np.arange(n)
        cell, origin = lammps_box_to_cell(frame.bounds, frame.tilts)
        x = data[order][:, pos_cols]
        x = x @ cell if scaled else x - origin
        return x, cell

    def frames():
        yield convert(first, data0)
        for fr in it:
            yield convert(fr)

    return symbols, _batched(frames(), chunk_size, stride, path)


# --- ASE formats ------------------------------------------------------------------------------
def _ase(path: Path, fmt: str, chunk_size: int, stride: int):
    ase_fmt = "extxyz" if fmt == "extxyz" else "traj"
    try:
        it = ase.io.iread(str(path), index=f"::{stride}", format=ase_fmt)
        first = next(it)
    except StopIteration:
        raise TrajectoryError(f"trajectory {path}: holds no frame") from None
    except Exception as exc:
        raise TrajectoryError(f"{path}: not a readable {fmt} file ({type(exc).__name__}: {exc})") from None
    symbols = first.get_chemical_symbols()
    if first.cell.rank < 3:
        raise TrajectoryError(f"{path}: frames have no 3D cell (periodic cells are required)")

    def frames():
        yield first.get_positions(), first.cell.array.copy()
        k = 1
        while True:
            try:
                at = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise TrajectoryError(f"{path}: frame {k * stride} is unreadable or truncated ({type(exc).__name__})") from None
            if at.get_chemical_symbols() != symbols:
                raise TrajectoryError(f"{path}: species change at frame {k * stride}")
            yield at.get_positions(), at.cell.array.copy()
            k += 1

    # stride already applied by ase.io.iread; the frame index counts the original frames
    def reindex():
        for ch in _batched(frames(), chunk_size, 1, path):
            ch.frame_index = ch.frame_index * stride
            yield ch

    return symbols, reindex()

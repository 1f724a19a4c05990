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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase.data import chemical_symbols

from ..errors import ArgyroError

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


def _lammps_dump(path: Path, chunk_size: int, stride: int, type_map: list[str] | None):
    fh = _open_text(path)

    def read_frame():
        line = fh.readline()
        while line and not line.startswith("ITEM: TIMESTEP"):
            if line.strip():
                raise TrajectoryError(f"{path}: expected 'ITEM: TIMESTEP', got {line.strip()[:60]!r}")
            line = fh.readline()
        if not line:
            return None
        try:
            fh.readline()
            assert fh.readline().startswith("ITEM: NUMBER OF ATOMS")
            n = int(fh.readline())
            head = fh.readline()
            assert head.startswith("ITEM: BOX BOUNDS")
            rows = [np.array(fh.readline().split(), dtype=float) for _ in range(3)]
            tilts = (rows[0][2], rows[1][2], rows[2][2]) if "xy" in head else None
            bounds = np.array([r[:2] for r in rows])
            cols = fh.readline().split()[2:]
            assert cols, "no ITEM: ATOMS columns"
            text = "".join(fh.readline() for _ in range(n))
            data = np.loadtxt(io.StringIO(text), ndmin=2) if n else np.zeros((0, len(cols)))
        except (AssertionError, ValueError, IndexError) as exc:
            raise TrajectoryError(f"{path}: truncated or malformed frame ({exc})") from None
        if data.shape != (n, len(cols)):
            raise TrajectoryError(f"{path}: truncated frame ({data.shape[0]} of {n} atom lines)")
        return n, cols, bounds, tilts, data

    first = read_frame()
    if first is None:
        raise TrajectoryError(f"trajectory {path}: holds no frame")
    n, cols, *_ = first
    if "type" not in cols:
        raise TrajectoryError(f"{path}: dump has no 'type' column")
    order_first = np.argsort(first[4][:, cols.index("id")]) if "id" in cols else np.arange(n)
    types = first[4][order_first, cols.index("type")].astype(int)
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

    def convert(frame):
        nn, cc, bounds, tilts, data = frame
        if nn != n or cc != cols:
            raise TrajectoryError(f"{path}: atom count or columns change between frames")
        order = np.argsort(data[:, cols.index("id")]) if "id" in cols else np.arange(n)
        cell, origin = lammps_box_to_cell(bounds, tilts)
        x = data[order][:, pos_cols]
        x = x @ cell if scaled else x - origin
        return x, cell

    def frames():
        yield convert(first)
        with fh:
            while (fr := read_frame()) is not None:
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

"""Run an MD protocol in a persistent run directory, segment after segment, then merge."""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
from ase import Atoms
from ase.data import atomic_numbers

from ..core.serialise import atomic_path, write_atomic
from ..engines import md_engine
from ..errors import ArgyroError
from ..study.config import MlmdCfg
from .model_check import check_model_covers
from .protocol import MDProtocol
from .segments import merge_segments, next_segment


def read_system(run_dir: str | Path, protocol: MDProtocol) -> Atoms:
    """The run directory's system.data as Atoms (types mapped by ``protocol.elements``)."""
    p = Path(run_dir) / "system.data"
    if not p.is_file():
        raise ArgyroError(f"{p}: does not exist (render the run first: argyro render lammps)")
    z = {k + 1: atomic_numbers[el] for k, el in enumerate(protocol.elements)}
    return ase.io.read(p, format="lammps-data", Z_of_type=z, atom_style="atomic")


def prepare_run_dir(run_dir: str | Path, atoms: Atoms | None, protocol: MDProtocol, model: str | Path) -> Path:
    """Check the model against the cell (before LAMMPS starts) and write system.data once."""
    d = Path(run_dir)
    if atoms is None:
        atoms = read_system(d, protocol)
    check_model_covers(model, atoms.get_chemical_symbols())
    missing = sorted(set(atoms.get_chemical_symbols()) - set(protocol.elements))
    if missing:
        raise ArgyroError(f"the cell has {missing}, not in the protocol's type list {protocol.elements}")
    d.mkdir(parents=True, exist_ok=True)
    if not (d / "system.data").exists():
        with atomic_path(d / "system.data") as tmp:
            ase.io.write(tmp, atoms, format="lammps-data", specorder=protocol.elements, atom_style="atomic")
        write_atomic(d / "protocol.json", json.dumps(protocol.to_dict(), indent=1))
    return d


def run_md(run_dir: str | Path, atoms: Atoms | None, protocol: MDProtocol, model: str | Path, engine="external",
           mliap_model: str | None = None, lmp_binary: str = MlmdCfg.lmp_binary, max_segments: int | None = None) -> dict:
    """Run (or continue) the protocol; returns {'trajectory', 'n_frames', 'segments', 'complete'}.

    ``engine``: an MD engine object (:mod:`argyro_fw.md.engines`) or its registry name (``external``,
    ``mliap``; then ``mliap_model`` and ``lmp_binary`` configure it). ``max_segments``: stop after that
    many segments in this call (a walltime-sized chunk).
    """
    if isinstance(engine, str):
        engine = md_engine(engine, model=model, mliap_model=mliap_model, lmp_binary=lmp_binary)
    d = prepare_run_dir(run_dir, atoms, protocol, model)
    done = 0
    while (nxt := next_segment(d, protocol, engine.name, engine.mliap_model)) is not None:
        seg, _ = nxt
        engine.run_segment(seg, protocol)
        done += 1
        if max_segments is not None and done >= max_segments:
            break
    traj, steps = merge_segments(d)
    return {"trajectory": str(traj), "n_frames": int(len(steps)), "segments": len(list(d.glob("segment_*"))),
            "complete": (d / "restart.final").exists()}


def read_protocol(run_dir: str | Path) -> MDProtocol:
    """The protocol a run directory was made with (``protocol.json``)."""
    p = Path(run_dir) / "protocol.json"
    try:
        return MDProtocol(**json.loads(p.read_text()))
    except FileNotFoundError:
        raise ArgyroError(f"{p}: does not exist (argyro render lammps or a study MD firework writes it)") from None


def extend_run(run_dir: str | Path, npt_ns: float) -> MDProtocol:
    """Extend a run directory's NPT stage to ``npt_ns`` in total (METHOD.md 6: one run to 10 ns).

    The new end is written into protocol.json (the old protocol kept as protocol.<old end step>.json); a
    finished run's ``restart.final`` becomes ``restart.<its step>``, so :func:`run_md` continues from the
    newest restart to the new end and appends to the same merged trajectory (no frame lost or doubled)."""
    d = Path(run_dir)
    old = read_protocol(d)
    if npt_ns <= old.npt_ns:
        raise ArgyroError(f"{d}: the run already has {old.npt_ns:g} ns of NPT; --ns must be larger to extend it")
    new = MDProtocol(**dict(old.to_dict(), npt_ns=float(npt_ns)))
    final = d / "restart.final"
    if final.exists():
        numbered = d / f"restart.{old.total_steps}"
        if numbered.exists():
            final.unlink()
        else:
            final.replace(numbered)
    write_atomic(d / f"protocol.{old.total_steps}.json", json.dumps(old.to_dict(), indent=1))
    write_atomic(d / "protocol.json", json.dumps(new.to_dict(), indent=1))
    return new

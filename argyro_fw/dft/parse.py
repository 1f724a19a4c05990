"""Parse a finished VASP directory with pymatgen into plain, database-ready data.

Energies in eV, forces in eV/Angstrom, stress in eV/Angstrom^3 with ASE's sign convention
(positive = tensile; VASP prints kBar with the opposite sign: stress_ase = -0.1 GPa * stress_vasp).
The training energy is the free energy TOTEN (``e_fr_energy``), the one the forces are the
derivatives of; ``e_0_energy`` (sigma -> 0) is kept alongside.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from monty.io import zopen
from pymatgen.io.vasp import Vasprun

from ..errors import ArgyroError

KBAR_TO_EV_A3 = -0.1 * units.GPa  # VASP kBar (compressive positive) -> ASE eV/A^3 (tensile positive)


class VaspParseError(ArgyroError):
    """A VASP output is missing, truncated or unreadable."""


@dataclass
class IonicStep:
    energy: float  # eV, free energy TOTEN
    e_0_energy: float  # eV, energy(sigma -> 0)
    forces: np.ndarray  # (N, 3) eV/A
    stress: np.ndarray | None  # (3, 3) eV/A^3, ASE sign; None when VASP wrote none (MD with ISIF 0)
    structure: Any  # pymatgen Structure


@dataclass
class VaspResult:
    directory: str
    steps: list[IonicStep]
    final_structure: Any
    incar: dict
    kpoints: dict | None
    converged_electronic: bool
    converged_ionic: bool
    input_checksum: str | None
    vasp_version: str
    extra: dict = field(default_factory=dict)

    @property
    def final_energy(self) -> float:
        return self.steps[-1].energy

    def to_doc(self, max_steps_in_doc: int = 2000) -> dict:
        """A MongoDB document (numbers as lists). Steps beyond ``max_steps_in_doc`` stay in files."""
        steps = self.steps if len(self.steps) <= max_steps_in_doc else self.steps[-1:]
        return {
            "directory": self.directory,
            "final_energy_eV": self.final_energy,
            "final_e0_energy_eV": self.steps[-1].e_0_energy,
            "n_ionic_steps": len(self.steps),
            "n_atoms": len(self.final_structure),
            "formula": self.final_structure.composition.formula,
            "ionic_steps": [
                {"energy_eV": s.energy, "e_0_energy_eV": s.e_0_energy, "forces_eV_A": s.forces.tolist(),
                 "stress_eV_A3": None if s.stress is None else s.stress.tolist()}
                for s in steps
            ],
            "ionic_steps_truncated": len(steps) != len(self.steps),
            "final_structure": self.final_structure.as_dict(),
            "incar": self.incar,
            "kpoints": self.kpoints,
            "converged_electronic": self.converged_electronic,
            "converged_ionic": self.converged_ionic,
            "input_checksum": self.input_checksum,
            "vasp_version": self.vasp_version,
        }


def _find(directory: Path, name: str) -> Path | None:
    for cand in (directory / name, directory / f"{name}.gz", directory / f"{name}.bz2", directory / f"{name}.xz"):
        if cand.is_file():
            return cand
    return None


def inputs_checksum(directory: str | Path) -> str | None:
    """sha256 of INCAR, KPOINTS, POSCAR as written (None if any is missing)."""
    d = Path(directory)
    h = hashlib.sha256()
    for name in ("INCAR", "KPOINTS", "POSCAR"):
        f = _find(d, name)
        if f is None:
            return None
        with zopen(f, "rt") as fh:
            h.update(name.encode() + b"\0" + fh.read().encode() + b"\0")
    return h.hexdigest()


def _steps_of(vr, f: Path) -> list[IonicStep]:
    steps = []
    for i, st in enumerate(vr.ionic_steps):
        try:
            forces = np.asarray(st["forces"], dtype=float)
            # an MD run (IBRION 0, ISIF 0) writes no stress: none is invented (a zero would train as a measured value)
            stress = None if st.get("stress") is None else np.asarray(st["stress"], dtype=float) * KBAR_TO_EV_A3
            steps.append(IonicStep(float(st["e_fr_energy"]), float(st["e_0_energy"]), forces, stress, st["structure"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise VaspParseError(f"{f}: ionic step {i} is incomplete ({exc})") from None
        if not (np.all(np.isfinite(forces)) and np.isfinite(steps[-1].energy)):
            raise VaspParseError(f"{f}: ionic step {i} has non-finite energy or forces")
    return steps


def parse_vasp_dir(directory: str | Path) -> VaspResult:
    """Parse ``vasprun.xml[.gz]`` in ``directory``. Raises VaspParseError naming the file."""
    d = Path(directory)
    f = _find(d, "vasprun.xml")
    if f is None:
        raise VaspParseError(f"{d}: no vasprun.xml (did VASP run?)")
    try:
        vr = Vasprun(str(f), parse_potcar_file=False, parse_dos=False, parse_eigen=False, exception_on_bad_xml=True)
    except Exception as exc:  # lxml/ElementTree syntax errors, EOF in gzip, missing tags: all "unreadable"
        raise VaspParseError(f"{f}: truncated or unreadable vasprun.xml ({type(exc).__name__}: {exc})") from None
    if not vr.ionic_steps:
        raise VaspParseError(f"{f}: holds no ionic step")
    steps = _steps_of(vr, f)
    kp = vr.kpoints.as_dict() if vr.kpoints is not None else None
    return VaspResult(
        directory=str(d.resolve()),
        steps=steps,
        final_structure=vr.final_structure,
        incar=dict(vr.incar),
        kpoints=kp,
        converged_electronic=bool(vr.converged_electronic),
        converged_ionic=bool(vr.converged_ionic),
        input_checksum=inputs_checksum(d),
        vasp_version=str(vr.vasp_version),
    )


# --- AIMD in segments ---------------------------------------------------------------------------------------------
# An AIMD firework runs in a persistent run directory (the firework's ``_launch_dir``). A run cut by the walltime is
# continued by :func:`argyro_fw.dft.run.continue_aimd` in a new segment: the cut segment's outputs go to seg_<k>/,
# with a record of how many of its steps the continuation keeps. These names are shared by the run and the parse.
AIMD_PLAN = "argyro_aimd.json"  # the whole run as first written: NSW, TEBEG, TEEND, POTIM, input checksums
AIMD_DONE = "argyro_aimd.done"  # completion marker: every step of the plan is on disk
SEGMENT_RECORD = "argyro_segment.json"  # in seg_<k>/: steps_whole, steps_kept, continued_from, nsw, tebeg


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise VaspParseError(f"{path}: unreadable ({exc})") from None


def segment_dirs(directory: str | Path) -> list[Path]:
    """The finished (archived) segments seg_0, seg_1, ... of an AIMD run directory, in order."""
    d = Path(directory)
    segs = [p for p in d.glob("seg_*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(segs, key=lambda p: int(p.name[4:]))


def whole_steps(directory: str | Path) -> tuple[list[IonicStep], Any]:
    """The whole ionic steps of ``directory``'s vasprun.xml, truncated or not, and the Vasprun (None when there is
    no readable step).

    A killed VASP leaves vasprun.xml without its closing tags and, possibly, a last ``<calculation>`` half
    written. pymatgen reads vasprun.xml with lxml's incremental parser and keeps a step only when the
    ``</calculation>`` end tag has been read (``exception_on_bad_xml=False`` stops at the truncation instead of
    raising): every step returned has its structure, energy and forces, with the precision of a complete parse.
    """
    d = Path(directory)
    f = _find(d, "vasprun.xml")
    if f is None:
        return [], None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about the truncation it tolerates
            vr = Vasprun(str(f), parse_potcar_file=False, parse_dos=False, parse_eigen=False,
                         exception_on_bad_xml=False)
    except Exception:  # noqa: BLE001 (truncated inside the header: lxml, pymatgen's KeyErrors; no step was written)
        return [], None
    if not getattr(vr, "ionic_steps", None):
        return [], None
    return _steps_of(vr, f), vr


def parse_aimd_dir(directory: str | Path) -> VaspResult:
    """An AIMD run directory as one trajectory: the kept steps of every archived segment (seg_0, seg_1, ...,
    as their records say) and then every whole step of the last segment (the run directory itself).

    Step i of the result is ionic step i of the uninterrupted run: a segment's record keeps exactly the steps
    before the point its continuation started from (its CONTCAR), so no frame is lost or doubled. A directory
    without segments is parsed as :func:`parse_vasp_dir` does (strictly)."""
    d = Path(directory)
    segs = segment_dirs(d)
    plan = read_json(d / AIMD_PLAN) or {}
    if not segs:
        res = parse_vasp_dir(d)
        if plan.get("input_checksum"):
            res.input_checksum = plan["input_checksum"]
        res.extra["segments"] = [{"dir": ".", "steps": len(res.steps)}]
        return res
    steps: list[IonicStep] = []
    info = []
    vr_first = vr_last = None
    for seg in segs:
        rec = read_json(seg / SEGMENT_RECORD)
        if rec is None:
            raise VaspParseError(f"{seg}: no {SEGMENT_RECORD} (an archived segment always has one)")
        st, vr = whole_steps(seg)
        kept = int(rec["steps_kept"])
        if kept > len(st):
            raise VaspParseError(f"{seg}: its record keeps {kept} steps, vasprun.xml holds {len(st)} whole ones")
        steps += st[:kept]
        info.append({"dir": seg.name, "steps": kept, "nsw": rec.get("nsw"), "tebeg": rec.get("tebeg")})
        vr_first = vr_first or vr
        vr_last = vr if kept else vr_last
    st, vr = whole_steps(d)
    if st:
        steps += st
        info.append({"dir": ".", "steps": len(st)})
        vr_last = vr
    if not steps:
        raise VaspParseError(f"{d}: no whole ionic step in any segment")
    nsw = plan.get("nsw")
    complete = (d / AIMD_DONE).is_file()
    if complete and nsw is not None and len(steps) != int(nsw):
        raise VaspParseError(f"{d}: segments merge to {len(steps)} steps, the run has NSW = {nsw}")
    incar = dict((vr_first or vr_last).incar)
    incar.update({k.upper(): plan[k] for k in ("nsw", "tebeg", "teend") if k in plan})
    kp = vr_last.kpoints.as_dict() if getattr(vr_last, "kpoints", None) is not None else None
    conv_e = True
    for v in (vr_first, vr_last):
        try:
            conv_e = conv_e and bool(v.converged_electronic)
        except (AttributeError, KeyError, IndexError, TypeError):  # a segment without the parameters block
            conv_e = False
    return VaspResult(
        directory=str(d.resolve()),
        steps=steps,
        final_structure=steps[-1].structure,
        incar=incar,
        kpoints=kp,
        converged_electronic=conv_e,
        converged_ionic=complete,
        input_checksum=plan.get("input_checksum") or inputs_checksum(segs[0]),
        vasp_version=str(getattr(vr_last, "vasp_version", "")),
        extra={"segments": info},
    )

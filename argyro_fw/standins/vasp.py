"""Stand-in for ``vasp_std``: VASP's file interface with CHGNet numbers (rehearsal and tests only).

This is a STAND-IN, not VASP. VASP is licensed and cannot run on the development or CI machine; the
rehearsal of the production path (issue 16) puts a ``vasp_std`` wrapper (:func:`write_wrapper`) on PATH
so that argyro's VASP engine (inputs, custodian, pymatgen parsing) runs unmodified. Run it as
``python -m argyro_fw.standins.vasp`` in a run folder. Started by an MPI launcher (``srun -n N``), only
rank 0 works; the other ranks exit 0 at once.

What it reads, as VASP does: INCAR, POSCAR, KPOINTS and POTCAR of the working directory; a POSCAR
velocity block (MD continuation from a CONTCAR); STOPCAR while running.

What it refuses (VASP's boxed ``ERROR`` message on standard output, which custodian saves as vasp.out, a
one-line ``vasp_std (argyro stand-in): ...`` on standard error, exit status 1, and no output file written):

- a missing, empty or unreadable INCAR, POSCAR or POTCAR; a missing KPOINTS unless the INCAR sets KSPACING
  (stricter than VASP, which falls back to KSPACING = 0.5 silently: argyro always writes a KPOINTS);
- an INCAR tag VASP does not know (pymatgen's list of VASP tags plus :data:`EXTRA_TAGS`), an INCAR line
  without ``=`` (VASP ignores it silently: stricter, it is always a typo), a value that does not read as
  the tag's type (VASP's ``Error reading item 'TAG' from file INCAR.``), a MAGMOM that does not give one
  value per ion;
- a POTCAR whose datasets (TITEL lines, in order) differ from the POSCAR's species line, or whose number of
  datasets differs from the number of species; a dataset without TITEL or ZVAL;
- a POSCAR that does not parse or has a left-handed cell (VASP's triple-product error);
- a KPOINTS that does not parse (a grid line without three positive integers, a list shorter than its
  count);
- inconsistent ionic settings: NSW < 0, an IBRION VASP does not have, MD (IBRION 0) without a positive
  POTIM or with a thermostat and no positive TEBEG/TEEND, MDALGO 3 without one LANGEVIN_GAMMA per species.
- settings VASP has but this stand-in does not implement are refused too, with a message that says so:
  IBRION 5-8/44 (phonons), IBRION -1 with NSW > 0, ISIF 5-8 in relaxations, MD with ISIF >= 3 (NpT),
  MDALGO other than 0, 2, 3, SMASS other than -3 (NVE) or 0 (Nose period of 40 steps), line-mode KPOINTS.

What it honours (energies, forces and stress from CHGNet, the pretrained model in its wheel, on the CPU with
OMP_NUM_THREADS torch threads, 1 when unset: on a shared 2-core machine 2 threads ran 5-10x slower than one;
nothing is downloaded):

- NSW 0 (or IBRION -1): a single point.
- IBRION 1, 2, 3 with NSW > 0: a relaxation with ASE's BFGS (1, quasi-Newton), LBFGS (2: ASE has no
  conjugate-gradient optimiser) or FIRE (3, damped dynamics); ISIF 0-2 moves the ions only, ISIF 3 ions
  and cell (FrechetCellFilter), ISIF 4 ions and cell shape at constant volume; EDIFFG < 0 stops when every
  force is below |EDIFFG| (VASP ignores the stress there too), EDIFFG > 0 when the energy changes by less
  than EDIFFG between two ionic steps, EDIFFG 0 runs NSW steps; NSW steps at most (then unconverged, as
  VASP). Selective dynamics flags fix the flagged coordinates.
- IBRION 0: MD with POTIM (fs) and NSW steps: MDALGO 0/2 with SMASS 0 is a Nose-Hoover thermostat (ASE's
  NoseHooverChainNVT with one thermostat, damping time 40 POTIM / 2 pi, i.e. a period of about 40 steps),
  SMASS -3 is NVE (velocity Verlet), MDALGO 3 is ASE's Langevin with the mean LANGEVIN_GAMMA (1/ps). The
  target temperature goes linearly from TEBEG to TEEND over the NSW steps. Initial velocities are the
  POSCAR's velocity block when there is one, otherwise Maxwell-Boltzmann at TEBEG (seed RANDOM_SEED,
  fixed by default), centre-of-mass motion removed and scaled to TEBEG exactly (3N - 3 degrees of
  freedom, as the temperature VASP prints). The thermostat's own state is not carried over a
  continuation (VASP keeps it in the CONTCAR's predictor block).
- ISIF (default 0 for MD, 2 otherwise): with ISIF 0 no stress is computed or written, as in VASP.
- NBLOCK: an XDATCAR frame every NBLOCK ionic steps.
- STOPCAR: ``LSTOP = .TRUE.`` finishes the current ionic step and writes the final outputs ("soft stop");
  ``LABORT = .TRUE.`` does the same (there is no electronic loop to break).

Everything else in the INCAR (ENCUT, PREC, ISMEAR, ISPIN, ...) is read, checked for type, echoed in
vasprun.xml and otherwise has no effect; KPOINTS is echoed, the full grid without symmetry reduction.

What it writes, in VASP's formats (checked against pymatgen's Vasprun, Outcar, Oszicar, Xdatcar and Poscar,
ASE's OUTCAR reader and custodian's VaspJob and handlers): vasprun.xml, OUTCAR, OSZICAR, CONTCAR (for MD
with a velocity block, holding the positions and velocities of the next step, so that a continuation from
it neither repeats nor skips a frame), XDATCAR (VASP 5 format; the cell repeated before every frame when
the cell changes), and VASP's standard output (custodian's vasp.out). Each ionic step is appended to
vasprun.xml, OUTCAR, OSZICAR and XDATCAR as soon as it is done (each with one write call, all texts made
first) and CONTCAR is then replaced by a rename, so a run killed mid-way (SIGKILL, Slurm's time limit)
leaves every finished step on disk and a vasprun.xml without its closing tags, as VASP does. Only a kill
in the microseconds between the last append and the rename leaves a CONTCAR one step behind (its
positions then equal XDATCAR's last frame: a merger drops the repeat); never a lost frame. XDATCAR frame k
and vasprun.xml's calculation k are the structure whose energy and forces ionic step k computed (the
first is the POSCAR's).

The generator block of vasprun.xml and the first line of OUTCAR name the stand-in, so a stored calculation
says where its numbers came from. BLAS runs on one thread during a run (threadpoolctl when installed): the
cell filter's 3x3 matrix functions were 100x slower with OpenBLAS's default threads on a loaded machine.

Helpers for the rehearsal and tests: :func:`write_wrapper` (the ``vasp_std`` executable),
:func:`write_placeholder_potcar` and :func:`write_placeholder_paw_dir` (a placeholder PAW library in the
``<dir>/<element>/POTCAR`` layout that ``$ARGYRO_POTCAR_DIR`` names), :func:`check_inputs` (the refusals
alone, without CHGNet) and :func:`run` (one run in a folder, in this process).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import os
import re
import shlex
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pymatgen.io.vasp as pmg_vasp
from ase import units
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.vasp import Kpoints, Poscar

#: written into vasprun.xml's generator block (``Vasprun.vasp_version``) and OUTCAR's first line
VERSION = "6.4.2-argyro-standin"
PROGRAM_NOTE = "argyro stand-in for vasp_std: energies, forces and stress from CHGNet, not DFT"
#: INCAR tags accepted on top of pymatgen's list of VASP tags (io/vasp/incar_parameters.json)
EXTRA_TAGS = frozenset({
    # every tag argyro's templates render (templates/vasp/INCAR.*.j2), kept here in case the list changes
    "GGA", "PREC", "ENCUT", "EDIFF", "ISPIN", "MAGMOM", "ISMEAR", "SIGMA", "LREAL", "NELM", "ISYM", "IBRION",
    "MDALGO", "SMASS", "POTIM", "TEBEG", "TEEND", "NSW", "NBLOCK", "LWAVE", "LCHARG", "ISIF", "EDIFFG",
    # common tags of VASP 6 that the list may lack
    "SYSTEM", "KSPACING", "KGAMMA", "RANDOM_SEED", "LANGEVIN_GAMMA", "LANGEVIN_GAMMA_L", "NCORE", "NPAR", "KPAR",
    "NSIM", "LPLANE", "ML_LMLFF", "ML_MODE", "ML_ISTART", "LSCALAPACK", "LSCALU", "NWRITE", "IWAVPR",
    "ISTART", "ICHARG", "ALGO", "NELMIN", "NELMDL", "LASPH", "LORBIT", "SYMPREC", "ADDGRID", "LMAXMIX",
    "NBANDS", "NELECT", "AMIX", "BMIX", "AMIX_MAG", "BMIX_MAG", "IVDW", "METAGGA", "LDAU", "LVTOT", "LELF",
    "NFREE", "PSTRESS", "TEIN", "KBLOCK", "NEDOS", "EMIN", "EMAX", "LMIXTAU", "LAECHG", "ENAUG",
})
#: valence electrons written into placeholder POTCARs (METHOD.md section 4: Li s1, P s2p3, S s2p4, Cl s2p5);
#: other elements get their main-group valence (group number, minus 10 from group 13 on)
PLACEHOLDER_ZVAL = {"Li": 1.0, "P": 5.0, "S": 6.0, "Cl": 7.0, "H": 1.0, "O": 6.0, "Al": 3.0}
IBRION_VALUES = (-1, 0, 1, 2, 3, 5, 6, 7, 8, 44)
KBAR_EV_A3 = 0.1 * units.GPa  # 1 kBar in eV/Å^3
_STOP_SOFT = "soft stop encountered!  aborting job"


class Refusal(Exception):
    """An input VASP (or this stand-in) does not run; the message is VASP-like, one or more lines."""


# --- small formatting helpers -----------------------------------------------------------------
def fortran_e(x: float, digits: int = 8) -> str:
    """``x`` as VASP's Fortran prints it in OSZICAR: ``-.22668434E+03``, ``0.10168000E+01``."""
    if x == 0 or not math.isfinite(x):
        return f"0.{'0' * digits}E+00" if math.isfinite(x) else "NaN"
    exp = math.floor(math.log10(abs(x))) + 1
    mant = round(abs(x) / 10.0 ** exp, digits)
    if mant >= 1.0:
        mant /= 10.0
        exp += 1
    return f"{'-' if x < 0 else '0'}{f'{mant:.{digits}f}'[1:]}E{exp:+03d}"


def error_box(message: str) -> str:
    """VASP's boxed ERROR banner around ``message``."""
    w = 77
    art = ["EEEEEEE  RRRRRR   RRRRRR   OOOOOOO  RRRRRR      ###     ###     ###",
           "E        R     R  R     R  O     O  R     R     ###     ###     ###",
           "E        R     R  R     R  O     O  R     R     ###     ###     ###",
           "EEEEE    RRRRRR   RRRRRR   O     O  RRRRRR       #       #       #",
           "E        R   R    R   R    O     O  R   R",
           "E        R    R   R    R   O     O  R    R      ###     ###     ###",
           "EEEEEEE  R     R  R     R  OOOOOOO  R     R     ###     ###     ###"]
    body = []
    for para in message.splitlines():
        words, line = para.split(), ""
        for word in words:
            if line and len(line) + 1 + len(word) > w - 10:
                body.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        body.append(line)
    rows = ["", *art, "", *body, "", "  ---->  I REFUSE TO CONTINUE WITH THIS SICK JOB ... BYE!!! <----", ""]
    out = [" " + "-" * w] + [f"|     {r:<{w - 5}}|" for r in rows] + [" " + "-" * w]
    return "\n".join(out) + "\n"


def _wrap(frac: np.ndarray) -> np.ndarray:
    f = np.mod(frac, 1.0)
    f[f >= 1.0 - 1e-12] = 0.0
    return f


def _append(path: Path, text: str) -> None:
    """Append ``text`` with one write call (what is on disk after a SIGKILL is whole steps)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# --- INCAR ------------------------------------------------------------------------------------
@functools.cache
def tag_types() -> dict[str, str]:
    """{TAG: type} of pymatgen's list of VASP's INCAR tags (``int``, ``float``, ``bool``, ``str``, ...)."""
    with open(Path(pmg_vasp.__file__).parent / "incar_parameters.json") as fh:
        return {k: str(v.get("type", "")) if isinstance(v, dict) else "" for k, v in json.load(fh).items()}


def known_tags() -> frozenset[str]:
    """The INCAR tags this stand-in accepts: pymatgen's list of VASP's tags and :data:`EXTRA_TAGS`."""
    return frozenset(tag_types()) | EXTRA_TAGS


def parse_incar(text: str) -> dict[str, str]:
    """{TAG: raw value} in file order; first occurrence wins (as VASP). Refuses lines without '=',
    empty values and unknown tags."""
    tags: dict[str, str] = {}
    where: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = re.split(r"[#!]", raw, maxsplit=1)[0]
        for part in line.split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise Refusal(f"INCAR line {lineno} ({raw.strip()!r}) has no '=': not a TAG = value line")
            key, val = (s.strip() for s in part.split("=", 1))
            key = key.upper()
            if not re.fullmatch(r"[A-Z][A-Z0-9_]*", key) or not val:
                raise Refusal(f"Error reading item '{key}' from file INCAR. (line {lineno}: {raw.strip()!r})")
            if key not in tags:
                tags[key], where[key] = val.strip("'\""), lineno
    known = known_tags()
    unknown = [k for k in tags if k not in known]
    if unknown:
        raise Refusal("The INCAR tag(s) " + ", ".join(f"{k} (line {where[k]})" for k in unknown)
                      + " are unknown to VASP. Check the spelling; this stand-in refuses tags VASP does not know.")
    return tags


def _expand(val: str) -> list[str]:
    out = []
    for tok in val.split():
        if "*" in tok:
            n, v = tok.split("*", 1)
            out += [v] * int(n)
        else:
            out.append(tok)
    return out


class _Tags:
    """Typed access to INCAR values with VASP's defaults; a value that does not read is refused."""

    def __init__(self, tags: dict[str, str]):
        self.raw = tags

    def _bad(self, key: str) -> Refusal:
        return Refusal(f"Error reading item '{key}' from file INCAR. (value {self.raw[key]!r})")

    def int(self, key: str, default: int) -> int:
        if key not in self.raw:
            return default
        try:
            return int(self.raw[key].split()[0])
        except ValueError:
            raise self._bad(key) from None

    def float(self, key: str, default: float) -> float:
        if key not in self.raw:
            return default
        try:
            return float(self.raw[key].split()[0].replace("d", "e").replace("D", "E"))
        except ValueError:
            raise self._bad(key) from None

    def floats(self, key: str) -> list[float] | None:
        if key not in self.raw:
            return None
        try:
            return [float(v.replace("d", "e").replace("D", "E")) for v in _expand(self.raw[key])]
        except ValueError:
            raise self._bad(key) from None

    def bool(self, key: str, default: bool) -> bool:
        if key not in self.raw:
            return default
        v = self.raw[key].split()[0].upper().lstrip(".")
        if v[:1] in ("T", "F"):
            return v[:1] == "T"
        raise self._bad(key)

    def str(self, key: str, default: str) -> str:
        return self.raw.get(key, default)


# --- POTCAR, POSCAR, KPOINTS ------------------------------------------------------------------
@dataclass
class PotcarEntry:
    titel: str  # e.g. "PAW_PBE Li 17Jan2003"
    element: str
    zval: float
    pomass: float


def _element_of(symbol: str) -> str:
    """'Li_sv' -> 'Li', 'H.75' -> 'H'."""
    return "".join(c for c in symbol.split("_")[0] if c.isalpha())


def read_potcar(text: str) -> list[PotcarEntry]:
    titels = re.findall(r"TITEL\s*=\s*(.+?)\s*$", text, flags=re.MULTILINE)
    zvals = re.findall(r"ZVAL\s*=\s*([-+\d.Ee]+)", text)
    masses = re.findall(r"POMASS\s*=\s*([-+\d.Ee]+)", text)
    if not titels:
        raise Refusal("POTCAR holds no dataset (no TITEL line)")
    if len(zvals) != len(titels):
        raise Refusal(f"POTCAR: {len(titels)} TITEL line(s) but {len(zvals)} ZVAL line(s): a dataset is incomplete")
    out = []
    for i, (t, z) in enumerate(zip(titels, zvals)):
        parts = t.split()
        el = _element_of(parts[1] if len(parts) > 1 else parts[0])
        try:
            Element(el)
        except ValueError:
            raise Refusal(f"POTCAR dataset {i + 1}: TITEL {t!r} names no element") from None
        mass = float(masses[i]) if i < len(masses) else float(Element(el).atomic_mass)
        out.append(PotcarEntry(t, el, float(z), mass))
    return out


def write_placeholder_potcar(species, path: str | os.PathLike) -> Path:
    """Write a placeholder POTCAR for ``species`` (POSCAR order, e.g. ["Li", "P", "S", "Cl"]) at ``path``.

    It holds no pseudopotential: per species a header, TITEL and ZVAL (and the few keyword lines that
    pymatgen's Potcar needs to read it, which custodian's corrections do), marked as a placeholder. It
    stands in for the licensed PAW library in the rehearsal and tests; it is never a real POTCAR.
    """
    parts = []
    for sym in species:
        el = _element_of(str(sym))
        e = Element(el)
        zval = PLACEHOLDER_ZVAL.get(el)
        if zval is None:
            g = e.group
            zval = float(g if g <= 12 else g - 10)
        parts.append(
            f"  PAW_PBE {sym} placeholder\n {zval:.1f}\n"
            f" parameters from PSCTR are:\n"
            f"   VRHFIN ={el}: argyro placeholder, not a pseudopotential\n"
            f"   LEXCH  = PE\n"
            f"   TITEL  = PAW_PBE {sym} placeholder\n"
            f"   POMASS = {float(e.atomic_mass):8.3f}; ZVAL   = {zval:8.3f}    mass and valenz\n"
            f" END of PSCTR-controll parameters\n"
            f" 0\n"
            f" End of Dataset\n")
    p = Path(path)
    p.write_text("".join(parts))
    return p


def write_placeholder_paw_dir(directory: str | os.PathLike, elements) -> Path:
    """A placeholder PAW library: ``<directory>/<element>/POTCAR`` for each element, the layout argyro's
    POTCAR assembly reads (:mod:`argyro_fw.dft.paw`, ``$ARGYRO_POTCAR_DIR``); returns ``directory``."""
    d = Path(directory)
    for el in elements:
        (d / str(el)).mkdir(parents=True, exist_ok=True)
        write_placeholder_potcar([el], d / str(el) / "POTCAR")
    return d


def read_poscar(text: str, potcar: list[PotcarEntry]) -> Poscar:
    lines = text.splitlines()
    if len(lines) < 8:
        raise Refusal(f"POSCAR: {len(lines)} line(s); a POSCAR needs a comment, scale, 3 lattice vectors, "
                      "species counts, a coordinate mode and positions")
    names_line = lines[5].split()
    has_names = bool(names_line) and all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", t) for t in names_line)
    counts_line = (lines[6] if has_names else lines[5]).split()
    try:
        counts = [int(c) for c in counts_line]
    except ValueError:
        raise Refusal(f"POSCAR: the ion counts line {' '.join(counts_line)!r} does not read as integers") from None
    pot = [p.element for p in potcar]
    if len(counts) != len(pot):
        raise Refusal(f"POSCAR has {len(counts)} species ({' '.join(names_line) if has_names else 'no names line'}) "
                      f"but POTCAR {len(pot)} dataset(s) ({' '.join(pot)}): the number of types in POSCAR and "
                      "POTCAR differ")
    if has_names:
        names = [_element_of(n) for n in names_line]
        if names != pot:
            titels = "; ".join(p.titel for p in potcar)
            raise Refusal(f"The species in POSCAR ({' '.join(names_line)}) and POTCAR ({' '.join(pot)}; TITEL: "
                          f"{titels}) differ in order or kind: the POTCAR must hold one dataset per POSCAR "
                          "species, in the same order")
    try:
        pos = Poscar.from_str(text, default_names=None if has_names else pot, read_velocities=True)
    except (ValueError, IndexError, TypeError, KeyError, AttributeError) as exc:  # pymatgen on a malformed file
        raise Refusal(f"POSCAR could not be read ({type(exc).__name__}: {exc})") from None
    if len(pos.structure) != sum(counts):
        raise Refusal(f"POSCAR: {len(pos.structure)} positions for {sum(counts)} ions")
    if np.linalg.det(pos.structure.lattice.matrix) < 0:
        raise Refusal("ERROR: the triple product of the basis vectors is negative exchange two basis vectors")
    return pos


@dataclass
class KGrid:
    style: str  # "Gamma", "Monkhorst-Pack", "Reciprocal" (explicit list), "KSPACING"
    divisions: tuple[int, int, int] | None
    shift: tuple[float, float, float]
    points: np.ndarray  # (nk, 3) fractional
    weights: np.ndarray


def _grid_points(div, shift, gamma: bool) -> np.ndarray:
    axes = []
    for n, s in zip(div, shift):
        if gamma:
            k = (np.arange(n) + s) / n
        else:
            k = (np.arange(n) + 0.5 * (1 - n % 2) + s) / n  # Monkhorst-Pack: even grids shifted off Gamma
        axes.append(k - np.round(k))
    return np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T


def read_kpoints(text: str | None, lattice: Lattice, kspacing: float | None, kgamma: bool) -> KGrid:
    if text is None:
        b = np.asarray(lattice.reciprocal_lattice.abc)
        div = tuple(max(1, math.ceil(x / kspacing - 1e-9)) for x in b)
        pts = _grid_points(div, (0, 0, 0), kgamma)
        return KGrid("KSPACING", div, (0.0, 0.0, 0.0), pts, np.full(len(pts), 1.0 / len(pts)))
    lines = [ln for ln in text.splitlines()]
    if len(lines) < 4 or not lines[2].strip():
        raise Refusal("Error reading KPOINTS file: it needs a comment, the number of k-points (0: automatic), "
                      "a mode line and the grid or list")
    try:
        nk = int(lines[1].split()[0])
    except (ValueError, IndexError):
        raise Refusal(f"Error reading KPOINTS file: line 2 ({lines[1].strip()!r}) is not the number of k-points") from None
    mode = lines[2].strip()[:1].upper()
    if mode == "L":
        raise Refusal("KPOINTS in line mode (band structure) is not implemented by this stand-in")
    if nk == 0 and mode in ("G", "M"):
        toks = lines[3].split()
        try:
            div = tuple(int(t) for t in toks)
        except ValueError:
            div = ()
        if len(div) != 3 or min(div) < 1:
            raise Refusal(f"Error reading KPOINTS file: line 4 ({lines[3].strip()!r}) must hold three positive "
                          "integers, the subdivisions of the grid")
        shift = (0.0, 0.0, 0.0)
        if len(lines) > 4 and lines[4].split():
            try:
                shift = tuple(float(t) for t in lines[4].split()[:3])
                assert len(shift) == 3
            except (ValueError, AssertionError):
                raise Refusal(f"Error reading KPOINTS file: line 5 ({lines[4].strip()!r}) is not a shift") from None
        pts = _grid_points(div, shift, mode == "G")
        return KGrid("Gamma" if mode == "G" else "Monkhorst-Pack", div, shift, pts, np.full(len(pts), 1.0 / len(pts)))
    if nk == 0 and mode == "A":
        try:
            length = float(lines[3].split()[0])
        except (ValueError, IndexError):
            raise Refusal(f"Error reading KPOINTS file: line 4 ({lines[3].strip()!r}) is not the length R_k") from None
        b = np.asarray(lattice.reciprocal_lattice.abc) / (2 * math.pi)
        div = tuple(max(1, int(length * x + 0.5)) for x in b)
        pts = _grid_points(div, (0, 0, 0), True)
        return KGrid("Gamma", div, (0.0, 0.0, 0.0), pts, np.full(len(pts), 1.0 / len(pts)))
    if nk > 0:
        try:
            kp = Kpoints.from_str(text)
            pts = np.array(kp.kpts, dtype=float)
            w = np.array(kp.kpts_weights, dtype=float)
            assert pts.shape == (nk, 3) and len(w) == nk
        except (ValueError, IndexError, TypeError, KeyError, AssertionError):
            raise Refusal(f"Error reading KPOINTS file: the explicit list does not hold {nk} k-points "
                          "with weights") from None
        if mode in ("C", "K"):
            pts = pts @ lattice.matrix.T / (2 * math.pi)
        return KGrid("Reciprocal", None, (0.0, 0.0, 0.0), pts, w / w.sum())
    raise Refusal(f"Error reading KPOINTS file: mode line {lines[2].strip()!r} with {nk} k-points is not understood")


# --- settings ---------------------------------------------------------------------------------
@dataclass
class Settings:
    system: str
    nsw: int
    ibrion: int
    isif: int
    ediff: float
    ediffg: float
    nelm: int
    potim: float
    tebeg: float
    teend: float
    smass: float
    mdalgo: int
    nblock: int
    ispin: int
    magmom: list[float] | None
    langevin_gamma: list[float] | None
    seed: int
    encut: float
    prec: str
    ismear: int
    sigma: float
    isym: int
    gga: str
    lwave: bool
    lcharg: bool
    kspacing: float | None
    kgamma: bool

    @property
    def mode(self) -> str:
        """'single' | 'relax' | 'md'."""
        if self.nsw == 0 or self.ibrion == -1:
            return "single"
        return "md" if self.ibrion == 0 else "relax"


def settings_from(tags: dict[str, str], nions: int, ntypes: int) -> Settings:
    t = _Tags(tags)
    nsw = t.int("NSW", 0)
    ibrion = t.int("IBRION", -1 if nsw in (-1, 0) else 0)
    ediff = t.float("EDIFF", 1e-4)
    tebeg = t.float("TEBEG", 0.0)
    seed_vals = t.floats("RANDOM_SEED")
    s = Settings(
        system=t.str("SYSTEM", "unknown system"), nsw=nsw, ibrion=ibrion, isif=t.int("ISIF", 0 if ibrion == 0 else 2),
        ediff=ediff, ediffg=t.float("EDIFFG", 10 * ediff), nelm=t.int("NELM", 60), potim=t.float("POTIM", 0.5),
        tebeg=tebeg, teend=t.float("TEEND", tebeg), smass=t.float("SMASS", -3.0), mdalgo=t.int("MDALGO", 0),
        nblock=t.int("NBLOCK", 1), ispin=t.int("ISPIN", 1), magmom=t.floats("MAGMOM"),
        langevin_gamma=t.floats("LANGEVIN_GAMMA"), seed=int(seed_vals[0]) if seed_vals else 248489752,
        encut=t.float("ENCUT", 400.0), prec=t.str("PREC", "Normal"), ismear=t.int("ISMEAR", 1),
        sigma=t.float("SIGMA", 0.2), isym=t.int("ISYM", 2), gga=t.str("GGA", "PE"), lwave=t.bool("LWAVE", True),
        lcharg=t.bool("LCHARG", True), kspacing=t.float("KSPACING", 0.5) if "KSPACING" in tags else None,
        kgamma=t.bool("KGAMMA", True))
    kinds = tag_types()
    for key in tags:  # every other typed tag must read as its type too (VASP stops on the first that does not)
        {"int": lambda k: t.int(k, 0), "float": lambda k: t.float(k, 0.0), "bool": lambda k: t.bool(k, False)}.get(
            kinds.get(key, ""), lambda k: None)(key)
    _check(s, nions, ntypes)
    return s


def _check(s: Settings, nions: int, ntypes: int) -> None:
    if s.nsw < 0:
        raise Refusal(f"NSW = {s.nsw}: the number of ionic steps must be >= 0")
    if s.ibrion not in IBRION_VALUES:
        raise Refusal(f"IBRION = {s.ibrion} is not a VASP ionic algorithm (expected one of {IBRION_VALUES})")
    if s.ibrion in (5, 6, 7, 8, 44):
        raise Refusal(f"IBRION = {s.ibrion} (phonons, finite differences, dimer) is not implemented by this stand-in")
    if s.ibrion == -1 and s.nsw > 0:
        raise Refusal(f"IBRION = -1 with NSW = {s.nsw}: the ions would not move; this stand-in runs IBRION = -1 "
                      "with NSW = 0 only")
    if s.nblock < 1:
        raise Refusal(f"NBLOCK = {s.nblock} must be >= 1")
    if s.nelm < 1:
        raise Refusal(f"NELM = {s.nelm} must be >= 1")
    if s.ispin not in (1, 2):
        raise Refusal(f"ISPIN = {s.ispin}: expected 1 or 2")
    if s.ispin == 2 and s.magmom is not None and len(s.magmom) != nions:
        raise Refusal(f"Error reading item 'MAGMOM' from file INCAR. ({len(s.magmom)} value(s) for {nions} ions)")
    if s.mode == "relax" and s.isif not in (0, 1, 2, 3, 4):
        raise Refusal(f"ISIF = {s.isif} is not implemented by this stand-in (relaxations: ISIF 0-4)")
    if s.mode == "md":
        if s.potim <= 0:
            raise Refusal(f"POTIM = {s.potim}: molecular dynamics (IBRION = 0) needs a positive time step (fs)")
        if s.isif >= 3:
            raise Refusal(f"ISIF = {s.isif} with IBRION = 0 (NpT dynamics) is not implemented by this stand-in")
        if s.mdalgo not in (0, 2, 3):
            raise Refusal(f"MDALGO = {s.mdalgo} is not implemented by this stand-in (0 or 2: Nose-Hoover, 3: Langevin)")
        if s.mdalgo in (0, 2) and s.smass not in (0.0, -3.0):
            raise Refusal(f"SMASS = {s.smass:g} is not implemented by this stand-in (0: Nose, period of 40 steps; "
                          "-3: NVE)")
        thermostat = s.mdalgo == 3 or s.smass == 0.0
        if thermostat and (s.tebeg <= 0 or s.teend <= 0):
            raise Refusal(f"TEBEG = {s.tebeg:g}, TEEND = {s.teend:g}: a thermostat needs positive temperatures (K)")
        if s.mdalgo == 3 and (s.langevin_gamma is None or len(s.langevin_gamma) != ntypes):
            n = 0 if s.langevin_gamma is None else len(s.langevin_gamma)
            raise Refusal(f"Error reading item 'LANGEVIN_GAMMA' from file INCAR. (MDALGO = 3 needs one value per "
                          f"species: {ntypes}, got {n})")
    if s.kspacing is not None and s.kspacing <= 0:
        raise Refusal(f"KSPACING = {s.kspacing} must be > 0")


# --- the whole input check --------------------------------------------------------------------
@dataclass
class Inputs:
    directory: Path
    tags: dict[str, str]
    settings: Settings
    poscar: Poscar
    potcar: list[PotcarEntry]
    kgrid: KGrid
    species: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


def _read(d: Path, name: str, required: bool = True) -> str | None:
    f = d / name
    if not f.is_file():
        if required:
            raise Refusal(f"No {name} file in {d}: VASP needs INCAR, POSCAR, KPOINTS and POTCAR")
        return None
    try:
        text = f.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise Refusal(f"{name} could not be read ({type(exc).__name__}: {exc})") from None
    if not text.strip():
        raise Refusal(f"{name} is empty")
    return text


def check_inputs(directory: str | os.PathLike = ".") -> Inputs:
    """Read and check INCAR, POSCAR, KPOINTS and POTCAR of ``directory`` (nothing is written; no CHGNet).
    Raises :class:`Refusal` with the message VASP-like output carries."""
    d = Path(directory)
    incar_text = _read(d, "INCAR")
    poscar_text = _read(d, "POSCAR")
    potcar_text = _read(d, "POTCAR")
    tags = parse_incar(incar_text)
    kpoints_text = _read(d, "KPOINTS", required="KSPACING" not in tags)
    potcar = read_potcar(potcar_text)
    poscar = read_poscar(poscar_text, potcar)
    species = [p.element for p in potcar]
    counts = [int(c) for c in poscar.natoms]
    s = settings_from(tags, len(poscar.structure), len(species))
    kgrid = read_kpoints(kpoints_text, poscar.structure.lattice, s.kspacing, s.kgamma)
    return Inputs(d, tags, s, poscar, potcar, kgrid, species, counts)


# --- CHGNet -----------------------------------------------------------------------------------
_CALC = None
_THREADS: int | None = None  # torch threads, set by main() (the executable) before the model loads


def chgnet_calculator():
    """CHGNet's ASE calculator on the CPU (weights from its wheel), built once per process."""
    global _CALC
    if _CALC is None:
        import torch  # heavy; imported only once the inputs passed (a refusal stays fast)
        from chgnet.model.dynamics import CHGNetCalculator  # heavy (torch, weights): loaded when a run starts

        if _THREADS is not None:
            torch.set_num_threads(_THREADS)
        with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its banner; VASP's stdout is vasp.out
            _CALC = CHGNetCalculator(use_device="cpu")
    return _CALC


# --- one ionic step ---------------------------------------------------------------------------
@dataclass
class Step:
    energy: float
    forces: np.ndarray  # eV/Å, (N, 3), unconstrained
    stress: np.ndarray | None  # eV/Å^3, ASE sign (tensile positive); None with ISIF 0
    cell: np.ndarray
    frac: np.ndarray  # wrapped into [0, 1)
    ekin: float | None = None  # eV (MD)
    temperature: float | None = None  # K (MD, 3N - 3 degrees of freedom)
    seconds: float = 0.0


def _ndof(n: int) -> int:
    return max(3, 3 * n - 3)


def _snapshot(atoms, with_stress: bool, md: bool, t0: float) -> Step:
    e = float(atoms.get_potential_energy())
    f = np.asarray(atoms.get_forces(apply_constraint=False), dtype=float)
    st = np.asarray(atoms.get_stress(voigt=False), dtype=float) if with_stress else None
    cell = np.array(atoms.cell.array, dtype=float)
    frac = _wrap(np.linalg.solve(cell.T, atoms.get_positions().T).T)
    step = Step(e, f, st, cell, frac, seconds=time.time() - t0)
    if md:
        ek = float(atoms.get_kinetic_energy())
        step.ekin, step.temperature = ek, 2 * ek / (_ndof(len(atoms)) * units.kB)
    return step


# --- output writers ---------------------------------------------------------------------------
def _vec_lines(rows, indent: str, fmt: str = "{:16.8f}") -> str:
    return "".join(f"{indent}<v>{''.join(fmt.format(x) for x in r)} </v>\n" for r in rows)


def _structure_xml(cell: np.ndarray, frac: np.ndarray, indent: str, name: str | None = None) -> str:
    nm = f' name="{name}"' if name else ""
    rec = np.linalg.inv(cell).T
    return (f"{indent}<structure{nm} >\n{indent} <crystal>\n{indent}  <varray name=\"basis\" >\n"
            + _vec_lines(cell, indent + "   ")
            + f"{indent}  </varray>\n{indent}  <i name=\"volume\">{abs(np.linalg.det(cell)):16.8f} </i>\n"
            + f"{indent}  <varray name=\"rec_basis\" >\n" + _vec_lines(rec, indent + "   ")
            + f"{indent}  </varray>\n{indent} </crystal>\n{indent} <varray name=\"positions\" >\n"
            + _vec_lines(frac, indent + "  ") + f"{indent} </varray>\n{indent}</structure>\n")


ARRAY_TAGS = frozenset({"MAGMOM", "LANGEVIN_GAMMA", "RANDOM_SEED", "LDAUL", "LDAUU", "LDAUJ", "RWIGS"})


def _xml_param(key: str, val: str) -> str:
    toks = _expand(val)
    if len(toks) > 1 or key in ARRAY_TAGS:
        try:
            return f'  <v name="{key}">' + "".join(f"{float(x):16.8f}" for x in toks) + "</v>\n"
        except ValueError:
            return f'  <i type="string" name="{key}">{escape(val)}</i>\n'
    v = toks[0]
    if v.upper().strip(".") in ("T", "F", "TRUE", "FALSE"):
        return f'  <i type="logical" name="{key}"> {v.upper().strip(".")[0]}  </i>\n'
    try:
        return f'  <i type="int" name="{key}">{int(v):6d}</i>\n'
    except ValueError:
        pass
    try:
        return f'  <i name="{key}">{float(v.replace("d", "e").replace("D", "E")):16.8f}</i>\n'
    except ValueError:
        return f'  <i type="string" name="{key}">{escape(val)}</i>\n'


class Writer:
    """VASP's output files for one run, written step by step."""

    def __init__(self, inp: Inputs, out=None):
        self.inp, self.s, self.d = inp, inp.settings, inp.directory
        self.out = out or sys.stdout
        self.n = sum(inp.counts)
        self.symbols = [el for el, c in zip(inp.species, inp.counts) for _ in range(c)]
        self.nelect = sum(p.zval * c for p, c in zip(inp.potcar, inp.counts))
        self.nbands = max(int(self.nelect / 2) + self.n // 2, 8)
        self.prev_e: float | None = None
        self.t0 = time.time()
        self.variable_cell = self.s.mode == "relax" and self.s.isif >= 3

    def say(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # header -----------------------------------------------------------------------------------
    def start(self) -> None:
        for name in ("vasprun.xml", "OUTCAR", "OSZICAR", "XDATCAR", "CONTCAR"):
            with contextlib.suppress(FileNotFoundError):
                (self.d / name).unlink()
        inp = self.inp
        st = inp.poscar.structure
        cores = _env_int("SLURM_STEP_NUM_TASKS", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", default=1)
        self.say(f" running on {cores:4d} total cores\n distrk:  each k-point on {cores:4d} cores,    1 groups\n"
                 f" distr:  one band on    1 cores, {cores:4d} groups\n vasp.{VERSION} ({PROGRAM_NOTE})\n"
                 f" POSCAR found type information on POSCAR {' '.join(inp.species)}\n"
                 f" POSCAR found : {len(inp.species):2d} types and {self.n:7d} ions\n"
                 f" entering main loop\n")
        self._vasprun_header(st)
        self._outcar_header(st)
        _append(self.d / "OSZICAR", "")
        if not self.variable_cell:
            _append(self.d / "XDATCAR", self._xdat_header(st.lattice.matrix))

    def _vasprun_header(self, st: Structure) -> None:
        s, inp = self.s, self.inp
        t = time.localtime()
        x = ['<?xml version="1.0" encoding="ISO-8859-1"?>\n<modeling>\n <generator>\n',
             '  <i name="program" type="string">vasp </i>\n',
             f'  <i name="version" type="string">{VERSION} </i>\n',
             f'  <i name="subversion" type="string">({escape(PROGRAM_NOTE)}) </i>\n',
             '  <i name="platform" type="string">argyro </i>\n',
             f'  <i name="date" type="string">{time.strftime("%Y %m %d", t)} </i>\n',
             f'  <i name="time" type="string">{time.strftime("%H:%M:%S", t)} </i>\n </generator>\n <incar>\n']
        x += [_xml_param(k, v) for k, v in inp.tags.items()]
        x.append(" </incar>\n")
        kg = inp.kgrid
        x.append(" <kpoints>\n")
        if kg.divisions is not None:
            gen = "Gamma" if kg.style in ("Gamma", "KSPACING") else "Monkhorst-Pack"
            x.append(f'  <generation param="{gen}">\n   <v type="int" name="divisions">'
                     + "".join(f"{n:8d} " for n in kg.divisions) + "</v>\n"
                     + '   <v name="usershift">' + "".join(f"{v:16.8f}" for v in kg.shift) + " </v>\n")
            for i, n in enumerate(kg.divisions):
                g = np.zeros(3)
                g[i] = 1.0 / n
                x.append(f'   <v name="genvec{i + 1}">' + "".join(f"{v:16.8f}" for v in g) + " </v>\n")
            x.append('   <v name="shift">' + "".join(f"{v:16.8f}" for v in kg.shift) + " </v>\n  </generation>\n")
        x.append('  <varray name="kpointlist" >\n' + _vec_lines(kg.points, "   ") + "  </varray>\n")
        x.append('  <varray name="weights" >\n' + "".join(f"   <v>{w:16.8f} </v>\n" for w in kg.weights)
                 + "  </varray>\n </kpoints>\n")
        mag = s.magmom if s.magmom is not None else [1.0] * self.n
        p = {"general": [("SYSTEM", "string", escape(s.system)), ("LCOMPAT", "logical", "F")],
             "electronic": [("PREC", "string", s.prec.lower()[:6]), ("ENMAX", "", f"{s.encut:16.8f}"),
                            ("EDIFF", "", f"{s.ediff:16.8f}"), ("NBANDS", "int", f"{self.nbands:6d}"),
                            ("NELECT", "", f"{self.nelect:16.8f}"), ("ISMEAR", "int", f"{s.ismear:6d}"),
                            ("SIGMA", "", f"{s.sigma:16.8f}"), ("ISPIN", "int", f"{s.ispin:6d}"),
                            ("LNONCOLLINEAR", "logical", "F"), ("LSORBIT", "logical", "F"),
                            ("NELM", "int", f"{s.nelm:6d}"), ("NELMIN", "int", f"{2:6d}")],
             "ionic": [("NSW", "int", f"{s.nsw:6d}"), ("IBRION", "int", f"{s.ibrion:6d}"),
                       ("MDALGO", "int", f"{s.mdalgo:6d}"), ("ISIF", "int", f"{s.isif:6d}"),
                       ("PSTRESS", "", f"{0.0:16.8f}"), ("EDIFFG", "", f"{s.ediffg:16.8f}"),
                       ("POTIM", "", f"{s.potim:16.8f}"), ("SMASS", "", f"{s.smass:16.8f}")],
             "ionic md": [("TEBEG", "", f"{s.tebeg:16.8f}"), ("TEEND", "", f"{s.teend:16.8f}"),
                          ("NBLOCK", "int", f"{s.nblock:6d}")],
             "symmetry": [("ISYM", "int", f"{s.isym:6d}")],
             "writing": [("LWAVE", "logical", "T" if s.lwave else "F"), ("LCHARG", "logical", "T" if s.lcharg else "F")],
             "electronic exchange-correlation": [("GGA", "string", escape(s.gga)), ("LHFCALC", "logical", "F")],
             "linear response parameters": [("LEPSILON", "logical", "F")],
             "orbital magnetization": [("LCHIMAG", "logical", "F")]}
        x.append(" <parameters>\n")
        for sep, items in p.items():
            x.append(f'  <separator name="{sep}" >\n')
            for key, typ, val in items:
                ty = f' type="{typ}"' if typ else ""
                x.append(f'   <i{ty} name="{key}">{val}</i>\n')
            if sep == "electronic":
                x.append('   <v name="MAGMOM">' + "".join(f"{m:16.8f}" for m in mag) + "</v>\n")
            x.append("  </separator>\n")
        x.append(" </parameters>\n <atominfo>\n")
        x.append(f"  <atoms>{self.n:8d} </atoms>\n  <types>{len(self.inp.species):8d} </types>\n")
        x.append('  <array name="atoms" >\n   <dimension dim="1">ion</dimension>\n'
                 '   <field type="string">element</field>\n   <field type="int">atomtype</field>\n   <set>\n')
        for i, (el, c) in enumerate(zip(self.inp.species, self.inp.counts)):
            x += [f"    <rc><c>{el:<2}</c><c>{i + 1:4d}</c></rc>\n"] * c
        x.append('   </set>\n  </array>\n  <array name="atomtypes" >\n   <dimension dim="1">type</dimension>\n'
                 '   <field type="int">atomspertype</field>\n   <field type="string">element</field>\n'
                 '   <field>mass</field>\n   <field>valence</field>\n'
                 '   <field type="string">pseudopotential</field>\n   <set>\n')
        for p_, c in zip(self.inp.potcar, self.inp.counts):
            x.append(f"    <rc><c>{c:4d}</c><c>{p_.element:<2}</c><c>{p_.pomass:16.8f}</c><c>{p_.zval:16.8f}</c>"
                     f"<c>  {escape(p_.titel):<37}</c></rc>\n")
        x.append("   </set>\n  </array>\n </atominfo>\n")
        x.append(_structure_xml(st.lattice.matrix, _wrap(st.frac_coords), " ", "initialpos"))
        _append(self.d / "vasprun.xml", "".join(x))

    def _outcar_header(self, st: Structure) -> None:
        s, inp = self.s, self.inp
        kg = inp.kgrid
        pot = "".join(f" POTCAR:    {p.titel}\n" for p in inp.potcar)
        cell = st.lattice.matrix
        rec = np.linalg.inv(cell).T
        lines = [f" vasp.{VERSION} ({PROGRAM_NOTE})\n",
                 f" executed on             argyro date {time.strftime('%Y.%m.%d  %H:%M:%S')}\n",
                 f" running on {_env_int('SLURM_STEP_NUM_TASKS', 'PMI_SIZE', 'OMPI_COMM_WORLD_SIZE', default=1):4d} total cores\n\n",
                 " INCAR:\n", pot, "\n", pot,
                 f"\n POSCAR = {inp.poscar.comment}\n\n Dimension of arrays:\n",
                 (f"   k-points           NKPTS = {len(kg.points):6d}   k-points in BZ     NKDIM = {len(kg.points):6d}"
                  f"   number of bands    NBANDS= {self.nbands:6d}\n"),
                 f"   number of dos      NEDOS =    301   number of ions     NIONS = {self.n:6d}\n",
                 "   total plane-waves  NPLWV =      0\n",  # no plane waves: CHGNet
                 "   ions per type =     " + "".join(f"{c:4d}" for c in inp.counts) + "\n\n",
                 f" SYSTEM =  {s.system}\n POSCAR =  {inp.poscar.comment}\n\n Startparameter for this run:\n",
                 f"   PREC   = {s.prec.lower()[:6]:>6}    medium, high low\n",
                 f"   ISPIN  = {s.ispin:6d}    spin polarized calculation?\n",
                 "   LNONCOLLINEAR =      F non collinear calculations\n\n Electronic Relaxation 1\n",
                 f"   ENCUT  = {s.encut:6.1f} eV\n   NELM   = {s.nelm:6d};   NELMIN=  2; NELMDL=  0     # of ELM steps\n",
                 f"   EDIFF  = {s.ediff:.1E}   stopping-criterion for ELM\n\n Ionic relaxation\n",
                 f"   EDIFFG = {s.ediffg:.1E}   stopping-criterion for IOM\n",
                 f"   NSW    = {s.nsw:6d}    number of steps for IOM\n",
                 f"   NBLOCK = {s.nblock:6d};   KBLOCK = {max(1, s.nsw):6d}    inner block; outer block\n",
                 f"   IBRION = {s.ibrion:6d}    ionic relax: 0-MD 1-quasi-New 2-CG\n",
                 f"   ISIF   = {s.isif:6d}    stress and relaxation\n",
                 f"   ISYM   = {s.isym:6d}    0-nonsym 1-usesym 2-fastsym\n\n",
                 f"   POTIM  = {s.potim:6.4f}    time-step for ionic-motion\n",
                 f"   TEBEG  = {s.tebeg:6.1f};   TEEND  = {s.teend:6.1f} temperature during run\n",
                 f"   SMASS  = {s.smass:6.2f}    Nose mass-parameter (am)\n",
                 f"   MDALGO = {s.mdalgo:6d}\n\n",
                 "  Mass of Ions in am\n   POMASS = " + "".join(f"{p.pomass:6.2f}" for p in inp.potcar) + "\n",
                 "  Ionic Valenz\n   ZVAL   = " + "".join(f"{p.zval:6.2f}" for p in inp.potcar) + "\n",
                 f"   NELECT = {self.nelect:12.4f}    total number of electrons\n\n",
                 f"   ISMEAR = {s.ismear:6d};   SIGMA  = {s.sigma:6.2f}  broadening in eV -4-tet -1-fermi 0-gaus\n\n",
                 " Write flags\n", f"   LWAVE  = {'T' if s.lwave else 'F':>6}    write WAVECAR\n",
                 f"   LCHARG = {'T' if s.lcharg else 'F':>6}    write CHGCAR\n\n",
                 "      direct lattice vectors                 reciprocal lattice vectors\n"]
        lines += [f"   {a[0]:13.9f}{a[1]:13.9f}{a[2]:13.9f}   {b[0]:13.9f}{b[1]:13.9f}{b[2]:13.9f}\n"
                  for a, b in zip(cell, rec)]
        lines.append("\n k-points in reciprocal lattice and weights: argyro stand-in (full grid)\n")
        lines += [f"  {k[0]:11.8f} {k[1]:11.8f} {k[2]:11.8f} {w:12.3f}\n" for k, w in zip(kg.points, kg.weights)]
        lines.append("\n position of ions in fractional coordinates (direct lattice)\n")
        lines += [f"  {f[0]:11.8f} {f[1]:11.8f} {f[2]:11.8f}\n" for f in _wrap(st.frac_coords)]
        lines.append("\n" + "-" * 104 + "\n\n")
        _append(self.d / "OUTCAR", "".join(lines))

    def _xdat_header(self, cell: np.ndarray) -> str:
        return (f"{self.inp.poscar.comment}\n{1:12d}\n" + "".join(f"  {r[0]:12.6f}{r[1]:12.6f}{r[2]:12.6f}\n" for r in cell)
                + "".join(f"{el:>5}" for el in self.inp.species) + "\n"
                + "".join(f"{c:6d}" for c in self.inp.counts) + "\n")

    # one ionic step ---------------------------------------------------------------------------
    def step(self, k: int, st: Step, contcar: tuple | None = None) -> None:
        """Ionic step ``k`` (1-based): vasprun.xml, OUTCAR, OSZICAR, XDATCAR, standard output and, with
        ``contcar`` = (cell, frac[, velocities]), the CONTCAR. Every text is made first and then written in a
        row, the CONTCAR last by a rename: a kill lands between two of these writes only in a window of
        microseconds (then CONTCAR is one step behind, its positions equal to the last frame)."""
        s = self.s
        md = st.temperature is not None
        e = st.energy
        de = e - (self.prev_e or 0.0)
        self.prev_e = e
        # vasprun.xml
        x = [" <calculation>\n  <scstep>\n", f'   <time name="total">{st.seconds:8.2f}{st.seconds:8.2f}</time>\n',
             "   <energy>\n", f'    <i name="e_fr_energy">{e:16.8f} </i>\n',
             f'    <i name="e_wo_entrp">{e:16.8f} </i>\n', f'    <i name="e_0_energy">{e:16.8f} </i>\n',
             "   </energy>\n  </scstep>\n", _structure_xml(st.cell, st.frac, "  "),
             '  <varray name="forces" >\n', _vec_lines(st.forces, "   "), "  </varray>\n"]
        kbar = None
        if st.stress is not None:
            kbar = -st.stress / KBAR_EV_A3
            x += ['  <varray name="stress" >\n', _vec_lines(kbar, "   "), "  </varray>\n"]
        x += ["  <energy>\n", f'   <i name="e_fr_energy">{e:16.8f} </i>\n', f'   <i name="e_wo_entrp">{e:16.8f} </i>\n',
              f'   <i name="e_0_energy">{e:16.8f} </i>\n']
        if md:
            x += [f'   <i name="kinetic">{st.ekin:16.8f} </i>\n', f'   <i name="lattice kinetic">{0.0:16.8f} </i>\n',
                  f'   <i name="nosepot">{0.0:16.8f} </i>\n', f'   <i name="nosekinetic">{0.0:16.8f} </i>\n',
                  f'   <i name="total">{e + st.ekin:16.8f} </i>\n']
        x += ["  </energy>\n", f'  <time name="totalsc">{st.seconds:8.2f}{st.seconds:8.2f}</time>\n', " </calculation>\n"]
        vasprun = "".join(x)
        # OUTCAR
        o = [f"{'-' * 41} Iteration {k:4d}(   1)  {'-' * 39}\n\n",
             "  free energy    TOTEN  = " + f"{e:18.8f} eV\n\n",
             f"{'-' * 24} aborting loop because EDIFF is reached {'-' * 39}\n\n",
             f" number of electron {self.nelect:14.7f} magnetization {0.0:14.7f}\n\n"]
        if kbar is not None:
            v = [kbar[0, 0], kbar[1, 1], kbar[2, 2], kbar[0, 1], kbar[1, 2], kbar[2, 0]]
            vol = abs(np.linalg.det(st.cell))
            ev = [c * KBAR_EV_A3 * vol for c in v]
            o += ["  FORCE on cell =-STRESS in cart. coord.  units (eV):\n",
                  "  Direction    XX          YY          ZZ          XY          YZ          ZX\n",
                  "  " + "-" * 86 + "\n", "  Total   " + "".join(f"{c:12.5f}" for c in ev) + "\n",
                  "  in kB   " + "".join(f"{c:12.5f}" for c in v) + "\n",
                  f"  external pressure = {np.trace(kbar) / 3:11.2f} kB  Pullay stress = {0.0:11.2f} kB\n\n"]
        rec = np.linalg.inv(st.cell).T
        o += ["\n VOLUME and BASIS-vectors are now :\n", " " + "-" * 77 + "\n",
              f"  energy-cutoff  : {s.encut:11.2f}\n", f"  volume of cell : {abs(np.linalg.det(st.cell)):11.2f}\n",
              "      direct lattice vectors                 reciprocal lattice vectors\n"]
        o += [f"   {a[0]:13.9f}{a[1]:13.9f}{a[2]:13.9f}   {b[0]:13.9f}{b[1]:13.9f}{b[2]:13.9f}\n"
              for a, b in zip(st.cell, rec)]
        cart = st.frac @ st.cell
        o += ["\n\n POSITION                                       TOTAL-FORCE (eV/Angst)\n", " " + "-" * 83 + "\n"]
        o += [f" {p[0]:12.5f}{p[1]:12.5f}{p[2]:12.5f}   {f[0]:14.6f}{f[1]:14.6f}{f[2]:14.6f}\n"
              for p, f in zip(cart, st.forces)]
        drift = st.forces.sum(axis=0)
        o += [" " + "-" * 83 + "\n", f"    total drift:                         {drift[0]:14.6f}{drift[1]:14.6f}{drift[2]:14.6f}\n\n",
              "\n" + "-" * 104 + "\n\n\n", "  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)\n", "  " + "-" * 51 + "\n",
              f"  free  energy   TOTEN  = {e:18.8f} eV\n\n",
              f"  energy  without entropy= {e:18.8f}  energy(sigma->0) = {e:18.8f}\n\n"]
        if md:
            o += ["  ENERGY OF THE ELECTRON-ION-THERMOSTAT SYSTEM (eV)\n", "  " + "-" * 51 + "\n",
                  f"% ion-electron   TOTEN  = {e:18.8f}  see above\n",
                  f"  kinetic energy EKIN   = {st.ekin:18.8f}\n",
                  f"  kin. lattice  EKIN_LAT= {0.0:18.8f}  (temperature {st.temperature:8.2f} K)\n",
                  f"  nose potential ES     = {0.0:18.8f}\n", f"  nose kinetic   EPS    = {0.0:18.8f}\n",
                  "  " + "-" * 51 + "\n", f"  total energy   ETOTAL = {e + st.ekin:18.8f} eV\n\n"]
        fmax = float(np.sqrt((st.forces ** 2).sum(axis=1)).max()) if len(st.forces) else 0.0
        o += [f"  FORCES: max atom, RMS {fmax:12.6f}{float(np.sqrt((st.forces ** 2).mean())):12.6f}\n",
              f"     LOOP+:  cpu time {st.seconds:8.2f}: real time {st.seconds:8.2f}\n\n"]
        outcar = "".join(o)
        # OSZICAR and standard output
        osz = ("       N       E                     dE             d eps       ncg     rms          rms(c)\n"
               f"DAV: {1:3d}    {e:.12E}   {de:.5E}   {0.0:.5E}  {self.n:5d}   {0.0:.3E}\n")
        if md:
            osz += (f"{k:6d} T= {st.temperature:5.0f}. E= {fortran_e(e + st.ekin)} F= {fortran_e(e)} E0= {fortran_e(e)} "
                    f" EK= {fortran_e(st.ekin, 5)} SP= 0.00E+00 SK= 0.00E+00\n")
        else:
            mag = f"  mag= {0.0:10.4f}" if s.ispin == 2 else ""
            osz += f"{k:4d} F= {fortran_e(e)} E0= {fortran_e(e)}  d E ={fortran_e(de, 6)}{mag}\n"
        # XDATCAR
        xdat = None
        if k % s.nblock == 0:
            head = self._xdat_header(st.cell) if self.variable_cell else ""
            xdat = (head + f"Direct configuration={k:6d}\n"
                    + "".join(f"  {f[0]:11.8f} {f[1]:11.8f} {f[2]:11.8f}\n" for f in st.frac))
        tmp = None
        if contcar is not None:
            tmp = self.d / "CONTCAR.standin-tmp"
            tmp.write_text(self.contcar_text(*contcar))
        _append(self.d / "vasprun.xml", vasprun)
        _append(self.d / "OUTCAR", outcar)
        _append(self.d / "OSZICAR", osz)
        if xdat is not None:
            _append(self.d / "XDATCAR", xdat)
        if tmp is not None:
            os.replace(tmp, self.d / "CONTCAR")
        self.say(osz)

    def contcar_text(self, cell: np.ndarray, frac: np.ndarray, velocities: np.ndarray | None = None) -> str:
        """CONTCAR: positions (selective dynamics flags kept), and for MD the velocity block (Å/fs, Cartesian)."""
        inp = self.inp
        st = Structure(Lattice(cell), self.symbols, _wrap(frac))
        p = Poscar(st, comment=inp.poscar.comment, selective_dynamics=inp.poscar.selective_dynamics,
                   velocities=None if velocities is None else velocities.tolist())
        return p.get_str(significant_figures=16)

    # end --------------------------------------------------------------------------------------
    def finish(self, cell: np.ndarray, frac: np.ndarray, message: str | None, stopped: bool) -> None:
        x = _structure_xml(cell, _wrap(frac), " ", "finalpos") + "</modeling>\n"
        _append(self.d / "vasprun.xml", x)
        el = time.time() - self.t0
        tail = ""
        if stopped:
            tail += f" {_STOP_SOFT}\n\n"
        if message:
            tail += f" {message}\n\n"
        tail += (" General timing and accounting informations for this job:\n"
                 " ========================================================\n\n"
                 f"                  Total CPU time used (sec): {el:12.3f}\n"
                 f"                            User time (sec): {el:12.3f}\n"
                 f"                          System time (sec): {0.0:12.3f}\n"
                 f"                         Elapsed time (sec): {el:12.3f}\n\n"
                 f"                   Maximum memory used (kb): {0.0:12.0f}.\n"
                 f"                   Average memory used (kb): {0.0:12.0f}.\n")
        _append(self.d / "OUTCAR", tail)
        if stopped:
            self.say(f" {_STOP_SOFT}\n")
        if message:
            self.say(f" {message}\n")
        if self.s.lwave:
            self.say(" writing wavefunctions\n")


def _env_int(*names: str, default: int) -> int:
    for n in names:
        if os.environ.get(n, "").strip().isdigit():
            return int(os.environ[n])
    return default


# --- STOPCAR ----------------------------------------------------------------------------------
def stop_requested(directory: Path) -> bool:
    """True when a STOPCAR says ``LSTOP = .TRUE.`` or ``LABORT = .TRUE.``."""
    f = directory / "STOPCAR"
    if not f.is_file():
        return False
    try:
        text = f.read_text().upper()
    except OSError:
        return False
    return bool(re.search(r"\b(LSTOP|LABORT)\s*=\s*\.?T", text))


# --- the three kinds of run -------------------------------------------------------------------
def _atoms(inp: Inputs):
    from pymatgen.io.ase import AseAtomsAdaptor  # imports ASE's calculator machinery; only a run needs it

    atoms = AseAtomsAdaptor.get_atoms(inp.poscar.structure)  # selective dynamics become ASE constraints
    for key in list(atoms.arrays):
        if key not in ("numbers", "positions", "momenta"):
            del atoms.arrays[key]
    atoms.calc = chgnet_calculator()
    return atoms


def _single(inp: Inputs, w: Writer) -> None:
    atoms = _atoms(inp)
    t0 = time.time()
    st = _snapshot(atoms, inp.settings.isif >= 1, False, t0)
    w.step(1, st, (st.cell, st.frac))
    w.finish(st.cell, st.frac, None, False)


def _relax(inp: Inputs, w: Writer) -> None:
    from ase.filters import FrechetCellFilter  # ASE's optimisers: only a relaxation needs them
    from ase.optimize import BFGS, FIRE, LBFGS  # (same)

    s = inp.settings
    atoms = _atoms(inp)
    target = atoms
    if s.isif == 3:
        target = FrechetCellFilter(atoms)
    elif s.isif == 4:
        target = FrechetCellFilter(atoms, constant_volume=True)
    opt = {1: BFGS, 2: LBFGS, 3: FIRE}[s.ibrion](target, logfile=None)
    prev_e, message, stopped = None, None, False
    t0 = time.time()
    st = None
    for k, _ in enumerate(opt.irun(fmax=0.0, steps=s.nsw - 1), start=1):
        st = _snapshot(atoms, s.isif >= 1, False, t0)
        t0 = time.time()
        w.step(k, st, (st.cell, st.frac))
        free = np.asarray(atoms.get_forces(), dtype=float)  # selective dynamics applied
        if s.ediffg < 0:
            done = float(np.sqrt((free ** 2).sum(axis=1)).max()) < abs(s.ediffg)
        elif s.ediffg > 0:
            done = prev_e is not None and abs(st.energy - prev_e) < s.ediffg
        else:
            done = False
        prev_e = st.energy
        if done:
            message = "reached required accuracy - stopping structural energy minimisation"
            break
        if stop_requested(inp.directory):
            stopped = True
            break
        if k >= s.nsw:
            break
    w.finish(st.cell, st.frac, message, stopped)


def target_temperature(s: Settings, k: int) -> float:
    """Thermostat target (K) for the move out of ionic step ``k`` (0-based): TEBEG -> TEEND linearly."""
    return s.tebeg + (s.teend - s.tebeg) * k / max(s.nsw, 1)


def _set_nhc_temperature(dyn, temperature_k: float) -> None:
    """Retarget ASE's NoseHooverChainNVT (it has no public setter): kT and the thermostat masses Q."""
    th = dyn._thermostat
    kt = units.kB * temperature_k
    th._Q *= kt / th._kT
    th._kT = kt


def _md(inp: Inputs, w: Writer) -> None:
    from ase.md.langevin import Langevin  # ASE's integrators: only an MD run needs them
    from ase.md.nose_hoover_chain import NoseHooverChainNVT  # (same)
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary  # (same)
    from ase.md.verlet import VelocityVerlet  # (same)

    s = inp.settings
    atoms = _atoms(inp)
    n = len(atoms)
    vel = inp.poscar.velocities
    if vel is not None and np.any(np.asarray(vel, dtype=float)):
        atoms.set_velocities(np.asarray(vel, dtype=float) / units.fs)  # Å/fs -> ASE units
    elif s.tebeg > 0:
        MaxwellBoltzmannDistribution(atoms, temperature_K=s.tebeg, rng=np.random.default_rng(s.seed))
        Stationary(atoms)
        t_now = 2 * atoms.get_kinetic_energy() / (_ndof(n) * units.kB)
        if t_now > 0:
            atoms.set_momenta(atoms.get_momenta() * math.sqrt(s.tebeg / t_now))
    dt = s.potim * units.fs
    if s.mdalgo == 3:
        gamma = float(np.mean(s.langevin_gamma)) / (1000.0 * units.fs)  # 1/ps -> 1/ASE time
        dyn = Langevin(atoms, dt, temperature_K=s.tebeg, friction=gamma, rng=np.random.default_rng(s.seed + 1))
        retarget = lambda t: dyn.set_temperature(temperature_K=t)
    elif s.smass == 0.0:
        dyn = NoseHooverChainNVT(atoms, dt, temperature_K=s.tebeg, tdamp=40 * dt / (2 * math.pi), tchain=1)
        retarget = lambda t: _set_nhc_temperature(dyn, t)
    else:
        dyn = VelocityVerlet(atoms, dt)
        retarget = None
    prev, stopped = None, False
    t0 = time.time()
    for k, _ in enumerate(dyn.irun(steps=s.nsw)):
        cur = _snapshot(atoms, s.isif >= 1, True, t0)
        t0 = time.time()
        if prev is not None:
            # ionic step k is the structure the previous force call saw; CONTCAR is where step k + 1 starts
            w.step(k, prev, (cur.cell, cur.frac, atoms.get_velocities() * units.fs))
            if stop_requested(inp.directory):
                stopped = True
                break
            if k >= s.nsw:
                break
        if retarget is not None:
            retarget(target_temperature(s, k))
        prev = cur
    w.finish(cur.cell, cur.frac, None, stopped)


# --- entry points -----------------------------------------------------------------------------
def run(directory: str | os.PathLike = ".", out=None) -> int:
    """Run the stand-in in ``directory`` (VASP's standard output to ``out``, default stdout); returns the
    exit status: 0 done (converged, NSW reached or stopped), 1 refused (nothing written)."""
    out = out or sys.stdout
    d = Path(directory)
    try:
        inp = check_inputs(d)
    except Refusal as exc:
        out.write(error_box(str(exc)))
        out.flush()
        sys.stderr.write(f"vasp_std (argyro stand-in): ERROR: {' '.join(str(exc).split())}\n")
        return 1
    w = Writer(inp, out)
    w.start()
    with _blas_threads(_THREADS or 1):
        {"single": _single, "relax": _relax, "md": _md}[inp.settings.mode](inp, w)
    return 0


def _blas_threads(n: int):
    """Limit BLAS threads to ``n`` while the run computes: the cell filter's 3x3 matrix functions took 100x
    longer with OpenBLAS's default threads on a loaded 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits  # optional (scikit-learn's dependency, through kinisi)
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


def main(argv: list[str] | None = None) -> int:
    """``python -m argyro_fw.standins.vasp``: run in the working directory (arguments are ignored, as
    VASP takes none)."""
    rank = _env_int("SLURM_PROCID", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", default=0)
    if rank != 0:
        return 0
    global _THREADS
    _THREADS = max(1, _env_int("OMP_NUM_THREADS", default=1))
    return run(".")


def write_wrapper(bin_dir: str | os.PathLike) -> Path:
    """Write an executable ``vasp_std`` in ``bin_dir`` that runs this stand-in with this Python (``python3`` on
    PATH where that path does not exist, e.g. inside a container image with argyro installed); returns its
    path. Arguments are passed on (and ignored, as VASP takes none)."""
    d = Path(bin_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = d / "vasp_std"
    root = Path(__file__).resolve().parents[2]
    p.write_text("#!/bin/sh\n"
                 "# argyro stand-in for vasp_std (rehearsal and tests only): VASP's files with CHGNet's numbers\n"
                 f"PY={_sh(sys.executable)}\n"
                 '[ -x "$PY" ] || PY=python3\n'
                 f"PYTHONPATH={_sh(str(root))}${{PYTHONPATH:+:$PYTHONPATH}} exec \"$PY\" -m argyro_fw.standins.vasp \"$@\"\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


def _sh(s: str) -> str:
    return shlex.quote(s)


if __name__ == "__main__":
    sys.exit(main())

"""VASP input makers for every calculation kind of METHOD.md section 4.

Each kind is a small dataclass with explicit defaults (atomate2's "maker" style); ``inputs()``
returns the INCAR tags, the KPOINTS and the structure, and :func:`write_inputs` renders them
through ``templates/vasp/INCAR.<kind>.j2`` and ``KPOINTS.j2``.

Kinds:
  relax   ENCUT 520, CG (IBRION 2), EDIFFG -0.01; ISIF 3 for bulk (cell and ions), 2 for slabs and
          interfaces (ions only); ``strain_to=(a, b[, gamma])`` sets the in-plane cell first (the
          strain-energy step of METHOD.md section 3) and relaxes ions only.
  static  single point with the relaxation settings (ENCUT 520, k-grid).
  aimd    NVT Nose-Hoover (MDALGO 2, SMASS 0 = period of 40 steps), ENCUT 400, POTIM 2 fs (1 fs for
          interfaces), TEBEG/TEEND (a ramp when they differ), NSW = duration / POTIM.
  label   training-set single point with the AIMD settings, Gamma only.
  e0      isolated atom: spin-polarised single point, AIMD settings, Gamma only, atom in a large
          orthorhombic box (15 x 16 x 17 Angstrom, anisotropic to break the symmetry).

Where METHOD.md is silent the choice is argyro's and is marked so in docs/dft_fidelity.md.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.vasp import Kpoints, Poscar

from ..core.serialise import write_atomic
from ..errors import ArgyroError
from ..templating import render
from .kpoints import DEFAULT_SPACING, gamma_grid, gamma_only
from .paw import assemble_potcar, potcar_dir

SYSTEMS = ("bulk", "slab", "interface")
#: the closest two atoms may be in a written input, Å (coincident or overlapping atoms are a broken structure)
MIN_DISTANCE_A = 0.5
#: unpaired electrons of the free atoms (Hund's rule), the starting MAGMOM of the e0 runs
FREE_ATOM_MAGMOM = {"Li": 1.0, "P": 3.0, "S": 2.0, "Cl": 1.0, "Al": 1.0, "H": 1.0, "O": 2.0}


def vacuum_gap(structure: Structure, axis: int = 2) -> float:
    """Largest empty gap (Angstrom) along lattice vector ``axis`` (periodic)."""
    f = np.sort(np.mod(structure.frac_coords[:, axis], 1.0))
    gaps = np.diff(np.concatenate([f, [f[0] + 1.0]]))
    return float(gaps.max() * structure.lattice.abc[axis])


def guess_system(structure: Structure) -> str:
    """'slab' when there is more than 5 Angstrom of vacuum along c, else 'bulk'.

    Interfaces (periodic, no vacuum) cannot be told from a bulk cell: say ``system='interface'``.
    """
    return "slab" if vacuum_gap(structure) > 5.0 else "bulk"


def strained(structure: Structure, a: float, b: float, gamma: float | None = None) -> Structure:
    """``structure`` with its in-plane lattice set to (a, b, gamma), c vector kept, fractional
    coordinates kept (homogeneous in-plane strain)."""
    lat = structure.lattice
    g = lat.gamma if gamma is None else gamma
    new = Lattice.from_parameters(a, b, lat.c, lat.alpha, lat.beta, g)
    return Structure(new, structure.species, structure.frac_coords, site_properties=structure.site_properties)


@dataclass
class VaspInputs:
    """What a VASP run gets: INCAR tags, KPOINTS, structure and the POTCAR element order."""

    kind: str
    incar: dict[str, Any]
    kpoints: Kpoints
    structure: Structure
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        # VASP needs one block per species (one POTCAR each): sort by electronegativity
        self.structure = self.structure.get_sorted_structure()

    @property
    def elements(self) -> list[str]:
        return [str(e) for e in Poscar(self.structure).site_symbols]


@dataclass
class _Common:
    """Electronic settings shared by every kind (METHOD.md: PBE, PAW)."""

    prec: str = "Accurate"
    ediff: float = 1e-5
    ismear: int = 0
    sigma: float = 0.05
    lreal: str = "Auto"
    nelm: int = 100

    def common(self) -> dict[str, Any]:
        return dict(GGA="PE", PREC=self.prec, EDIFF=self.ediff, ISMEAR=self.ismear, SIGMA=self.sigma,
                    LREAL=self.lreal, NELM=self.nelm, LWAVE=False, LCHARG=False)


@dataclass
class RelaxMaker(_Common):
    kind: ClassVar[str] = "relax"
    encut: float = 520.0
    ibrion: int = 2
    ediffg: float = -0.01
    nsw: int = 200
    kspacing: float = DEFAULT_SPACING
    system: str | None = None  # bulk | slab | interface; None: guess from the vacuum
    strain_to: tuple[float, ...] | None = None  # (a, b[, gamma]) in Angstrom / degrees

    def inputs(self, structure: Structure) -> VaspInputs:
        system = _system(self.system, structure)
        if self.strain_to is not None:
            if system == "bulk":
                raise ArgyroError("strain_to (fixed a, b) applies to slabs and interfaces, not to bulk cells")
            structure = strained(structure, *self.strain_to)
        isif = 3 if system == "bulk" and self.strain_to is None else 2
        incar = dict(self.common(), ENCUT=self.encut, ISPIN=1, IBRION=self.ibrion, ISIF=isif, NSW=self.nsw,
                     EDIFFG=self.ediffg)
        return VaspInputs(self.kind, incar, gamma_grid(structure.lattice, self.kspacing), structure,
                          settings=dict(asdict(self), system=system))


@dataclass
class StaticMaker(_Common):
    kind: ClassVar[str] = "static"
    encut: float = 520.0
    kspacing: float = DEFAULT_SPACING

    def inputs(self, structure: Structure) -> VaspInputs:
        incar = dict(self.common(), ENCUT=self.encut, ISPIN=1, IBRION=-1, NSW=0)
        return VaspInputs(self.kind, incar, gamma_grid(structure.lattice, self.kspacing), structure,
                          settings=asdict(self))


def aimd_potim(system: str | None) -> float:
    """METHOD.md 4's AIMD time step in fs: 2, 1 for interfaces."""
    return 1.0 if system == "interface" else 2.0


@dataclass
class AimdMaker(_Common):
    kind: ClassVar[str] = "aimd"
    prec: str = "Normal"
    encut: float = 400.0
    temperature: float = 600.0  # K (TEBEG)
    end_temperature: float | None = None  # K (TEEND); a ramp when it differs from temperature
    ps: float = 40.0  # duration, ps
    potim: float | None = None  # fs; None: 2 fs, 1 fs for interfaces (METHOD.md)
    smass: float = 0.0  # 0: Nose mass for a period of 40 time steps
    system: str | None = None
    #: "auto": the k-grid for cells of <= 54 atoms (the 52-atom argyrodite and 54-atom Li cells of
    #: METHOD.md), Gamma only above; "grid" or "gamma" to force either.
    kpoints: str = "auto"
    kspacing: float = DEFAULT_SPACING

    def inputs(self, structure: Structure) -> VaspInputs:
        if self.temperature <= 0 or (self.end_temperature is not None and self.end_temperature <= 0):
            raise ArgyroError(f"AIMD temperature must be > 0 K, got {self.temperature} -> {self.end_temperature}")
        if self.ps <= 0:
            raise ArgyroError(f"AIMD duration must be > 0 ps, got {self.ps}")
        system = _system(self.system, structure)
        potim = self.potim if self.potim is not None else aimd_potim(system)
        nsw = int(math.ceil(self.ps * 1000.0 / potim - 1e-9))
        teend = self.temperature if self.end_temperature is None else self.end_temperature
        incar = dict(self.common(), ENCUT=self.encut, ISPIN=1, IBRION=0, MDALGO=2, SMASS=self.smass,
                     POTIM=potim, TEBEG=self.temperature, TEEND=teend, NSW=nsw, ISYM=0, NBLOCK=1)
        mode = self.kpoints
        if mode == "auto":
            mode = "grid" if len(structure) <= 54 else "gamma"
        if mode not in ("grid", "gamma"):
            raise ArgyroError(f"kpoints {self.kpoints!r}: expected auto, grid or gamma")
        kp = gamma_grid(structure.lattice, self.kspacing) if mode == "grid" else gamma_only()
        return VaspInputs(self.kind, incar, kp, structure, settings=dict(asdict(self), system=system, potim=potim))


@dataclass
class LabelMaker(AimdMaker):
    """Training-set single point: the AIMD electronic settings, Gamma only (METHOD.md section 4)."""

    kind: ClassVar[str] = "label"

    def inputs(self, structure: Structure) -> VaspInputs:
        incar = dict(self.common(), ENCUT=self.encut, ISPIN=1, IBRION=-1, NSW=0, ISYM=0)
        return VaspInputs(self.kind, incar, gamma_only(), structure, settings=asdict(self))


@dataclass
class E0Maker(AimdMaker):
    """Isolated-atom energy: spin-polarised single point with the AIMD settings."""

    kind: ClassVar[str] = "e0"
    box: tuple[float, float, float] = (15.0, 16.0, 17.0)

    def inputs(self, structure: Structure) -> VaspInputs:
        if len(structure) != 1:
            raise ArgyroError(f"e0 needs one atom, got {len(structure)} sites ({structure.formula})")
        el = str(structure[0].specie)
        atom = Structure(Lattice.orthorhombic(*self.box), [el], [[0.0, 0.0, 0.0]])
        incar = dict(self.common(), ENCUT=self.encut, ISPIN=2, MAGMOM=[FREE_ATOM_MAGMOM.get(el, 1.0)],
                     IBRION=-1, NSW=0, ISYM=0)
        return VaspInputs(self.kind, incar, gamma_only(), atom, settings=asdict(self))


MAKERS = {m.kind: m for m in (RelaxMaker, StaticMaker, AimdMaker, LabelMaker, E0Maker)}


def _system(system: str | None, structure: Structure) -> str:
    if system is None:
        return guess_system(structure)
    if system not in SYSTEMS:
        raise ArgyroError(f"system {system!r}: expected one of {', '.join(SYSTEMS)}")
    return system


def maker(kind: str, **options) -> _Common:
    """The maker for ``kind`` with ``options`` overriding its defaults."""
    if kind not in MAKERS:
        raise ArgyroError(f"VASP kind {kind!r}: expected one of {', '.join(MAKERS)}")
    cls = MAKERS[kind]
    known = set(cls.__dataclass_fields__)
    unknown = set(options) - known
    if unknown:
        raise ArgyroError(f"VASP {kind} option(s) {sorted(unknown)} unknown; expected some of {sorted(known)}")
    return cls(**options)


def format_incar_value(value: Any) -> str:
    """INCAR text for one value (booleans as .TRUE./.FALSE., lists space-separated)."""
    if isinstance(value, bool):
        return ".TRUE." if value else ".FALSE."
    if isinstance(value, (list, tuple)):
        return " ".join(format_incar_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.0e}".replace("e-0", "e-")
    return str(value)


def render_inputs(inp: VaspInputs) -> dict[str, str]:
    """File name -> text for INCAR, KPOINTS and POSCAR (no POTCAR)."""
    incar = {k: format_incar_value(v) for k, v in inp.incar.items()}
    kp = inp.kpoints
    return {
        "INCAR": render(f"vasp/INCAR.{inp.kind}.j2", incar=incar, formula=inp.structure.composition.reduced_formula,
                        natoms=len(inp.structure), settings=inp.settings),
        "KPOINTS": render("vasp/KPOINTS.j2", comment=kp.comment, style=kp.style.name,
                          grid=" ".join(str(int(x)) for x in kp.kpts[0])),
        "POSCAR": Poscar(inp.structure).get_str(significant_figures=10),
    }


def input_checksum(files: dict[str, str]) -> str:
    """sha256 over INCAR, KPOINTS and POSCAR texts (what identifies a calculation's inputs)."""
    h = hashlib.sha256()
    for name in ("INCAR", "KPOINTS", "POSCAR"):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


def check_distances(structure: Structure, min_distance: float = MIN_DISTANCE_A) -> None:
    """ArgyroError naming the closest pair of atoms (periodic images included) if it is closer than ``min_distance``."""
    centres, neighbours, _, dist = structure.get_neighbor_list(min_distance)
    if len(dist):
        k = int(np.argmin(dist))
        i, j = int(centres[k]), int(neighbours[k])
        raise ArgyroError(f"atoms {i + 1} ({structure[i].specie}) and {j + 1} ({structure[j].specie}) are "
                          f"{dist[k]:.3f} Å apart, closer than {min_distance} Å: not written (coincident atoms)")


def write_inputs(inp: VaspInputs, directory: str | Path, potcar: bool | None = None,
                 potcar_directory: str | Path | None = None, min_distance: float = MIN_DISTANCE_A) -> dict[str, Path]:
    """Write INCAR, KPOINTS, POSCAR (and POTCAR) into ``directory``; returns name -> path.

    ``potcar``: True requires a configured PAW directory (ConfigError if absent); None writes a
    POTCAR only when one is configured; False never. A structure with two atoms closer than
    ``min_distance`` (Å) is refused, naming them. Everything is rendered before anything is
    written, so a failure leaves no partial input set.
    """
    check_distances(inp.structure, min_distance)
    files = render_inputs(inp)
    want_potcar = potcar if potcar is not None else potcar_dir(potcar_directory) is not None
    if want_potcar:
        files["POTCAR"] = assemble_potcar(inp.elements, potcar_directory)
    d = Path(directory)
    return {name: write_atomic(d / name, text) for name, text in files.items()}


def element_structure(symbol: str) -> Structure:
    """A one-atom structure for ``symbol`` (the e0 kind's input)."""
    try:
        Element(symbol)
    except ValueError:
        raise ArgyroError(f"{symbol!r} is not a chemical element") from None
    return Structure(Lattice.cubic(10.0), [symbol], [[0, 0, 0]])

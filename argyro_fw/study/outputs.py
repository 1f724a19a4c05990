"""Every record that passes from one firework to another, with its fields and units.

A FireTask never reads or writes a loose ``fw_spec`` key: it builds a record and hands it on with
:func:`emit` (the keyword arguments of the FWAction it returns), and the next firework reads it
back with :func:`read_all` / :func:`read_last`. Each record class names its spec key (``KEY``)
and how it travels (``MODE``): ``push`` appends to a list in every child's spec (so a join sees
the records of all its parents), ``set`` replaces the child's value (one parent, one value).

This module is plain data: no FireWorks, no database.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Record")


@dataclass
class Record:
    """Base of the records; ``to_dict``/``from_dict`` give and take plain data."""

    KEY: ClassVar[str] = ""
    MODE: ClassVar[str] = "push"  # push | set

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[R], d: dict) -> R:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in d and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ValueError(f"{cls.__name__} record ({cls.KEY}): missing {missing} in {sorted(d)}")
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class EnergyResult(Record):
    """One energy calculation of the study's engine (VASP or a stand-in): total energy in eV of
    ``label``'s structure; ``calc_id`` is the ``calculations`` document (final structure, forces)."""

    KEY: ClassVar[str] = "energy_results"
    MODE: ClassVar[str] = "push"
    label: str
    energy_eV: float
    engine: str
    calc_id: str | None = None
    n_atoms: int | None = None
    kind: str | None = None
    dataset: str | None = None  # extxyz of the calculation's frames (VASP)


@dataclass
class TrainingSet(Record):
    """An active-learning loop's current dataset: extxyz files of labelled frames (REF_* keys)."""

    KEY: ClassVar[str] = "al_training_set"
    MODE: ClassVar[str] = "set"
    train: str
    valid: str


@dataclass
class CommitteeModel(Record):
    """One trained committee member (a MACE model file) of an iteration."""

    KEY: ClassVar[str] = "al_committee_models"
    MODE: ClassVar[str] = "push"
    path: str
    iteration: int


@dataclass
class ALDataset(Record):
    """What a finished active-learning loop hands to the final model: its last dataset and committee."""

    KEY: ClassVar[str] = "al_datasets"
    MODE: ClassVar[str] = "push"
    name: str
    train: str
    valid: str
    models: list = field(default_factory=list)
    iteration: int = 0


@dataclass
class FinalModel(Record):
    """A final multi-head MACE model (``path``) and, when converted, its LAMMPS ML-IAP file."""

    KEY: ClassVar[str] = "final_models"
    MODE: ClassVar[str] = "push"
    path: str
    heads: list = field(default_factory=list)
    mliap: str | None = None
    name: str = ""  # the interface whose model this is


@dataclass
class RelaxedStructure(Record):
    """A pre-relaxed structure (pymatgen dict) for the MD firework after it."""

    KEY: ClassVar[str] = "md_structure"
    MODE: ClassVar[str] = "set"
    structure: dict
    fmax_eV_A: float | None = None


@dataclass
class MDTrajectory(Record):
    """A finished MD run: the merged trajectory file (LAMMPS text dump) and the time between frames, ps."""

    KEY: ClassVar[str] = "md_trajectory"
    MODE: ClassVar[str] = "set"
    path: str
    frame_ps: float


@dataclass
class AnalysisRef(Record):
    """An analysed trajectory: its HDF5 file and ``analyses`` document id."""

    KEY: ClassVar[str] = "analyses"
    MODE: ClassVar[str] = "push"
    h5: str
    analysis_id: str


@dataclass
class DiffusionRef(Record):
    """One bulk temperature's kinisi result file (HDF5) for the Arrhenius fit."""

    KEY: ClassVar[str] = "diffusion_files"
    MODE: ClassVar[str] = "push"
    h5: str
    temperature_K: float


@dataclass
class BuiltStructure(Record):
    """A structure built by a structures firework: its ``structures`` key, name and POSCAR file."""

    KEY: ClassVar[str] = "built_structures"
    MODE: ClassVar[str] = "push"
    key: str
    name: str
    file: str


RECORDS: tuple[type[Record], ...] = (EnergyResult, TrainingSet, CommitteeModel, ALDataset, FinalModel,
                                     RelaxedStructure, MDTrajectory, AnalysisRef, DiffusionRef, BuiltStructure)


def emit(*records: Record) -> dict[str, Any]:
    """Keyword arguments of a FWAction handing ``records`` to the children (update_spec / mod_spec)."""
    update: dict = {}
    mods: list = []
    for r in records:
        if r.MODE == "set":
            update[r.KEY] = r.to_dict()
        else:
            mods.append({"_push": {r.KEY: r.to_dict()}})
    out: dict = {}
    if update:
        out["update_spec"] = update
    if mods:
        out["mod_spec"] = mods
    return out


def read_all(fw_spec: dict, cls: type[R]) -> list[R]:
    """Every ``cls`` record in the spec (pushed by all parents, oldest first)."""
    raw = (fw_spec or {}).get(cls.KEY)
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [cls.from_dict(d) for d in items]


def read_last(fw_spec: dict, cls: type[R], who: str) -> R:
    """The newest ``cls`` record; a named error if no parent handed one on."""
    items = read_all(fw_spec, cls)
    if not items:
        raise ValueError(f"{who}: no {cls.__name__} ({cls.KEY}) from the parent fireworks")
    return items[-1]

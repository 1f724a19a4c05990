"""The study configuration: one YAML file, validated field by field before anything is added.

Sections and their defaults are the dataclasses below (METHOD.md values by default; see
``configs/paper.yaml`` for every field with a comment). Unknown keys, wrong types and
impossible values (negative temperatures, a committee of fewer than 2 models, ...) raise
:class:`~argyro_fw.errors.ConfigError` naming the field, e.g. ``mlmd.temperatures[1]``.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .. import engines
from ..core.chemistry import A_EXP, ARGYRODITE_CELL_ATOMS, ELEMENTS, LI_A_PBE, PHASE_NAMES
from ..errors import ConfigError, yaml_problem
from ..mlip.commands import CommitteeFinetune, MultiheadFinetune
from ..textfile import read_text

ENGINES = tuple(engines.ENERGY)
MD_ENGINES = tuple(engines.MD)


@dataclass
class BulkCfg:
    a: float = A_EXP  # starting lattice constant, Å (experiment); DFT relaxes it
    disordered: bool = True  # relax the disordered candidates too and keep the lowest (METHOD.md 1)


@dataclass
class DftCfg:
    vasp_cmd: str = ">>vasp_cmd<<"  # from the FireWorker's env (my_fworker.yaml), or a command
    potcar: bool | None = None  # write POTCAR (needs the configured PAW library); None: if configured
    polling_s: float = 10.0  # custodian polling interval, s
    relax_steps: int = 200  # CHGNet stand-in only: largest number of BFGS steps of a relaxation
    fmax: float = 0.05  # CHGNet stand-in only: relaxation force threshold, eV/Å


@dataclass
class SurfacesCfg:
    planes: list = field(default_factory=lambda: [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]])
    min_thickness: float = 15.0  # Å
    vacuum: float = 15.0  # Å
    top_n: int = 3  # the N lowest-gamma terminations go on to interfaces (METHOD.md 3)
    # terminations (structures/surfaces.py): framework atoms closer than layer_gap along the normal are one layer;
    # li_rule: which Li of a face's outer gap belong to the slab (midpoint | gap | anion, see surfaces.py)
    layer_gap: float = 0.5  # Å
    li_rule: str = "midpoint"
    label_depth: float = 1.2  # Å: a face is named "Li-..." when a slab Li lies this close to its outer layer
    ps_bond: float = 2.5  # Å: an S this close to a P is PS4 sulfur


@dataclass
class InterfacesCfg:
    # the study's Li planes (METHOD.md 3: its models are Li(100) and Li(011) = (110) of bcc); "111" may be added
    li_planes: list = field(default_factory=lambda: ["100", "110"])
    li_layers: int = 6
    li_a: float = LI_A_PBE  # bcc Li, Å (PBE)
    # Å2: the study's DFT interface models lie on the argyrodite's 1x1 face (99 Å2 for (100), 140 Å2 for (011)); a
    # larger limit finds lower mismatches on cells of many hundred atoms (500 Å2: 824 atoms for (100)/(100))
    max_area: float = 160.0
    candidates: int = 5  # ranked lattice matches built per surface; the best symmetric one is used
    # charge balancing (structures/balance.py): every removal set up to symmetry, ranked by Ewald energy
    balance_candidates: int = 100  # symmetry-distinct choices kept, ranked, in the record (MongoDB)
    balance_top_k: int = 10  # the lowest-Ewald choices handed on as structures (the interface takes the first
    # symmetric one)
    balance_max_sets: int = 1_000_000  # enumerate completely up to this many removal sets; above: a uniform
    # sample of this many (recorded as truncated, with the seed)
    balance_seed: int = 0  # seed of that sample
    symprec: float = 0.1  # Å: spglib tolerance of an interface's face flip (framework and Li metal; the argyrodite's Li
    # keep the bulk's ordering); an engine-relaxed framework can be ~1 Å off its mirror image: raise it to call those
    # symmetric


@dataclass
class ActiveLearningCfg:
    foundation_model: str = ""  # path to the foundation MACE model (e.g. OMat24); "toy": train a tiny one
    labeller: str = "engine"  # engine: label fireworks of the study's engine (VASP; CHGNet in the demo) | chgnet
    explorer: str = "foundation"  # exploration MD with: foundation (the foundation MACE model) | chgnet
    committee_size: int = 3
    temperatures: list = field(default_factory=lambda: [400, 600, 800, 1000])
    explore_steps: int = 4000
    record_every: int = 10
    n_train: int = 201
    n_valid: int = 31
    committee_md_steps: int = 6000
    committee_record_every: int = 30
    select_k: int = 200
    max_iterations: int = 10
    threshold: float = 0.05  # eV/Å, force-uncertainty percentile below which the loop stops
    percentile: float = 95.0
    train_overrides: dict = field(default_factory=dict)  # extra mace_run_train options
    e0s: object = "dft"  # committee E0s: dft (the study's isolated-atom fireworks, METHOD.md 4) | foundation |
    # estimated | {element: E0 in eV}
    initial_dataset: str = ""  # extxyz of labelled frames added to iteration 0's training set
    initial_sources: list = field(default_factory=list)  # [{path, n, config_type}]: n evenly spaced frames each
    device: str = "cpu"


@dataclass
class FinalModelCfg:
    pt_file: str = ""  # replay data of the foundation model (multi-head fine-tuning)
    e0s: object = "dft"  # "dft": computed by isolated-atom fireworks of the engine; or {element: E0 in eV}
    replay_n: int = 100000
    extra_datasets: list = field(default_factory=list)  # e.g. Li3P / Li2S / LiCl AIMD extxyz
    overrides: dict = field(default_factory=dict)
    convert_mliap: bool = False  # also write the LAMMPS ML-IAP model (GPU engine)


@dataclass
class MlmdCfg:
    temperatures: list = field(default_factory=lambda: [300, 400])  # K
    nvt_ps: float = 10.0
    npt_ns: float = 5.0
    dump_every: int = 100  # steps
    restart_every: int = 10000  # steps
    layers: int = 6  # argyrodite thickness in d_hkl
    li_layers: int = 6
    supercell: list = field(default_factory=lambda: [2, 2, 1])
    max_mismatch: float = 1.5  # %
    max_area: float = 500.0  # Å2, the largest lateral cell the MLMD cell's lattice match searches (before supercell)
    prerelax_fmax: float = 0.04  # eV/Å, ASE BFGS with the final model
    prerelax_steps: int = 2000  # largest number of BFGS steps of the pre-relaxation (as paper.yaml)
    engine: str = "mliap"  # mliap (GPU, ML-IAP) | external (CPU, fix external)
    lmp_binary: str = "lmp"
    extend_ns: float = 10.0  # METHOD.md 6: one run's NPT extended to this (the first interface at extend_temperature);
    extend_temperature: float = 400.0  # K; extend_ns <= npt_ns: no extension
    # METHOD.md 6 variants of the first interface's model: charge-balancing choices (0: lowest Ewald energy) and the
    # fully symmetric (not charge-balanced) model, each run at variants_temperature for variants_npt_ns
    variant_balance_choices: list = field(default_factory=lambda: [0, 1, 2])
    variant_symmetric: bool = True
    variants_temperature: float = 400.0  # K
    variants_npt_ns: float = 3.0


@dataclass
class BulkMlmdCfg:
    temperatures: list = field(default_factory=lambda: [400, 600, 800, 1000])  # K
    supercell: list = field(default_factory=lambda: [2, 2, 2])
    nvt_ps: float = 10.0
    npt_ns: float = 1.0
    dump_every: int = 100


@dataclass
class AnalysisCfg:
    stride: int = 1
    membranes: dict = field(default_factory=dict)  # name -> fractional height of a flux membrane
    # Li-flux windows (METHOD.md 7, 9), name -> [t0, t1] in ns of MD time (the NVT stage starts at 0): the
    # amorphous SEI over a 1 ns window (which one the study does not say: here the first ns after its
    # decomposition ends, ~0.4 ns) and the crystalline SEI over 4-5 ns
    flux_windows: dict = field(default_factory=lambda: {"amorphous_sei": [0.5, 1.5], "crystalline_sei": [4.0, 5.0]})


@dataclass
class AimdCfg:
    """AIMD fireworks of the study's engine (METHOD.md 1, 4, 5): VASP NVT (Nose-Hoover, SMASS 0, POTIM 2 fs,
    1 fs for interfaces); the demo's stand-in is CHGNet with ASE's Langevin thermostat. METHOD.md gives the
    temperatures and frame counts; it does not give the durations of the bulk, ramp and test-set runs: the
    ``*_ps`` values are our choice (README)."""
    enabled: bool = True
    bulk_temperatures: list = field(default_factory=lambda: [400, 600, 800, 1000])  # K, the chosen bulk cell
    bulk_ps: float = 10.0
    bulk_frames: int = 75  # per temperature, evenly spaced, to every interface's initial set
    li_supercell: int = 3  # bcc Li n x n x n conventional cells (3: 54 atoms)
    li_ramp: list = field(default_factory=lambda: [200, 1200])  # K, TEBEG -> TEEND
    li_ps: float = 10.0
    li_frames: int = 100
    products: list = field(default_factory=lambda: ["li3p", "li2s", "licl"])  # decomposition products (phases)
    product_supercell: list = field(default_factory=lambda: [2, 2, 2])
    product_ramp: list = field(default_factory=lambda: [200, 1200])  # K
    product_ps: float = 10.0
    product_frames: int = 100  # each, added to the final model's data (METHOD.md 5)
    interface_relax_frames: int = 50  # evenly spaced frames of each interface's DFT relaxation
    test_temperatures: list = field(default_factory=lambda: [400, 1000])  # K, interface AIMD for validation
    test_ps: float = 5.0
    test_frames: int = 500  # per interface, split evenly over test_temperatures
    validation_temperature: float = 600.0  # K: ordered vs disordered bulk, Li MSD (METHOD.md 1)
    validation_ps: float = 40.0
    validation_frame_ps: float = 0.1  # frame spacing of the validation runs (the Li MSD's time resolution)


@dataclass
class StudyConfig:
    name: str = "study"
    workdir: str = "study"  # persistent folder for models and MD runs (made absolute)
    engine: str = "vasp"  # vasp | chgnet (the offline CHGNet stand-in for DFT energies)
    max_atoms: int = 20000  # upper bound on the atoms of any structure the config implies (checked at load)
    bulk: BulkCfg = field(default_factory=BulkCfg)
    dft: DftCfg = field(default_factory=DftCfg)
    surfaces: SurfacesCfg = field(default_factory=SurfacesCfg)
    interfaces: InterfacesCfg = field(default_factory=InterfacesCfg)
    active_learning: ActiveLearningCfg = field(default_factory=ActiveLearningCfg)
    final_model: FinalModelCfg = field(default_factory=FinalModelCfg)
    mlmd: MlmdCfg = field(default_factory=MlmdCfg)
    bulk_mlmd: BulkMlmdCfg = field(default_factory=BulkMlmdCfg)
    analysis: AnalysisCfg = field(default_factory=AnalysisCfg)
    aimd: AimdCfg = field(default_factory=AimdCfg)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def needs_dft_e0s(self) -> bool:
        """Whether the study computes isolated-atom energies (for the final models and/or the committee)."""
        return self.final_model.e0s == "dft" or self.active_learning.e0s == "dft"


@dataclass
class FinalRun:
    """What one final multi-head fine-tuning needs (FinalModelCfg with the study's paths and E0s resolved)."""
    pt_file: str
    e0s: dict
    replay_n: int = FinalModelCfg.replay_n
    extra_datasets: list = field(default_factory=list)
    overrides: dict = field(default_factory=dict)
    convert_mliap: bool = FinalModelCfg.convert_mliap


@dataclass
class ALRun:
    """One active-learning loop: the study's :class:`ActiveLearningCfg` (``al``, never re-defaulted) and what
    belongs to this loop. ``explorer``: a calculator spec of :mod:`argyro_fw.engines` (``mace:PATH``,
    ``chgnet``, ``toy``); ``e0s``: the committee's E0s resolved (``active_learning.e0s: dft`` becomes the study's
    isolated-atom energies); ``labeller``: ``engine`` (label fireworks of the study's engine, whose config is
    ``label_engine``) or a calculator spec; ``final``: the multi-head model trained when the loop stops."""

    name: str
    workdir: str
    foundation_model: str
    structure: dict
    explorer: str
    labeller: str
    e0s: object  # the committee's E0s as resolved for this loop: {element: eV} | foundation | estimated
    al: ActiveLearningCfg = field(default_factory=ActiveLearningCfg)
    label_engine: dict | None = None
    final: FinalRun | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ALRun":
        d = dict(d)
        d["al"] = _section(ActiveLearningCfg, d.get("al") or {}, "active_learning")
        if d.get("final") is not None:
            d["final"] = FinalRun(**d["final"])
        if d.get("structure") is not None and not isinstance(d["structure"], dict):
            d["structure"] = d["structure"].as_dict()  # FireWorks may have made it a Structure again
        run = _section(cls, {k: v for k, v in d.items() if k not in ("al", "final")}, "active-learning run")
        run.al, run.final = d["al"], d.get("final")
        if run.e0s == "dft" or not (run.e0s in ("foundation", "estimated") or isinstance(run.e0s, dict)):
            raise ConfigError(f"active-learning run {run.name}: e0s must be resolved (a mapping element -> eV, "
                              f"foundation or estimated), got {run.e0s!r}")
        if run.labeller == "engine" and not run.label_engine:
            raise ConfigError("active-learning run: labeller 'engine' needs label_engine (the study's config)")
        if run.al.committee_size < 2:
            raise ConfigError(f"active_learning.committee_size: a committee needs >= 2 models, got {run.al.committee_size}")
        return run


def _typed(value, tp, where: str):
    origin = typing.get_origin(tp)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is list or origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return value
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return value
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None:
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _typed(value, args[0], where)
    if dataclasses.is_dataclass(tp):
        return _section(tp, value, where)
    return value


def _section(cls, data, where: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of fields, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"unknown field {prefix}{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {k: _typed(v, hints[k], f"{where}.{k}" if where else k) for k, v in data.items()}
    return cls(**kwargs)


def _positive_list(values, where: str, integer: bool = False) -> None:
    if not values:
        raise ConfigError(f"{where}: expected at least one value")
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 or (integer and not isinstance(v, int)):
            raise ConfigError(f"{where}[{i}]: expected a positive {'integer' if integer else 'number'}, got {v!r}")


def atoms_bounds(cfg: StudyConfig) -> dict[str, int]:
    """Upper bounds on the atoms of the structures a config implies, by the fields that set them: the MLMD interface
    cells (argyrodite ``layers`` of the cubic cell's (100) spacing and ``li_layers`` of bcc Li at its densest
    (110) packing, over the largest matched area ``mlmd.max_area``, times ``mlmd.supercell``), the DFT
    interfaces (``surfaces.min_thickness`` over ``interfaces.max_area``) and the bulk MD supercell
    (``bulk_mlmd.supercell``)."""
    a = cfg.bulk.a

    def per_layer(area: float) -> tuple[float, float]:
        # one (100) layer (d = a) of the conventional cell; bcc (110): the densest Li plane
        return ARGYRODITE_CELL_ATOMS / a ** 2 * area, np.sqrt(2.0) / cfg.interfaces.li_a ** 2 * area

    md, sm = cfg.mlmd, cfg.mlmd.supercell
    arg, li = per_layer(md.max_area)
    mlmd = (arg * (md.layers + 1) + li * md.li_layers) * int(np.prod(sm))
    arg, li = per_layer(cfg.interfaces.max_area)
    dft = arg * (cfg.surfaces.min_thickness / a + 2) + li * cfg.interfaces.li_layers
    bulk = ARGYRODITE_CELL_ATOMS * int(np.prod(cfg.bulk_mlmd.supercell))
    return {"mlmd.supercell / mlmd.layers / mlmd.li_layers / mlmd.max_area": int(mlmd),
            "surfaces.min_thickness / interfaces.li_layers / interfaces.max_area": int(dft),
            "bulk_mlmd.supercell": int(bulk)}


def validate(cfg: StudyConfig) -> StudyConfig:
    """Value checks beyond types; raises ConfigError naming the field."""
    if cfg.engine not in ENGINES:
        raise ConfigError(f"engine: expected one of {', '.join(ENGINES)}, got {cfg.engine!r}")
    if cfg.bulk.a <= 0:
        raise ConfigError(f"bulk.a: expected a positive lattice constant (Å), got {cfg.bulk.a}")
    for i, m in enumerate(cfg.surfaces.planes):
        if not (isinstance(m, list) and len(m) == 3 and all(x in (0, 1) for x in m) and any(m)) or m == [1, 1, 1]:
            raise ConfigError(f"surfaces.planes[{i}]: expected three indices in {{0, 1}}, not all zero and not (111), got {m!r}")
    for k in ("min_thickness", "vacuum", "layer_gap", "label_depth", "ps_bond"):
        if getattr(cfg.surfaces, k) <= 0:
            raise ConfigError(f"surfaces.{k}: expected a positive length (Å)")
    if cfg.surfaces.li_rule not in ("midpoint", "gap", "anion"):
        raise ConfigError(f"surfaces.li_rule: expected midpoint, gap or anion, got {cfg.surfaces.li_rule!r}")
    if cfg.surfaces.top_n < 1:
        raise ConfigError(f"surfaces.top_n: expected >= 1, got {cfg.surfaces.top_n}")
    for i, p in enumerate(cfg.interfaces.li_planes):
        if p not in ("100", "110", "111"):
            raise ConfigError(f"interfaces.li_planes[{i}]: expected 100, 110 or 111, got {p!r}")
    for k in ("li_layers", "candidates", "balance_candidates", "balance_top_k", "balance_max_sets"):
        if getattr(cfg.interfaces, k) < 1:
            raise ConfigError(f"interfaces.{k}: expected >= 1")
    if cfg.interfaces.balance_seed < 0:
        raise ConfigError(f"interfaces.balance_seed: expected an integer >= 0, got {cfg.interfaces.balance_seed}")
    for k in ("li_a", "max_area", "symprec"):
        if getattr(cfg.interfaces, k) <= 0:
            raise ConfigError(f"interfaces.{k}: expected a positive number")
    for k in ("max_mismatch", "max_area"):
        if getattr(cfg.mlmd, k) <= 0:
            raise ConfigError(f"mlmd.{k}: expected a positive number")
    al = cfg.active_learning
    if al.committee_size < 2:
        raise ConfigError(f"active_learning.committee_size: a committee needs >= 2 models, got {al.committee_size}")
    if not al.foundation_model:
        raise ConfigError("active_learning.foundation_model: expected the path of the foundation MACE model "
                          "(nothing is downloaded), or 'toy' for a tiny model trained here")
    if al.labeller not in ("engine", "chgnet"):
        raise ConfigError(f"active_learning.labeller: expected engine (label fireworks of the study's engine) or "
                          f"chgnet (in-process stand-in), got {al.labeller!r}")
    if al.explorer not in ("foundation", "chgnet"):
        raise ConfigError(f"active_learning.explorer: expected foundation or chgnet, got {al.explorer!r}")
    if not (al.e0s in ("dft", "foundation", "estimated") or (isinstance(al.e0s, dict) and al.e0s)):
        raise ConfigError("active_learning.e0s: expected dft, foundation, estimated or a mapping element -> E0 in eV, "
                          f"got {al.e0s!r}")
    for i, src in enumerate(al.initial_sources):
        if not (isinstance(src, dict) and isinstance(src.get("path"), str) and isinstance(src.get("n"), int)
                and not isinstance(src.get("n"), bool) and src["n"] >= 1 and set(src) <= {"path", "n", "config_type"}):
            raise ConfigError(f"active_learning.initial_sources[{i}]: expected {{path: extxyz, n: frames >= 1, "
                              f"config_type: name}}, got {src!r}")
    _positive_list(al.temperatures, "active_learning.temperatures")
    for k in ("explore_steps", "record_every", "n_train", "n_valid", "committee_md_steps", "committee_record_every",
              "select_k", "max_iterations"):
        if getattr(al, k) < 1:
            raise ConfigError(f"active_learning.{k}: expected >= 1, got {getattr(al, k)}")
    if al.threshold <= 0 or not 0 < al.percentile <= 100:
        raise ConfigError("active_learning.threshold must be > 0 eV/Å and percentile in (0, 100]")
    if not cfg.final_model.pt_file:
        raise ConfigError("final_model.pt_file: expected the replay dataset of the foundation model "
                          "(extxyz), or 'toy' with a toy foundation model")

    for where, cls, given in (("active_learning.train_overrides", CommitteeFinetune, al.train_overrides),
                              ("final_model.overrides", MultiheadFinetune, cfg.final_model.overrides)):
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(given) - known)
        if bad:
            raise ConfigError(f"unknown field {where}.{bad[0]} (mace_run_train options of {cls.__name__}: "
                              f"{', '.join(sorted(known))})")
    e0s = cfg.final_model.e0s
    if e0s != "dft" and (not isinstance(e0s, dict) or not e0s):
        raise ConfigError("final_model.e0s: expected 'dft' (isolated-atom fireworks of the engine, METHOD.md 4) "
                          f"or a mapping element -> E0 in eV, got {e0s!r}")
    for el, v in (e0s.items() if isinstance(e0s, dict) else []):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"final_model.e0s.{el}: expected a number (eV), got {v!r}")
    missing = sorted(set(ELEMENTS) - set(e0s)) if isinstance(e0s, dict) else []
    if missing:
        raise ConfigError(f"final_model.e0s: no E0 for {missing}")
    md = cfg.mlmd
    _positive_list(md.temperatures, "mlmd.temperatures")
    if md.nvt_ps < 0 or md.npt_ns < 0:
        raise ConfigError("mlmd.nvt_ps / mlmd.npt_ns: expected durations >= 0")
    _positive_list(md.supercell, "mlmd.supercell", integer=True)
    if len(md.supercell) != 3:
        raise ConfigError("mlmd.supercell: expected three integers")
    if md.engine not in MD_ENGINES:
        raise ConfigError(f"mlmd.engine: expected one of {', '.join(MD_ENGINES)}, got {md.engine!r}")
    for k in ("layers", "li_layers", "dump_every", "restart_every", "prerelax_steps"):
        if getattr(md, k) < 1:
            raise ConfigError(f"mlmd.{k}: expected >= 1")
    for i, k in enumerate(md.variant_balance_choices):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ConfigError(f"mlmd.variant_balance_choices[{i}]: expected an index >= 0 (0: lowest Ewald energy), got {k!r}")
    if md.variants_temperature <= 0 or md.variants_npt_ns < 0:
        raise ConfigError("mlmd.variants_temperature / variants_npt_ns: expected > 0 K and >= 0 ns")
    if md.extend_ns > md.npt_ns and md.extend_temperature not in md.temperatures:
        raise ConfigError(f"mlmd.extend_temperature: {md.extend_temperature:g} K is not one of mlmd.temperatures "
                          f"{md.temperatures} (the run to extend to {md.extend_ns:g} ns)")
    bm = cfg.bulk_mlmd
    _positive_list(bm.temperatures, "bulk_mlmd.temperatures")
    if len(set(bm.temperatures)) < 2:
        raise ConfigError("bulk_mlmd.temperatures: an Arrhenius fit needs >= 2 different temperatures")
    _positive_list(bm.supercell, "bulk_mlmd.supercell", integer=True)
    if bm.dump_every < 1 or bm.nvt_ps < 0 or bm.npt_ns < 0:
        raise ConfigError("bulk_mlmd: dump_every >= 1 and durations >= 0 expected")
    if cfg.max_atoms < 1:
        raise ConfigError(f"max_atoms: expected >= 1, got {cfg.max_atoms}")
    for where, n in atoms_bounds(cfg).items():
        if n > cfg.max_atoms:
            raise ConfigError(f"{where}: the structures this implies hold up to ~{n:,} atoms, more than max_atoms "
                              f"{cfg.max_atoms:,} (raise max_atoms if that is meant)")
    if cfg.analysis.stride < 1:
        raise ConfigError("analysis.stride: expected >= 1")
    for name, w in cfg.analysis.flux_windows.items():
        if not (isinstance(name, str) and name and isinstance(w, list) and len(w) == 2
                and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in w) and 0 <= w[0] < w[1]):
            raise ConfigError(f"analysis.flux_windows.{name}: expected [t0, t1] in ns with 0 <= t0 < t1, got {w!r}")
    _validate_aimd(cfg.aimd)
    return cfg


def _validate_aimd(a: AimdCfg) -> None:
    _positive_list(a.bulk_temperatures, "aimd.bulk_temperatures")
    _positive_list(a.test_temperatures, "aimd.test_temperatures")
    for k in ("li_ramp", "product_ramp"):
        v = getattr(a, k)
        if len(v) != 2:
            raise ConfigError(f"aimd.{k}: expected [T_begin, T_end] in K, got {v!r}")
        _positive_list(v, f"aimd.{k}")
    _positive_list(a.product_supercell, "aimd.product_supercell", integer=True)
    if len(a.product_supercell) != 3:
        raise ConfigError("aimd.product_supercell: expected three integers")
    for i, p in enumerate(a.products):
        if p not in PHASE_NAMES or p == "li":
            raise ConfigError(f"aimd.products[{i}]: expected one of {', '.join(n for n in PHASE_NAMES if n != 'li')}, "
                              f"got {p!r}")
    for k in ("bulk_ps", "li_ps", "product_ps", "test_ps", "validation_ps", "validation_temperature",
              "validation_frame_ps"):
        if getattr(a, k) <= 0:
            raise ConfigError(f"aimd.{k}: expected > 0, got {getattr(a, k)}")
    for k in ("li_supercell", "bulk_frames", "li_frames", "product_frames", "interface_relax_frames", "test_frames"):
        if getattr(a, k) < 1:
            raise ConfigError(f"aimd.{k}: expected >= 1, got {getattr(a, k)}")


def from_dict(data: dict) -> StudyConfig:
    return validate(_section(StudyConfig, data, ""))


def load(path: str | Path) -> StudyConfig:
    """Read and validate a study YAML; errors name the file and the field."""
    p = Path(path)
    text = read_text(p, "study config")  # one line for an unreadable or binary file, never its bytes
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"study config {p}: not valid YAML{yaml_problem(exc)}") from None
    try:
        cfg = from_dict(data or {})
    except ConfigError as exc:
        raise ConfigError(f"study config {p}: {exc}") from None
    wd = Path(cfg.workdir)
    cfg.workdir = str(wd if wd.is_absolute() else (p.resolve().parent / wd))
    here = p.resolve().parent

    def absolute(v: str) -> str:
        return str(Path(v) if Path(v).is_absolute() else here / v)

    al = cfg.active_learning
    if al.foundation_model != "toy":
        al.foundation_model = absolute(al.foundation_model)
    if cfg.final_model.pt_file != "toy":
        cfg.final_model.pt_file = absolute(cfg.final_model.pt_file)
    if al.initial_dataset:
        al.initial_dataset = absolute(al.initial_dataset)
    al.initial_sources = [dict(s, path=absolute(s["path"])) for s in al.initial_sources]
    cfg.final_model.extra_datasets = [absolute(x) if isinstance(x, str) else x for x in cfg.final_model.extra_datasets]
    return cfg

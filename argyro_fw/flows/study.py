"""The study's DAG (METHOD.md 1-7) and its deciding fireworks.

At ``argyro study`` time only the first stage exists (bulk candidates and reference phases ->
choose-bulk). Every later stage is added at run time by the firework that makes its choice, with
FWAction(additions=...) or, where a later join must wait for it, FWAction(detours=...):

    bulk-dft (ordered + disordered candidates), phase-dft (Li, Li2S, LiCl, Li3P), e0-dft [, mlip-foundation]
      -> bulk-choose: lowest-energy disordered cell, chemical potentials, all symmetric terminations
         -> surface-dft (one per termination) -> surface-rank: gamma_surf, the top-N, interfaces
            -> per interface: interface-dft (total, total_charged before balancing, argyrodite free, Li free)
               total -> interface-strain -> (detour) interface-dft: both slabs strained to the relaxed a, b
               -> interface-energy: gamma_inter (balanced and charged), E_str, gamma_inter_min
                  -> (detour) active learning of this interface
               -> mlip-final: this interface's multi-head model
                  -> (detour) per T: md-prerelax -> md -> analysis
                     [first interface also: per bulk T: bulk-md -> diffusion -> arrhenius]
            -> summary (join of every interface's branch)

The stage builders (``*_stage``) build each stage's fireworks from plain inputs, so the DAG can be built
and counted without a database (tests/test_study.py); the deciding tasks read their parents' typed
records (:mod:`argyro_fw.study.outputs`), call the pure decisions (:mod:`argyro_fw.study.decisions`),
write what they decided through :mod:`argyro_fw.store` (``studies``, ``structures``,
``surface_energies``, ``interfaces``, ``diffusion``) and add the next stage. Builders and tasks share
this module because each stage's task adds the next stage (one module, no import cycle).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import ase.io
from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize
from pymatgen.core import Lattice, Structure

from .. import compat, store
from ..analysis.diffusion import kinisi_diffusion
from ..analysis.diffusion_io import arrhenius_to_h5, diffusion_to_h5, load_frames
from ..analysis.metrics import li_msd
from ..analysis.rdf_validation import compare as compare_rdfs
from ..analysis.rdf_validation import plot_png as plot_rdf_png
from ..analysis.rdf_validation import write_h5 as write_rdf_h5
from ..core.chemistry import ARGYRODITE_FU, ELEMENTS, PHASE_FORMULA, PHASE_FU, PHASE_NAMES
from ..core.serialise import as_structure, to_plain
from ..engines import energy_engine, foundation_provider
from ..errors import ArgyroError
from ..md.engines import mliap_path
from ..md.protocol import MDProtocol
from ..mlip.calculators import mace_calculator
from ..mlip.explore import langevin_frames
from ..mlip.final import train_final_model
from ..mlip.validate import rmse
from ..structures.bulk import disordered_candidates, ordered_argyrodite
from ..structures.energies import chemical_potentials
from ..structures.interfaces import mlmd_cell
from ..structures.phases import phase
from ..structures.surfaces import SurfaceMaker, all_terminations
from ..study.config import ALRun, FinalRun, StudyConfig, from_dict
from ..study.decisions import choose_interfaces, gamma_surface, interface_energies, strained_parts
from ..study.outputs import (
    ALDataset,
    AnalysisRef,
    DiffusionRef,
    EnergyResult,
    FinalModel,
    MDTrajectory,
    emit,
    read_all,
    read_last,
)
from .al import active_learning_workflow
from .analysis import AnalyzeTrajectoryTask
from .energy import energies_from_spec, energy_firework, energy_reads
from .md import RelaxBFGSTask, RunLammpsMDTask
from .stages import stage_spec

compat.install()

#: isolated-atom E0s are computed for these elements (METHOD.md 4)
E0_ELEMENTS = ELEMENTS
#: edge of the cubic box of an isolated-atom calculation, Å
E0_BOX_A = 15.0
#: labels of the study's AIMD runs (calculations and datasets)
AIMD_LI = "aimd/li-ramp"
AIMD_BULK = "aimd/bulk"
AIMD_VALIDATION = "aimd/validation"
AIMD_TEST = "aimd/test"


def _foundation(cfg: StudyConfig):
    """The provider of a foundation model that is not a path (``toy``), or None."""
    return foundation_provider(cfg.active_learning.foundation_model)


def foundation_path(cfg: StudyConfig) -> str:
    prov = _foundation(cfg)
    return prov(cfg.workdir).model if prov else cfg.active_learning.foundation_model


def replay_path(cfg: StudyConfig) -> str:
    prov = foundation_provider(cfg.final_model.pt_file)
    return prov(cfg.workdir).replay if prov else cfg.final_model.pt_file


def bulk_candidates(cfg: StudyConfig) -> list[tuple[str, Structure]]:
    out = [("bulk/ordered", ordered_argyrodite(cfg.bulk.a))]
    if cfg.bulk.disordered:
        out += [(f"bulk/disordered_{k}", c["structure"]) for k, c in enumerate(disordered_candidates(cfg.bulk.a))]
    return out


def initial_workflow(cfg: StudyConfig) -> Workflow:
    """Stage 1: bulk candidates and reference phases (DFT), the isolated atoms, the foundation model if it
    is made here (``toy``), then the choose-bulk firework that adds everything else."""
    fws = [energy_firework(cfg, s, label, "relax-bulk", "bulk-dft") for label, s in bulk_candidates(cfg)]
    fws += [energy_firework(cfg, phase(name), f"phase/{name}", "relax-bulk", "phase-dft") for name in PHASE_NAMES]
    if cfg.needs_dft_e0s():  # METHOD.md 4: isolated-atom energies, the E0s of the committee and final models
        for el in E0_ELEMENTS:
            atom = Structure(Lattice.cubic(E0_BOX_A), [el], [[0.0, 0.0, 0.0]])
            fws.append(energy_firework(cfg, atom, f"e0/{el}", "e0", "e0-dft"))
    fws += initial_aimd(cfg)
    prov = _foundation(cfg)
    if prov:
        fws.append(prov(cfg.workdir).firework())
    choose = Firework([ChooseBulkTask(cfg=cfg.to_dict())], name="bulk-choose", parents=list(fws),
                      spec=stage_spec("bulk-choose"))
    return Workflow(fws + [choose], name=f"argyro-study-{cfg.name}", metadata={"argyro_study": cfg.name})


def _aimd(cfg: StudyConfig, structure: Structure, label: str, ramp, ps: float, select: dict,
          system: str | None = None, kpoints: str = "gamma") -> Firework:
    """One AIMD firework of the study's engine. METHOD.md 4: the 52-atom argyrodite and 54-atom Li cells use the
    k-grid (``kpoints="grid"``), every other AIMD the Gamma point."""
    return energy_engine(cfg.engine).aimd_firework(cfg, structure, label, "aimd", tuple(ramp), ps, select,
                                                   system=system, kpoints=kpoints)


def initial_aimd(cfg: StudyConfig) -> list[Firework]:
    """METHOD.md 5's AIMD that needs no decision: Li metal (bcc, n x n x n, ramp) for every interface's initial
    set, and the decomposition products (ramps) added before the final models."""
    a = cfg.aimd
    if not a.enabled:
        return []
    li = phase("li")
    li.lattice = Lattice.cubic(cfg.interfaces.li_a)
    li.make_supercell([a.li_supercell] * 3)
    fws = [_aimd(cfg, li, AIMD_LI, a.li_ramp, a.li_ps, {"even": a.li_frames}, kpoints="grid")]
    for name in a.products:
        fws.append(_aimd(cfg, phase(name, tuple(a.product_supercell)), f"aimd/{name}-ramp", a.product_ramp,
                         a.product_ps, {"even": a.product_frames}))
    return fws


def bulk_aimd(cfg: StudyConfig, chosen: Structure, ordered: Structure | None) -> list[Firework]:
    """METHOD.md 1 and 5's AIMD of the chosen bulk: one run per bulk temperature (the initial sets), and the ordered vs
    disordered validation at one temperature with its Li-MSD analysis."""
    a = cfg.aimd
    if not a.enabled:
        return []
    fws = [_aimd(cfg, chosen, f"{AIMD_BULK}/{T:g}K", (T, T), a.bulk_ps, {"even": a.bulk_frames}, kpoints="grid")
           for T in a.bulk_temperatures]
    T = a.validation_temperature
    every = max(1, round(a.validation_frame_ps * 1000.0 / 2.0))  # frames every validation_frame_ps at 2 fs
    runs = [_aimd(cfg, s, f"{AIMD_VALIDATION}/{name}", (T, T), a.validation_ps, {"every": every}, kpoints="grid")
            for name, s in (("disordered", chosen), ("ordered", ordered)) if s is not None]
    check = Firework([BulkValidationTask(study=cfg.name, temperature_K=float(T), frame_ps=every * 2.0 / 1000.0)],
                     name="aimd-validation", parents=runs, spec=stage_spec("aimd-validation"))
    return fws + runs + [check]


def surface_stage(cfg: StudyConfig, slabs: list[dict], context: dict, aimd: list[Firework] | None = None) -> Workflow:
    """One energy firework per termination (``slabs``: dicts with key, structure) -> surface-rank; ``aimd``: the
    bulk AIMD fireworks, also parents of surface-rank (which hands their frames on to the interfaces)."""
    fws = [energy_firework(cfg, s["structure"], s["key"], "relax", "surface-dft") for s in slabs]
    meta = [{k: v for k, v in s.items() if k != "structure"} for s in slabs]
    aimd = list(aimd or [])
    leaves = [f for f in aimd if not any(f in (c.parents or []) for c in aimd)]
    rank = Firework([RankSurfacesTask(cfg=cfg.to_dict(), slabs=meta, context=context)], name="surface-rank",
                    parents=list(fws) + leaves, spec=stage_spec("surface-rank"))
    return Workflow(fws + aimd + [rank], name="surfaces")


#: an interface's calculations before its relaxation (``total_charged``: the symmetric model before charge balancing,
#: when balancing removed atoms) and the two that follow the relaxed interface (METHOD.md 9)
INTERFACE_PARTS = ("total", "arg_free", "li_free")
CHARGED_PART = "total_charged"
STRAINED_PARTS = ("arg_strained", "li_strained")
#: the energies interface-energy needs (not Table 4's ``total_charged``: a failed relaxation of the charged model
#: leaves its gamma_inter out, it never stops the interface's branch)
REQUIRED_PARTS = INTERFACE_PARTS + STRAINED_PARTS


def interface_stage(cfg: StudyConfig, interfaces: list[dict], context: dict) -> Workflow:
    """Per interface: the relaxations of the interface (charge balanced and, for Table 4, before balancing) and of
    both slabs at their own lattice; after the interface's relaxation, interface-strain adds (detour) both slabs
    strained to the relaxed interface's a, b (METHOD.md 9) -> interface-energy (which detours into that interface's
    active learning) -> that interface's final multi-head model (METHOD.md 5: one per interface), which detours into
    its MLMD (and, for the first interface, the bulk MLMD -> diffusion -> Arrhenius); the summary joins them all."""
    fws, finals = [], []
    for rank, itf in enumerate(interfaces):
        parts = itf["parts"]
        names = [p for p in INTERFACE_PARTS + (CHARGED_PART,) if p in parts]
        calcs = {p: energy_firework(cfg, parts[p], f"{itf['key']}/{p}",
                                    "relax-interface" if p in ("total", CHARGED_PART) else "relax", "interface-dft")
                 for p in names}
        meta = {k: v for k, v in itf.items() if k != "parts"}
        strain = Firework([InterfaceStrainTask(cfg=cfg.to_dict(), interface=meta, built=parts["total"].as_dict())],
                          name=f"interface-strain:{itf['key']}", parents=[calcs["total"]],
                          spec=stage_spec("interface-strain"))
        # runs after a FIZZLED parent too, and then fails itself unless only Table 4's charged model is missing
        energy = Firework([InterfaceEnergyTask(cfg=cfg.to_dict(), interface=meta, context=context)],
                          name=f"interface-energy:{itf['key']}", parents=list(calcs.values()) + [strain],
                          spec=stage_spec("interface-energy", _allow_fizzled_parents=CHARGED_PART in calcs))
        final = Firework([StudyFinalModelTask(cfg=cfg.to_dict(), interface=meta, context=context, variants=rank == 0)],
                         name=f"mlip-final:{itf['key']}", parents=[energy], spec=stage_spec("mlip-final"))
        fws += list(calcs.values()) + [strain, energy, final]
        finals.append(final)
    # METHOD.md 5: the bulk MLMD uses the final model with the lowest force RMSE on the bulk AIMD frames
    choose = Firework([BulkModelTask(cfg=cfg.to_dict(), context=context)], name="bulk-model", parents=finals,
                      spec=stage_spec("bulk-model"))
    summary = Firework([StudySummaryTask(study=cfg.name)], name="summary", parents=[choose],
                       spec=stage_spec("summary"))
    return Workflow(fws + [choose, summary], name="interfaces")


def aimd_test_set(cfg: StudyConfig, key: str, structure: Structure) -> Workflow | None:
    """METHOD.md 5's test set of one interface: AIMD of its relaxed DFT cell at each test temperature (1 fs), the
    frames split evenly over the temperatures; None when AIMD is off."""
    a = cfg.aimd
    if not a.enabled:
        return None
    n = max(1, a.test_frames // len(a.test_temperatures))
    fws = [_aimd(cfg, structure, f"{AIMD_TEST}/{key}/{T:g}K", (T, T), a.test_ps, {"even": n}, system="interface")
           for T in a.test_temperatures]
    return Workflow(fws, name=f"aimd-test-{key}")


def al_run(cfg: StudyConfig, name: str, structure: Structure, dft_e0s: dict | None,
           aimd_sources: list[dict] | None = None) -> ALRun:
    """The active-learning loop of one interface: the study's ``active_learning`` section, plus this
    loop's name, folder, start structure and committee E0s (``dft``: ``dft_e0s``, the study's isolated-atom
    energies); ``aimd_sources`` ({path, n, config_type}: the study's AIMD and this interface's relaxation) are added to
    ``active_learning.initial_sources``; the final model is the study's own join, not the loop's."""
    al = cfg.active_learning
    if aimd_sources:
        al = dataclasses.replace(al, initial_sources=list(al.initial_sources) + list(aimd_sources))
    e0s = al.e0s
    if e0s == "dft":
        missing = sorted(set(E0_ELEMENTS) - set(dft_e0s or {}))
        if missing:
            raise ValueError(f"active learning {name}: active_learning.e0s is dft but no isolated-atom energy of {missing}")
        e0s = dict(dft_e0s)
    return ALRun(name=name, workdir=str(Path(cfg.workdir) / "al" / name.replace("/", "_")),
                 foundation_model=foundation_path(cfg), structure=structure.as_dict(),
                 explorer=f"mace:{foundation_path(cfg)}" if al.explorer == "foundation" else al.explorer,
                 labeller=al.labeller, e0s=e0s, al=al, label_engine=cfg.to_dict() if al.labeller == "engine" else None)


def al_stage(cfg: StudyConfig, name: str, structure: Structure, dft_e0s: dict | None,
             aimd_sources: list[dict] | None = None) -> Workflow:
    return active_learning_workflow(al_run(cfg, name, structure, dft_e0s, aimd_sources), name=f"al-{name}")


def aimd_datasets(fw_spec: dict) -> dict[str, str]:
    """{label: extxyz} of the AIMD (and relaxation) runs among the parents' EnergyResults that have a dataset."""
    return {r.label: r.dataset for r in read_all(fw_spec, EnergyResult) if r.dataset}


def initial_sources(cfg: StudyConfig, aimd: dict[str, str], relax_dataset: str | None) -> list[dict]:
    """METHOD.md 5's initial data of one interface: bulk AIMD (``bulk_frames`` per temperature), Li-metal AIMD
    (``li_frames``) and ``interface_relax_frames`` of the interface's DFT relaxation."""
    a = cfg.aimd
    out = [{"path": aimd[f"{AIMD_BULK}/{T:g}K"], "n": a.bulk_frames, "config_type": f"aimd-bulk-{T:g}K"}
           for T in a.bulk_temperatures if f"{AIMD_BULK}/{T:g}K" in aimd]
    if AIMD_LI in aimd:
        out.append({"path": aimd[AIMD_LI], "n": a.li_frames, "config_type": "aimd-li-ramp"})
    if relax_dataset:
        out.append({"path": relax_dataset, "n": a.interface_relax_frames, "config_type": "interface-relax"})
    return out


def _md_chain(cfg: StudyConfig, model: str, key: str, structure: Structure, T: float, npt_ns: float, wd: Path,
              mliap: str | None) -> tuple[list[Firework], MDProtocol, str]:
    """pre-relax -> MD -> analysis of one cell at temperature ``T`` for ``npt_ns`` of NPT."""
    md = cfg.mlmd
    tag = f"{key.replace('/', '_')}_{T:g}K"
    p = MDProtocol(temperature=T, nvt_ps=md.nvt_ps, npt_ns=npt_ns, dump_every=md.dump_every,
                   thermo_every=md.dump_every, restart_every=md.restart_every)
    relax = Firework([RelaxBFGSTask(structure=structure.as_dict(), model=model, fmax=md.prerelax_fmax,
                                    steps=md.prerelax_steps)], name=f"md-prerelax:{tag}", spec=stage_spec("md-prerelax"))
    run = Firework([RunLammpsMDTask(run_dir=str(wd / tag), model=model, protocol=p.to_dict(), engine=md.engine,
                                    mliap_model=mliap, lmp_binary=md.lmp_binary)],
                   name=f"md:{tag}", parents=[relax], spec=stage_spec("md"))
    ana = Firework([AnalyzeTrajectoryTask(fmt="lammps-dump", type_map=p.elements, interface=key,
                                          temperature_K=float(T), stride=cfg.analysis.stride,
                                          membranes=cfg.analysis.membranes, nvt_ps=md.nvt_ps,
                                          flux_windows=cfg.analysis.flux_windows)],
                   name=f"analysis:{tag}", parents=[run], spec=stage_spec("analysis"))
    return [relax, run, ana], p, tag


def mlmd_stage(cfg: StudyConfig, model: str, cells: list[dict], extend: bool = False,
               variants: list[dict] | None = None) -> Workflow:
    """Per interface cell and temperature: pre-relax -> MD -> analysis; with ``extend``, the run at
    ``mlmd.extend_temperature`` then goes on to ``mlmd.extend_ns`` (same run directory) -> its analysis;
    ``variants`` (dicts with key, structure: METHOD.md 6's charge-balancing choices and fully symmetric model) run
    at ``mlmd.variants_temperature`` for ``mlmd.variants_npt_ns``. ``cells``: dicts with key, structure."""
    md = cfg.mlmd
    wd = Path(cfg.workdir) / "md"
    fws = []
    mliap = mliap_path(model) if md.engine == "mliap" else None
    for cell in cells:
        for T in md.temperatures:
            chain, p, tag = _md_chain(cfg, model, cell["key"], cell["structure"], T, md.npt_ns, wd, mliap)
            fws += chain
            if extend and md.extend_ns > md.npt_ns and float(T) == float(md.extend_temperature):
                # METHOD.md 6: this run goes on to extend_ns; the same run directory, one merged trajectory
                ext = Firework([RunLammpsMDTask(run_dir=str(wd / tag), model=model, protocol=p.to_dict(),
                                                engine=md.engine, mliap_model=mliap, lmp_binary=md.lmp_binary,
                                                extend_to_ns=md.extend_ns)],
                               name=f"md-extend:{tag}", parents=[chain[-1]], spec=stage_spec("md"))
                ana_ext = Firework([AnalyzeTrajectoryTask(fmt="lammps-dump", type_map=p.elements, interface=cell["key"],
                                                          temperature_K=float(T), stride=cfg.analysis.stride,
                                                          membranes=cfg.analysis.membranes, nvt_ps=md.nvt_ps,
                                                          flux_windows=cfg.analysis.flux_windows,
                                                          h5_name=f"analysis_{md.extend_ns:g}ns.h5")],
                                   name=f"analysis:{tag}-{md.extend_ns:g}ns", parents=[ext], spec=stage_spec("analysis"))
                fws += [ext, ana_ext]
    for v in variants or []:
        fws += _md_chain(cfg, model, v["key"], v["structure"], md.variants_temperature, md.variants_npt_ns, wd,
                         mliap)[0]
    return Workflow(fws, name="mlmd")


def bulk_mlmd_stage(cfg: StudyConfig, model: str, bulk: Structure) -> Workflow:
    """Per bulk temperature: MD -> diffusion, then the Arrhenius fit (METHOD.md 1)."""
    md = cfg.mlmd
    wd = Path(cfg.workdir) / "md"
    fws = []
    mliap = mliap_path(model) if md.engine == "mliap" else None
    bm = cfg.bulk_mlmd
    bulk_sc = bulk.copy()
    bulk_sc.make_supercell(list(bm.supercell))
    diffs = []
    for T in bm.temperatures:
        tag = f"bulk_{T:g}K"
        p = MDProtocol(temperature=T, nvt_ps=bm.nvt_ps, npt_ns=bm.npt_ns, dump_every=bm.dump_every,
                       thermo_every=bm.dump_every, restart_every=bm.dump_every * max(1, md.restart_every // bm.dump_every))
        run = Firework([RunLammpsMDTask(run_dir=str(wd / tag), model=model, protocol=p.to_dict(), engine=md.engine,
                                        structure=bulk_sc.as_dict(), mliap_model=mliap, lmp_binary=md.lmp_binary)],
                       name=f"bulk-md:{tag}", spec=stage_spec("bulk-md"))
        dif = Firework([BulkDiffusionTask(temperature_K=float(T), timestep_ps=p.timestep_ps, step_skip=p.dump_every,
                                          elements=p.elements, study=cfg.name, flux_from_ps=bm.nvt_ps)],
                       name=f"diffusion:{tag}", parents=[run], spec=stage_spec("diffusion"))
        fws += [run, dif]
        diffs.append(dif)
    arr = Firework([ArrheniusTask(study=cfg.name, out=str(wd / "arrhenius.h5"))], name="arrhenius", parents=diffs,
                   spec=stage_spec("arrhenius"))
    return Workflow(fws + [arr], name="bulk-mlmd")


def mlmd_variants(cfg: StudyConfig, bulk: Structure, itf: dict, li_a: float | None = None) -> list[dict]:
    """METHOD.md 6's variants of an interface's MLMD cell: the configured charge-balancing choices (0: lowest
    Ewald energy) and the fully symmetric (not charge-balanced) model; a choice the slab does not have is left out
    (named in the result's ``skipped``)."""
    md = cfg.mlmd
    common = dict(layers=md.layers, li_layers=md.li_layers, li_plane=itf["li_plane"], supercell=tuple(md.supercell),
                  max_mismatch=md.max_mismatch, max_area=md.max_area, li_a=float(li_a or cfg.interfaces.li_a),
                  termination_label=itf["termination"])
    out = []
    for k in md.variant_balance_choices:
        try:
            built = mlmd_cell(bulk, tuple(itf["miller"]), balance_choice=k, **common)
        except ArgyroError:
            continue
        out.append({"key": f"{itf['key']}/balance{k}", "structure": built["structure"], "balance_choice": k,
                    "removed_for_balance": built["removed_for_balance"], "n_atoms": built["n_atoms"]})
    if md.variant_symmetric:
        built = mlmd_cell(bulk, tuple(itf["miller"]), balance_slab=False, **common)
        out.append({"key": f"{itf['key']}/symmetric", "structure": built["structure"], "balance_choice": None,
                    "removed_for_balance": {}, "n_atoms": built["n_atoms"]})
    return out


def rdf_validation(cfg: StudyConfig, model: str, key: str, aimd: dict[str, str], out_dir: Path) -> dict:
    """METHOD.md 5's RDF check of one interface's final model: per test temperature, NVT Langevin MD with the model
    from the AIMD test run's first frame for the AIMD run's duration (1 fs), the same number of frames, then both
    trajectories' average partial RDFs -> ``rdf_validation.h5`` and ``.png`` in ``out_dir``; returns the paths and,
    per temperature and pair, the RMS difference and the peak positions."""
    prefix = f"{AIMD_TEST}/{key}/"
    runs = {float(label[len(prefix):].rstrip("K")): path for label, path in aimd.items() if label.startswith(prefix)}
    calc = mace_calculator(model, device=cfg.active_learning.device)
    steps = max(1, round(cfg.aimd.test_ps * 1000.0))  # the interface AIMD's 1 fs steps
    results = {}
    for T, path in sorted(runs.items()):
        ref = list(ase.io.read(path, ":"))
        start = ase.Atoms(ref[0].get_chemical_symbols(), positions=ref[0].get_positions(), cell=ref[0].cell, pbc=True)
        traj = langevin_frames(start, calc, T, steps, record_every=max(1, steps // len(ref)))
        results[T] = compare_rdfs(ref, traj)
    h5 = write_rdf_h5(results, out_dir / "rdf_validation.h5", {"model": str(model), "interface": key})
    png = plot_rdf_png(results, out_dir / "rdf_validation.png")
    return {"h5": str(h5), "png": str(png),
            "by_temperature": {f"{T:g}K": res["difference"] for T, res in results.items()}}


def surface_maker(cfg: StudyConfig) -> SurfaceMaker:
    """The termination search with every ``surfaces`` setting of the study."""
    s = cfg.surfaces
    return SurfaceMaker(min_thickness=s.min_thickness, vacuum=s.vacuum, layer_gap=s.layer_gap, li_rule=s.li_rule,
                        label_depth=s.label_depth, ps_bond=s.ps_bond)


def relaxed_li_a(li: dict | Structure | None, default: float) -> float:
    """The cubic lattice constant of the engine-relaxed bcc Li cell (2 atoms per conventional cell), else ``default``."""
    if not li:
        return float(default)
    s = as_structure(li)
    return float((s.lattice.volume * 2 / len(s)) ** (1 / 3))


def _require(energies: dict, keys: list[str], who: str) -> None:
    missing = [k for k in keys if k not in energies]
    if missing:
        raise ValueError(f"{who}: no energy handed on by the parents for {missing}")


@explicit_serialize
class ChooseBulkTask(FiretaskBase):
    """Keep the lowest-energy disordered cell (METHOD.md 1), solve the chemical potentials, cut every
    symmetric termination of it and add the surface stage."""

    required_params = ["cfg"]

    def offline_reads(self, fw_spec, reads):
        energy_reads(fw_spec, reads)

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        db = store.database(fw_spec)
        E = energies_from_spec(fw_spec, db)
        cands = dict(bulk_candidates(cfg))
        need = list(cands) + [f"phase/{p}" for p in PHASE_NAMES]
        if cfg.needs_dft_e0s():
            need += [f"e0/{el}" for el in E0_ELEMENTS]
        _require(E, need, "bulk-choose")
        pool = [k for k in cands if "disordered" in k] or list(cands)
        chosen = min(pool, key=lambda k: E[k]["energy_eV"])
        relaxed = as_structure(E[chosen]["structure"]) if "structure" in E[chosen] else cands[chosen]
        # METHOD.md 2: terminations are cut from the cell as the engine relaxed it, with the bulk's own Li ordering
        a_rel = float(relaxed.lattice.volume ** (1 / 3))
        e_fu = {"Li6PS5Cl": E[chosen]["energy_eV"] / ARGYRODITE_FU}
        e_fu |= {PHASE_FORMULA[p]: E[f"phase/{p}"]["energy_eV"] / PHASE_FU[p] for p in PHASE_NAMES if p != "li"}
        mu = chemical_potentials(e_fu)
        e_li_atom = E["phase/li"]["energy_eV"] / PHASE_FU["li"]
        maker = surface_maker(cfg)
        terms = all_terminations(relaxed, [tuple(m) for m in cfg.surfaces.planes], maker)
        if not terms:
            raise ValueError(f"bulk-choose: no symmetric termination of {chosen} on {cfg.surfaces.planes}")
        slabs = [dict({k: v for k, v in t.items() if k != "structure"}, key=f"surface/{t['id']}", structure=t["structure"])
                 for t in terms]
        store.put_structures(db, cfg.name, "bulk", [("bulk/chosen", relaxed, {"from": chosen, "a_A": a_rel})])
        store.put_structures(db, cfg.name, "surface",
                             [(s["key"], s["structure"], {k: v for k, v in s.items() if k != "structure"}) for s in slabs])
        e0s = {el: E[f"e0/{el}"]["energy_eV"] for el in E0_ELEMENTS if f"e0/{el}" in E}
        context = {"e0s": e0s, "bulk": chosen, "bulk_relaxed": relaxed.as_dict(),
                   "e_fu": e_fu, "mu": mu, "e_li_atom": e_li_atom, "aimd": aimd_datasets(fw_spec),
                   "li_a": relaxed_li_a(E.get("phase/li", {}).get("structure"), cfg.interfaces.li_a)}
        ordered = E.get("bulk/ordered", {}).get("structure")
        aimd = bulk_aimd(cfg, relaxed, as_structure(ordered) if ordered else cands.get("bulk/ordered"))
        store.update_study(db, cfg.name, {"bulk": {"chosen": chosen, "energies_eV": {k: E[k]["energy_eV"] for k in cands},
                                                   "a_relaxed_A": a_rel},
                                          "chemical_potentials_eV": mu, "e_fu_eV": e_fu, "e0s_eV": e0s,
                                          "surfaces": {"n_terminations": len(slabs)}})
        return FWAction(stored_data={"chosen": chosen, "n_terminations": len(slabs), "mu": mu},
                        additions=[surface_stage(cfg, slabs, context, aimd)])


@explicit_serialize
class RankSurfacesTask(FiretaskBase):
    """gamma_surf of every termination, the N lowest -> charge-balanced, lattice-matched interfaces."""

    required_params = ["cfg", "slabs", "context"]

    def offline_reads(self, fw_spec, reads):
        energy_reads(fw_spec, reads)
        for s in self["slabs"]:
            reads.structure(self["cfg"]["name"], s["key"])

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        db = store.database(fw_spec)
        E = energies_from_spec(fw_spec, db)
        slabs = self["slabs"]
        _require(E, [s["key"] for s in slabs], "surface-rank")
        rows = []
        for s in slabs:
            g = gamma_surface(E[s["key"]]["energy_eV"], s, self["context"])
            rows.append(dict(s, gamma_surf_eV_nm2=g, energy_eV=E[s["key"]]["energy_eV"]))
        rows.sort(key=lambda r: r["gamma_surf_eV_nm2"])
        store.put_surface_energies(db, cfg.name, rows)
        top = rows[: cfg.surfaces.top_n]
        structs = {s["key"]: store.get_structure(db, cfg.name, s["key"]) for s in top}
        interfaces = choose_interfaces(cfg, top, structs, li_a=self["context"].get("li_a"))
        if not interfaces:
            raise ValueError("surface-rank: no lattice match for any of the top surfaces "
                             f"(Li planes {cfg.interfaces.li_planes}, max area {cfg.interfaces.max_area} A2)")
        store.put_structures(db, cfg.name, "interface",
                             [(f"{i['key']}/{part}", s, {k: v for k, v in i.items() if k != "parts"})
                              for i in interfaces for part, s in i["parts"].items()])
        store.update_study(db, cfg.name, {"surfaces.ranking": [{"key": r["key"], "termination": r["termination"],
                                                                 "miller": r["miller"],
                                                                 "gamma_surf_eV_nm2": r["gamma_surf_eV_nm2"]}
                                                                for r in rows],
                                          "surfaces.top": [r["key"] for r in top]})
        context = dict(self["context"])
        context["aimd"] = dict(context.get("aimd") or {}) | {k: v for k, v in aimd_datasets(fw_spec).items()
                                                              if k.startswith("aimd/")}
        return FWAction(stored_data={"top": [(r["key"], r["gamma_surf_eV_nm2"]) for r in top],
                                     "interfaces": [i["key"] for i in interfaces]},
                        additions=[interface_stage(cfg, interfaces, context)])


@explicit_serialize
class InterfaceStrainTask(FiretaskBase):
    """METHOD.md 3 and 9: after the interface's relaxation, both slabs strained to the relaxed interface (its a, b and
    the atoms where the relaxation left them), relaxed by the engine with a, b fixed; added as a detour, so the
    interface-energy firework waits for them."""

    required_params = ["cfg", "interface", "built"]

    def offline_reads(self, fw_spec, reads):
        energy_reads(fw_spec, reads)

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        itf = self["interface"]
        key = itf["key"]
        E = energies_from_spec(fw_spec, store.database(fw_spec))
        _require(E, [f"{key}/total"], "interface-strain")
        relaxed = E[f"{key}/total"].get("structure")
        if not relaxed:
            raise ValueError(f"interface-strain {key}: the interface relaxation stored no final structure")
        relaxed = as_structure(relaxed)
        parts = strained_parts(relaxed, as_structure(self["built"]), int(itf["argyrodite_atoms"]))
        fws = [energy_firework(cfg, st, f"{key}/{p}", "relax", "interface-dft") for p, st in parts.items()]
        a, b = (float(x) for x in relaxed.lattice.abc[:2])
        return FWAction(stored_data={"relaxed_a_b_A": [a, b], "parts": list(parts)},
                        detours=[Workflow(fws, name=f"interface-strained-{key}")])


@explicit_serialize
class InterfaceEnergyTask(FiretaskBase):
    """gamma_inter with strain correction for one interface; then its active learning as a detour (so the
    final-model join waits for the whole loop)."""

    required_params = ["cfg", "interface", "context"]

    def offline_reads(self, fw_spec, reads):
        energy_reads(fw_spec, reads)
        reads.structure(self["cfg"]["name"], f"{self['interface']['key']}/total")

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        db = store.database(fw_spec)
        E = energies_from_spec(fw_spec, db)
        itf = self["interface"]
        key = itf["key"]
        _require(E, [f"{key}/{p}" for p in REQUIRED_PARTS], "interface-energy")
        res = interface_energies(E, itf, self["context"])
        if itf.get("composition_charged") and f"{key}/{CHARGED_PART}" not in E:
            res["gamma_inter_charged_missing"] = f"the relaxation of {key}/{CHARGED_PART} did not complete"
        store.put_interface(db, cfg.name, key, dict(itf, **res, energies_eV={p.split("/")[-1]: e["energy_eV"]
                                                                             for p, e in E.items()
                                                                             if p.startswith(f"{key}/")}))
        relaxed = E[f"{key}/total"].get("structure")
        start = as_structure(relaxed) if relaxed else store.get_structure(db, cfg.name, f"{key}/total")
        sources = initial_sources(cfg, self["context"].get("aimd") or {}, aimd_datasets(fw_spec).get(f"{key}/total"))
        detours = [al_stage(cfg, key, start, self["context"].get("e0s"), sources)]
        test = aimd_test_set(cfg, key, start)
        if test is not None:
            detours.append(test)
        return FWAction(stored_data=dict(to_plain(res), initial_sources=sources), detours=detours)


@explicit_serialize
class StudyFinalModelTask(FiretaskBase):
    """One interface's final multi-head model (METHOD.md 5) from its active-learning dataset (the loop's
    ALDataset) plus the decomposition products' AIMD and the configured extra datasets; its validation (every
    committee member and the final model on the interface's AIMD test set); then its MLMD cell and, as a detour,
    the MLMD runs at every temperature (and METHOD.md 6's variants when ``variants``)."""

    required_params = ["cfg", "interface", "context"]
    optional_params = ["variants"]

    def offline_reads(self, fw_spec, reads):
        reads.structure(self["cfg"]["name"], f"{self['interface']['key']}/total")

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        itf = self["interface"]
        db = store.database(fw_spec)
        sets = [s for s in read_all(fw_spec, ALDataset) if s.name == itf["key"]]
        if not sets:
            raise ValueError(f"mlip-final {itf['key']}: its active-learning loop handed on no dataset")
        ds = sets[-1]
        fm = cfg.final_model
        aimd = self["context"].get("aimd") or {}
        products = [aimd[f"aimd/{n}-ramp"] for n in cfg.aimd.products if f"aimd/{n}-ramp" in aimd] if cfg.aimd.enabled else []
        final = FinalRun(pt_file=replay_path(cfg), e0s=fm.e0s if isinstance(fm.e0s, dict) else dict(self["context"]["e0s"]),
                         replay_n=fm.replay_n, extra_datasets=list(fm.extra_datasets) + products,
                         overrides=dict(fm.overrides), convert_mliap=fm.convert_mliap)
        res = train_final_model(Path(cfg.workdir) / "final" / itf["key"].replace("/", "_") / "final", ds.train, ds.valid,
                                foundation_path(cfg), final, cfg.active_learning.device)
        model = res["final_model"]
        # METHOD.md 5 validation (Default head) on the interface's AIMD test set; without AIMD (aimd.enabled false) on
        # the loop's held-out validation frames, and the record says which
        tests = sorted(v for k, v in aimd_datasets(fw_spec).items() if k.startswith(f"{AIMD_TEST}/{itf['key']}/"))
        test_files = tests or [ds.valid]
        frames = [a for f in test_files for a in ase.io.read(f, ":")]
        dev = cfg.active_learning.device
        final_validation = dict(rmse(model, frames, dev), test_set=test_files,
                                test_kind="aimd" if tests else "al-validation-frames",
                                committee=[dict(rmse(m, frames, dev), model=m) for m in ds.models])
        if tests:  # METHOD.md 5: average RDFs of the final model's MD against the AIMD test trajectories
            final_validation["rdf"] = rdf_validation(cfg, model, itf["key"], aimd_datasets(fw_spec),
                                                     Path(res["final_model"]).parent)
        bulk = as_structure(self["context"]["bulk_relaxed"])
        md = cfg.mlmd
        try:
            built = mlmd_cell(bulk, tuple(itf["miller"]), layers=md.layers, li_layers=md.li_layers,
                              li_plane=itf["li_plane"], supercell=tuple(md.supercell), max_mismatch=md.max_mismatch,
                              max_area=md.max_area, li_a=self["context"].get("li_a", cfg.interfaces.li_a),
                              termination_label=itf["termination"])
            cell, how = built["structure"], "mlmd-cell"
        except ArgyroError as exc:
            cell = store.get_structure(db, cfg.name, f"{itf['key']}/total")
            cell.make_supercell(list(md.supercell))
            how = f"DFT interface x supercell ({exc})"
        store.put_structures(db, cfg.name, "mlmd-cell", [(f"{itf['key']}/mlmd", cell, {"built_as": how})])
        store.update_interface(db, cfg.name, itf["key"], {"final_model": model, "heads": res["heads"],
                                                          "final_validation": final_validation,
                                                          "mlmd_cell": {"n_atoms": len(cell), "built_as": how}})
        first = bool(self.get("variants"))
        variants = []
        if first and how == "mlmd-cell":  # METHOD.md 6: variants of the first interface's model
            variants = mlmd_variants(cfg, bulk, itf, li_a=self["context"].get("li_a"))
            store.put_structures(db, cfg.name, "mlmd-variant",
                                 [(v["key"], v["structure"], {k: x for k, x in v.items() if k not in ("key", "structure")})
                                  for v in variants])
        rec = FinalModel(path=model, heads=res["heads"], mliap=res["mliap"], name=itf["key"])
        return FWAction(stored_data={"final_model": model, "mlmd_cell_atoms": len(cell), "built_as": how,
                                     "variants": [v["key"] for v in variants], "validation": to_plain(final_validation)},
                        detours=[mlmd_stage(cfg, model, [{"key": itf["key"], "structure": cell}],
                                            extend=first, variants=variants)], **emit(rec))


@explicit_serialize
class BulkModelTask(FiretaskBase):
    """METHOD.md 5: the bulk MLMD uses the final model with the lowest force RMSE on the bulk AIMD frames (every
    interface's final model is scored); then, as a detour, the bulk MLMD -> diffusion -> Arrhenius. Without bulk
    AIMD (aimd.enabled false) the first interface's model is used, and the study document says so."""

    required_params = ["cfg", "context"]

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        db = store.database(fw_spec)
        models = {r.name: r.path for r in read_all(fw_spec, FinalModel)}
        if not models:
            raise ValueError("bulk-model: no final model handed on by the parents")
        aimd = self["context"].get("aimd") or {}
        files = [v for k, v in sorted(aimd.items()) if k.startswith(f"{AIMD_BULK}/")]
        if files:
            frames = [a for f in files for a in ase.io.read(f, ":")]
            scores = {k: rmse(m, frames, cfg.active_learning.device) for k, m in sorted(models.items())}
            best = min(scores, key=lambda k: scores[k]["force_rmse_meV_A"])
            how = "lowest force RMSE on the bulk AIMD frames"
        else:
            scores, best, how = {}, next(iter(models)), "first interface (no bulk AIMD)"
        store.update_study(db, cfg.name, {"bulk_mlmd_model": models[best], "bulk_model_choice": {
            "interface": best, "rule": how, "scores": scores, "frames": files}})
        bulk = as_structure(self["context"]["bulk_relaxed"])
        return FWAction(stored_data={"bulk_model": models[best], "interface": best, "scores": to_plain(scores)},
                        detours=[bulk_mlmd_stage(cfg, models[best], bulk)])


@explicit_serialize
class BulkValidationTask(FiretaskBase):
    """METHOD.md 1's validation AIMD: the Li MSD of the ordered and the disordered cell at one temperature (frames
    every ``frame_ps``); stores both curves and their last values in the study document ("long-range" when the
    disordered cell's Li MSD exceeds the ordered one's)."""

    required_params = ["study", "temperature_K", "frame_ps"]

    def run_task(self, fw_spec):
        sets = aimd_datasets(fw_spec)
        out = {}
        for name in ("disordered", "ordered"):
            f = sets.get(f"{AIMD_VALIDATION}/{name}")
            if f:
                t, msd = li_msd([a.get_positions() for a in ase.io.read(f, ":")],
                                ase.io.read(f, 0).get_cell(), ase.io.read(f, 0).get_chemical_symbols(),
                                float(self["frame_ps"]))
                out[name] = {"t_ps": t, "msd_A2": msd, "final_msd_A2": float(msd[-1]), "frames": f}
        if "disordered" not in out:
            raise ValueError("aimd-validation: no disordered-cell AIMD handed on by the parents")
        summary = {"temperature_K": float(self["temperature_K"]), **out}
        if "ordered" in out:
            summary["disordered_over_ordered"] = out["disordered"]["final_msd_A2"] / max(out["ordered"]["final_msd_A2"], 1e-12)
        store.update_study(store.database(fw_spec), self["study"], {"bulk.validation_aimd": to_plain(summary)})
        return FWAction(stored_data={k: v["final_msd_A2"] for k, v in out.items()})


@explicit_serialize
class BulkDiffusionTask(FiretaskBase):
    """kinisi D and sigma of Li from the parent MD's trajectory -> diffusion.h5 + a ``diffusion`` document."""

    required_params = ["temperature_K", "timestep_ps", "step_skip", "elements", "study"]
    optional_params = ["flux_from_ps"]

    def run_task(self, fw_spec):
        traj = read_last(fw_spec, MDTrajectory, "diffusion").path
        frames = load_frames(traj, "lammps-dump", type_map=list(self["elements"]))
        res = kinisi_diffusion(frames, "Li", float(self["temperature_K"]), float(self["timestep_ps"]),
                               int(self["step_skip"]), flux_from_ps=float(self.get("flux_from_ps", 0.0)))
        h5 = diffusion_to_h5(res, Path.cwd() / "diffusion.h5", traj)
        doc = {"study": self["study"], "temperature_K": res.temperature_K, "D_cm2_s": res.D_cm2_s,
               "D_std_cm2_s": res.D_std_cm2_s, "sigma_S_cm": res.sigma_S_cm, "sigma_std_S_cm": res.sigma_std_S_cm,
               "sigma_mstd_S_cm": res.sigma_mstd_S_cm, "flux_pos_c_nm2_ns": res.flux_pos_c_nm2_ns,
               "flux_neg_c_nm2_ns": res.flux_neg_c_nm2_ns, "h5": str(h5), "trajectory": str(traj)}
        store.put_diffusion(store.database(fw_spec), doc)
        return FWAction(stored_data=to_plain(doc), **emit(DiffusionRef(h5=str(h5), temperature_K=res.temperature_K)))


@explicit_serialize
class ArrheniusTask(FiretaskBase):
    """Arrhenius fits of D and sigma over the bulk temperatures, extrapolated to 300 K -> HDF5 + the study."""

    required_params = ["study", "out"]

    def run_task(self, fw_spec):
        files = [r.h5 for r in read_all(fw_spec, DiffusionRef)]
        summary = arrhenius_to_h5(files, self["out"])
        store.update_study(store.database(fw_spec), self["study"], {"arrhenius": summary, "arrhenius_h5": self["out"]})
        return FWAction(stored_data=to_plain(summary))


@explicit_serialize
class StudySummaryTask(FiretaskBase):
    """The study's last firework: marks the study complete with counts of what is stored."""

    required_params = ["study"]
    optional_params = ["context"]

    def offline_reads(self, fw_spec, reads):
        for c in store.PER_STUDY:
            reads.count(c, self["study"])

    def run_task(self, fw_spec):
        db = store.database(fw_spec)
        counts = {c: store.count(db, c, {"study": self["study"]}) for c in store.PER_STUDY}
        counts["analyses"] = len(read_all(fw_spec, AnalysisRef))
        store.update_study(db, self["study"], {"complete": True, "counts": counts})
        return FWAction(stored_data=counts)

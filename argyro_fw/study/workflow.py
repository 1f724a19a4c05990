"""The study's DAG (METHOD.md 1-7), built stage by stage from pure functions.

At ``argyro study`` time only the first stage exists (bulk candidates and reference phases ->
choose-bulk). Every later stage is added at run time by the firework that makes its choice, with
FWAction(additions=...) or, where a later join must wait for it, FWAction(detours=...):

    bulk-dft (ordered + disordered candidates), phase-dft (Li, Li2S, LiCl, Li3P) [, mlip-foundation]
      -> bulk-choose: lowest-energy disordered cell, chemical potentials, all symmetric terminations
         -> surface-dft (one per termination) -> surface-rank: gamma_surf, the top-N, interfaces
            -> per interface: interface-dft (total, argyrodite free/strained, Li free/strained)
               -> interface-energy: gamma_inter, strain, gamma_inter_min
                  -> (detour) active learning of this interface
               -> mlip-final: this interface's multi-head model
                  -> (detour) per T: md-prerelax -> md -> analysis
                     [first interface also: per bulk T: bulk-md -> diffusion -> arrhenius]
            -> summary (join of every interface's branch)

The functions here build each stage's fireworks from plain inputs, so the DAG can be built and
counted without a database (tests/test_study.py).
"""

from __future__ import annotations

from pathlib import Path

from fireworks import Firework, Workflow
from pymatgen.core import Structure

from .config import StudyConfig
from .energy import energy_firework

PHASE_NAMES = ("li", "li2s", "licl", "li3p")
E0_ELEMENTS = ("Li", "P", "S", "Cl")
#: formula units per conventional cell of each reference phase (pymatgen cells of structures.phases)
PHASE_FU = {"li": 2, "li2s": 4, "licl": 4, "li3p": 2}


def _cfg_dict(cfg: StudyConfig) -> dict:
    return cfg.to_dict()


def foundation_path(cfg: StudyConfig) -> str:
    if cfg.active_learning.foundation_model == "toy":
        return str(Path(cfg.workdir) / "models" / "toy_foundation.model")
    return cfg.active_learning.foundation_model


def replay_path(cfg: StudyConfig) -> str:
    if cfg.final_model.pt_file == "toy":
        return str(Path(cfg.workdir) / "models" / "train.xyz")
    return cfg.final_model.pt_file


def bulk_candidates(cfg: StudyConfig) -> list[tuple[str, Structure]]:
    from ..structures.bulk import disordered_candidates, ordered_argyrodite

    out = [("bulk/ordered", ordered_argyrodite(cfg.bulk.a))]
    if cfg.bulk.disordered:
        out += [(f"bulk/disordered_{k}", c["structure"]) for k, c in enumerate(disordered_candidates(cfg.bulk.a))]
    return out


def initial_workflow(cfg: StudyConfig) -> Workflow:
    """Stage 1: bulk candidates and reference phases (DFT), the toy foundation model if asked, then
    the choose-bulk firework that adds everything else."""
    from ..structures.phases import phase
    from .tasks import ChooseBulkTask

    fws = [energy_firework(cfg, s, label, "relax-bulk", "bulk-dft") for label, s in bulk_candidates(cfg)]
    fws += [energy_firework(cfg, phase(name), f"phase/{name}", "relax-bulk", "phase-dft") for name in PHASE_NAMES]
    if cfg.final_model.e0s == "dft":  # METHOD.md 4: isolated-atom energies, the final models' E0s
        from pymatgen.core import Lattice

        for el in E0_ELEMENTS:
            atom = Structure(Lattice.cubic(15.0), [el], [[0.0, 0.0, 0.0]])
            fws.append(energy_firework(cfg, atom, f"e0/{el}", "e0", "e0-dft"))
    if cfg.active_learning.foundation_model == "toy":
        from ..demo_tasks import ToyFoundationTask

        fws.append(Firework([ToyFoundationTask(workdir=str(Path(cfg.workdir) / "models"))], name="mlip-toy-foundation",
                            spec={"argyro_stage": "mlip-foundation"}))
    choose = Firework([ChooseBulkTask(cfg=_cfg_dict(cfg))], name="bulk-choose", parents=list(fws),
                      spec={"argyro_stage": "bulk-choose"})
    return Workflow(fws + [choose], name=f"argyro-study-{cfg.name}", metadata={"argyro_study": cfg.name})


def surface_stage(cfg: StudyConfig, slabs: list[dict], context: dict) -> Workflow:
    """One energy firework per termination (``slabs``: dicts with key, structure) -> surface-rank."""
    from .tasks import RankSurfacesTask

    fws = [energy_firework(cfg, s["structure"], s["key"], "relax", "surface-dft") for s in slabs]
    meta = [{k: v for k, v in s.items() if k != "structure"} for s in slabs]
    rank = Firework([RankSurfacesTask(cfg=_cfg_dict(cfg), slabs=meta, context=context)], name="surface-rank",
                    parents=list(fws), spec={"argyro_stage": "surface-rank"})
    return Workflow(fws + [rank], name="surfaces")


def interface_stage(cfg: StudyConfig, interfaces: list[dict], context: dict) -> Workflow:
    """Per interface: 5 energy fireworks (total; argyrodite and Li slabs free and strained) ->
    interface-energy (which detours into that interface's active learning) -> that interface's final
    multi-head model (METHOD.md 5: one per interface), which detours into its MLMD (and, for the
    first interface, the bulk MLMD -> diffusion -> Arrhenius); the summary joins them all."""
    from .tasks import InterfaceEnergyTask, StudyFinalModelTask, StudySummaryTask

    fws, finals = [], []
    for rank, itf in enumerate(interfaces):
        parts = itf["parts"]
        calcs = [energy_firework(cfg, parts["total"], f"{itf['key']}/total", "relax", "interface-dft")]
        for part in ("arg_free", "arg_strained", "li_free", "li_strained"):
            calcs.append(energy_firework(cfg, parts[part], f"{itf['key']}/{part}", "relax", "interface-dft"))
        meta = {k: v for k, v in itf.items() if k != "parts"}
        energy = Firework([InterfaceEnergyTask(cfg=_cfg_dict(cfg), interface=meta, context=context)],
                          name=f"interface-energy:{itf['key']}", parents=calcs, spec={"argyro_stage": "interface-energy"})
        final = Firework([StudyFinalModelTask(cfg=_cfg_dict(cfg), interface=meta, context=context, bulk_md=rank == 0)],
                         name=f"mlip-final:{itf['key']}", parents=[energy], spec={"argyro_stage": "mlip-final"})
        fws += calcs + [energy, final]
        finals.append(final)
    summary = Firework([StudySummaryTask(study=cfg.name)], name="summary", parents=finals,
                       spec={"argyro_stage": "summary"})
    return Workflow(fws + [summary], name="interfaces")


def al_config(cfg: StudyConfig, name: str, structure: Structure) -> dict:
    """The active-learning loop's config for one interface (the final model is the study's join)."""
    al = cfg.active_learning
    return dict(workdir=str(Path(cfg.workdir) / "al" / name.replace("/", "_")), foundation_model=foundation_path(cfg),
                name=name, structure=structure.as_dict(), temperatures=list(al.temperatures),
                explore_steps=al.explore_steps, record_every=al.record_every, n_train=al.n_train, n_valid=al.n_valid,
                committee_size=al.committee_size, committee_md_steps=al.committee_md_steps,
                committee_record_every=al.committee_record_every, select_k=al.select_k,
                max_iterations=al.max_iterations, threshold=al.threshold, percentile=al.percentile,
                explorer=f"mace:{foundation_path(cfg)}" if al.explorer == "foundation" else "chgnet", labeller=al.labeller, train_overrides=dict(al.train_overrides), device=al.device,
                final=None, label_engine=cfg.to_dict() if al.labeller == "engine" else None)


def al_stage(cfg: StudyConfig, name: str, structure: Structure) -> Workflow:
    from ..mlip.al_tasks import active_learning_workflow

    return active_learning_workflow(al_config(cfg, name, structure), name=f"al-{name}")


def mlmd_stage(cfg: StudyConfig, model: str, cells: list[dict], bulk: Structure | None = None) -> Workflow:
    """Per interface cell and temperature: pre-relax -> MD -> analysis; with ``bulk``, per bulk
    temperature: MD -> diffusion, then the Arrhenius fit. ``cells``: dicts with key, structure."""
    from ..analysis.tasks import AnalyzeTrajectoryTask
    from ..md.protocol import MDProtocol
    from ..md.tasks import RelaxBFGSTask, RunLammpsMDTask
    from .tasks import ArrheniusTask, BulkDiffusionTask

    md = cfg.mlmd
    wd = Path(cfg.workdir) / "md"
    fws, analyses = [], []
    mliap = str(Path(model).with_name(Path(model).stem + "-mliap_lammps.pt")) if md.engine == "mliap" else None
    for cell in cells:
        for T in md.temperatures:
            tag = f"{cell['key'].replace('/', '_')}_{T:g}K"
            p = MDProtocol(temperature=T, nvt_ps=md.nvt_ps, npt_ns=md.npt_ns, dump_every=md.dump_every,
                           thermo_every=md.dump_every, restart_every=md.restart_every)
            relax = Firework([RelaxBFGSTask(structure=cell["structure"].as_dict(), model=model, fmax=md.prerelax_fmax,
                                            steps=md.prerelax_steps)], name=f"md-prerelax:{tag}",
                             spec={"argyro_stage": "md-prerelax"})
            run = Firework([RunLammpsMDTask(run_dir=str(wd / tag), model=model, protocol=p.to_dict(), engine=md.engine,
                                            mliap_model=mliap, lmp_binary=md.lmp_binary)],
                           name=f"md:{tag}", parents=[relax], spec={"argyro_stage": "md"})
            ana = Firework([AnalyzeTrajectoryTask(fmt="lammps-dump", type_map=p.elements, interface=cell["key"],
                                                  temperature_K=float(T), stride=cfg.analysis.stride,
                                                  membranes=cfg.analysis.membranes)],
                           name=f"analysis:{tag}", parents=[run], spec={"argyro_stage": "analysis"})
            fws += [relax, run, ana]
            analyses.append(ana)
    if bulk is None:
        return Workflow(fws, name="mlmd")
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
                       name=f"bulk-md:{tag}", spec={"argyro_stage": "bulk-md"})
        dif = Firework([BulkDiffusionTask(temperature_K=float(T), timestep_ps=p.timestep_ps, step_skip=p.dump_every,
                                          elements=p.elements, study=cfg.name)],
                       name=f"diffusion:{tag}", parents=[run], spec={"argyro_stage": "diffusion"})
        fws += [run, dif]
        diffs.append(dif)
    arr = Firework([ArrheniusTask(study=cfg.name, out=str(wd / "arrhenius.h5"))], name="arrhenius", parents=diffs,
                   spec={"argyro_stage": "arrhenius"})
    return Workflow(fws + [arr], name="mlmd")

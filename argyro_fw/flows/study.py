"""The study's DAG (METHOD.md 1-7) and its deciding fireworks.

At ``argyro study`` time only the first stage exists (bulk candidates and reference phases ->
choose-bulk). Every later stage is added at run time by the firework that makes its choice, with
FWAction(additions=...) or, where a later join must wait for it, FWAction(detours=...):

    bulk-dft (ordered + disordered candidates), phase-dft (Li, Li2S, LiCl, Li3P), e0-dft [, mlip-foundation]
      -> bulk-choose: lowest-energy disordered cell, chemical potentials, all symmetric terminations
         -> surface-dft (one per termination) -> surface-rank: gamma_surf, the top-N, interfaces
            -> per interface: interface-dft (total, argyrodite free/strained, Li free/strained)
               -> interface-energy: gamma_inter, strain, gamma_inter_min
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

from pathlib import Path

import ase.io
from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize
from pymatgen.core import Lattice, Structure

from .. import compat, store
from ..analysis.diffusion import kinisi_diffusion
from ..analysis.diffusion_io import arrhenius_to_h5, diffusion_to_h5, load_frames
from ..core.chemistry import ARGYRODITE_FU, ELEMENTS, PHASE_FORMULA, PHASE_FU, PHASE_NAMES
from ..core.serialise import as_structure, to_plain
from ..engines import foundation_provider
from ..errors import ArgyroError
from ..md.engines import mliap_path
from ..md.protocol import MDProtocol
from ..mlip.final import train_final_model
from ..mlip.validate import rmse
from ..structures.bulk import disordered_candidates, ordered_argyrodite
from ..structures.energies import chemical_potentials
from ..structures.interfaces import mlmd_cell
from ..structures.phases import phase
from ..structures.surfaces import SurfaceMaker, all_terminations
from ..study.config import ALRun, FinalRun, StudyConfig, from_dict
from ..study.decisions import choose_interfaces, gamma_surface, interface_energies
from ..study.outputs import ALDataset, AnalysisRef, DiffusionRef, FinalModel, MDTrajectory, emit, read_all, read_last
from .al import active_learning_workflow
from .analysis import AnalyzeTrajectoryTask
from .energy import energies_from_spec, energy_firework
from .md import RelaxBFGSTask, RunLammpsMDTask
from .stages import stage_spec

compat.install()

#: isolated-atom E0s are computed for these elements (METHOD.md 4)
E0_ELEMENTS = ELEMENTS
#: edge of the cubic box of an isolated-atom calculation, Å
E0_BOX_A = 15.0


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
    prov = _foundation(cfg)
    if prov:
        fws.append(prov(cfg.workdir).firework())
    choose = Firework([ChooseBulkTask(cfg=cfg.to_dict())], name="bulk-choose", parents=list(fws),
                      spec=stage_spec("bulk-choose"))
    return Workflow(fws + [choose], name=f"argyro-study-{cfg.name}", metadata={"argyro_study": cfg.name})


def surface_stage(cfg: StudyConfig, slabs: list[dict], context: dict) -> Workflow:
    """One energy firework per termination (``slabs``: dicts with key, structure) -> surface-rank."""
    fws = [energy_firework(cfg, s["structure"], s["key"], "relax", "surface-dft") for s in slabs]
    meta = [{k: v for k, v in s.items() if k != "structure"} for s in slabs]
    rank = Firework([RankSurfacesTask(cfg=cfg.to_dict(), slabs=meta, context=context)], name="surface-rank",
                    parents=list(fws), spec=stage_spec("surface-rank"))
    return Workflow(fws + [rank], name="surfaces")


INTERFACE_PARTS = ("total", "arg_free", "arg_strained", "li_free", "li_strained")


def interface_stage(cfg: StudyConfig, interfaces: list[dict], context: dict) -> Workflow:
    """Per interface: 5 energy fireworks (total; argyrodite and Li slabs free and strained) ->
    interface-energy (which detours into that interface's active learning) -> that interface's final
    multi-head model (METHOD.md 5: one per interface), which detours into its MLMD (and, for the
    first interface, the bulk MLMD -> diffusion -> Arrhenius); the summary joins them all."""
    fws, finals = [], []
    for rank, itf in enumerate(interfaces):
        parts = itf["parts"]
        calcs = [energy_firework(cfg, parts[p], f"{itf['key']}/{p}", "relax-interface" if p == "total" else "relax",
                                 "interface-dft") for p in INTERFACE_PARTS]
        meta = {k: v for k, v in itf.items() if k != "parts"}
        energy = Firework([InterfaceEnergyTask(cfg=cfg.to_dict(), interface=meta, context=context)],
                          name=f"interface-energy:{itf['key']}", parents=calcs, spec=stage_spec("interface-energy"))
        final = Firework([StudyFinalModelTask(cfg=cfg.to_dict(), interface=meta, context=context, bulk_md=rank == 0)],
                         name=f"mlip-final:{itf['key']}", parents=[energy], spec=stage_spec("mlip-final"))
        fws += calcs + [energy, final]
        finals.append(final)
    summary = Firework([StudySummaryTask(study=cfg.name)], name="summary", parents=finals,
                       spec=stage_spec("summary"))
    return Workflow(fws + [summary], name="interfaces")


def al_run(cfg: StudyConfig, name: str, structure: Structure, dft_e0s: dict | None) -> ALRun:
    """The active-learning loop of one interface: the study's ``active_learning`` section as it is, plus this
    loop's name, folder, start structure and committee E0s (``dft``: ``dft_e0s``, the study's isolated-atom
    energies); the final model is the study's own join, not the loop's."""
    al = cfg.active_learning
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


def al_stage(cfg: StudyConfig, name: str, structure: Structure, dft_e0s: dict | None) -> Workflow:
    return active_learning_workflow(al_run(cfg, name, structure, dft_e0s), name=f"al-{name}")


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


def mlmd_stage(cfg: StudyConfig, model: str, cells: list[dict], bulk: Structure | None = None,
               extend: bool = False, variants: list[dict] | None = None) -> Workflow:
    """Per interface cell and temperature: pre-relax -> MD -> analysis; with ``extend``, the run at
    ``mlmd.extend_temperature`` then goes on to ``mlmd.extend_ns`` (same run directory) -> its analysis;
    ``variants`` (dicts with key, structure: METHOD.md 6's charge-balancing choices and fully symmetric model) run
    at ``mlmd.variants_temperature`` for ``mlmd.variants_npt_ns``; with ``bulk``, per bulk temperature: MD ->
    diffusion, then the Arrhenius fit. ``cells``: dicts with key, structure."""
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
                       name=f"bulk-md:{tag}", spec=stage_spec("bulk-md"))
        dif = Firework([BulkDiffusionTask(temperature_K=float(T), timestep_ps=p.timestep_ps, step_skip=p.dump_every,
                                          elements=p.elements, study=cfg.name, flux_from_ps=bm.nvt_ps)],
                       name=f"diffusion:{tag}", parents=[run], spec=stage_spec("diffusion"))
        fws += [run, dif]
        diffs.append(dif)
    arr = Firework([ArrheniusTask(study=cfg.name, out=str(wd / "arrhenius.h5"))], name="arrhenius", parents=diffs,
                   spec=stage_spec("arrhenius"))
    return Workflow(fws + [arr], name="mlmd")


def mlmd_variants(cfg: StudyConfig, bulk: Structure, itf: dict) -> list[dict]:
    """METHOD.md 6's variants of an interface's MLMD cell: the configured charge-balancing choices (0: lowest
    Ewald energy) and the fully symmetric (not charge-balanced) model; a choice the slab does not have is left out
    (named in the result's ``skipped``)."""
    md = cfg.mlmd
    common = dict(layers=md.layers, li_layers=md.li_layers, li_plane=itf["li_plane"], supercell=tuple(md.supercell),
                  max_mismatch=md.max_mismatch, li_a=cfg.interfaces.li_a, termination_label=itf["termination"])
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


def _require(energies: dict, keys: list[str], who: str) -> None:
    missing = [k for k in keys if k not in energies]
    if missing:
        raise ValueError(f"{who}: no energy handed on by the parents for {missing}")


@explicit_serialize
class ChooseBulkTask(FiretaskBase):
    """Keep the lowest-energy disordered cell (METHOD.md 1), solve the chemical potentials, cut every
    symmetric termination of it and add the surface stage."""

    required_params = ["cfg"]

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
        # terminations are cut from the ideal candidate scaled to the relaxed volume (a relaxed P1 cell is not
        # exactly symmetric; documented in README)
        a_rel = float(relaxed.lattice.volume ** (1 / 3))
        ideal = cands[chosen].copy()
        ideal.scale_lattice(relaxed.lattice.volume)
        e_fu = {"Li6PS5Cl": E[chosen]["energy_eV"] / ARGYRODITE_FU}
        e_fu |= {PHASE_FORMULA[p]: E[f"phase/{p}"]["energy_eV"] / PHASE_FU[p] for p in PHASE_NAMES if p != "li"}
        mu = chemical_potentials(e_fu)
        e_li_atom = E["phase/li"]["energy_eV"] / PHASE_FU["li"]
        maker = SurfaceMaker(min_thickness=cfg.surfaces.min_thickness, vacuum=cfg.surfaces.vacuum)
        terms = all_terminations(ideal, [tuple(m) for m in cfg.surfaces.planes], maker)
        if not terms:
            raise ValueError(f"bulk-choose: no symmetric termination of {chosen} on {cfg.surfaces.planes}")
        slabs = [dict({k: v for k, v in t.items() if k != "structure"}, key=f"surface/{t['id']}", structure=t["structure"])
                 for t in terms]
        store.put_structures(db, cfg.name, "bulk", [("bulk/chosen", relaxed, {"from": chosen, "a_A": a_rel}),
                                                    ("bulk/chosen_ideal", ideal, {"from": chosen})])
        store.put_structures(db, cfg.name, "surface",
                             [(s["key"], s["structure"], {k: v for k, v in s.items() if k != "structure"}) for s in slabs])
        e0s = {el: E[f"e0/{el}"]["energy_eV"] for el in E0_ELEMENTS if f"e0/{el}" in E}
        context = {"e0s": e0s, "bulk": chosen, "bulk_ideal": ideal.as_dict(), "bulk_relaxed": relaxed.as_dict(),
                   "e_fu": e_fu, "mu": mu, "e_li_atom": e_li_atom}
        store.update_study(db, cfg.name, {"bulk": {"chosen": chosen, "energies_eV": {k: E[k]["energy_eV"] for k in cands},
                                                   "a_relaxed_A": a_rel},
                                          "chemical_potentials_eV": mu, "e_fu_eV": e_fu, "e0s_eV": e0s,
                                          "surfaces": {"n_terminations": len(slabs)}})
        return FWAction(stored_data={"chosen": chosen, "n_terminations": len(slabs), "mu": mu},
                        additions=[surface_stage(cfg, slabs, context)])


@explicit_serialize
class RankSurfacesTask(FiretaskBase):
    """gamma_surf of every termination, the N lowest -> charge-balanced, lattice-matched interfaces."""

    required_params = ["cfg", "slabs", "context"]

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
        interfaces = choose_interfaces(cfg, top, structs)
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
        return FWAction(stored_data={"top": [(r["key"], r["gamma_surf_eV_nm2"]) for r in top],
                                     "interfaces": [i["key"] for i in interfaces]},
                        additions=[interface_stage(cfg, interfaces, self["context"])])


@explicit_serialize
class InterfaceEnergyTask(FiretaskBase):
    """gamma_inter with strain correction for one interface; then its active learning as a detour (so the
    final-model join waits for the whole loop)."""

    required_params = ["cfg", "interface", "context"]

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        db = store.database(fw_spec)
        E = energies_from_spec(fw_spec, db)
        itf = self["interface"]
        key = itf["key"]
        _require(E, [f"{key}/{p}" for p in INTERFACE_PARTS], "interface-energy")
        res = interface_energies(E, itf, self["context"])
        store.put_interface(db, cfg.name, key, dict(itf, **res, energies_eV={p: E[f"{key}/{p}"]["energy_eV"]
                                                                             for p in INTERFACE_PARTS}))
        relaxed = E[f"{key}/total"].get("structure")
        start = as_structure(relaxed) if relaxed else store.get_structure(db, cfg.name, f"{key}/total")
        return FWAction(stored_data=to_plain(res), detours=[al_stage(cfg, key, start, self["context"].get("e0s"))])


@explicit_serialize
class StudyFinalModelTask(FiretaskBase):
    """One interface's final multi-head model (METHOD.md 5) from its active-learning dataset (the loop's
    ALDataset) plus the configured extra datasets; then its MLMD cell and, as a detour, the MLMD runs at every
    temperature (and the bulk MLMD -> diffusion -> Arrhenius when ``bulk_md``)."""

    required_params = ["cfg", "interface", "context"]
    optional_params = ["bulk_md"]

    def run_task(self, fw_spec):
        cfg = from_dict(self["cfg"])
        itf = self["interface"]
        db = store.database(fw_spec)
        sets = [s for s in read_all(fw_spec, ALDataset) if s.name == itf["key"]]
        if not sets:
            raise ValueError(f"mlip-final {itf['key']}: its active-learning loop handed on no dataset")
        ds = sets[-1]
        fm = cfg.final_model
        final = FinalRun(pt_file=replay_path(cfg), e0s=fm.e0s if isinstance(fm.e0s, dict) else dict(self["context"]["e0s"]),
                         replay_n=fm.replay_n, extra_datasets=list(fm.extra_datasets), overrides=dict(fm.overrides),
                         convert_mliap=fm.convert_mliap)
        res = train_final_model(Path(cfg.workdir) / "final" / itf["key"].replace("/", "_") / "final", ds.train, ds.valid,
                                foundation_path(cfg), final, cfg.active_learning.device)
        model = res["final_model"]
        # METHOD.md 5 validation of the final model (Default head): on the loop's held-out validation frames until the
        # study's AIMD test set exists (issue part 1); the committee's RMSE per iteration is in al_iterations
        valid = list(ase.io.read(ds.valid, ":"))
        final_validation = dict(rmse(model, valid, cfg.active_learning.device), test_set=ds.valid)
        ideal = as_structure(self["context"]["bulk_ideal"])
        md = cfg.mlmd
        try:
            built = mlmd_cell(ideal, tuple(itf["miller"]), layers=md.layers, li_layers=md.li_layers,
                              li_plane=itf["li_plane"], supercell=tuple(md.supercell), max_mismatch=md.max_mismatch,
                              li_a=cfg.interfaces.li_a, termination_label=itf["termination"])
            cell, how = built["structure"], "mlmd-cell"
        except ArgyroError as exc:
            cell = store.get_structure(db, cfg.name, f"{itf['key']}/total")
            cell.make_supercell(list(md.supercell))
            how = f"DFT interface x supercell ({exc})"
        store.put_structures(db, cfg.name, "mlmd-cell", [(f"{itf['key']}/mlmd", cell, {"built_as": how})])
        store.update_interface(db, cfg.name, itf["key"], {"final_model": model, "heads": res["heads"],
                                                          "final_validation": final_validation,
                                                          "mlmd_cell": {"n_atoms": len(cell), "built_as": how}})
        bulk = as_structure(self["context"]["bulk_relaxed"]) if self.get("bulk_md") else None
        variants = []
        if bulk is not None:
            store.update_study(db, cfg.name, {"bulk_mlmd_model": model})
            if how == "mlmd-cell":  # METHOD.md 6: variants of the first interface's model
                variants = mlmd_variants(cfg, ideal, itf)
                store.put_structures(db, cfg.name, "mlmd-variant",
                                     [(v["key"], v["structure"], {k: x for k, x in v.items() if k not in ("key", "structure")})
                                      for v in variants])
        rec = FinalModel(path=model, heads=res["heads"], mliap=res["mliap"])
        return FWAction(stored_data={"final_model": model, "mlmd_cell_atoms": len(cell), "built_as": how,
                                     "variants": [v["key"] for v in variants]},
                        detours=[mlmd_stage(cfg, model, [{"key": itf["key"], "structure": cell}], bulk,
                                            extend=bulk is not None, variants=variants)], **emit(rec))


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

    def run_task(self, fw_spec):
        db = store.database(fw_spec)
        counts = {c: store.count(db, c, {"study": self["study"]}) for c in store.PER_STUDY}
        counts["analyses"] = len(read_all(fw_spec, AnalysisRef))
        store.update_study(db, self["study"], {"complete": True, "counts": counts})
        return FWAction(stored_data=counts)

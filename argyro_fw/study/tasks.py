"""The study's deciding fireworks: each reads the energies its parents pushed, makes the run-time
choice of METHOD.md (lowest-energy disorder, top-N surfaces, best symmetric interface match, ...),
stores what it decided in MongoDB and adds the next stage with FWAction.

Collections written: ``studies`` (one document per study: chosen bulk, chemical potentials,
surface ranking, interfaces, model, diffusion), ``structures`` (every structure built),
``surface_energies``, ``interfaces``, ``diffusion``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from fireworks import FiretaskBase, FWAction, explicit_serialize
from pymatgen.core import Structure

from .. import compat
from ..db.results import results_db
from ..structures.energies import chemical_potentials
from .config import from_dict
from .decisions import choose_interfaces, gamma_surface, interface_energies
from .energy import energies_from_spec

compat.install()

def _as_structure(x) -> Structure:
    """FireWorks turns serialised pymatgen dicts in task parameters back into objects; accept both."""
    return x if isinstance(x, Structure) else Structure.from_dict(x)


def _plain(x):
    return json.loads(json.dumps(x, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def store_structures(db, study: str, kind: str, items: list[tuple[str, Structure, dict]]) -> None:
    """One ``structures`` document per (key, structure, metadata); reruns replace (keyed)."""
    now = datetime.now(timezone.utc)
    db.structures.create_index("key", unique=True)
    keys = [f"{study}/{k}" for k, _, _ in items]
    docs = [{"key": key, "study": study, "kind": kind, "structure": s.as_dict(), "formula": s.composition.formula,
             "n_atoms": len(s), "metadata": _plain(meta), "created_at": now}
            for key, (_, s, meta) in zip(keys, items)]
    db.structures.delete_many({"key": {"$in": keys}})
    if docs:
        db.structures.insert_many(docs)


def _study_update(db, study: str, fields: dict) -> None:
    db.studies.update_one({"name": study}, {"$set": _plain(fields) | {"updated_at": datetime.now(timezone.utc)}},
                          upsert=True)


def _require(energies: dict, keys: list[str], who: str) -> None:
    missing = [k for k in keys if k not in energies]
    if missing:
        raise ValueError(f"{who}: no energy pushed by the parents for {missing}")


@explicit_serialize
class ChooseBulkTask(FiretaskBase):
    """Keep the lowest-energy disordered cell (METHOD.md 1), solve the chemical potentials, cut every
    symmetric termination of it and add the surface stage."""

    required_params = ["cfg"]

    def run_task(self, fw_spec):
        from ..structures.surfaces import SurfaceMaker, all_terminations
        from .workflow import E0_ELEMENTS, PHASE_FU, PHASE_NAMES, bulk_candidates, surface_stage

        cfg = from_dict(self["cfg"])
        db = results_db(fw_spec)
        E = energies_from_spec(fw_spec, db)
        cands = dict(bulk_candidates(cfg))
        need = list(cands) + [f"phase/{p}" for p in PHASE_NAMES]
        if cfg.final_model.e0s == "dft":
            need += [f"e0/{el}" for el in E0_ELEMENTS]
        _require(E, need, "bulk-choose")
        pool = [k for k in cands if "disordered" in k] or list(cands)
        chosen = min(pool, key=lambda k: E[k]["energy_eV"])
        relaxed = _as_structure(E[chosen]["structure"]) if "structure" in E[chosen] else cands[chosen]
        # terminations are cut from the ideal candidate scaled to the relaxed volume (a relaxed P1 cell is not
        # exactly symmetric; documented in README)
        a_rel = float(np.cbrt(relaxed.lattice.volume))
        ideal = cands[chosen].copy()
        ideal.scale_lattice(relaxed.lattice.volume)
        e_fu = {"Li6PS5Cl": E[chosen]["energy_eV"] / 4.0, "Li3P": E["phase/li3p"]["energy_eV"] / PHASE_FU["li3p"],
                "Li2S": E["phase/li2s"]["energy_eV"] / PHASE_FU["li2s"],
                "LiCl": E["phase/licl"]["energy_eV"] / PHASE_FU["licl"]}
        mu = chemical_potentials(e_fu)
        e_li_atom = E["phase/li"]["energy_eV"] / PHASE_FU["li"]
        maker = SurfaceMaker(min_thickness=cfg.surfaces.min_thickness, vacuum=cfg.surfaces.vacuum)
        terms = all_terminations(ideal, [tuple(m) for m in cfg.surfaces.planes], maker)
        if not terms:
            raise ValueError(f"bulk-choose: no symmetric termination of {chosen} on {cfg.surfaces.planes}")
        slabs = [dict({k: v for k, v in t.items() if k != "structure"}, key=f"surface/{t['id']}", structure=t["structure"])
                 for t in terms]
        store_structures(db, cfg.name, "bulk", [("bulk/chosen", relaxed, {"from": chosen, "a_A": a_rel}),
                                                ("bulk/chosen_ideal", ideal, {"from": chosen})])
        store_structures(db, cfg.name, "surface", [(s["key"], s["structure"], {k: v for k, v in s.items() if k != "structure"})
                                                   for s in slabs])
        e0s = {el: E[f"e0/{el}"]["energy_eV"] for el in E0_ELEMENTS if f"e0/{el}" in E}
        context = {"e0s": e0s, "bulk": chosen, "bulk_ideal": ideal.as_dict(), "bulk_relaxed": relaxed.as_dict(), "e_fu": e_fu,
                   "mu": mu, "e_li_atom": e_li_atom}
        _study_update(db, cfg.name, {"bulk": {"chosen": chosen, "energies_eV": {k: E[k]["energy_eV"] for k in cands},
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
        from .workflow import interface_stage

        cfg = from_dict(self["cfg"])
        db = results_db(fw_spec)
        E = energies_from_spec(fw_spec, db)
        slabs = self["slabs"]
        _require(E, [s["key"] for s in slabs], "surface-rank")
        rows = []
        for s in slabs:
            g = gamma_surface(E[s["key"]]["energy_eV"], s, self["context"])
            rows.append(dict(s, gamma_surf_eV_nm2=g, energy_eV=E[s["key"]]["energy_eV"]))
        rows.sort(key=lambda r: r["gamma_surf_eV_nm2"])
        now = datetime.now(timezone.utc)
        db.surface_energies.delete_many({"study": cfg.name})
        db.surface_energies.insert_many([_plain(dict(r, study=cfg.name, rank=i, created_at=str(now)))
                                         for i, r in enumerate(rows)])
        top = rows[: cfg.surfaces.top_n]
        structs = {s["key"]: _as_structure(db.structures.find_one({"key": f"{cfg.name}/{s['key']}"})["structure"])
                   for s in top}
        interfaces = choose_interfaces(cfg, top, structs)
        if not interfaces:
            raise ValueError("surface-rank: no lattice match for any of the top surfaces "
                             f"(Li planes {cfg.interfaces.li_planes}, max area {cfg.interfaces.max_area} A2)")
        store_structures(db, cfg.name, "interface",
                         [(f"{i['key']}/{part}", s, {k: v for k, v in i.items() if k != "parts"})
                          for i in interfaces for part, s in i["parts"].items()])
        _study_update(db, cfg.name, {"surfaces.ranking": [{"key": r["key"], "termination": r["termination"],
                                                            "miller": r["miller"], "gamma_surf_eV_nm2": r["gamma_surf_eV_nm2"]}
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
        from .workflow import al_stage

        cfg = from_dict(self["cfg"])
        db = results_db(fw_spec)
        E = energies_from_spec(fw_spec, db)
        itf = self["interface"]
        key = itf["key"]
        _require(E, [f"{key}/{p}" for p in ("total", "arg_free", "arg_strained", "li_free", "li_strained")],
                 "interface-energy")
        res = interface_energies(E, itf, self["context"])
        doc = _plain(dict(itf, study=cfg.name, **res, energies_eV={p: E[f"{key}/{p}"]["energy_eV"] for p in
                                                                    ("total", "arg_free", "arg_strained", "li_free",
                                                                     "li_strained")}))
        db.interfaces.replace_one({"study": cfg.name, "key": key}, doc, upsert=True)
        relaxed = E[f"{key}/total"].get("structure")
        start = _as_structure(relaxed) if relaxed else _as_structure(
            db.structures.find_one({"key": f"{cfg.name}/{key}/total"})["structure"])
        return FWAction(stored_data=_plain(res), detours=[al_stage(cfg, key, start)])


@explicit_serialize
class StudyFinalModelTask(FiretaskBase):
    """One interface's final multi-head model (METHOD.md 5) from its active-learning dataset (pushed by the
    loop's last iteration) plus the configured extra datasets; then its MLMD cell and, as a detour, the MLMD
    runs at every temperature (and the bulk MLMD -> diffusion -> Arrhenius when ``bulk_md``)."""

    required_params = ["cfg", "interface", "context"]
    optional_params = ["bulk_md"]

    def run_task(self, fw_spec):
        import ase.io

        from ..dft.dataset import write_extxyz
        from ..errors import ArgyroError
        from ..mlip.al_tasks import FinalMultiheadTask
        from ..structures.interfaces import mlmd_cell
        from .workflow import al_config, foundation_path, mlmd_stage, replay_path

        cfg = from_dict(self["cfg"])
        itf = self["interface"]
        db = results_db(fw_spec)
        sets = [s for s in (fw_spec.get("al_datasets") or []) if s.get("name") == itf["key"]]
        if not sets:
            raise ValueError(f"mlip-final {itf['key']}: its active-learning loop pushed no dataset")
        ds = sets[-1]
        safe = itf["key"].replace("/", "_")
        d = Path(cfg.workdir) / "final" / safe
        d.mkdir(parents=True, exist_ok=True)
        fm = cfg.final_model
        al_cfg = al_config(cfg, itf["key"], _as_structure(self["context"]["bulk_ideal"]))
        al_cfg.update(workdir=str(d.parent / safe), foundation_model=foundation_path(cfg),
                      final=dict(pt_file=replay_path(cfg), e0s=fm.e0s if isinstance(fm.e0s, dict) else
                                 dict(self["context"]["e0s"]), replay_n=fm.replay_n,
                                 extra_datasets=list(fm.extra_datasets), overrides=dict(fm.overrides),
                                 convert_mliap=fm.convert_mliap))
        act = FinalMultiheadTask(cfg=al_cfg, train=ds["train"], valid=ds["valid"]).run_task(fw_spec)
        model = act.stored_data["final_model"]
        ideal = _as_structure(self["context"]["bulk_ideal"])
        md = cfg.mlmd
        try:
            res = mlmd_cell(ideal, tuple(itf["miller"]), layers=md.layers, li_layers=md.li_layers,
                            li_plane=itf["li_plane"], supercell=tuple(md.supercell), max_mismatch=md.max_mismatch,
                            li_a=cfg.interfaces.li_a, termination_label=itf["termination"])
            cell, how = res["structure"], "mlmd-cell"
        except ArgyroError as exc:
            cell = _as_structure(db.structures.find_one({"key": f"{cfg.name}/{itf['key']}/total"})["structure"])
            cell.make_supercell(list(md.supercell))
            how = f"DFT interface x supercell ({exc})"
        store_structures(db, cfg.name, "mlmd-cell", [(f"{itf['key']}/mlmd", cell, {"built_as": how})])
        db.interfaces.update_one({"study": cfg.name, "key": itf["key"]},
                                 {"$set": {"final_model": model, "heads": act.stored_data["heads"],
                                           "mlmd_cell": {"n_atoms": len(cell), "built_as": how}}})
        bulk = _as_structure(self["context"]["bulk_relaxed"]) if self.get("bulk_md") else None
        if bulk is not None:
            _study_update(db, cfg.name, {"bulk_mlmd_model": model})
        return FWAction(stored_data={"final_model": model, "mlmd_cell_atoms": len(cell), "built_as": how},
                        detours=[mlmd_stage(cfg, model, [{"key": itf["key"], "structure": cell}], bulk)])


@explicit_serialize
class BulkDiffusionTask(FiretaskBase):
    """kinisi D and sigma of Li from the parent MD's trajectory -> diffusion.h5 + a ``diffusion`` document."""

    required_params = ["temperature_K", "timestep_ps", "step_skip", "elements", "study"]

    def run_task(self, fw_spec):
        from ..analysis.diffusion import kinisi_diffusion
        from ..analysis.diffusion_io import diffusion_to_h5, load_frames

        traj = fw_spec.get("md_trajectory")
        if not traj:
            raise ValueError("diffusion: no md_trajectory from the parent MD firework")
        frames = load_frames(traj, "lammps-dump", type_map=list(self["elements"]))
        res = kinisi_diffusion(frames, "Li", float(self["temperature_K"]), float(self["timestep_ps"]),
                               int(self["step_skip"]))
        h5 = diffusion_to_h5(res, Path.cwd() / "diffusion.h5", traj)
        doc = {"study": self["study"], "temperature_K": res.temperature_K, "D_cm2_s": res.D_cm2_s,
               "D_std_cm2_s": res.D_std_cm2_s, "sigma_S_cm": res.sigma_S_cm, "sigma_std_S_cm": res.sigma_std_S_cm,
               "sigma_mstd_S_cm": res.sigma_mstd_S_cm, "h5": str(h5), "trajectory": str(traj)}
        results_db(fw_spec).diffusion.replace_one({"study": self["study"], "temperature_K": res.temperature_K},
                                                  _plain(doc), upsert=True)
        return FWAction(stored_data=_plain(doc), mod_spec=[{"_push": {"diffusion_h5": str(h5)}}])


@explicit_serialize
class ArrheniusTask(FiretaskBase):
    """Arrhenius fits of D and sigma over the bulk temperatures, extrapolated to 300 K -> HDF5 + the study."""

    required_params = ["study", "out"]

    def run_task(self, fw_spec):
        from ..analysis.diffusion_io import arrhenius_to_h5

        files = fw_spec.get("diffusion_h5") or []
        summary = arrhenius_to_h5(files, self["out"])
        _study_update(results_db(fw_spec), self["study"], {"arrhenius": summary, "arrhenius_h5": self["out"]})
        return FWAction(stored_data=_plain(summary))


@explicit_serialize
class StudySummaryTask(FiretaskBase):
    """The study's last firework: marks the study complete with counts of what is stored."""

    required_params = ["study"]
    optional_params = ["context"]

    def run_task(self, fw_spec):
        db = results_db(fw_spec)
        counts = {c: db[c].count_documents({"study": self["study"]}) for c in
                  ("structures", "surface_energies", "interfaces", "diffusion")}
        counts["analyses"] = len(fw_spec.get("analyses") or [])
        _study_update(db, self["study"], {"complete": True, "counts": counts})
        return FWAction(stored_data=counts)

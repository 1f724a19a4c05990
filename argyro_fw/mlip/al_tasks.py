"""The active-learning loop of METHOD.md section 5 as a dynamic FireWorks workflow.

Iteration 0 (one firework): exploration MD with the explorer calculator at each temperature
(ASE Langevin, 1 fs, friction 0.1 1/fs), ``n_train`` + ``n_valid`` evenly spaced frames,
labelled (hash-cached), plus an optional initial dataset file -> train.xyz / valid.xyz.
Iteration i >= 1: ``committee_size`` trainings from the foundation model in parallel (distinct
seeds) -> one firework with the committee MD runs (each driven by one member), the per-frame
committee force uncertainty, the iteration record, the convergence test; if not converged and
i < max_iterations, the ``select_k`` most uncertain frames not labelled before are written out
and the next iteration (label -> trains -> MD/select) is inserted with FWAction(detours=...), so a
firework that depends on the loop (the study's final model) waits for its last iteration; the
last one pushes ``al_datasets`` (train, valid, models) to it.

Labeller ``engine``: the frames are labelled by energy fireworks of the study's engine
(``cfg['label_engine']``: VASP single points with METHOD.md 4's training-label settings, or the
CHGNet stand-in), inserted as a detour of label fireworks plus one collect firework, which stores
each label under the frame's hash and writes the datasets. Other labellers (chgnet, toy,
mace:<model>) label in-process.

Everything lives under ``cfg['workdir']`` (absolute), so reruns of killed fireworks reuse what
is there; labels are cached by structure hash in MongoDB (``labels``), never computed twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize

from .. import compat
from ..db.results import results_db
from ..dft.dataset import evenly_spaced, structure_hash, write_extxyz
from .commands import CommitteeFinetune
from .committee import Convergence, committee_forces, force_uncertainty, most_uncertain
from .datasets import check_dataset
from .explore import langevin_frames
from .labels import label_frames

compat.install()

DEFAULTS = dict(temperatures=[400, 600, 800, 1000], explore_steps=4000, record_every=10, n_train=201, n_valid=31,
                committee_size=3, committee_md_steps=6000, committee_record_every=30, select_k=200,
                max_iterations=10, threshold=0.05, percentile=95.0, explorer="chgnet", labeller="chgnet",
                initial_dataset=None, initial_sources=None, train_overrides={}, e0s="foundation", device="cpu", final=None,
                label_engine=None)

#: keys of cfg["final"]: the final multi-head fine-tuning added when the loop stops
FINAL_KEYS = {"pt_file", "replay_n", "e0s", "extra_datasets", "overrides", "convert_mliap"}


def _cfg(cfg: dict) -> dict:
    unknown = set(cfg) - set(DEFAULTS) - {"workdir", "foundation_model", "structure", "name"}
    if unknown:
        raise ValueError(f"active-learning config: unknown key(s) {sorted(unknown)}")
    c = {**DEFAULTS, **cfg}
    if c["committee_size"] < 2:
        raise ValueError("active-learning config: committee_size must be >= 2")
    if c["final"] is not None:
        unknown = set(c["final"]) - FINAL_KEYS
        if unknown:
            raise ValueError(f"active-learning config: unknown key(s) final.{sorted(unknown)}")
        for key in ("pt_file", "e0s"):
            if key not in c["final"]:
                raise ValueError(f"active-learning config: final.{key} is required")
    return c


def _calculator(spec: str, cfg: dict):
    if spec == "chgnet":
        from .labels import chgnet_labeller

        return chgnet_labeller()
    if spec == "toy":
        from .toy import toy_labeller

        return toy_labeller()
    if spec.startswith("mace:"):
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=spec[5:], device=cfg["device"], default_dtype="float64")
    raise ValueError(f"calculator {spec!r}: expected chgnet, toy or mace:<model path>")


def _atoms(struct):
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    return AseAtomsAdaptor.get_atoms(struct if isinstance(struct, Structure) else Structure.from_dict(struct))


def _run_mace_train(argv: list[str], d: Path, model: Path, what: str) -> None:
    """Run a rendered mace_run_train command (this environment's executable) in ``d``; the log is
    kept in train.log; RuntimeError unless ``model`` was written."""
    argv = [str(Path(sys.executable).parent / "mace_run_train")] + argv[1:]
    proc = subprocess.run(argv, cwd=d, capture_output=True, text=True)
    (d / "train.log").write_text(proc.stdout[-20000:] + proc.stderr[-20000:])
    if proc.returncode != 0 or not model.exists():
        raise RuntimeError(f"{what} failed in {d}: {proc.stderr[-1500:]}")


def _it_dir(cfg, i: int) -> Path:
    d = Path(cfg["workdir"]) / f"iter_{i:02d}"
    d.mkdir(parents=True, exist_ok=True)
    return d


@explicit_serialize
class ExploreLabelTask(FiretaskBase):
    """Iteration 0: explorer MD, evenly spaced selection, labels -> iter_00/train.xyz, valid.xyz."""

    required_params = ["cfg"]

    def run_task(self, fw_spec):
        cfg = _cfg(self["cfg"])
        d = _it_dir(cfg, 0)
        explorer = _calculator(cfg["explorer"], cfg)
        start = _atoms(cfg["structure"])
        frames = []
        for k, T in enumerate(cfg["temperatures"]):
            frames += langevin_frames(start, explorer, T, cfg["explore_steps"], cfg["record_every"], seed=k)
        idx = evenly_spaced(len(frames), min(len(frames), cfg["n_train"] + cfg["n_valid"]))
        picked = [frames[i] for i in idx]
        valid_idx = set(idx[1::max(1, len(idx) // max(1, cfg["n_valid"]))][: cfg["n_valid"]])
        db = results_db(fw_spec)
        write_extxyz(picked, d / "picked.xyz")
        picked = list(ase.io.read(d / "picked.xyz", ":"))  # hash what the label fireworks will read back
        valid_hashes = [structure_hash(picked[k]) for k, i in enumerate(idx) if i in valid_idx]
        if cfg["labeller"] == "engine":
            return engine_label_detour(cfg, d / "picked.xyz", "explore", dict(kind="explore", valid_hashes=valid_hashes),
                                       db)
        labelled, new = label_frames(picked, _calculator(cfg["labeller"], cfg), cfg["labeller"], db, "explore")
        return finish_explore(cfg, d, labelled, valid_hashes, new)


def finish_explore(cfg: dict, d: Path, labelled: list, valid_hashes: list[str], new: int) -> FWAction:
    """Iteration 0's datasets from the labelled picks (+ initial data): train.xyz, valid.xyz."""
    vh = set(valid_hashes)
    train = [a for a in labelled if a.info["frame_hash"] not in vh]
    valid = [a for a in labelled if a.info["frame_hash"] in vh]
    if cfg["initial_sources"]:  # METHOD.md 5: evenly spaced frames of labelled AIMD/relaxation runs
        from .datasets import assemble_initial_dataset

        assemble_initial_dataset(cfg["initial_sources"], d / "initial.xyz")
        train = list(ase.io.read(d / "initial.xyz", ":")) + train
    if cfg["initial_dataset"]:
        train = list(ase.io.read(cfg["initial_dataset"], ":")) + train
    write_extxyz(train, d / "train.xyz")
    write_extxyz(valid, d / "valid.xyz")
    return FWAction(stored_data={"n_train": len(train), "n_valid": len(valid), "labels_computed": new},
                    update_spec={"al_train": str(d / "train.xyz"), "al_valid": str(d / "valid.xyz")})


def finish_selected(cfg: dict, d: Path, labelled: list, previous_train: str, valid: str, new: int) -> FWAction:
    prev = list(ase.io.read(previous_train, ":"))
    write_extxyz(prev + labelled, d / "train.xyz")
    return FWAction(stored_data={"added": len(labelled), "labels_computed": new},
                    update_spec={"al_train": str(d / "train.xyz"), "al_valid": valid})


def engine_label_detour(cfg: dict, frames_file: Path, config_type: str, finish: dict, db) -> FWAction:
    """Label fireworks of the study's engine for the frames of ``frames_file`` not labelled before, then a
    collect firework that stores the labels and finishes the dataset (``finish``: what to do then)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from ..dft.dataset import canonical
    from ..study.config import from_dict
    from ..study.energy import energy_firework

    eng = cfg.get("label_engine")
    if not eng:
        raise ValueError("active-learning config: labeller 'engine' needs label_engine (the study's engine settings)")
    study_cfg = from_dict(eng)
    frames = [canonical(a) for a in ase.io.read(frames_file, ":")]
    hashes = [structure_hash(a) for a in frames]
    done = {doc["hash"] for doc in db.labels.find({"hash": {"$in": hashes}}, {"hash": 1})}
    fws = []
    seen = set(done)  # never label a frame twice
    for a, h in zip(frames, hashes):
        if h in seen:
            continue
        seen.add(h)
        fws.append(energy_firework(study_cfg, AseAtomsAdaptor.get_structure(a), f"label/{h}", "label", "al-label"))
    collect = Firework([CollectLabelsTask(cfg=cfg, frames=str(frames_file), config_type=config_type, finish=finish)],
                       name=f"al-collect-{config_type}", parents=fws, spec={"argyro_stage": "al-collect"})
    return FWAction(stored_data={"label_fireworks": len(fws)}, detours=[Workflow(fws + [collect], name="al-labels")])


@explicit_serialize
class CollectLabelsTask(FiretaskBase):
    """Store the engine's labels (energy, forces, stress of each label firework) under the frames' hashes in
    ``labels`` and finish the iteration's dataset. A frame whose calculation has other atoms is a named error."""

    required_params = ["cfg", "frames", "config_type", "finish"]

    def run_task(self, fw_spec):
        from datetime import datetime, timezone

        from ..dft.dataset import canonical

        cfg = _cfg(self["cfg"])
        db = results_db(fw_spec)
        frames = [canonical(a) for a in ase.io.read(self["frames"], ":")]
        engine = (cfg.get("label_engine") or {}).get("engine", "vasp")
        for a in frames:
            h = structure_hash(a)
            if db.labels.find_one({"hash": h}, {"_id": 1}):
                continue
            calc = db.calculations.find_one({"label": f"label/{h}"}, sort=[("completed_at", -1)])
            if calc is None:
                raise ValueError(f"label {h}: no calculation labelled 'label/{h}' in the database")
            step = calc["ionic_steps"][-1]
            forces = np.asarray(step["forces_eV_A"], float)
            species = [s["species"][0]["element"] for s in calc["final_structure"]["sites"]]
            if species != a.get_chemical_symbols() or forces.shape != (len(a), 3):
                raise ValueError(f"label {h}: the calculation's atoms ({len(species)}) are not the frame's ({len(a)})")
            db.labels.update_one({"hash": h}, {"$setOnInsert": {
                "hash": h, "energy": float(step["energy_eV"]), "forces": forces.tolist(),
                "stress": np.asarray(step["stress_eV_A3"], float).tolist(),
                "labeller": calc.get("engine", engine), "n_atoms": len(a), "calc_label": calc["label"],
                "created_at": datetime.now(timezone.utc)}}, upsert=True)
        labelled, _ = label_frames(frames, None, engine, db, self["config_type"])
        fin = self["finish"]
        d = Path(self["frames"]).parent
        if fin["kind"] == "explore":
            return finish_explore(cfg, d, labelled, fin["valid_hashes"], len(frames))
        return finish_selected(cfg, d, labelled, fin["previous_train"], fin["valid"], len(frames))


@explicit_serialize
class LabelSelectedTask(FiretaskBase):
    """Label the selected frames of the previous iteration and grow the dataset."""

    required_params = ["cfg", "iteration", "candidates", "previous_train", "valid"]

    def run_task(self, fw_spec):
        cfg = _cfg(self["cfg"])
        d = _it_dir(cfg, self["iteration"])
        frames = list(ase.io.read(self["candidates"], ":"))
        if cfg["labeller"] == "engine":
            write_extxyz(frames, d / "picked.xyz")
            return engine_label_detour(cfg, d / "picked.xyz", f"al_iter_{self['iteration']}",
                                       dict(kind="selected", previous_train=self["previous_train"], valid=self["valid"]),
                                       results_db(fw_spec))
        labelled, new = label_frames(frames, _calculator(cfg["labeller"], cfg), cfg["labeller"], results_db(fw_spec),
                                     f"al_iter_{self['iteration']}")
        return finish_selected(cfg, d, labelled, self["previous_train"], self["valid"], new)


@explicit_serialize
class TrainCommitteeMemberTask(FiretaskBase):
    """Fine-tune one committee member from the foundation model (mace_run_train); pushes its path."""

    required_params = ["cfg", "iteration", "seed"]

    def run_task(self, fw_spec):
        cfg = _cfg(self["cfg"])
        d = _it_dir(cfg, self["iteration"]) / f"model_{self['seed']}"
        d.mkdir(exist_ok=True)
        train, valid = fw_spec["al_train"], fw_spec["al_valid"]
        e0s = cfg["e0s"] if isinstance(cfg["e0s"], dict) else None
        check_dataset(train, e0s)
        name = f"committee_{self['seed']}"
        model = d / f"{name}.model"
        if not model.exists():  # a rerun after a kill reuses a finished model
            cmd = CommitteeFinetune(name=name, train_file=train, valid_file=valid, foundation_model=cfg["foundation_model"],
                                    seed=int(self["seed"]), device=cfg["device"], workdir=str(d), e0s=cfg["e0s"],
                                    **cfg["train_overrides"])
            _run_mace_train(cmd.argv(), d, model, "committee training")
        return FWAction(update_spec={"al_train": train, "al_valid": valid},
                        mod_spec=[{"_push": {"al_models": str(model)}}])


@explicit_serialize
class CommitteeMDSelectTask(FiretaskBase):
    """Committee MD, uncertainty, iteration record, convergence; adds the next iteration if needed."""

    required_params = ["cfg", "iteration"]

    def run_task(self, fw_spec):
        from .validate import rmse

        cfg = _cfg(self["cfg"])
        i = self["iteration"]
        d = _it_dir(cfg, i)
        models = sorted(set(fw_spec["al_models"]))[-cfg["committee_size"]:]
        models = [m for m in models if f"iter_{i:02d}" in m]
        if len(set(models)) != cfg["committee_size"]:
            raise RuntimeError(f"expected {cfg['committee_size']} committee models of iteration {i}, got {models}")
        from mace.calculators import MACECalculator

        start = _atoms(cfg["structure"])
        frames = []
        temps = cfg["temperatures"]
        for k, m in enumerate(models):
            calc = MACECalculator(model_paths=m, device=cfg["device"], default_dtype="float64")
            frames += langevin_frames(start, calc, temps[k % len(temps)], cfg["committee_md_steps"],
                                      cfg["committee_record_every"], seed=100 * i + k)
        unc = force_uncertainty(committee_forces(frames, models, cfg["device"]))
        db = results_db(fw_spec)
        labelled = {doc["hash"] for doc in db.labels.find({}, {"hash": 1})}
        hashes = [structure_hash(a) for a in frames]
        exclude = {j for j, h in enumerate(hashes) if h in labelled}
        conv = Convergence(cfg["threshold"], cfg["percentile"])
        converged = conv.converged(unc)
        valid = list(ase.io.read(fw_spec["al_valid"], ":"))
        record = {
            "al_name": cfg.get("name", "al"), "iteration": i, "dataset_size": len(ase.io.read(fw_spec["al_train"], ":")),
            "dataset_file": fw_spec["al_train"], "models": models,
            "uncertainty_eV_A": {"mean": float(unc.mean()), "p95": float(np.percentile(unc, 95)), "max": float(unc.max()),
                                 "n_frames": int(len(unc))},
            "convergence": {"threshold_eV_A": conv.threshold, "percentile": conv.percentile, "converged": converged},
            "validation": {m: rmse(m, valid, cfg["device"]) for m in models},
        }
        action = FWAction()
        if not converged and i < cfg["max_iterations"]:
            sel = most_uncertain(unc, cfg["select_k"], exclude)
            cand = d / "selected.xyz"
            write_extxyz([frames[j] for j in sel], cand)
            record["selected"] = {"indices": sel, "hashes": [hashes[j] for j in sel]}
            # a detour, so that a join after this loop (the study's final model) waits for every iteration
            action = FWAction(detours=[iteration_workflow(cfg, i + 1, str(cand), fw_spec["al_train"], fw_spec["al_valid"])])
        else:
            record["selected"] = {"indices": [], "hashes": []}
            record["stopped"] = "converged" if converged else "max_iterations"
            done = {"name": cfg.get("name", "al"), "train": fw_spec["al_train"], "valid": fw_spec["al_valid"],
                    "models": models, "iteration": i}
            action = FWAction(mod_spec=[{"_push": {"al_datasets": done}}])
            if cfg["final"]:
                final = Firework([FinalMultiheadTask(cfg=cfg, train=fw_spec["al_train"], valid=fw_spec["al_valid"])],
                                 name="al-final-multihead", spec={"argyro_stage": "mlip-final"})
                action = FWAction(additions=[final], mod_spec=[{"_push": {"al_datasets": done}}])
        from .plots import plot_iteration
        from .validate import predictions

        record["plots"] = [str(p) for p in plot_iteration(d, unc, conv.threshold,
                                                           {m: predictions(m, valid, cfg["device"]) for m in models})]
        db.al_iterations.replace_one({"al_name": record["al_name"], "iteration": i}, record, upsert=True)
        (d / "record.json").write_text(json.dumps(record, indent=1, default=str))
        action.stored_data = {"iteration": i, "converged": converged, "p95": record["uncertainty_eV_A"]["p95"]}
        return action


@explicit_serialize
class FinalMultiheadTask(FiretaskBase):
    """The final model (METHOD.md 5): the AL dataset (+ extra datasets, e.g. Li3P/Li2S/LiCl AIMD)
    fine-tuned multi-head from the foundation model with a pre-selected replay set; converted for
    LAMMPS ML-IAP when ``convert_mliap``. Pushes ``final_model``."""

    required_params = ["cfg", "train", "valid"]

    def run_task(self, fw_spec):
        from .commands import MultiheadFinetune, lammps_conversion_argv
        from .datasets import select_replay

        cfg = _cfg(self["cfg"])
        fin = cfg["final"]
        d = Path(cfg["workdir"]) / "final"
        d.mkdir(parents=True, exist_ok=True)
        frames = list(ase.io.read(self["train"], ":"))
        for extra in fin.get("extra_datasets", []):
            frames += list(ase.io.read(extra, ":"))
        train = write_extxyz(frames, d / "train.xyz")
        check_dataset(train, fin["e0s"])
        replay = d / "replay.xyz"
        if not replay.exists():
            elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
            select_replay(fin["pt_file"], replay, fin.get("replay_n", 100_000), elements)
        model = d / "final.model"
        if not model.exists():
            cmd = MultiheadFinetune(name="final", train_file=str(train), valid_file=self["valid"],
                                    foundation_model=cfg["foundation_model"], pt_train_file=str(replay), e0s=fin["e0s"],
                                    device=cfg["device"], workdir=str(d), **fin.get("overrides", {}))
            _run_mace_train(cmd.argv(), d, model, "final multi-head training")
        if fin.get("convert_mliap"):
            conv = lammps_conversion_argv(str(model))
            conv[0] = str(Path(sys.executable).parent / conv[0])
            subprocess.run(conv, cwd=d, check=True, capture_output=True)
        import torch

        heads = list(torch.load(str(model), map_location="cpu", weights_only=False).heads)
        return FWAction(stored_data={"final_model": str(model), "heads": heads},
                        update_spec={"final_model": str(model)}, mod_spec=[{"_push": {"final_models": str(model)}}])


def _train_and_select(cfg: dict, i: int, parents: list[Firework]) -> list[Firework]:
    trains = [Firework([TrainCommitteeMemberTask(cfg=cfg, iteration=i, seed=s + 1 + 10 * i)],
                       name=f"al-{i:02d}-train-{s}", parents=parents, spec={"argyro_stage": "al-train"})
              for s in range(cfg["committee_size"])]
    select = Firework([CommitteeMDSelectTask(cfg=cfg, iteration=i)], name=f"al-{i:02d}-md-select", parents=trains,
                      spec={"argyro_stage": "al-select"})
    return trains + [select]


def iteration_workflow(cfg: dict, i: int, candidates: str, previous_train: str, valid: str) -> Workflow:
    lab = Firework([LabelSelectedTask(cfg=cfg, iteration=i, candidates=candidates, previous_train=previous_train,
                                      valid=valid)], name=f"al-{i:02d}-label", spec={"argyro_stage": "al-label"})
    return Workflow([lab] + _train_and_select(cfg, i, [lab]), name=f"al-iteration-{i}")


def active_learning_workflow(cfg: dict, name: str = "active-learning") -> Workflow:
    """Iteration 0 (explore + label) and iteration 1 (committee + select); later ones are added."""
    cfg = _cfg(cfg)
    for key in ("workdir", "foundation_model", "structure"):
        if key not in cfg:
            raise ValueError(f"active-learning config: {key} is required")
    cfg["workdir"] = str(Path(cfg["workdir"]).resolve())
    explore = Firework([ExploreLabelTask(cfg=cfg)], name="al-00-explore-label", spec={"argyro_stage": "al-explore"})
    return Workflow([explore] + _train_and_select(cfg, 1, [explore]), name=name)

"""The active-learning loop of METHOD.md section 5 as a dynamic FireWorks workflow.

Every task receives the loop's :class:`~argyro_fw.study.config.ALRun` (``cfg``, plain data): the study's
``active_learning`` section as validated at load, never re-defaulted here, plus what belongs to this loop
(name, workdir, start structure, explorer, labeller, final model).

Iteration 0 (one firework): exploration MD with the explorer calculator at each temperature
(ASE Langevin, 1 fs, friction 0.1 1/fs), ``n_train`` + ``n_valid`` evenly spaced frames,
labelled (hash-cached), plus the initial data (``initial_sources``, ``initial_dataset``) -> train.xyz /
valid.xyz. Iteration i >= 1: ``committee_size`` trainings from the foundation model in parallel
(distinct seeds) -> one firework with the committee MD runs (each driven by one member), the per-frame
committee force uncertainty, the iteration record, the convergence test; if not converged and
i < max_iterations, the ``select_k`` most uncertain frames not labelled before are written out and the
next iteration (label -> trains -> MD/select) is inserted with FWAction(detours=...), so a firework that
depends on the loop (the study's final model) waits for its last iteration; the last one hands on an
:class:`~argyro_fw.study.outputs.ALDataset`.

Labeller ``engine``: the frames are labelled by energy fireworks of the study's engine (``label_engine``:
VASP single points with METHOD.md 4's training-label settings, or the CHGNet stand-in), inserted as a
detour of label fireworks plus one collect firework, which stores each label under the frame's hash and
writes the datasets. Other labellers (calculator specs of :mod:`argyro_fw.engines`) label in-process.

Everything lives under ``workdir`` (absolute), so reruns of killed fireworks reuse what is there; labels
are cached by structure hash in the store (``labels``), never computed twice.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase.io
import numpy as np
from fireworks import FiretaskBase, Firework, FWAction, Workflow, explicit_serialize
from pymatgen.io.ase import AseAtomsAdaptor

from .. import compat, store
from ..core.serialise import as_structure, to_plain, write_atomic
from ..dft.dataset import canonical, evenly_spaced, structure_hash, write_extxyz
from ..engines import calculator
from ..mlip.calculators import mace_calculator
from ..mlip.commands import CommitteeFinetune, run_mace_train
from ..mlip.committee import Convergence, committee_forces, committee_md_plan, force_uncertainty, most_uncertain
from ..mlip.datasets import assemble_initial_dataset, check_dataset
from ..mlip.explore import langevin_frames
from ..mlip.final import train_final_model
from ..mlip.labels import label_frames
from ..mlip.plots import plot_iteration
from ..mlip.validate import predictions, rmse
from ..study.config import ALRun, from_dict
from ..study.outputs import ALDataset, CommitteeModel, FinalModel, TrainingSet, emit, read_all, read_last
from .energy import energy_firework
from .stages import stage_spec

compat.install()


def _atoms(struct):
    return AseAtomsAdaptor.get_atoms(as_structure(struct))


def _it_dir(run: ALRun, i: int) -> Path:
    d = Path(run.workdir) / f"iter_{i:02d}"
    d.mkdir(parents=True, exist_ok=True)
    return d


@explicit_serialize
class ExploreLabelTask(FiretaskBase):
    """Iteration 0: explorer MD, evenly spaced selection, labels -> iter_00/train.xyz, valid.xyz."""

    required_params = ["cfg"]

    def offline_reads(self, fw_spec, reads):
        reads.all_label_hashes()  # frames never labelled before; a cached label not staged is computed again

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        al = run.al
        d = _it_dir(run, 0)
        explorer = calculator(run.explorer, al.device)
        start = _atoms(run.structure)
        frames = []
        for k, T in enumerate(al.temperatures):
            frames += langevin_frames(start, explorer, T, al.explore_steps, al.record_every, seed=k)
        idx = evenly_spaced(len(frames), min(len(frames), al.n_train + al.n_valid))
        picked = [frames[i] for i in idx]
        valid_idx = set(idx[1::max(1, len(idx) // max(1, al.n_valid))][: al.n_valid])
        db = store.database(fw_spec)
        write_extxyz(picked, d / "picked.xyz")
        picked = list(ase.io.read(d / "picked.xyz", ":"))  # hash what the label fireworks will read back
        valid_hashes = [structure_hash(picked[k]) for k, i in enumerate(idx) if i in valid_idx]
        if run.labeller == "engine":
            return engine_label_detour(run, d / "picked.xyz", "explore", dict(kind="explore", valid_hashes=valid_hashes),
                                       db)
        labelled, new = label_frames(picked, calculator(run.labeller, al.device), run.labeller,
                                     store.LabelCache(db), "explore")
        return finish_explore(run, d, labelled, valid_hashes, new)


def finish_explore(run: ALRun, d: Path, labelled: list, valid_hashes: list[str], new: int) -> FWAction:
    """Iteration 0's datasets from the labelled picks (+ initial data): train.xyz, valid.xyz."""
    vh = set(valid_hashes)
    train = [a for a in labelled if a.info["frame_hash"] not in vh]
    valid = [a for a in labelled if a.info["frame_hash"] in vh]
    if run.al.initial_sources:  # METHOD.md 5: evenly spaced frames of labelled AIMD/relaxation runs
        assemble_initial_dataset(run.al.initial_sources, d / "initial.xyz")
        train = list(ase.io.read(d / "initial.xyz", ":")) + train
    if run.al.initial_dataset:
        train = list(ase.io.read(run.al.initial_dataset, ":")) + train
    write_extxyz(train, d / "train.xyz")
    write_extxyz(valid, d / "valid.xyz")
    return FWAction(stored_data={"n_train": len(train), "n_valid": len(valid), "labels_computed": new},
                    **emit(TrainingSet(train=str(d / "train.xyz"), valid=str(d / "valid.xyz"))))


def finish_selected(d: Path, labelled: list, previous_train: str, valid: str, new: int) -> FWAction:
    prev = list(ase.io.read(previous_train, ":"))
    write_extxyz(prev + labelled, d / "train.xyz")
    return FWAction(stored_data={"added": len(labelled), "labels_computed": new},
                    **emit(TrainingSet(train=str(d / "train.xyz"), valid=valid)))


def engine_label_detour(run: ALRun, frames_file: Path, config_type: str, finish: dict, db) -> FWAction:
    """Label fireworks of the study's engine for the frames of ``frames_file`` not labelled before, then a
    collect firework that stores the labels and finishes the dataset (``finish``: what to do then)."""
    study_cfg = from_dict(run.label_engine)
    frames = [canonical(a) for a in ase.io.read(frames_file, ":")]
    hashes = [structure_hash(a) for a in frames]
    seen = store.labelled_hashes(db, hashes)  # never label a frame twice
    fws = []
    for a, h in zip(frames, hashes):
        if h in seen:
            continue
        seen.add(h)
        fws.append(energy_firework(study_cfg, AseAtomsAdaptor.get_structure(a), f"label/{h}", "label", "al-label"))
    collect = Firework([CollectLabelsTask(cfg=run.to_dict(), frames=str(frames_file), config_type=config_type,
                                          finish=finish)],
                       name=f"al-collect-{config_type}", parents=fws, spec=stage_spec("al-collect"))
    return FWAction(stored_data={"label_fireworks": len(fws)}, detours=[Workflow(fws + [collect], name="al-labels")])


@explicit_serialize
class CollectLabelsTask(FiretaskBase):
    """Store the engine's labels (energy, forces, stress of each label firework) under the frames' hashes in
    ``labels`` and finish the iteration's dataset. A frame whose calculation has other atoms is a named error."""

    required_params = ["cfg", "frames", "config_type", "finish"]

    def offline_reads(self, fw_spec, reads):
        for a in ase.io.read(self["frames"], ":"):
            h = structure_hash(canonical(a))
            reads.label(h).calculation(label=f"label/{h}")

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        db = store.database(fw_spec)
        frames = [canonical(a) for a in ase.io.read(self["frames"], ":")]
        engine = run.label_engine["engine"]
        for a in frames:
            h = structure_hash(a)
            if store.get_label(db, h):
                continue
            calc = store.find_calculation(db, label=f"label/{h}")
            if calc is None:
                raise ValueError(f"label {h}: no calculation labelled 'label/{h}' in the database")
            step = calc["ionic_steps"][-1]
            forces = np.asarray(step["forces_eV_A"], float)
            species = [s["species"][0]["element"] for s in calc["final_structure"]["sites"]]
            if species != a.get_chemical_symbols() or forces.shape != (len(a), 3):
                raise ValueError(f"label {h}: the calculation's atoms ({len(species)}) are not the frame's ({len(a)})")
            store.put_label(db, h, step["energy_eV"], forces, np.asarray(step["stress_eV_A3"], float),
                            calc.get("engine", engine), len(a), calc_label=calc["label"])
        labelled, _ = label_frames(frames, None, engine, store.LabelCache(db), self["config_type"])
        fin = self["finish"]
        d = Path(self["frames"]).parent
        if fin["kind"] == "explore":
            return finish_explore(run, d, labelled, fin["valid_hashes"], len(frames))
        return finish_selected(d, labelled, fin["previous_train"], fin["valid"], len(frames))


@explicit_serialize
class LabelSelectedTask(FiretaskBase):
    """Label the selected frames of the previous iteration and grow the dataset."""

    required_params = ["cfg", "iteration", "candidates", "previous_train", "valid"]

    def offline_reads(self, fw_spec, reads):
        reads.all_label_hashes()

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        d = _it_dir(run, self["iteration"])
        frames = list(ase.io.read(self["candidates"], ":"))
        db = store.database(fw_spec)
        if run.labeller == "engine":
            write_extxyz(frames, d / "picked.xyz")
            return engine_label_detour(run, d / "picked.xyz", f"al_iter_{self['iteration']}",
                                       dict(kind="selected", previous_train=self["previous_train"], valid=self["valid"]),
                                       db)
        labelled, new = label_frames(frames, calculator(run.labeller, run.al.device), run.labeller,
                                     store.LabelCache(db), f"al_iter_{self['iteration']}")
        return finish_selected(d, labelled, self["previous_train"], self["valid"], new)


@explicit_serialize
class TrainCommitteeMemberTask(FiretaskBase):
    """Fine-tune one committee member from the foundation model (mace_run_train); hands on a CommitteeModel."""

    required_params = ["cfg", "iteration", "seed"]

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        al = run.al
        d = _it_dir(run, self["iteration"]) / f"model_{self['seed']}"
        d.mkdir(exist_ok=True)
        ts = read_last(fw_spec, TrainingSet, f"al-{self['iteration']:02d}-train")
        check_dataset(ts.train, run.e0s if isinstance(run.e0s, dict) else None)
        name = f"committee_{self['seed']}"
        model = d / f"{name}.model"
        if not model.exists():  # a rerun after a kill reuses a finished model
            cmd = CommitteeFinetune(name=name, train_file=ts.train, valid_file=ts.valid,
                                    foundation_model=run.foundation_model, seed=int(self["seed"]), device=al.device,
                                    workdir=str(d), e0s=run.e0s, **al.train_overrides)
            run_mace_train(cmd.argv(), d, model, "committee training")
        return FWAction(**emit(ts, CommitteeModel(path=str(model), iteration=int(self["iteration"]))))


@explicit_serialize
class CommitteeMDSelectTask(FiretaskBase):
    """Committee MD, uncertainty, iteration record, convergence; adds the next iteration if needed."""

    required_params = ["cfg", "iteration"]

    def offline_reads(self, fw_spec, reads):
        reads.all_label_hashes()

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        al = run.al
        i = self["iteration"]
        d = _it_dir(run, i)
        models = sorted({m.path for m in read_all(fw_spec, CommitteeModel) if m.iteration == i})
        if len(models) != al.committee_size:
            raise RuntimeError(f"expected {al.committee_size} committee models of iteration {i}, got {models}")
        ts = read_last(fw_spec, TrainingSet, f"al-{i:02d}-md-select")
        start = _atoms(run.structure)
        frames = []
        plan = committee_md_plan(models, al.temperatures)
        for k, (m, T) in enumerate(plan):
            frames += langevin_frames(start, mace_calculator(m, device=al.device), T, al.committee_md_steps,
                                      al.committee_record_every, seed=100 * i + k)
        unc = force_uncertainty(committee_forces(frames, models, al.device))
        db = store.database(fw_spec)
        hashes = [structure_hash(a) for a in frames]
        labelled = store.labelled_hashes(db, hashes)
        exclude = {j for j, h in enumerate(hashes) if h in labelled}
        conv = Convergence(al.threshold, al.percentile)
        converged = conv.converged(unc)
        valid = list(ase.io.read(ts.valid, ":"))
        record = {
            "al_name": run.name, "iteration": i, "dataset_size": len(ase.io.read(ts.train, ":")),
            "dataset_file": ts.train, "models": models, "md_runs": [{"model": m, "temperature_K": T} for m, T in plan],
            "uncertainty_eV_A": {"mean": float(unc.mean()), "p95": float(np.percentile(unc, 95)), "max": float(unc.max()),
                                 "n_frames": int(len(unc))},
            "convergence": {"threshold_eV_A": conv.threshold, "percentile": conv.percentile, "converged": converged},
            "validation": {m: rmse(m, valid, al.device) for m in models},
        }
        if not converged and i < al.max_iterations:
            sel = most_uncertain(unc, al.select_k, exclude)
            cand = d / "selected.xyz"
            write_extxyz([frames[j] for j in sel], cand)
            record["selected"] = {"indices": sel, "hashes": [hashes[j] for j in sel]}
            # a detour, so that a join after this loop (the study's final model) waits for every iteration
            action = FWAction(detours=[iteration_workflow(run, i + 1, str(cand), ts.train, ts.valid)])
        else:
            record["selected"] = {"indices": [], "hashes": []}
            record["stopped"] = "converged" if converged else "max_iterations"
            done = ALDataset(name=run.name, train=ts.train, valid=ts.valid, models=models, iteration=i)
            additions = []
            if run.final:
                additions = [Firework([FinalMultiheadTask(cfg=run.to_dict(), train=ts.train, valid=ts.valid)],
                                      name="al-final-multihead", spec=stage_spec("mlip-final"))]
            action = FWAction(additions=additions, **emit(done))
        record["plots"] = [str(p) for p in plot_iteration(d, unc, conv.threshold,
                                                           {m: predictions(m, valid, al.device) for m in models})]
        store.put_al_iteration(db, record)
        write_atomic(d / "record.json", json.dumps(to_plain(record), indent=1, default=str))
        action.stored_data = {"iteration": i, "converged": converged, "p95": record["uncertainty_eV_A"]["p95"]}
        return action


@explicit_serialize
class FinalMultiheadTask(FiretaskBase):
    """The loop's final model (METHOD.md 5, :func:`argyro_fw.mlip.final.train_final_model`) under
    ``workdir/final``; hands on a FinalModel."""

    required_params = ["cfg", "train", "valid"]

    def run_task(self, fw_spec):
        run = ALRun.from_dict(self["cfg"])
        res = train_final_model(Path(run.workdir) / "final", self["train"], self["valid"], run.foundation_model,
                                run.final, run.al.device)
        return FWAction(stored_data=res, **emit(FinalModel(path=res["final_model"], heads=res["heads"],
                                                           mliap=res["mliap"])))


def _train_and_select(run: ALRun, i: int, parents: list[Firework]) -> list[Firework]:
    cfg = run.to_dict()
    trains = [Firework([TrainCommitteeMemberTask(cfg=cfg, iteration=i, seed=s + 1 + 10 * i)],
                       name=f"al-{i:02d}-train-{s}", parents=parents, spec=stage_spec("al-train"))
              for s in range(run.al.committee_size)]
    select = Firework([CommitteeMDSelectTask(cfg=cfg, iteration=i)], name=f"al-{i:02d}-md-select", parents=trains,
                      spec=stage_spec("al-select"))
    return trains + [select]


def iteration_workflow(run: ALRun, i: int, candidates: str, previous_train: str, valid: str) -> Workflow:
    lab = Firework([LabelSelectedTask(cfg=run.to_dict(), iteration=i, candidates=candidates,
                                      previous_train=previous_train, valid=valid)],
                   name=f"al-{i:02d}-label", spec=stage_spec("al-label"))
    return Workflow([lab] + _train_and_select(run, i, [lab]), name=f"al-iteration-{i}")


def active_learning_workflow(run: ALRun, name: str = "active-learning") -> Workflow:
    """Iteration 0 (explore + label) and iteration 1 (committee + select); later ones are added."""
    run = ALRun.from_dict(run.to_dict())  # validated, and a copy
    run.workdir = str(Path(run.workdir).resolve())
    explore = Firework([ExploreLabelTask(cfg=run.to_dict())], name="al-00-explore-label",
                       spec=stage_spec("al-explore"))
    return Workflow([explore] + _train_and_select(run, 1, [explore]), name=name)

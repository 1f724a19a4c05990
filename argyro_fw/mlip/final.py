"""The final model of METHOD.md 5: a multi-head fine-tuning of the foundation model on an interface's
active-learning dataset (+ extra datasets, e.g. Li3P / Li2S / LiCl AIMD) with a pre-selected replay set
of the foundation's data, optionally converted for LAMMPS ML-IAP. No database, no FireWorks: the
study's and the loop's fireworks both call :func:`train_final_model`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ase.io

from ..dft.dataset import write_extxyz
from ..md.engines import mliap_path
from ..study.config import ActiveLearningCfg
from .commands import MultiheadFinetune, lammps_conversion_argv, run_mace_train
from .datasets import check_dataset, select_replay


def convert_to_mliap(model: str | Path) -> str:
    """Convert a (multi-head) MACE model for LAMMPS ML-IAP with ``mace_create_lammps_model --format=mliap
    --head=Default``; returns the file it wrote, :func:`argyro_fw.md.engines.mliap_path` (the one name the study
    wires into its GPU MD). Needs cuequivariance and cuequivariance-torch."""
    model = Path(model)
    conv = lammps_conversion_argv(str(model))
    conv[0] = str(Path(sys.executable).parent / conv[0])
    proc = subprocess.run(conv, cwd=model.parent, capture_output=True, text=True)
    out = mliap_path(model)
    if proc.returncode != 0 or not Path(out).is_file():
        raise RuntimeError(f"ML-IAP conversion of {model} failed (exit {proc.returncode}; expected {out}): "
                           f"{proc.stderr[-1500:]}")
    return out


def train_final_model(workdir: str | Path, train: str, valid: str, foundation_model: str, final, device: str = ActiveLearningCfg.device) -> dict:
    """Train (or, after a rerun, reuse) ``workdir/final.model``; ``final``: a :class:`~argyro_fw.study.config.FinalRun`.
    Returns {"final_model", "heads", "mliap"} (mliap: the converted file or None)."""
    d = Path(workdir)
    d.mkdir(parents=True, exist_ok=True)
    frames = list(ase.io.read(train, ":"))
    for extra in final.extra_datasets:
        frames += list(ase.io.read(extra, ":"))
    train_all = write_extxyz(frames, d / "train.xyz")
    check_dataset(train_all, final.e0s)
    replay = d / "replay.xyz"
    if not replay.exists():
        elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
        select_replay(final.pt_file, replay, final.replay_n, elements)
    model = d / "final.model"
    if not model.exists():
        cmd = MultiheadFinetune(name="final", train_file=str(train_all), valid_file=valid,
                                foundation_model=foundation_model, pt_train_file=str(replay), e0s=final.e0s,
                                device=device, workdir=str(d), **final.overrides)
        run_mace_train(cmd.argv(), d, model, "final multi-head training")
    mliap = convert_to_mliap(model) if final.convert_mliap else None
    import torch  # heavy: only to read the trained model's heads

    heads = list(torch.load(str(model), map_location="cpu", weights_only=False).heads)
    return {"final_model": str(model), "heads": heads, "mliap": mliap}

"""``mace_run_train`` commands of METHOD.md section 5, as small dataclasses with explicit defaults.

Committee fine-tuning (one per seed): from the foundation model, ``--freeze 6`` (embedding,
interactions and products frozen; readouts trained), universal loss with energy/forces/stress
weights 10/1000/100, lr 0.005, 300 epochs, batch 16, EMA, stage two from epoch 200 with
1000/100/100, r_max 6, 128 channels. ``--multiheads_finetuning=False`` is explicit: mace-torch
turns multi-head mode on by default when a foundation model is given.

Final multi-head fine-tuning: replay set pre-selected by argyro (mace ignores --num_samples_pt
for a local --pt_train_file), ``--force_mh_ft_lr=True`` so that lr 1e-4 is honoured as given
(multi-head mode otherwise imposes its own), weight decay 1e-9, weights 1/100/100, 30 epochs,
batch 8, no stage two, ``--foundation_filter_elements=True``, ``--foundation_model_elements=True``,
E0s from the DFT isolated-atom energies. The foundation readout is kept by *not* passing
``--foundation_model_readout``: in mace-torch 0.3.16 that flag is ``store_false`` (passing it
would switch the readout off) and no code reads it.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ase.data import atomic_numbers

from ..errors import ArgyroError


def e0s_arg(e0s: dict[str, float]) -> str:
    """mace's E0s dict literal keyed by atomic number: "{3: -0.29, 15: -1.88, ...}"."""
    return "{" + ", ".join(f"{atomic_numbers[el]}: {e0s[el]!r}" for el in sorted(e0s, key=atomic_numbers.get)) + "}"


@dataclass
class _Common:
    name: str
    train_file: str
    foundation_model: str
    valid_file: str | None = None
    valid_fraction: float = 0.05
    test_file: str | None = None
    e0s: dict[str, float] | str = "foundation"
    energy_key: str = "REF_energy"
    forces_key: str = "REF_forces"
    stress_key: str = "REF_stress"
    device: str = "cuda"
    default_dtype: str = "float64"
    seed: int = 1
    workdir: str = "."
    extra: list[str] = field(default_factory=list)

    def _base(self) -> list[str]:
        e0 = self.e0s if isinstance(self.e0s, str) else e0s_arg(self.e0s)
        args = [f"--name={self.name}", f"--foundation_model={self.foundation_model}", f"--train_file={self.train_file}"]
        args += [f"--valid_file={self.valid_file}"] if self.valid_file else [f"--valid_fraction={self.valid_fraction}"]
        if self.test_file:
            args.append(f"--test_file={self.test_file}")
        args += [f"--E0s={e0}", f"--energy_key={self.energy_key}", f"--forces_key={self.forces_key}",
                 f"--stress_key={self.stress_key}", f"--device={self.device}", f"--default_dtype={self.default_dtype}",
                 f"--seed={self.seed}", "--save_cpu", f"--model_dir={self.workdir}", f"--log_dir={self.workdir}/logs",
                 f"--checkpoints_dir={self.workdir}/checkpoints", f"--results_dir={self.workdir}/results",
                 "--restart_latest"]  # a rerun after a kill continues from the newest checkpoint (none: from epoch 0)
        return args


@dataclass
class CommitteeFinetune(_Common):
    freeze: int = 6
    loss: str = "universal"
    energy_weight: float = 10.0
    forces_weight: float = 1000.0
    stress_weight: float = 100.0
    lr: float = 0.005
    max_num_epochs: int = 300
    batch_size: int = 16
    ema: bool = True
    ema_decay: float = 0.99
    start_stage_two: int = 200
    stage_two_energy_weight: float = 1000.0
    stage_two_forces_weight: float = 100.0
    stage_two_stress_weight: float = 100.0
    r_max: float = 6.0
    num_channels: int = 128

    def argv(self) -> list[str]:
        a = ["mace_run_train"] + self._base() + [
            "--multiheads_finetuning=False", f"--freeze={self.freeze}", f"--loss={self.loss}",
            f"--energy_weight={self.energy_weight:g}", f"--forces_weight={self.forces_weight:g}",
            f"--stress_weight={self.stress_weight:g}", f"--lr={self.lr:g}", f"--max_num_epochs={self.max_num_epochs}",
            f"--batch_size={self.batch_size}", f"--r_max={self.r_max:g}", f"--num_channels={self.num_channels}"]
        if self.ema:
            a += ["--ema", f"--ema_decay={self.ema_decay:g}"]
        a += ["--stage_two", f"--start_stage_two={self.start_stage_two}",
              f"--stage_two_energy_weight={self.stage_two_energy_weight:g}",
              f"--stage_two_forces_weight={self.stage_two_forces_weight:g}",
              f"--stage_two_stress_weight={self.stage_two_stress_weight:g}"]
        return a + list(self.extra)


@dataclass
class MultiheadFinetune(_Common):
    pt_train_file: str = ""
    loss: str = "universal"
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    stress_weight: float = 100.0
    lr: float = 1e-4
    weight_decay: float = 1e-9
    max_num_epochs: int = 30
    batch_size: int = 8

    def argv(self) -> list[str]:
        if not self.pt_train_file:
            raise ArgyroError("multi-head fine-tuning needs the replay set (pt_train_file)")
        if isinstance(self.e0s, str):
            raise ArgyroError("multi-head fine-tuning needs explicit E0s (the DFT isolated-atom energies)")
        return ["mace_run_train"] + self._base() + [
            "--multiheads_finetuning=True", f"--pt_train_file={self.pt_train_file}", "--force_mh_ft_lr=True",
            f"--lr={self.lr:g}", f"--weight_decay={self.weight_decay:g}", f"--loss={self.loss}",
            f"--energy_weight={self.energy_weight:g}", f"--forces_weight={self.forces_weight:g}",
            f"--stress_weight={self.stress_weight:g}", f"--max_num_epochs={self.max_num_epochs}",
            f"--batch_size={self.batch_size}", "--foundation_filter_elements=True",
            "--foundation_model_elements=True"] + list(self.extra)


def lammps_conversion_argv(model: str, mliap: bool = True, head: str = "Default") -> list[str]:
    a = ["mace_create_lammps_model", model, f"--head={head}"]
    return a + (["--format=mliap"] if mliap else [])


def shell(argv: list[str]) -> str:
    return " ".join(shlex.quote(x) for x in argv)


def settings(cmd) -> dict:
    return asdict(cmd)


def run_mace_train(argv: list[str], d: Path, model: Path, what: str) -> None:
    """Run a rendered mace_run_train command with this environment's executable in ``d``; each run's output is
    appended to train.log (a rerun after a kill resumes from the newest checkpoint: ``--restart_latest``);
    RuntimeError unless ``model`` was written."""
    argv = [str(Path(sys.executable).parent / "mace_run_train")] + argv[1:]
    resumed = any((d / "checkpoints").glob("*.pt")) if (d / "checkpoints").is_dir() else False
    with open(d / "train.log", "a") as log:
        log.write(f"== mace_run_train ({'resuming from the newest checkpoint' if resumed else 'from the start'})\n")
        log.flush()
        proc = subprocess.run(argv, cwd=d, stdout=log, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not model.exists():
        tail = (d / "train.log").read_text()[-1500:]
        raise RuntimeError(f"{what} failed in {d} (exit {proc.returncode}): {tail}")

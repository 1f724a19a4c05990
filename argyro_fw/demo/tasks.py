"""The demo's toy foundation model: a tiny MACE trained on LJ-labelled rattled frames of a small
Li | argyrodite cell (stand-in for the OMat24 foundation model, which is a path on a real site).
Registered in :mod:`argyro_fw.engines` as the foundation-model provider ``toy``."""

from __future__ import annotations

from pathlib import Path

from ase.build import stack
from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from pymatgen.io.ase import AseAtomsAdaptor

from .. import compat
from ..flows.stages import stage_spec
from ..structures.bulk import ordered_argyrodite
from ..structures.phases import bcc_li
from .toy import label, rattled, train_tiny_mace

compat.install()


def demo_interface():
    """A small Li | argyrodite cell (88 atoms): the ordered 52-atom cell stacked on 3x3x2 bcc Li
    strained to its in-plane lattice (ase.build.stack). A toy stand-in for METHOD.md's interfaces."""

    arg = AseAtomsAdaptor.get_atoms(ordered_argyrodite())
    li = AseAtomsAdaptor.get_atoms(bcc_li()) * (3, 3, 2)
    a = arg.cell.lengths()[0]
    li.set_cell([[a, 0, 0], [0, a, 0], [0, 0, li.cell[2, 2]]], scale_atoms=True)
    return stack(arg, li, maxstrain=0.1, distance=2.0)


@explicit_serialize
class ToyFoundationTask(FiretaskBase):
    """Trains the tiny MACE "foundation" model (and its training set, the toy replay data) once."""
    required_params = ["workdir"]

    def run_task(self, fw_spec):
        d = Path(self["workdir"])
        model = d / "toy_foundation.model"
        if not model.exists():
            model = train_tiny_mace(label(rattled(demo_interface(), 30, seed=0)), d, name="toy_foundation")
        return FWAction(stored_data={"model": str(model)})


class toy_foundation:  # noqa: N801  (a provider, named as the config value it stands for)
    """The ``toy`` foundation-model provider of a study whose workdir is ``workdir``: the model and replay
    paths it will have, and the firework that trains them."""

    def __init__(self, workdir: str | Path):
        self.dir = Path(workdir) / "models"
        self.model = str(self.dir / "toy_foundation.model")
        self.replay = str(self.dir / "train.xyz")

    def firework(self) -> Firework:
        return Firework([ToyFoundationTask(workdir=str(self.dir))], name="mlip-toy-foundation",
                        spec=stage_spec("mlip-foundation"))

"""FireTasks used only by the demo workflow (clearly named stand-ins, toy sizes)."""

from __future__ import annotations

from pathlib import Path

from fireworks import FiretaskBase, FWAction, explicit_serialize

from . import compat

compat.install()


def demo_interface():
    """A small Li | argyrodite cell (88 atoms): the ordered 52-atom cell stacked on 3x3x2 bcc Li
    strained to its in-plane lattice (ase.build.stack). A toy stand-in for METHOD.md's interfaces."""
    from ase.build import stack
    from pymatgen.io.ase import AseAtomsAdaptor

    from .structures.bulk import ordered_argyrodite
    from .structures.phases import bcc_li

    arg = AseAtomsAdaptor.get_atoms(ordered_argyrodite())
    li = AseAtomsAdaptor.get_atoms(bcc_li()) * (3, 3, 2)
    a = arg.cell.lengths()[0]
    li.set_cell([[a, 0, 0], [0, a, 0], [0, 0, li.cell[2, 2]]], scale_atoms=True)
    return stack(arg, li, maxstrain=0.1, distance=2.0)


@explicit_serialize
class ToyFoundationTask(FiretaskBase):
    """Trains a tiny MACE "foundation" model on LJ-labelled rattled frames (stand-in for the
    OMat24 foundation model, which is a path on a real site)."""

    required_params = ["workdir"]

    def run_task(self, fw_spec):
        from .mlip.toy import label, rattled, train_tiny_mace

        d = Path(self["workdir"])
        model = d / "toy_foundation.model"
        if not model.exists():
            model = train_tiny_mace(label(rattled(demo_interface(), 30, seed=0)), d, name="toy_foundation")
        return FWAction(stored_data={"model": str(model)})

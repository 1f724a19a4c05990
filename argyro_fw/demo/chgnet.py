"""CHGNet, the offline stand-in for VASP (energies, relaxations, labels) and for a foundation explorer.

CHGNet's pretrained weights ship in its wheel, so the demo and the tests run without a network and
without a VASP licence. The engine writes the same ``calculations`` documents and hands on the same
:class:`~argyro_fw.study.outputs.EnergyResult` records as the VASP engine, named ``chgnet-standin``
in every document. Registered in :mod:`argyro_fw.engines` as energy engine and calculator ``chgnet``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ase.filters import FrechetCellFilter
from ase.optimize import BFGS
from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .. import compat, store
from ..core.serialise import as_structure
from ..flows.stages import stage_spec
from ..study.config import DftCfg
from ..study.outputs import EnergyResult, emit

compat.install()

ENGINE_NAME = "chgnet-standin"


def chgnet_calculator():
    """CHGNet's ASE calculator on the CPU (weights from the wheel)."""
    from chgnet.model.dynamics import CHGNetCalculator  # heavy (torch, weights): loaded when used

    return CHGNetCalculator(use_device="cpu")


def relax_chgnet(structure: Structure, relax_cell: bool, steps: int, fmax: float,
                 with_forces: bool = False) -> tuple:
    """(energy eV, final structure) from CHGNet with ASE BFGS (``steps`` = 0: a single point); with
    ``with_forces`` also (forces eV/Å, stress eV/Å3 as a 3x3, ASE sign) of the final structure."""

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = chgnet_calculator()
    if steps > 0:
        target = FrechetCellFilter(atoms) if relax_cell else atoms
        BFGS(target, logfile=None).run(fmax=fmax, steps=steps)
    final = AseAtomsAdaptor.get_structure(atoms)
    for prop in list(final.site_properties):  # CHGNet's magmoms etc. (float32) are not part of the result
        final.remove_site_property(prop)
    e = float(atoms.get_potential_energy())
    if with_forces:
        return e, final, atoms.get_forces().astype(float), atoms.get_stress(voigt=False).astype(float)
    return e, final


@explicit_serialize
class ChgnetEnergyTask(FiretaskBase):
    """CHGNet energy (stand-in for a DFT relaxation or single point). Stores a ``calculations`` document
    (engine "chgnet-standin") and hands on an EnergyResult."""

    required_params = ["structure", "label"]
    optional_params = ["relax_cell", "steps", "fmax", "metadata", "kind"]

    def run_task(self, fw_spec):
        s = as_structure(self["structure"])
        e, final, forces, stress = relax_chgnet(s, bool(self.get("relax_cell", False)), int(self.get("steps", 0)),
                                                float(self.get("fmax", DftCfg.fmax)), with_forces=True)
        doc = {"label": self["label"], "engine": ENGINE_NAME, "kind": self.get("kind", "static"), "final_energy_eV": e,
               "n_atoms": len(final), "formula": final.composition.formula, "final_structure": final.as_dict(),
               "ionic_steps": [{"energy_eV": e, "forces_eV_A": forces, "stress_eV_A3": stress}],
               "metadata": self.get("metadata") or {}, "completed_at": datetime.now(timezone.utc)}
        calc_id = store.put_calculation(store.database(fw_spec), doc)
        rec = EnergyResult(label=self["label"], energy_eV=e, engine=ENGINE_NAME, calc_id=str(calc_id),
                           n_atoms=len(final), kind=self.get("kind"))
        return FWAction(stored_data=rec.to_dict(), **emit(rec))


class ChgnetEngine:
    """The energy engine ``chgnet``: relaxations with BFGS (``cfg.dft.relax_steps``, ``cfg.dft.fmax``)."""
    name = "chgnet"

    def firework(self, cfg, structure: Structure, label: str, kind: str, stage: str, parents=None) -> Firework:
        steps = 0 if kind in ("static", "e0", "label") else cfg.dft.relax_steps
        task = ChgnetEnergyTask(structure=structure.as_dict(), label=label, relax_cell=kind == "relax-bulk",
                                steps=steps, fmax=cfg.dft.fmax, kind=kind)
        return Firework([task], name=f"{stage}:{label}", parents=parents, spec=stage_spec(stage))

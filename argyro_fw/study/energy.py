"""Energy fireworks of the study, behind one interface for both engines.

``engine: vasp`` gives the DFT firework of :mod:`argyro_fw.dft.tasks` (inputs -> custodian ->
parse into ``calculations``); ``engine: chgnet`` gives :class:`ChgnetEnergyTask`, the offline
stand-in used by the demo (CHGNet, pretrained weights in its wheel, named as the engine in every
document it writes). Both push ``{"label": key, "energy_eV", ...}`` to the children's
``vasp_calcs`` list, which is what the study's choosers read.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from pymatgen.core import Structure

from .. import compat
from ..db.results import results_db

compat.install()


def relax_chgnet(structure: Structure, relax_cell: bool, steps: int, fmax: float,
                 with_forces: bool = False) -> tuple:
    """(energy eV, final structure) from CHGNet with ASE BFGS (``steps`` = 0: a single point); with
    ``with_forces`` also (forces eV/Å, stress eV/Å3 as a 3x3, ASE sign) of the final structure."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    from chgnet.model.dynamics import CHGNetCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = CHGNetCalculator(use_device="cpu")
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
    (engine "chgnet-standin") and pushes the label, energy and final structure."""

    required_params = ["structure", "label"]
    optional_params = ["relax_cell", "steps", "fmax", "metadata"]

    def run_task(self, fw_spec):
        s = self["structure"]
        s = s if isinstance(s, Structure) else Structure.from_dict(s)
        e, final, forces, stress = relax_chgnet(s, bool(self.get("relax_cell", False)), int(self.get("steps", 0)),
                                                float(self.get("fmax", 0.05)), with_forces=True)
        doc = {"label": self["label"], "engine": "chgnet-standin", "final_energy_eV": e, "n_atoms": len(final),
               "ionic_steps": [{"energy_eV": e, "forces_eV_A": forces.tolist(), "stress_eV_A3": stress.tolist()}],
               "formula": final.composition.formula, "final_structure": final.as_dict(),
               "metadata": self.get("metadata") or {}, "completed_at": datetime.now(timezone.utc)}
        doc = json.loads(json.dumps(doc, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
        doc["completed_at"] = datetime.now(timezone.utc)
        db = results_db(fw_spec)
        db.calculations.replace_one({"label": self["label"], "engine": "chgnet-standin"}, doc, upsert=True)
        summary = {"label": self["label"], "energy_eV": e, "engine": "chgnet-standin", "n_atoms": len(final)}
        return FWAction(stored_data=summary, mod_spec=[{"_push": {"vasp_calcs": summary}}])


def energy_firework(cfg, structure: Structure, label: str, kind: str, stage: str, parents=None) -> Firework:
    """One energy calculation. kind: relax-bulk (cell relaxed) | relax (ions) | static | e0 (isolated atom) |
    label (a training label: VASP single point with METHOD.md 4's AIMD settings, Gamma-only)."""
    if cfg.engine == "vasp":
        from ..dft.tasks import vasp_firework

        opts = {"relax-bulk": ("relax", {"system": "bulk"}), "relax": ("relax", {}), "static": ("static", {}),
                "e0": ("e0", {}), "label": ("label", {})}[kind]
        fw = vasp_firework(structure, opts[0], name=f"{stage}:{label}", options=opts[1], label=label,
                           vasp_cmd=cfg.dft.vasp_cmd, potcar=cfg.dft.potcar, polling_s=cfg.dft.polling_s, parents=parents)
        fw.spec["argyro_stage"] = stage
        return fw
    steps = 0 if kind in ("static", "e0", "label") else cfg.dft.relax_steps
    task = ChgnetEnergyTask(structure=structure.as_dict(), label=label, relax_cell=kind == "relax-bulk", steps=steps,
                            fmax=cfg.dft.fmax)
    return Firework([task], name=f"{stage}:{label}", parents=parents, spec={"argyro_stage": stage})


def energies_from_spec(fw_spec: dict, db=None) -> dict[str, dict]:
    """{label: {"energy_eV", "structure" (final, pymatgen dict)}} from the pushed ``vasp_calcs``."""
    from bson import ObjectId

    out = {}
    for c in fw_spec.get("vasp_calcs", []) or []:
        rec = {"energy_eV": float(c["energy_eV"])}
        if db is not None:
            if c.get("calc_id"):
                doc = db.calculations.find_one({"_id": ObjectId(c["calc_id"])}, {"final_structure": 1})
            else:
                doc = db.calculations.find_one({"label": c["label"], "engine": c.get("engine", "chgnet-standin")},
                                               {"final_structure": 1})
            if doc and doc.get("final_structure"):
                rec["structure"] = doc["final_structure"]
        out[c["label"]] = rec
    return out

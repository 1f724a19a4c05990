"""The VASP energy engine: one firework per calculation (inputs -> custodian -> parse into ``calculations``),
with METHOD.md 4's input sets per kind."""

from __future__ import annotations

from pymatgen.core import Structure

from ..flows.dft import vasp_firework
from ..flows.stages import stage_spec

#: the study's calculation kinds -> (VASP input-set kind, maker options)
KINDS: dict[str, tuple[str, dict]] = {
    "relax-bulk": ("relax", {"system": "bulk"}),  # cell and ions relaxed
    "relax": ("relax", {}),  # ions relaxed (slabs: the system is told by the vacuum)
    # an interface cell has no vacuum, so it must be named: ions only (ISIF 2), the cell of the lattice match kept
    "relax-interface": ("relax", {"system": "interface"}),
    "static": ("static", {}),
    "e0": ("e0", {}),  # isolated atom
    "label": ("label", {}),  # training label: single point with the AIMD settings, Gamma-only
}


class VaspEngine:
    """VASP through custodian; ``cfg.dft`` gives the command, POTCAR choice and polling interval."""

    name = "vasp"

    def firework(self, cfg, structure: Structure, label: str, kind: str, stage: str, parents=None):

        vasp_kind, options = KINDS[kind]
        fw = vasp_firework(structure, vasp_kind, name=f"{stage}:{label}", options=options, label=label,
                           vasp_cmd=cfg.dft.vasp_cmd, potcar=cfg.dft.potcar, polling_s=cfg.dft.polling_s,
                           parents=parents)
        fw.spec.update(stage_spec(stage))
        return fw

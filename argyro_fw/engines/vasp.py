"""The VASP energy engine: one firework per calculation (inputs -> custodian -> parse into ``calculations``),
with METHOD.md 4's input sets per kind."""

from __future__ import annotations

from pathlib import Path

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

    def aimd_firework(self, cfg, structure: Structure, label: str, stage: str, ramp: tuple[float, float], ps: float,
                      select: dict, system: str | None = None, kpoints: str = "auto", parents=None):
        """VASP AIMD (METHOD.md 4: NVT Nose-Hoover, SMASS 0, POTIM 2 fs, 1 fs for interfaces; TEBEG -> TEEND a ramp);
        the parse keeps the frames ``select`` names ({"even": n} | {"every": k}) as the run's dataset; ``kpoints``: grid
        (the 52-atom argyrodite and 54-atom Li cells), gamma (every other AIMD) or auto (by size)."""
        options = {"temperature": float(ramp[0]), "end_temperature": float(ramp[1]), "ps": float(ps), "system": system,
                   "kpoints": kpoints}
        # a persistent run directory under the study's workdir: a rerun (after the walltime cut the run) continues
        # the run there in a new segment, and the segments merge into one trajectory (dft.run.run_aimd)
        run_dir = Path(cfg.workdir) / "aimd" / label.replace("/", "_").replace(" ", "_")
        fw = vasp_firework(structure, "aimd", name=f"{stage}:{label}", options=options, label=label, config_type=label,
                           select=dict(select), vasp_cmd=cfg.dft.vasp_cmd, potcar=cfg.dft.potcar,
                           polling_s=cfg.dft.polling_s, parents=parents, run_dir=str(run_dir))
        fw.spec.update(stage_spec(stage))
        return fw

"""Energy fireworks of the study, one interface for every engine of :mod:`argyro_fw.engines`.

``engine: vasp`` gives the DFT firework of :mod:`argyro_fw.flows.dft` (inputs -> custodian -> parse
into ``calculations``); ``engine: chgnet`` the offline stand-in of :mod:`argyro_fw.demo.chgnet`. Both
hand on :class:`~argyro_fw.study.outputs.EnergyResult` records, which the study's choosers read with
:func:`energies_from_spec`.
"""

from __future__ import annotations

from pymatgen.core import Structure

from .. import store
from ..engines import energy_engine
from ..study.outputs import EnergyResult, read_all


def energy_firework(cfg, structure: Structure, label: str, kind: str, stage: str, parents=None):
    """One energy calculation of the study's engine. kind: relax-bulk (cell relaxed) | relax (ions) |
    relax-interface (ions of a periodic interface cell, no vacuum) | static | e0 (isolated atom) | label (a training label: VASP single point with METHOD.md 4's AIMD
    settings, Gamma-only)."""
    return energy_engine(cfg.engine).firework(cfg, structure, label, kind, stage, parents=parents)


def energy_reads(fw_spec: dict, reads) -> None:
    """Declare what :func:`energies_from_spec` reads (for a firework run offline, :mod:`argyro_fw.store.offline`)."""
    for r in read_all(fw_spec, EnergyResult):
        reads.calculation(calc_id=r.calc_id, label=r.label, engine=r.engine, fields=["final_structure"])


def energies_from_spec(fw_spec: dict, db=None) -> dict[str, dict]:
    """{label: {"energy_eV", "structure" (final, pymatgen dict)}} from the parents' EnergyResults."""
    out = {}
    for r in read_all(fw_spec, EnergyResult):
        rec = {"energy_eV": float(r.energy_eV)}
        if db is not None:
            doc = store.find_calculation(db, calc_id=r.calc_id, label=r.label, engine=r.engine,
                                         projection={"final_structure": 1})
            if doc and doc.get("final_structure"):
                rec["structure"] = doc["final_structure"]
        out[r.label] = rec
    return out

"""CHGNet, the offline stand-in for VASP (energies, relaxations, labels) and for a foundation explorer.

CHGNet's pretrained weights ship in its wheel, so the demo and the tests run without a network and
without a VASP licence. The engine writes the same ``calculations`` documents and hands on the same
:class:`~argyro_fw.study.outputs.EnergyResult` records as the VASP engine, named ``chgnet-standin``
in every document. Registered in :mod:`argyro_fw.engines` as energy engine and calculator ``chgnet``.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.filters import FrechetCellFilter
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.optimize import BFGS
from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .. import compat, store
from ..core.serialise import as_structure
from ..dft.dataset import evenly_spaced, every_kth, write_extxyz
from ..dft.inputs import aimd_potim
from ..flows.stages import stage_spec
from ..study.config import DftCfg
from ..study.outputs import EnergyResult, emit

compat.install()

ENGINE_NAME = "chgnet-standin"


def chgnet_calculator():
    """CHGNet's ASE calculator on the CPU (weights from the wheel)."""
    from chgnet.model.dynamics import CHGNetCalculator  # heavy (torch, weights): loaded when used

    return CHGNetCalculator(use_device="cpu")


def _labelled(atoms, config_type: str, step: int, stress: bool = True) -> Atoms:
    """A copy of ``atoms`` with its CHGNet energy, forces (and stress) as REF_* labels (a dataset frame)."""
    a = atoms.copy()
    a.calc = None
    a.info.update(REF_energy=float(atoms.get_potential_energy()), config_type=config_type, step=int(step))
    if stress:
        a.info["REF_stress"] = atoms.get_stress(voigt=False).astype(float)
    a.arrays["REF_forces"] = atoms.get_forces().astype(float)
    return a


def relax_chgnet(structure: Structure, relax_cell: bool, steps: int, fmax: float,
                 with_forces: bool = False, trajectory: list | None = None) -> tuple:
    """(energy eV, final structure) from CHGNet with ASE BFGS (``steps`` = 0: a single point); with
    ``with_forces`` also (forces eV/Å, stress eV/Å3 as a 3x3, ASE sign) of the final structure. With a list
    ``trajectory``, every ionic step is appended to it as a labelled frame (as VASP's vasprun.xml holds them)."""

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = chgnet_calculator()
    if steps > 0:
        target = FrechetCellFilter(atoms) if relax_cell else atoms
        opt = BFGS(target, logfile=None)
        if trajectory is not None:
            opt.attach(lambda: trajectory.append(_labelled(atoms, "relax", len(trajectory))), interval=1)
        opt.run(fmax=fmax, steps=steps)
    elif trajectory is not None:
        trajectory.append(_labelled(atoms, "static", 0))
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
        traj: list = []
        e, final, forces, stress = relax_chgnet(s, bool(self.get("relax_cell", False)), int(self.get("steps", 0)),
                                                float(self.get("fmax", DftCfg.fmax)), with_forces=True, trajectory=traj)
        dataset = write_extxyz(traj, Path.cwd() / "dataset.extxyz") if traj else None
        doc = {"label": self["label"], "engine": ENGINE_NAME, "kind": self.get("kind", "static"), "final_energy_eV": e,
               "n_atoms": len(final), "formula": final.composition.formula, "final_structure": final.as_dict(),
               "ionic_steps": [{"energy_eV": e, "forces_eV_A": forces, "stress_eV_A3": stress}],
               "metadata": self.get("metadata") or {}, "completed_at": datetime.now(timezone.utc),
               # keyed by its launch folder, as VASP's: a rerun or another study's same label never replaces it
               "directory": str(Path.cwd())}
        calc_id = store.put_calculation(store.database(fw_spec), doc)
        rec = EnergyResult(label=self["label"], energy_eV=e, engine=ENGINE_NAME, calc_id=str(calc_id),
                           n_atoms=len(final), kind=self.get("kind"), dataset=str(dataset) if dataset else None)
        return FWAction(stored_data=rec.to_dict(), **emit(rec))


#: stand-in MD: Langevin friction, 1/fs (VASP's AIMD is Nose-Hoover; a Langevin thermostat follows a ramp at once)
AIMD_FRICTION_PER_FS = 0.01


def aimd_chgnet(structure: Structure, t_begin: float, t_end: float, ps: float, timestep_fs: float, select: dict,
                config_type: str, seed: int = 0, progress=None) -> list[Atoms]:
    """The stand-in for a VASP AIMD run: CHGNet forces, ASE Langevin NVT with the temperature ramped linearly from
    ``t_begin`` to ``t_end`` over ``ps`` picoseconds (VASP's TEBEG -> TEEND), Maxwell-Boltzmann start at
    ``t_begin``. Returns the labelled frames that ``select`` keeps ({"even": n} | {"every": k}), as the VASP
    engine's parse keeps them from vasprun.xml."""
    nsw = math.ceil(ps * 1000.0 / timestep_fs - 1e-9)
    if "even" in select:
        keep = set(evenly_spaced(nsw, min(int(select["even"]), nsw)))
    else:
        keep = set(every_kth(nsw, int(select.get("every", 1))))
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = chgnet_calculator()
    MaxwellBoltzmannDistribution(atoms, temperature_K=t_begin, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=t_begin, friction=AIMD_FRICTION_PER_FS / units.fs,
                   rng=np.random.default_rng(seed + 1))
    frames = []
    for step in range(nsw):
        dyn.set_temperature(temperature_K=t_begin + (t_end - t_begin) * step / max(nsw - 1, 1))
        dyn.run(1)
        if step in keep:
            frames.append(_labelled(atoms, config_type, step, stress=False))  # as VASP's MD (ISIF 0): no stress
        if progress:
            progress(step + 1, nsw)
    return frames


@explicit_serialize
class ChgnetAimdTask(FiretaskBase):
    """AIMD stand-in (CHGNet, ASE Langevin; VASP's is Nose-Hoover): writes ``dataset.extxyz`` of the kept frames in
    the launch directory, stores a ``calculations`` document (engine "chgnet-standin", kind "aimd") and hands on an
    EnergyResult whose ``dataset`` is that file."""

    required_params = ["structure", "label", "t_begin", "t_end", "ps", "timestep_fs", "select"]
    optional_params = ["config_type", "seed"]

    def run_task(self, fw_spec):
        s = as_structure(self["structure"])
        frames = aimd_chgnet(s, float(self["t_begin"]), float(self["t_end"]), float(self["ps"]),
                             float(self["timestep_fs"]), dict(self["select"]), self.get("config_type") or self["label"],
                             seed=int(self.get("seed", 0)))
        dataset = write_extxyz(frames, Path.cwd() / "dataset.extxyz")
        last = frames[-1]
        final = AseAtomsAdaptor.get_structure(last)
        doc = {"label": self["label"], "engine": ENGINE_NAME, "kind": "aimd", "final_energy_eV": last.info["REF_energy"],
               "n_atoms": len(final), "formula": final.composition.formula, "final_structure": final.as_dict(),
               "ionic_steps": [{"energy_eV": last.info["REF_energy"], "forces_eV_A": last.arrays["REF_forces"],
                                "stress_eV_A3": None}],  # the last; every kept frame is in the dataset
               "ionic_steps_truncated": True,
               "directory": str(Path.cwd()), "dataset_file": str(dataset), "dataset_frames": len(frames),
               "md": {"t_begin_K": float(self["t_begin"]), "t_end_K": float(self["t_end"]), "ps": float(self["ps"]),
                      "timestep_fs": float(self["timestep_fs"]), "thermostat": "Langevin (stand-in)"},
               "completed_at": datetime.now(timezone.utc)}
        calc_id = store.put_calculation(store.database(fw_spec), doc)
        rec = EnergyResult(label=self["label"], energy_eV=float(last.info["REF_energy"]), engine=ENGINE_NAME,
                           calc_id=str(calc_id), n_atoms=len(final), kind="aimd", dataset=str(dataset))
        return FWAction(stored_data=rec.to_dict(), **emit(rec))


class ChgnetEngine:
    """The energy engine ``chgnet``: relaxations with BFGS (``cfg.dft.relax_steps``, ``cfg.dft.fmax``)."""
    name = "chgnet"

    def firework(self, cfg, structure: Structure, label: str, kind: str, stage: str, parents=None) -> Firework:
        steps = 0 if kind in ("static", "e0", "label") else cfg.dft.relax_steps
        task = ChgnetEnergyTask(structure=structure.as_dict(), label=label, relax_cell=kind == "relax-bulk",
                                steps=steps, fmax=cfg.dft.fmax, kind=kind)
        return Firework([task], name=f"{stage}:{label}", parents=parents, spec=stage_spec(stage))

    def aimd_firework(self, cfg, structure: Structure, label: str, stage: str, ramp: tuple[float, float], ps: float,
                      select: dict, system: str | None = None, kpoints: str = "auto", parents=None) -> Firework:
        """The stand-in of VASP's AIMD (time step as VASP's: 2 fs, 1 fs for interfaces; ``kpoints`` has no meaning
        here)."""
        task = ChgnetAimdTask(structure=structure.as_dict(), label=label, t_begin=float(ramp[0]), t_end=float(ramp[1]),
                              ps=float(ps), timestep_fs=aimd_potim(system), select=dict(select),
                              config_type=label)
        return Firework([task], name=f"{stage}:{label}", parents=parents, spec=stage_spec(stage))

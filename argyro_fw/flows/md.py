"""FireTasks of the MD stage: ASE BFGS pre-relaxation, and walltime-safe LAMMPS-MACE MD whose
run directory is persistent, so a rerun continues from the last restart file."""

from __future__ import annotations

from ase.optimize import BFGS
from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize
from pymatgen.io.ase import AseAtomsAdaptor

from .. import compat
from ..core.serialise import as_structure
from ..fwutils import env_chk
from ..md.model_check import check_model_covers
from ..md.protocol import MDProtocol
from ..md.runner import extend_run, read_protocol, run_md
from ..mlip.calculators import mace_calculator
from ..study.config import MlmdCfg
from ..study.outputs import MDTrajectory, RelaxedStructure, emit, read_all

compat.install()


def _atoms(obj):
    return AseAtomsAdaptor.get_atoms(as_structure(obj))


@explicit_serialize
class RelaxBFGSTask(FiretaskBase):
    """ASE BFGS with a MACE model until max force < fmax (0.04 eV/A, METHOD.md 6); pushes the
    relaxed structure to its child as a RelaxedStructure record."""

    required_params = ["structure", "model"]
    optional_params = ["fmax", "steps"]

    def run_task(self, fw_spec):
        atoms = _atoms(self["structure"])
        model = env_chk(self["model"], fw_spec, "model")
        check_model_covers(model, atoms.get_chemical_symbols())
        atoms.calc = mace_calculator(model)
        opt = BFGS(atoms, logfile="bfgs.log", trajectory="bfgs.traj")
        converged = opt.run(fmax=self.get("fmax", MlmdCfg.prerelax_fmax), steps=self.get("steps", MlmdCfg.prerelax_steps))
        s = AseAtomsAdaptor.get_structure(atoms)
        fmax = float((atoms.get_forces() ** 2).sum(axis=1).max() ** 0.5)
        return FWAction(stored_data={"converged": bool(converged), "fmax": fmax, "energy_eV": atoms.get_potential_energy()},
                        **emit(RelaxedStructure(structure=s.as_dict(), fmax_eV_A=fmax)))


@explicit_serialize
class RunLammpsMDTask(FiretaskBase):
    """LAMMPS-MACE MD in ``run_dir`` (absolute, persistent). structure: a Structure dict, or the
    parent's RelaxedStructure. engine: an MD engine of :mod:`argyro_fw.engines` (mliap: GPU, external: CPU).
    Hands on an MDTrajectory record."""

    required_params = ["run_dir", "model", "protocol"]
    optional_params = ["structure", "engine", "mliap_model", "lmp_binary", "max_segments", "extend_to_ns"]

    def run_task(self, fw_spec):
        if self.get("extend_to_ns"):  # continue a finished run of this run_dir to a longer NPT stage (METHOD.md 6)
            return self._extend(fw_spec)
        relaxed = read_all(fw_spec, RelaxedStructure)
        struct = self.get("structure") or (relaxed[-1].structure if relaxed else None)
        if struct is None:
            raise ValueError("RunLammpsMDTask: no structure and no RelaxedStructure from a parent")
        protocol = MDProtocol(**self["protocol"])
        res = run_md(self["run_dir"], _atoms(struct), protocol, env_chk(self["model"], fw_spec, "model"),
                     engine=self.get("engine", "external"), mliap_model=self.get("mliap_model"),
                     lmp_binary=self.get("lmp_binary", MlmdCfg.lmp_binary), max_segments=self.get("max_segments"))
        if not res["complete"]:
            # walltime-sized chunk done: run this firework again (same run_dir) to continue
            return FWAction(stored_data=res, detours=[Firework([self], name="md-continue", spec=fw_spec)])
        rec = MDTrajectory(path=res["trajectory"], frame_ps=protocol.dump_every * protocol.timestep_ps)
        return FWAction(stored_data=res, **emit(rec))

    def _extend(self, fw_spec):
        d = self["run_dir"]
        protocol = read_protocol(d)
        if protocol.npt_ns < float(self["extend_to_ns"]):
            protocol = extend_run(d, float(self["extend_to_ns"]))
        res = run_md(d, None, protocol, env_chk(self["model"], fw_spec, "model"), engine=self.get("engine", "external"),
                     mliap_model=self.get("mliap_model"), lmp_binary=self.get("lmp_binary", MlmdCfg.lmp_binary),
                     max_segments=self.get("max_segments"))
        if not res["complete"]:
            return FWAction(stored_data=res, detours=[Firework([self], name="md-continue", spec=fw_spec)])
        rec = MDTrajectory(path=res["trajectory"], frame_ps=protocol.dump_every * protocol.timestep_ps)
        return FWAction(stored_data=res, **emit(rec))

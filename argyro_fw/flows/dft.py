"""FireTasks of the DFT stage: write inputs -> run VASP under custodian -> parse into MongoDB.

Science is in :mod:`inputs`, :mod:`run`, :mod:`parse`, :mod:`dataset`; these tasks only move
data between the launch directory, the FireWorker env and the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize

from .. import compat, store
from ..core.serialise import as_structure, to_plain, write_atomic
from ..dft.dataset import evenly_spaced, every_kth, frames_from_result, write_extxyz
from ..dft.inputs import input_checksum, maker, render_inputs, write_inputs
from ..dft.parse import AIMD_PLAN, parse_aimd_dir, parse_vasp_dir, read_json
from ..dft.run import corrections, run_aimd, run_vasp, write_aimd_plan
from ..errors import ArgyroError
from ..fwutils import env_chk
from ..study.config import DftCfg
from ..study.outputs import EnergyResult, emit
from .stages import stage_spec

compat.install()

CORRECTIONS_FILE = "argyro_corrections.json"


@explicit_serialize
class WriteVaspInputs(FiretaskBase):
    """Write INCAR, KPOINTS, POSCAR (and POTCAR when configured or ``potcar: true``: from
    ``$ARGYRO_POTCAR_DIR``, which the vasp job exports from the site profile's ``potcar_dir``).

    structure: pymatgen Structure dict; kind: relax|static|aimd|label|e0; options: maker options.
    """

    required_params = ["structure", "kind"]
    optional_params = ["options", "potcar"]

    def run_task(self, fw_spec):
        structure = as_structure(self["structure"])  # FireWorks may already have deserialised the dict
        inp = maker(self["kind"], **(self.get("options") or {})).inputs(structure)
        checksum = input_checksum(render_inputs(inp))
        if self["kind"] == "aimd":
            # an AIMD run directory persists over reruns: a run already begun there keeps its (continued) inputs
            plan = read_json(Path.cwd() / AIMD_PLAN)
            if plan is not None:
                if plan.get("render_checksum") not in (None, checksum):
                    raise ArgyroError(f"{Path.cwd()} holds another AIMD run (other inputs): give this firework "
                                      "its own run directory or remove that one")
                return FWAction(stored_data={"input_checksum": checksum, "continuing": True})
        write_inputs(inp, Path.cwd(), potcar=self.get("potcar"))
        if self["kind"] == "aimd":
            write_aimd_plan(Path.cwd(), checksum)
        return FWAction(stored_data={"input_checksum": checksum})


@explicit_serialize
class RunVaspCustodian(FiretaskBase):
    """Run VASP under custodian. vasp_cmd defaults to the FireWorker env's ``>>vasp_cmd<<`` (the site's
    ``srun -n N vasp_std``, written by ``argyro init`` into my_fworker.vasp.yaml)."""

    required_params = ["kind"]
    optional_params = ["vasp_cmd", "max_errors", "polling_s"]

    def run_task(self, fw_spec):
        cmd = env_chk(self.get("vasp_cmd", DftCfg.vasp_cmd), fw_spec, "vasp_cmd")
        kw = {"max_errors": self.get("max_errors", 5), "polling_s": self.get("polling_s", DftCfg.polling_s)}
        if self["kind"] == "aimd":
            # a segment of a run cut by the walltime is continued, a complete run never run again (dft.run.run_aimd)
            log, state = run_aimd(Path.cwd(), cmd, **kw)
            corr = corrections(log)
            prev = Path(CORRECTIONS_FILE)
            if prev.exists():  # the corrections of the earlier segments are kept
                corr = json.loads(prev.read_text()) + to_plain(corr)
            if log or not prev.exists():
                write_atomic(prev, json.dumps(to_plain(corr)))
            return FWAction(stored_data={"custodian_corrections": to_plain(corr), "aimd": state})
        log = run_vasp(Path.cwd(), self["kind"], cmd, **kw)
        corr = corrections(log)
        write_atomic(Path(CORRECTIONS_FILE), json.dumps(to_plain(corr)))
        return FWAction(stored_data={"custodian_corrections": to_plain(corr)})


@explicit_serialize
class ParseVaspToDb(FiretaskBase):
    """Parse vasprun.xml into the ``calculations`` collection and a MACE extxyz dataset.

    kind, label (stored), config_type (dataset), select: {"every": k} | {"even": n} | None (all),
    metadata: extra fields for the document. The whole output is parsed before anything is
    written, and the document is written in one upsert (keyed by directory and input checksum).
    """

    required_params = ["kind"]
    optional_params = ["label", "config_type", "select", "metadata"]

    def run_task(self, fw_spec):
        # AIMD: the segments of a run cut by the walltime merge into one trajectory (dft.parse.parse_aimd_dir)
        result = parse_aimd_dir(Path.cwd()) if self["kind"] == "aimd" else parse_vasp_dir(Path.cwd())
        n = len(result.steps)
        sel = self.get("select") or {}
        if "every" in sel:
            idx = every_kth(n, int(sel["every"]))
        elif "even" in sel:
            idx = evenly_spaced(n, min(int(sel["even"]), n))
        else:
            idx = list(range(n))
        frames = frames_from_result(result, self.get("config_type", self["kind"]), idx)
        dataset = write_extxyz(frames, Path.cwd() / "dataset.extxyz")
        doc = result.to_doc()
        corr_file = Path(CORRECTIONS_FILE)
        doc.update(
            engine="vasp",
            kind=self["kind"],
            label=self.get("label"),
            metadata=self.get("metadata") or {},
            custodian_corrections=json.loads(corr_file.read_text()) if corr_file.exists() else [],
            dataset_file=str(dataset),
            dataset_frames=len(frames),
            fw_id=fw_spec.get("_fw_id") if isinstance(fw_spec, dict) else None,
        )
        if "segments" in result.extra:
            doc["aimd_segments"] = result.extra["segments"]
        calc_id = store.put_calculation(store.database(fw_spec), doc)
        rec = EnergyResult(label=self.get("label"), energy_eV=result.final_energy, engine="vasp", calc_id=str(calc_id),
                           n_atoms=doc["n_atoms"], kind=self["kind"], dataset=str(dataset))
        return FWAction(stored_data=rec.to_dict(), **emit(rec))


def vasp_firework(structure, kind: str, name: str | None = None, options: dict | None = None,
                  label: str | None = None, config_type: str | None = None, select: dict | None = None,
                  vasp_cmd: str = DftCfg.vasp_cmd, potcar: bool | None = None, polling_s: float = DftCfg.polling_s,
                  metadata: dict | None = None, parents=None, run_dir: str | None = None) -> Firework:
    """One firework: write inputs, run VASP under custodian, parse into MongoDB.

    ``run_dir``: a persistent run directory (FireWorks' ``_launch_dir``, absolute), which a rerun of the firework
    reuses; an AIMD run needs one to continue a segment cut by the walltime."""
    maker(kind, **(options or {}))  # validate options now, not on the cluster
    tasks = [
        WriteVaspInputs(structure=structure.as_dict(), kind=kind, options=options or {}, potcar=potcar),
        RunVaspCustodian(kind=kind, vasp_cmd=vasp_cmd, polling_s=polling_s),
        ParseVaspToDb(kind=kind, label=label or name, config_type=config_type or kind, select=select,
                      metadata=metadata or {}),
    ]
    # FireWorks joins a relative _launch_dir to the launcher's folder: an absolute one
    launch = {} if run_dir is None else {"_launch_dir": os.path.abspath(run_dir)}
    return Firework(tasks, name=name or f"vasp-{kind}-{structure.composition.reduced_formula}",
                    spec=stage_spec("dft", vasp_kind=kind, **launch), parents=parents)

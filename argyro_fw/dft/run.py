"""Run VASP through custodian with a handler set per calculation kind.

The VASP command comes from the site: the FireWorker env ``vasp_cmd`` that ``argyro init`` writes
from the site profile, ``srun -n <ranks> vasp_std`` (mpiexec on PBS). VASP is the site's own build
on the site's MPI, loaded by the vasp job's modules, never a binary inside argyro's image; the
Python around it (this module, custodian) runs in the host venv or in the container, as the
profile's ``run_in`` says (:mod:`argyro_fw.queue.profile`). Custodian watches vasp.out, applies its
corrections to the inputs and reruns. The corrections it made are returned, to be stored with the
calculation.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
from custodian import Custodian
from custodian.custodian import MaxCorrectionsError, MaxCorrectionsPerJobError, NonRecoverableError, ValidationError
from custodian.vasp.handlers import (
    NonConvergingErrorHandler,
    PotimErrorHandler,
    UnconvergedErrorHandler,
    VaspErrorHandler,
)
from custodian.vasp.jobs import VaspJob
from custodian.vasp.validators import VasprunXMLValidator
from pymatgen.io.vasp import Incar, Poscar

from ..core.serialise import write_atomic
from ..errors import ArgyroError
from ..study.config import DftCfg
from .parse import AIMD_DONE, AIMD_PLAN, SEGMENT_RECORD, inputs_checksum, read_json, segment_dirs, whole_steps


class VaspRunError(ArgyroError):
    """VASP failed in a way custodian could not correct."""


def handlers_for(kind: str) -> list:
    """Custodian error handlers for a calculation kind.

    relax: electronic errors, unconverged relaxations (continue from CONTCAR), non-converging
    SCF and POTIM problems; static/label/e0: electronic errors and unconverged SCF; aimd:
    electronic errors only (an MD run is never "unconverged" ionically).
    """
    if kind == "relax":
        return [VaspErrorHandler(), UnconvergedErrorHandler(), NonConvergingErrorHandler(), PotimErrorHandler()]
    if kind in ("static", "label", "e0"):
        return [VaspErrorHandler(), UnconvergedErrorHandler()]
    if kind == "aimd":
        return [VaspErrorHandler()]
    raise ArgyroError(f"VASP kind {kind!r}: no handler set")


def run_vasp(directory: str | Path, kind: str, vasp_cmd: str, max_errors: int = 5, polling_s: float = DftCfg.polling_s) -> list[dict]:
    """Run VASP in ``directory`` under custodian; return custodian's run log (with corrections).

    ``polling_s``: seconds between custodian's checks of the running process.
    Raises VaspRunError when custodian gives up or VASP's output does not validate.
    """
    d = Path(directory).resolve()
    if not (d / "INCAR").is_file():
        raise ArgyroError(f"{d}: no INCAR (write the inputs first)")
    cmd = shlex.split(vasp_cmd) if isinstance(vasp_cmd, str) else list(vasp_cmd)
    if not cmd:
        raise ArgyroError("vasp_cmd is empty: set it in the FireWorker env (vasp_cmd) or with --vasp-cmd")
    job = VaspJob(cmd, auto_npar=False, auto_gamma=False, backup=True, final=True)
    c = Custodian(handlers_for(kind), [job], validators=[VasprunXMLValidator()], max_errors=max_errors,
                  directory=str(d), gzipped_output=False, checkpoint=False, polling_time_step=polling_s,
                  monitor_freq=max(1, int(30 / max(polling_s, 1e-3))))
    cwd = os.getcwd()
    try:
        return c.run()
    except ValidationError:
        raise VaspRunError(f"VASP in {d} wrote no valid vasprun.xml (truncated, missing or crashed run)"
                           f"{_vasp_error(Path(d))}") from None
    except (MaxCorrectionsError, MaxCorrectionsPerJobError, NonRecoverableError) as exc:
        raise VaspRunError(f"VASP in {d} failed: {type(exc).__name__}: {exc}") from None
    finally:
        os.chdir(cwd)


def corrections(run_log: list[dict]) -> list[dict]:
    """The corrections of a custodian run log as plain dicts: errors seen and actions applied."""
    out = []
    for job in run_log:
        for corr in job.get("corrections", []):
            out.append({"errors": list(corr.get("errors", [])), "actions": corr.get("actions"),
                        "handler": type(corr.get("handler")).__name__ if corr.get("handler") is not None else None})
    return out


def _vasp_error(d: Path) -> str:
    """': <VASP's own ERROR line>' from vasp.out / std_err.txt, or '' (VASP explains a refusal there, not in
    vasprun.xml)."""
    for name in ("vasp.out", "std_err.txt"):
        f = d / name
        if not f.is_file():
            continue
        for line in f.read_text(errors="replace").splitlines():
            s = line.strip(" |\t")
            if "ERROR" in s.upper() and len(s) > 8:
                return f": {name} says {s[:200]!r}"
    return ""


# --- AIMD in segments: a run cut by the walltime continues where it stopped ---------------------------------------
#: what one VASP segment writes (VASP and custodian): moved to seg_<k>/ when the segment is archived
SEGMENT_OUTPUTS = ("vasprun.xml", "OUTCAR", "OSZICAR", "XDATCAR", "CONTCAR", "vasp.out", "std_err.txt", "custodian.json",
                   "IBZKPT", "EIGENVAL", "DOSCAR", "PCDAT", "REPORT", "CHG", "CHGCAR", "WAVECAR", "PROCAR", "vaspout.h5",
                   "STOPCAR", "INCAR.orig", "KPOINTS.orig", "POSCAR.orig", "POTCAR.orig")
#: a segment's inputs, copied beside its outputs (the run directory keeps them for the next segment)
SEGMENT_INPUTS = ("INCAR", "KPOINTS", "POSCAR")
#: output files whose presence says a segment has run (or started) in the directory
_RUN_SIGNS = ("vasprun.xml", "OSZICAR", "XDATCAR", "OUTCAR", "CONTCAR", "vasp.out")


def write_aimd_plan(directory: str | Path, render_checksum: str | None = None) -> dict:
    """Record the whole AIMD run as its inputs were first written (``directory``'s INCAR): NSW, TEBEG, TEEND,
    POTIM and the input checksums. Continuations change the INCAR and POSCAR; the plan stays."""
    d = Path(directory)
    inc = Incar.from_file(d / "INCAR")
    if int(inc.get("IBRION", -1)) != 0 or int(inc.get("NSW", 0)) < 1:
        raise ArgyroError(f"{d}: INCAR is not an MD run (IBRION {inc.get('IBRION')}, NSW {inc.get('NSW')})")
    tebeg = float(inc.get("TEBEG", 0.0))
    plan = {"nsw": int(inc["NSW"]), "tebeg": tebeg, "teend": float(inc.get("TEEND", tebeg)),
            "potim": float(inc.get("POTIM", 0.5)), "input_checksum": inputs_checksum(d),
            "render_checksum": render_checksum}
    write_atomic(d / AIMD_PLAN, json.dumps(plan, indent=1))
    return plan


def aimd_plan(directory: str | Path) -> dict:
    """The run's plan; written from the INCAR when missing (then no continuation has changed it yet)."""
    d = Path(directory)
    return read_json(d / AIMD_PLAN) or write_aimd_plan(d)


def aimd_complete(directory: str | Path) -> bool:
    return (Path(directory) / AIMD_DONE).is_file()


def _same_positions(a, b, atol: float = 1e-5) -> bool:
    if len(a) != len(b):
        return False
    diff = np.asarray(a.frac_coords) - np.asarray(b.frac_coords)
    return bool(np.abs(diff - np.round(diff)).max() < atol)


def _steps_to_keep(d: Path) -> tuple[int, int, str]:
    """(whole steps, steps to keep, file to continue from) of the cut segment in ``d``.

    Whole steps are vasprun.xml's closed ``<calculation>`` elements, the steps the parse reads. The CONTCAR of
    an MD step holds the positions and velocities where the next step starts; continuing from it keeps every
    whole step. A CONTCAR written before the last whole step (a kill between the step's output and the CONTCAR
    update) equals that step's positions: that step is then dropped here and computed again by the
    continuation (never doubled). Without a CONTCAR with velocities the segment restarts from its own POSCAR
    and keeps nothing."""
    steps, _ = whole_steps(d)
    contcar = d / "CONTCAR"
    try:
        cc = Poscar.from_file(contcar, check_for_potcar=False) if contcar.is_file() else None
    except Exception:  # noqa: BLE001 (half-written or empty, any parse error: not a point to continue from)
        cc = None
    if cc is None or cc.velocities is None:
        return len(steps), 0, "POSCAR"
    for j in range(len(steps) - 1, -1, -1):
        if _same_positions(cc.structure, steps[j].structure):
            return len(steps), j, "CONTCAR"
    return len(steps), len(steps), "CONTCAR"


def _archive_segment(d: Path, k: int, plan: dict) -> dict:
    """Move the cut segment's outputs from ``d`` to seg_<k>/ (copies of its inputs beside them) with its record.
    The move goes through seg_<k>.partial/, renamed when whole: a kill in between is undone by the next start."""
    whole, kept, start = _steps_to_keep(d)
    tmp = d / f"seg_{k}.partial"
    tmp.mkdir(exist_ok=True)
    for name in SEGMENT_INPUTS:
        if (d / name).is_file():
            shutil.copy2(d / name, tmp / name)
    inc = Incar.from_file(d / "INCAR")
    rec = {"steps_whole": whole, "steps_kept": kept, "continued_from": start, "nsw": int(inc.get("NSW", 0)),
           "tebeg": float(inc.get("TEBEG", plan["tebeg"]))}
    write_atomic(tmp / SEGMENT_RECORD, json.dumps(rec, indent=1))
    for p in list(d.iterdir()):
        if p.is_file() and (p.name in SEGMENT_OUTPUTS or (p.name.startswith("error.") and p.name.endswith(".tar.gz"))):
            os.replace(p, tmp / p.name)
    os.replace(tmp, d / f"seg_{k}")
    return rec


def _undo_partial(d: Path) -> None:
    """Put back the files of an archive that a kill interrupted (seg_<k>.partial/)."""
    for tmp in d.glob("seg_*.partial"):
        for p in tmp.iterdir():
            if (p.name in SEGMENT_OUTPUTS or p.name.startswith("error.")) and not (d / p.name).exists():
                os.replace(p, d / p.name)
        shutil.rmtree(tmp)


def continue_aimd(directory: str | Path) -> dict:
    """Before an AIMD segment runs in ``directory``: the state of the run, and the inputs of the next segment.

    - complete (the marker is there): nothing to do, ``{"complete": True}``;
    - outputs of a cut segment in the directory: they go to seg_<k>/ (:func:`_archive_segment`);
    - with archived segments: POSCAR becomes the last segment's CONTCAR (positions and velocity block), NSW the
      steps left (the plan's NSW minus the steps the segments keep) and TEBEG the ramp's target where the run
      stopped, TEBEG + (TEEND - TEBEG) * done / NSW (TEEND unchanged, so the ramp goes on as in one run);
    - no step left: the marker is written, ``{"complete": True}``.

    Returns {"complete", "done" (steps kept so far), "remaining", "segment" (index of the segment about to run)}.
    """
    d = Path(directory)
    plan = aimd_plan(d)
    if aimd_complete(d):
        return {"complete": True, "done": plan["nsw"], "remaining": 0, "segment": None}
    _undo_partial(d)
    segs = segment_dirs(d)
    if any((d / n).exists() for n in _RUN_SIGNS):
        _archive_segment(d, len(segs), plan)
        segs = segment_dirs(d)
    recs = [read_json(s / SEGMENT_RECORD) for s in segs]
    done = sum(int(r["steps_kept"]) for r in recs)
    remaining = int(plan["nsw"]) - done
    if remaining <= 0:
        _mark_done(d, plan, done)
        return {"complete": True, "done": done, "remaining": 0, "segment": None}
    if segs:
        last = segs[-1]
        src = last / ("CONTCAR" if recs[-1]["continued_from"] == "CONTCAR" else "POSCAR")
        shutil.copy2(src, d / "POSCAR")
        inc = Incar.from_file(d / "INCAR")
        t0, t1, n = plan["tebeg"], plan["teend"], plan["nsw"]
        inc["NSW"] = remaining
        inc["TEBEG"] = round(t0 + (t1 - t0) * done / n, 6)
        inc["TEEND"] = t1
        inc.write_file(d / "INCAR")
    return {"complete": False, "done": done, "remaining": remaining, "segment": len(segs)}


def _mark_done(d: Path, plan: dict, steps: int) -> None:
    write_atomic(d / AIMD_DONE, json.dumps({"steps": steps, "nsw": plan["nsw"],
                                            "segments": len(segment_dirs(d)) + (1 if (d / "vasprun.xml").exists() else 0)}))


def finish_aimd(directory: str | Path, state: dict) -> dict:
    """After a segment ran to its end under custodian: the marker when every step of the plan is on disk;
    a segment that stopped early (a STOPCAR) raises VaspRunError, and the next run continues it."""
    d = Path(directory)
    plan = aimd_plan(d)
    steps, _ = whole_steps(d)
    total = state["done"] + len(steps)
    if total < plan["nsw"]:
        raise VaspRunError(f"AIMD in {d} stopped after {total} of {plan['nsw']} steps; run the firework again to "
                           "continue from its CONTCAR")
    _mark_done(d, plan, total)
    return dict(state, complete=True, steps=total)


def run_aimd(directory: str | Path, vasp_cmd: str, max_errors: int = 5, polling_s: float = DftCfg.polling_s
             ) -> tuple[list[dict], dict]:
    """One AIMD segment in its persistent run directory: continue a cut run (:func:`continue_aimd`), run VASP
    under custodian for the steps left, mark the run complete. A complete run is never run again.
    Returns (custodian's run log, the run's state)."""
    state = continue_aimd(directory)
    if state["complete"]:
        return [], state
    log = run_vasp(directory, "aimd", vasp_cmd, max_errors=max_errors, polling_s=polling_s)
    return log, finish_aimd(directory, state)

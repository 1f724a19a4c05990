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

import os
import shlex
from pathlib import Path

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

from ..errors import ArgyroError
from ..study.config import DftCfg


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
        raise VaspRunError(f"VASP in {d} wrote no valid vasprun.xml (truncated, missing or crashed run)") from None
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

#!/usr/bin/env python3
"""A stand-in for the VASP executable (VASP is licensed and cannot run here).

It does what VASP does at the file boundary: reads the inputs in the current folder and writes
vasp.out, OUTCAR and vasprun.xml. The outputs are copied from a real VASP run
($FAKE_VASP_SOURCE, default ../shared/data/vasp/Al-relax). With $FAKE_VASP_FAIL_ONCE=pricel it
first prints VASP's PRICEL error (as VASP does) unless custodian has already set SYMPREC in the
INCAR; with $FAKE_VASP_TRUNCATE=1 it writes a truncated vasprun.xml (a crashed run).

Started by an MPI launcher (``srun -n N``, mpirun), every rank writes fake_vasp.rank<R> (rank, number
of ranks, Slurm job and step, host) from the launcher's environment (SLURM_PROCID and
SLURM_STEP_NUM_TASKS of an srun step, PMI, Open MPI), as VASP's ranks would all start; rank 0 alone writes the outputs, and vasp.out says
"running on N total cores" as VASP does.
"""

import gzip
import os
import shutil
import socket
import sys
from pathlib import Path


def _env_int(*names: str, default: int) -> int:
    for n in names:
        if os.environ.get(n, "").strip().isdigit():
            return int(os.environ[n])
    return default


rank = _env_int("SLURM_PROCID", "PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", default=0)
# the step's tasks (srun), not the job's SLURM_NTASKS, which a binary started without srun sees too
size = _env_int("SLURM_STEP_NUM_TASKS", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", default=1)
Path(f"fake_vasp.rank{rank}").write_text(
    f"rank={rank} size={size} job={os.environ.get('SLURM_JOB_ID', '')} step={os.environ.get('SLURM_STEP_ID', '')} "
    f"host={socket.gethostname()}\n")
if rank != 0:
    sys.exit(0)

src = Path(os.environ.get("FAKE_VASP_SOURCE", Path(__file__).resolve().parents[3] / "shared/data/vasp/Al-relax"))
incar = Path("INCAR").read_text()
log = open("vasp.out", "w")
log.write(f" running on {size:4d} total cores\n vasp.5.4.4 (stand-in)\n")
if os.environ.get("FAKE_VASP_FAIL_ONCE") == "pricel" and "SYMPREC" not in incar:
    log.write(" internal error in subroutine PRICEL (probably precision problem, try to change SYMPREC in INCAR ?)\n")
    log.close()
    sys.exit(0)
with gzip.open(src / "vasprun.xml.gz", "rb") as fin:
    data = fin.read()
if os.environ.get("FAKE_VASP_TRUNCATE"):
    data = data[: len(data) // 2]
Path("vasprun.xml").write_bytes(data)
shutil.copy(src / "OUTCAR", "OUTCAR")
shutil.copy(src / "POSCAR", "CONTCAR")
log.write(" reached required accuracy - stopping structural energy minimisation\n")
log.close()

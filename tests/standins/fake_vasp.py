#!/usr/bin/env python3
"""A stand-in for the VASP executable (VASP is licensed and cannot run here).

It does what VASP does at the file boundary: reads the inputs in the current folder and writes
vasp.out, OUTCAR and vasprun.xml. The outputs are copied from a real VASP run
($FAKE_VASP_SOURCE, default ../shared/data/vasp/Al-relax). With $FAKE_VASP_FAIL_ONCE=pricel it
first prints VASP's PRICEL error (as VASP does) unless custodian has already set SYMPREC in the
INCAR; with $FAKE_VASP_TRUNCATE=1 it writes a truncated vasprun.xml (a crashed run).
"""

import gzip
import os
import shutil
import sys
from pathlib import Path

src = Path(os.environ.get("FAKE_VASP_SOURCE", Path(__file__).resolve().parents[3] / "shared/data/vasp/Al-relax"))
incar = Path("INCAR").read_text()
log = open("vasp.out", "w")
log.write(" running on    1 total cores\n vasp.5.4.4 (stand-in)\n")
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

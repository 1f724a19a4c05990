"""The stand-ins of argyro (``vasp_std``: argyro_fw/standins/vasp.py, ``lmp``: argyro_fw/standins/lmp.py), unchanged,
slowed down by a sleep after every MD step while the file named by ``$ARGYRO_TEST_SLOW_FLAG`` exists (the sleep:
``$ARGYRO_TEST_SLOW_S`` seconds). tests/test_slurm_timelimit.py uses them so that a short MD outlasts Slurm's shortest
time limit (1 minute) whatever the load of the machine, as a real VASP or LAMMPS step is slow, and the continuation
after the flag is removed runs at full speed. The numbers are the stand-ins' own: the sleep changes only the timing.

    python throttled.py vasp [ARGS]     # the vasp_std stand-in
    python throttled.py lmp ARGS        # the lmp stand-in
"""

from __future__ import annotations

import os
import sys
import time


def _pause() -> None:
    flag = os.environ.get("ARGYRO_TEST_SLOW_FLAG")
    if flag and os.path.exists(flag):
        time.sleep(float(os.environ.get("ARGYRO_TEST_SLOW_S", "1")))


def vasp(argv: list[str]) -> int:
    from argyro_fw.standins import vasp as standin

    step = standin.Writer.step

    def slowed(self, *args, **kwargs):  # after the step's output is on disk (XDATCAR, vasprun.xml, CONTCAR)
        step(self, *args, **kwargs)
        _pause()

    standin.Writer.step = slowed
    return standin.main(argv)


def lmp(argv: list[str]) -> int:
    from argyro_fw.standins import lmp as standin

    forces = standin.StandIn._forces

    def slowed(self, *args):  # the fix external callback: once per MD step
        forces(self, *args)
        _pause()

    standin.StandIn._forces = slowed
    return standin.main(argv)


if __name__ == "__main__":
    sys.exit({"vasp": vasp, "lmp": lmp}[sys.argv[1]](sys.argv[2:]))

"""The MD engines behind one interface: each runs one segment's LAMMPS input in its folder.

- :class:`MliapEngine` (``mliap``): the production path, LAMMPS with KOKKOS + ML-IAP on a GPU
  (``pair_style mliap unified MODEL-mliap_lammps.pt 0``), run as a subprocess.
- :class:`FixExternalEngine` (``external``): LAMMPS integrates on the CPU while a Python callback of
  ``fix external`` sets MACE forces, energy and virial (tests, demo, small cells).

Both render the same protocol (:func:`argyro_fw.md.protocol.render_input`); ``name`` selects the
template's force-field block.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import ArgyroError
from ..mlip.calculators import mace_calculator
from ..study.config import MlmdCfg
from .external import run_external
from .protocol import gpu_command


def mliap_path(model: str | Path) -> str:
    """The file ``mace_create_lammps_model MODEL --format=mliap`` writes: ``MODEL-mliap_lammps.pt``
    next to MODEL (e.g. ``final.model-mliap_lammps.pt``)."""
    return f"{model}-mliap_lammps.pt"


class MliapEngine:
    """LAMMPS ML-IAP (GPU): ``lmp -k on g 1 -sf kk ... -in in.lammps`` in the segment folder."""
    name = "mliap"

    def __init__(self, model: str | Path, mliap_model: str | None = None, lmp_binary: str = MlmdCfg.lmp_binary, **_):
        self.model = str(model)
        self.mliap_model = mliap_model or mliap_path(model)
        self.lmp_binary = lmp_binary

    def run_segment(self, seg: Path, protocol) -> None:
        proc = subprocess.run(gpu_command(str(seg / "in.lammps"), self.lmp_binary), cwd=seg)
        if proc.returncode != 0:
            raise ArgyroError(f"LAMMPS failed in {seg} (exit {proc.returncode}); see {seg / 'log.lammps'}")


class FixExternalEngine:
    """LAMMPS (Python module) + ``fix external`` with a MACE ASE calculator (CPU)."""
    name = "external"
    mliap_model = None

    def __init__(self, model: str | Path, **_):
        self.model = str(model)
        self._calc = None

    def run_segment(self, seg: Path, protocol) -> None:
        if self._calc is None:
            self._calc = mace_calculator(self.model)  # the CPU engine
        lmp, _ = run_external((seg / "in.lammps").read_text(), self._calc, protocol.elements, str(seg / "log.lammps"))
        lmp.close()

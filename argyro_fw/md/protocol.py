"""The MD protocol of METHOD.md section 6 as a dataclass, and its rendering into a LAMMPS input.

Defaults: 1 fs time step (0.001 ps in metal units), NVT Nose-Hoover 10 ps with Tdamp 100 fs
(0.1), then NPT Nose-Hoover at 1 bar with Pdamp 1000 fs (1.0), ``aniso`` (``tri`` optional).
The trajectory is a LAMMPS text dump ``id type xu yu zu`` (unwrapped, sorted by id, 6 decimals):
argyro's numpy reader parses it at thousands of frames/s, it appends safely across restarts, and
every LAMMPS build writes it (no optional package).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ase.data import atomic_masses, atomic_numbers

from .. import engines
from ..core.chemistry import ELEMENTS
from ..errors import ArgyroError
from ..study.config import MlmdCfg
from ..templating import render

ENGINES = tuple(engines.MD)
BAROSTATS = ("aniso", "tri", "iso")


@dataclass
class MDProtocol:
    temperature: float = 400.0  # K
    npt_ns: float = MlmdCfg.npt_ns  # NPT duration after the NVT stage, ns
    nvt_ps: float = MlmdCfg.nvt_ps  # NVT equilibration, ps
    timestep_ps: float = 0.001  # 1 fs
    tdamp_ps: float = 0.1  # 100 fs
    pdamp_ps: float = 1.0  # 1000 fs
    pressure_bar: float = 1.0
    barostat: str = "aniso"
    dump_every: int = MlmdCfg.dump_every  # steps (0.1 ps)
    thermo_every: int = MlmdCfg.dump_every
    restart_every: int = MlmdCfg.restart_every  # steps
    seed: int = 4928459
    elements: list[str] = field(default_factory=lambda: list(ELEMENTS))  # LAMMPS types 1..n

    def __post_init__(self):
        for k in ("temperature", "npt_ns", "nvt_ps", "timestep_ps", "tdamp_ps", "pdamp_ps", "pressure_bar"):
            setattr(self, k, float(getattr(self, k)))
        if self.temperature <= 0:
            raise ArgyroError(f"temperature must be > 0 K, got {self.temperature}")
        if self.npt_ns < 0 or self.nvt_ps < 0 or self.timestep_ps <= 0:
            raise ArgyroError("durations must be >= 0 and the time step > 0")
        if self.barostat not in BAROSTATS:
            raise ArgyroError(f"barostat {self.barostat!r}: expected one of {', '.join(BAROSTATS)}")
        for k in ("dump_every", "thermo_every", "restart_every"):
            if getattr(self, k) < 1:
                raise ArgyroError(f"{k} must be >= 1")
        if self.restart_every % self.dump_every:
            raise ArgyroError(f"restart_every ({self.restart_every}) must be a multiple of dump_every ({self.dump_every}) "
                              "so that a continued run dumps the frame it restarts from")

    @property
    def nvt_steps(self) -> int:
        return int(round(self.nvt_ps / self.timestep_ps))

    @property
    def total_steps(self) -> int:
        return self.nvt_steps + int(round(self.npt_ns * 1000.0 / self.timestep_ps))

    def phases(self, start_step: int) -> list[dict]:
        """The phases still to run from ``start_step`` (a restart's step), with their end steps."""
        out = []
        if start_step < self.nvt_steps:
            out.append({"name": "nvt", "end_step": self.nvt_steps})
        if self.total_steps > self.nvt_steps and start_step < self.total_steps:
            out.append({"name": "npt", "end_step": self.total_steps})
        return out

    def n_frames(self) -> int:
        """Frames in the merged trajectory: steps 0, dump_every, ... <= total_steps."""
        return self.total_steps // self.dump_every + 1

    def to_dict(self) -> dict:
        return asdict(self)


def render_input(p: MDProtocol, engine: str, data_file: str, dump_file: str, restart_prefix: str,
                 restart_file: str | None = None, start_step: int = 0, mliap_model: str | None = None,
                 comment: str = "") -> str:
    """The LAMMPS input for one segment (from ``data_file`` or from ``restart_file`` at ``start_step``)."""
    if engine not in ENGINES:
        raise ArgyroError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if engine == "mliap" and not mliap_model:
        raise ArgyroError("the mliap engine needs the converted model (<model>-mliap_lammps.pt)")
    masses = [{"type": k + 1, "mass": f"{atomic_masses[atomic_numbers[el]]:.4f}"} for k, el in enumerate(p.elements)]
    return render("lammps/in.md.j2", engine=engine, comment=comment or f"T = {p.temperature} K",
                  nvt_ps=p.nvt_ps, pressure_bar=p.pressure_bar, barostat=p.barostat, total_steps=p.total_steps,
                  timestep_ps=p.timestep_ps, timestep_fs=p.timestep_ps * 1000, restart_file=restart_file,
                  data_file=data_file, masses=masses, mliap_model=mliap_model or "", elements=" ".join(p.elements),
                  zero_cutoff=1.0, thermo_every=p.thermo_every, temperature=p.temperature, seed=p.seed,
                  dump_every=p.dump_every, dump_file=dump_file, restart_every=p.restart_every,
                  restart_prefix=restart_prefix, phases=p.phases(start_step), tdamp_ps=p.tdamp_ps, pdamp_ps=p.pdamp_ps)


def gpu_command(input_file: str, lmp: str = "lmp") -> list[str]:
    """The LAMMPS command line of the GPU (KOKKOS + ML-IAP) path."""
    return [lmp, "-k", "on", "g", "1", "-sf", "kk", "-pk", "kokkos", "newton", "on", "neigh", "half", "-in", input_file]

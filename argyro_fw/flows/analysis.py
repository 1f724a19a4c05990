"""FireTasks of the analysis stage: trajectory -> HDF5 (+ PNG) -> summary in ``analyses``."""

from __future__ import annotations

from pathlib import Path

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize

from .. import compat, store
from ..analysis.pipeline import AnalysisOptions, analyze_trajectory
from ..analysis.plots import plot_h5
from ..md.runner import read_protocol
from ..study.outputs import AnalysisRef, MDTrajectory, emit, read_last
from .stages import stage_spec

compat.install()


@explicit_serialize
class AnalyzeTrajectoryTask(FiretaskBase):
    """Analyse a trajectory: ``trajectory`` (a path) or, when absent, the MDTrajectory record of the
    parent MD firework. Writes analysis.h5 and plots/ in the launch dir.

    Optional: fmt, type_map, timestep_ps, stride, membranes {name: frac}, interface, temperature_K,
    nvt_ps (membranes placed on the frame that ends the NVT equilibration; without it: the nvt_ps of
    the MD run directory's protocol.json next to the trajectory, else 0), flux_windows {name: [t0_ns, t1_ns]}
    (default: the study config's analysis.flux_windows).
    """

    optional_params = ["trajectory", "fmt", "type_map", "timestep_ps", "stride", "membranes", "interface",
                       "temperature_K", "h5_name", "nvt_ps", "flux_windows"]

    def run_task(self, fw_spec):
        traj, frame_ps = self.get("trajectory"), self.get("timestep_ps")
        if not traj:
            md = read_last(fw_spec, MDTrajectory, "analysis (no 'trajectory' parameter)")
            traj, frame_ps = md.path, frame_ps or md.frame_ps
        nvt_ps = self.get("nvt_ps")
        if nvt_ps is None and (Path(traj).parent / "protocol.json").is_file():
            nvt_ps = read_protocol(Path(traj).parent).nvt_ps
        extra = {"flux_windows": dict(self["flux_windows"])} if self.get("flux_windows") is not None else {}
        opts = AnalysisOptions(timestep_ps=frame_ps or 0.1,
                               stride=self.get("stride", 1), fmt=self.get("fmt"), type_map=self.get("type_map"),
                               membranes=self.get("membranes") or {}, progress=False, nvt_ps=float(nvt_ps or 0.0),
                               **extra)
        h5 = Path.cwd() / self.get("h5_name", "analysis.h5")
        summary = analyze_trajectory(traj, h5, opts)
        pngs = plot_h5(h5, Path.cwd() / "plots")
        doc_id = store.put_analysis(store.database(fw_spec), summary, h5, traj, interface=self.get("interface"),
                                    temperature_K=self.get("temperature_K"), extra={"plots": [str(p) for p in pngs]})
        rec = AnalysisRef(h5=str(h5), analysis_id=str(doc_id))
        return FWAction(stored_data=rec.to_dict(), **emit(rec))


def analysis_firework(trajectory: str | None = None, name: str = "analysis", parents=None, **params) -> Firework:
    task = AnalyzeTrajectoryTask(trajectory=trajectory, **params) if trajectory else AnalyzeTrajectoryTask(**params)
    return Firework([task], name=name, parents=parents, spec=stage_spec("analysis"))

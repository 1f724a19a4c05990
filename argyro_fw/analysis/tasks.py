"""FireTasks of the analysis stage: trajectory -> HDF5 (+ PNG) -> summary in ``analyses``."""

from __future__ import annotations

from pathlib import Path

from fireworks import FiretaskBase, Firework, FWAction, explicit_serialize

from .. import compat
from ..db.results import results_db
from .pipeline import AnalysisOptions, analyze_trajectory
from .plots import plot_h5
from .store import store_summary

compat.install()


@explicit_serialize
class AnalyzeTrajectoryTask(FiretaskBase):
    """Analyse a trajectory: ``trajectory`` (a path) or, when absent, the ``md_trajectory`` an MD
    firework pushed into this firework's spec. Writes analysis.h5 and plots/ in the launch dir.

    Optional: fmt, type_map, timestep_ps, stride, membranes {name: frac}, interface, temperature_K.
    """

    optional_params = ["trajectory", "fmt", "type_map", "timestep_ps", "stride", "membranes", "interface",
                       "temperature_K", "h5_name"]

    def run_task(self, fw_spec):
        traj = self.get("trajectory") or fw_spec.get("md_trajectory")
        if not traj:
            raise ValueError("AnalyzeTrajectoryTask: no 'trajectory' parameter and no md_trajectory in the spec")
        if isinstance(traj, list):  # pushed by a parent MD firework
            traj = traj[-1]
        opts = AnalysisOptions(timestep_ps=self.get("timestep_ps", fw_spec.get("md_frame_ps", 0.1)),
                               stride=self.get("stride", 1), fmt=self.get("fmt"), type_map=self.get("type_map"),
                               membranes=self.get("membranes") or {}, progress=False)
        h5 = Path.cwd() / self.get("h5_name", "analysis.h5")
        summary = analyze_trajectory(traj, h5, opts)
        pngs = plot_h5(h5, Path.cwd() / "plots")
        doc_id = store_summary(results_db(fw_spec), summary, h5, traj, interface=self.get("interface"),
                               temperature_K=self.get("temperature_K"), extra={"plots": [str(p) for p in pngs]})
        return FWAction(stored_data={"analysis_id": str(doc_id), "h5": str(h5)},
                        mod_spec=[{"_push": {"analyses": {"h5": str(h5), "analysis_id": str(doc_id)}}}])


def analysis_firework(trajectory: str | None = None, name: str = "analysis", parents=None, **params) -> Firework:
    task = AnalyzeTrajectoryTask(trajectory=trajectory, **params) if trajectory else AnalyzeTrajectoryTask(**params)
    return Firework([task], name=name, parents=parents, spec={"argyro_stage": "analysis"})

"""Every firework stage of the study, the kind of job each needs, and the spec that says so.

Every Firework argyro builds gets its spec from :func:`stage_spec`, fireworks added at run time
(FWAction additions and detours) included. The spec carries FireWorks' own ``_category``: the job
kind of the stage. ``argyro init`` writes one FireWorker (``category: <kind>``) and one queue
adapter per kind from the site profile (``jobs:`` in sites/*.yaml: nodes, MPI ranks, CPUs, GPUs,
walltime, partition, host venv or container; :mod:`argyro_fw.queue.profile`), so a job of kind K
only ever runs fireworks of kind K, in reserved and non-reserved ``qlaunch`` alike.
"""

from __future__ import annotations

#: the kinds of job a site profile sizes
JOB_KINDS: tuple[str, ...] = ("vasp", "mace-train", "mlip-md", "lammps-md", "analysis")

#: stage (spec ``argyro_stage``) -> job kind
STAGES: dict[str, str] = {
    "dft": "vasp", "bulk-dft": "vasp", "phase-dft": "vasp", "e0-dft": "vasp", "surface-dft": "vasp",
    "interface-dft": "vasp", "al-label": "vasp", "aimd": "vasp",
    "mlip-foundation": "mace-train", "al-train": "mace-train", "mlip-final": "mace-train",
    "al-explore": "mlip-md", "al-select": "mlip-md", "md-prerelax": "mlip-md",
    "md": "lammps-md", "bulk-md": "lammps-md",
    "bulk-choose": "analysis", "surface-rank": "analysis", "interface-strain": "analysis", "interface-energy": "analysis",
    "al-collect": "analysis",
    "analysis": "analysis", "diffusion": "analysis", "arrhenius": "analysis", "summary": "analysis",
    "aimd-validation": "analysis", "bulk-model": "analysis",
}


def stage_spec(stage: str, **extra) -> dict:
    """The spec of a firework of ``stage`` (plus ``extra`` keys)."""
    if stage not in STAGES:
        raise ValueError(f"unknown firework stage {stage!r} (known: {', '.join(sorted(STAGES))})")
    return {"argyro_stage": stage, "_category": STAGES[stage], **extra}

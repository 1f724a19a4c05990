"""argyro: the Li-metal | Li6PS5Cl interface study as FireWorks workflows.

Science lives in pure functions (structures, dft, analysis, ...) that run without a database;
orchestration (FireTasks, LaunchPad, embedded MongoDB) lives in ``db``, ``launchpad`` and the
``*_tasks`` modules.
"""

__version__ = "0.1.0"

"""argyro: the Li-metal | Li6PS5Cl interface study as FireWorks workflows.

Science lives in pure modules (``structures``, ``dft``, ``mlip``, ``md``, ``analysis``, ``study``) that
run without a database and import neither FireWorks nor pymongo; orchestration lives in ``flows``
(FireTasks), ``store`` (the results database), ``engines`` (the engine registry), ``db``, ``queue``
and ``cli``; ``core`` holds chemistry constants and serialisation; ``demo`` the stand-ins.
"""

__version__ = "0.1.0"

"""The demo: the study in miniature and the stand-ins it runs on (nothing outside this package imports it;
the engine registry, :mod:`argyro_fw.engines`, names the stand-ins by import path).

- :mod:`.chgnet`: the CHGNet energy engine and calculator (pretrained weights ship in the wheel), the
  offline stand-in for VASP energies and labels;
- :mod:`.toy`: a tiny MACE "foundation" model trained on LJ-labelled frames, and the LJ labeller;
- :mod:`.tasks`: the FireTask that trains the toy foundation model inside a study;
- :mod:`.run`: ``argyro demo`` (embedded database, the study of configs/demo.yaml, progress, results).
"""

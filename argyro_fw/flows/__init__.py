"""Orchestration: the FireTasks and Firework builders of every stage (thin: read typed records, call the
science modules, hand on typed records and write store documents).

- :mod:`.dft`: VASP inputs -> custodian -> parse; :mod:`.energy`: an energy firework of any engine;
- :mod:`.structures`: build and store structures; :mod:`.al`: the active-learning loop;
- :mod:`.md`: pre-relaxation and LAMMPS MD; :mod:`.analysis`: trajectory analysis;
- :mod:`.study`: the study's DAG and its deciding fireworks.
"""

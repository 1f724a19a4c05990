"""DFT stage (METHOD.md section 4): VASP inputs, running VASP through custodian, parsing outputs.

Pure functions and small dataclass makers; the FireTasks live in :mod:`argyro_fw.flows.dft`.
"""

"""MD stage (METHOD.md sections 1 and 6): LAMMPS-MACE runs, GPU (ML-IAP) and CPU (fix external)."""

"""Analysis stage (METHOD.md sections 1 and 7): pure functions on numpy arrays and ASE/pymatgen
objects, a streaming pipeline to HDF5, kinisi diffusion/conductivity and Arrhenius fits, plots.

Units: lengths Angstrom, time ps (ns where named), D cm^2/s, sigma S/cm, flux atoms/nm^2/ns.
"""

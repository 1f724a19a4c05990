"""Stand-ins for the executables a cluster provides (``vasp_std``, ``lmp``), used only by the rehearsal of the
production path (issue 16) and by the tests; never imported by study code.

Each stand-in reads the same inputs as the real program, refuses what the real program refuses (with a
message like its own and a non-zero exit status) and writes the real program's output files in their real
formats, so that argyro's unmodified code paths (custodian, pymatgen, the trajectory readers) run against
them. The numbers are not the real program's: see each module's docstring for what it computes.
"""

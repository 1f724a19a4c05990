"""The study's chemistry facts, defined once (METHOD.md sections 1-2 and 4).

Every module that needs the elements, formal charges, the experimental lattice constant or the
reference phases imports them from here.
"""

from __future__ import annotations

#: the study's elements, in the order used for LAMMPS types, POTCARs and sorted structures
ELEMENTS: tuple[str, ...] = ("Li", "P", "S", "Cl")

#: formal charges (METHOD.md 2): Li +1, P +5, S -2, Cl -1
FORMAL_CHARGE: dict[str, int] = {"Li": 1, "P": 5, "S": -2, "Cl": -1}

#: Li6PS5Cl, F-43m: experimental cubic lattice constant, Å (the DFT relaxation starts here)
A_EXP: float = 9.859
#: the argyrodite's reduced formula (surfaces and interfaces are cut from it)
ARGYRODITE: str = "Li6PS5Cl"
#: atoms in the conventional Li6PS5Cl cell (4 formula units of 13 atoms)
ARGYRODITE_CELL_ATOMS: int = 52
#: formula units of Li6PS5Cl in the conventional cell
ARGYRODITE_FU: int = 4

#: bcc Li lattice constant, Å (PBE; 3.51 experiment)
LI_A_PBE: float = 3.44

#: reference phases of the chemical potentials (METHOD.md 2): element counts per formula unit
REFERENCE_PHASES: dict[str, dict[str, int]] = {
    "Li6PS5Cl": {"Li": 6, "P": 1, "S": 5, "Cl": 1},
    "Li3P": {"Li": 3, "P": 1},
    "Li2S": {"Li": 2, "S": 1},
    "LiCl": {"Li": 1, "Cl": 1},
}

#: the decomposition/reference phases computed by the study (names of structures.phases.PHASES)
PHASE_NAMES: tuple[str, ...] = ("li", "li2s", "licl", "li3p")
#: formula units per conventional cell of each reference phase (the cells of structures.phases)
PHASE_FU: dict[str, int] = {"li": 2, "li2s": 4, "licl": 4, "li3p": 2}
#: the formula of each phase name
PHASE_FORMULA: dict[str, str] = {"li": "Li", "li2s": "Li2S", "licl": "LiCl", "li3p": "Li3P"}

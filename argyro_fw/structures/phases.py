"""Bulk phases built offline from crystal facts (METHOD.md section 1); lattice constants in Angstrom."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from ..core.chemistry import LI_A_PBE
from ..errors import ArgyroError


def bcc_li(a: float = LI_A_PBE) -> Structure:
    """bcc Li, Im-3m (a 3.44 PBE, 3.51 exp.); conventional cell, 2 atoms."""
    return Structure.from_spacegroup("Im-3m", Lattice.cubic(a), ["Li"], [[0, 0, 0]])


def li2s(a: float = 5.70) -> Structure:
    """Li2S, antifluorite Fm-3m; conventional cell, Li8 S4."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "S"], [[0.25, 0.25, 0.25], [0, 0, 0]])


def licl(a: float = 5.13) -> Structure:
    """LiCl, rocksalt Fm-3m; conventional cell, Li4 Cl4."""
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Li", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def li3p(a: float = 4.27, c: float = 7.59, z_li4f: float = 0.583) -> Structure:
    """Li3P, P6_3/mmc (Na3As type): P 2c, Li 2b and 4f (z = 0.583); Li6 P2."""
    return Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(a, c), ["P", "Li", "Li"],
                                     [[1 / 3, 2 / 3, 0.25], [0, 0, 0.25], [1 / 3, 2 / 3, z_li4f]])


PHASES = {"li": bcc_li, "li2s": li2s, "licl": licl, "li3p": li3p}


def phase(name: str, supercell: tuple[int, int, int] | None = None) -> Structure:
    if name not in PHASES:
        raise ArgyroError(f"phase {name!r}: expected one of {', '.join(PHASES)}")
    s = PHASES[name]()
    if supercell:
        s.make_supercell(list(supercell))
    return s

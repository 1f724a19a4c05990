"""Charge balancing (METHOD.md section 3): delete the minimum number of atoms that makes the
formal charge zero; enumerate which atoms, keep the symmetry-distinct choices, rank by energy.

The default energy is the Ewald energy with formal charges (eV); any callable
``energy(structure) -> float`` may be passed, e.g. an ASE calculator through
:func:`ase_energy`. The enumeration is capped (``max_candidates`` combinations tried, the cap is
reported) so it stays finite on large cells.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from ..errors import ArgyroError
from .charges import FORMAL_CHARGE, formal_charge


@dataclass
class BalanceResult:
    removal: dict[str, int]  # element -> atoms removed
    n_removed: int
    candidates: list[dict]  # ranked: structure, removed_indices, energy_eV, multiplicity
    combinations_total: int
    combinations_tried: int
    capped: bool


def minimal_removal(counts: dict[str, int], charge: int, max_atoms: int = 12) -> dict[str, int]:
    """The fewest atoms (by element) whose formal charges sum to ``charge``.

    Ties are broken towards removing fewer distinct elements, then by element order Li, P, S, Cl.
    Raises ArgyroError if no removal of <= ``max_atoms`` atoms works.
    """
    if charge == 0:
        return {}
    els = [el for el in FORMAL_CHARGE if counts.get(el, 0) > 0 and FORMAL_CHARGE[el] * charge > 0]
    best = None
    for total in range(1, max_atoms + 1):
        for combo in itertools.combinations_with_replacement(els, total):
            c = Counter(combo)
            if any(c[el] > counts.get(el, 0) for el in c):
                continue
            if sum(FORMAL_CHARGE[el] * n for el, n in c.items()) == charge:
                key = (len(c), [list(FORMAL_CHARGE).index(e) for e in sorted(c, key=list(FORMAL_CHARGE).index)])
                if best is None or key < best[0]:
                    best = (key, dict(c))
        if best:
            return best[1]
    raise ArgyroError(f"composition {dict(counts)} with formal charge {charge:+d}: no removal of <= {max_atoms} atoms "
                      "makes it neutral")


def ewald_energy(structure: Structure) -> float:
    s = structure.copy()
    s.add_oxidation_state_by_element(FORMAL_CHARGE)
    return float(EwaldSummation(s).total_energy)


def ase_energy(calculator) -> Callable[[Structure], float]:
    """An energy function (eV) from any ASE calculator (e.g. an MLIP)."""
    def energy(structure: Structure) -> float:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        return float(atoms.get_potential_energy())

    return energy


def balance(structure: Structure, energy: Callable[[Structure], float] | None = None, max_candidates: int = 500,
            max_atoms: int = 12) -> BalanceResult:
    """Neutralise ``structure`` by deleting the fewest atoms; symmetry-distinct choices ranked by energy."""
    q = formal_charge(structure)
    counts = Counter(s.specie.symbol for s in structure)
    removal = minimal_removal(counts, q, max_atoms)
    energy = energy or ewald_energy
    if not removal:
        return BalanceResult({}, 0, [{"structure": structure, "removed_indices": [], "energy_eV": energy(structure),
                                      "multiplicity": 1}], 1, 1, False)
    pools = {el: [i for i, s in enumerate(structure) if s.specie.symbol == el] for el in removal}
    total = math.prod(math.comb(len(pools[el]), n) for el, n in removal.items())
    combos = itertools.product(*(itertools.combinations(pools[el], n) for el, n in removal.items()))
    tried, structs = [], []
    for combo in itertools.islice(combos, max_candidates):
        idx = sorted(i for part in combo for i in part)
        s = structure.copy()
        s.remove_sites(idx)
        tried.append(idx)
        structs.append(s)
    groups = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False).group_structures(structs)
    cands = []
    for g in groups:
        k = next(i for i, s in enumerate(structs) if s is g[0])
        cands.append({"structure": g[0], "removed_indices": tried[k], "energy_eV": energy(g[0]), "multiplicity": len(g)})
    cands.sort(key=lambda c: c["energy_eV"])
    return BalanceResult(removal, sum(removal.values()), cands, total, len(tried), total > len(tried))

"""Formal charges (METHOD.md section 2): Li +1, P +5, S -2, Cl -1."""

from __future__ import annotations

from collections import Counter

from pymatgen.core import Composition, Structure

from ..core.chemistry import FORMAL_CHARGE
from ..errors import ArgyroError


def _check(symbols) -> None:
    unknown = sorted(set(symbols) - set(FORMAL_CHARGE))
    if unknown:
        raise ArgyroError(f"unknown element(s) {unknown}: formal charges are defined for {sorted(FORMAL_CHARGE)}")


def formal_charge(obj: Structure | Composition | dict) -> int:
    """Net formal charge of a structure, composition or {element: count}."""
    if isinstance(obj, Structure):
        counts = Counter(site.specie.symbol for site in obj)
    elif isinstance(obj, Composition):
        counts = {el.symbol: int(round(n)) for el, n in obj.items()}
    else:
        counts = dict(obj)
    _check(counts)
    return int(sum(FORMAL_CHARGE[el] * n for el, n in counts.items()))

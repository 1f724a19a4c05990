"""SEI regions along the interface normal (the c axis) of a periodic Li | argyrodite cell.

Rules (METHOD.md sections 7 and 9, made precise):

1. Argyrodite region: the atoms of intact PS4 units (P with four S within 3 Angstrom, and those
   S). It is the periodic interval of fractional z that they span: the complement of the largest
   empty gap between them.
2. Li-metal core: the largest gap along c among the non-Li atoms (S, P, Cl), searched outside the
   argyrodite region while one exists and among all non-Li atoms once no PS4 unit is intact. It is
   the Li metal if it contains Li and is at least ``min_core_frac`` wide (4 Angstrom, > two bcc Li
   layers); otherwise the cell has no Li metal (e.g. bulk argyrodite) and every thickness is NaN.
3. Non-Li region: everything else, from the outermost non-Li atom in the Li metal at one interface
   to the one at the other interface, across the electrolyte. Its extent is ``non_li_extent``.
4. SEI thickness (METHOD.md 9): total = non-Li extent - extent of the intact-PS4 region; once no
   PS4 unit is intact it is the whole non-Li extent, so it is defined through the whole run. While
   an intact region exists the total splits into two per-interface parts: from the argyrodite
   edge to the outermost non-Li atom before the core, interface 0 above the argyrodite (+c),
   interface 1 below it; without an intact region the parts are NaN.

Lengths are fractional here; the pipeline multiplies by the c-plane spacing V / |a x b|.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Regions:
    """Fractional-z landmarks of one frame, measured upwards (+c) from ``origin``: the outermost non-Li
    atom in the Li metal at the interface below the electrolyte (the upper end of the Li core)."""

    origin: float  # fractional z in [0, 1) of the lower interface (end of the Li core)
    non_li_extent: float  # fractional length of the non-Li region: origin .. origin + non_li_extent
    ps4_lo: float  # intact-PS4 span relative to origin (NaN without intact PS4)
    ps4_hi: float
    has_li_metal: bool

    @property
    def has_ps4(self) -> bool:
        return bool(np.isfinite(self.ps4_lo))

    @property
    def ps4_extent(self) -> float:
        return self.ps4_hi - self.ps4_lo if self.has_ps4 else 0.0

    def thickness_total(self) -> float:
        """Non-Li extent minus intact-PS4 extent (fractional); NaN without Li metal."""
        return self.non_li_extent - self.ps4_extent if self.has_li_metal else float("nan")

    def thickness_parts(self) -> tuple[float, float]:
        """(above the argyrodite, below it), fractional; NaN without Li metal or without intact PS4."""
        if not (self.has_li_metal and self.has_ps4):
            return float("nan"), float("nan")
        return self.non_li_extent - self.ps4_hi, self.ps4_lo

    def interfaces(self) -> tuple[float, float]:
        """Fractional z in [0, 1) of the outermost non-Li atom in the Li metal: (upper, lower) interface."""
        return float(np.mod(self.origin + self.non_li_extent, 1.0)), float(np.mod(self.origin, 1.0))


def _periodic_span(z: np.ndarray) -> tuple[float, float]:
    """[lo, hi] (hi may exceed 1) covering points z in [0, 1): the complement of the largest gap."""
    zs = np.sort(np.mod(z, 1.0))
    gaps = np.diff(np.concatenate([zs, [zs[0] + 1.0]]))  # gaps[k]: after zs[k]; the last one wraps
    k = int(np.argmax(gaps))
    if k == len(zs) - 1:
        return float(zs[0]), float(zs[-1])
    return float(zs[k + 1]), float(zs[k] + 1.0)


def find_regions(frac_z: np.ndarray, argyrodite_mask: np.ndarray, nonli_mask: np.ndarray, li_mask: np.ndarray,
                 min_core_frac: float = 0.0) -> Regions | None:
    """The regions of one frame (rules 1-3 of the module docstring); None without any non-Li atom.

    ``min_core_frac``: the minimum Li-core width as a fraction of the c-plane spacing."""
    if not nonli_mask.any():
        return None
    if argyrodite_mask.any():
        lo, hi = _periodic_span(frac_z[argyrodite_mask])
        width = lo + 1.0 - hi  # the outside (Li side), fractional
        u = np.mod(frac_z[nonli_mask & ~argyrodite_mask] - hi, 1.0)
        marks = np.sort(np.concatenate([[0.0], u[u < width], [width]]))
        k = int(np.argmax(np.diff(marks)))
        ref, start, end = hi, float(marks[k]), float(marks[k + 1])  # the core: ref + (start, end)
        ps4_lo = width - end  # the span relative to the origin ref + end
        ps4_hi = ps4_lo + (hi - lo)
    else:
        lo, hi = _periodic_span(frac_z[nonli_mask])
        ref, start, end = hi, 0.0, lo + 1.0 - hi
        ps4_lo = ps4_hi = float("nan")
    core = end - start
    li_u = np.mod(frac_z[li_mask] - ref, 1.0)
    has_li = bool(np.any((li_u > start) & (li_u < end))) and core > min_core_frac
    return Regions(float(np.mod(ref + end, 1.0)), 1.0 - core, ps4_lo, ps4_hi, has_li)

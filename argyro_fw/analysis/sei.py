"""SEI regions along the interface normal (the c axis) of a periodic Li | argyrodite cell.

Rules (METHOD.md section 7, made precise):

1. Argyrodite region: the atoms of intact PS4 units (P with four S within 3 Angstrom, and those
   S). It is the periodic interval [lo, hi] of fractional z that they span: the complement of the
   largest empty gap between them.
2. Outside it, the non-Li atoms (S, P, Cl) are decomposition products. The Li-metal core is the
   largest gap among them (bounded by the two argyrodite edges) provided it contains Li and is at
   least ``min_core_A`` (4 Angstrom, > two bcc Li layers) wide; otherwise the cell has no Li metal
   (e.g. bulk argyrodite) and the thickness is NaN.
3. SEI thickness, per interface: the distance along the normal (fractional z times the c-plane
   spacing V / |a x b|) from the argyrodite edge to the outermost non-Li atom before the core.
   Interface 0 is the one above the argyrodite (+c), interface 1 the one below.
4. SEI composition: the S, P, Cl atoms in the two SEI zones; SEI Li are the Li with >= 3 S/P/Cl
   neighbours in the zones widened by the 3 Angstrom cutoff on the Li-metal side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Regions:
    """Fractional-z landmarks of one frame (unwrapped: lo <= hi < lo + 1)."""

    lo: float  # lower edge of the argyrodite region
    hi: float  # upper edge of the argyrodite region
    core_start: float  # start of the Li-metal core, fractional distance above hi
    core_end: float  # end of the Li-metal core, fractional distance above hi
    width_out: float  # lo + 1 - hi: the outside (Li side) width, fractional
    has_li_metal: bool

    def thickness_frac(self) -> tuple[float, float]:
        if not self.has_li_metal:
            return float("nan"), float("nan")
        return self.core_start, self.width_out - self.core_end


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
    """``min_core_frac``: the minimum Li-core width as a fraction of the c-plane spacing."""
    if not argyrodite_mask.any():
        return None
    lo, hi = _periodic_span(frac_z[argyrodite_mask])
    width = lo + 1.0 - hi
    outside = nonli_mask & ~argyrodite_mask
    u = np.mod(frac_z[outside] - hi, 1.0)
    u = u[u < width]
    marks = np.sort(np.concatenate([[0.0], u, [width]]))
    gaps = np.diff(marks)
    k = int(np.argmax(gaps))
    start, end = float(marks[k]), float(marks[k + 1])
    li_u = np.mod(frac_z[li_mask] - hi, 1.0)
    has_li = bool(np.any((li_u > start) & (li_u < end))) and (end - start) > min_core_frac
    return Regions(lo, hi, start, end, width, has_li)


def sei_zone_masks(frac_z: np.ndarray, reg: Regions, margin_frac: float) -> np.ndarray:
    """Atoms inside the two SEI zones (widened by ``margin_frac`` towards the Li core)."""
    u = np.mod(frac_z - reg.hi, 1.0)
    upper = (u >= 0) & (u <= reg.core_start + margin_frac)
    lower = (u >= reg.core_end - margin_frac) & (u <= reg.width_out)
    return (upper | lower) & (u <= reg.width_out)

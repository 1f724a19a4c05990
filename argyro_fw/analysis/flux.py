"""Bidirectional Li flux through a fixed membrane normal to c (METHOD.md section 7).

A membrane is a slab of thickness ``thickness_A`` (3 Angstrom) centred at fractional z
``position_frac``, fixed in fractional coordinates (so NPT box changes do not move it relative to
the atoms' fractional frame). Its periodic images are the same membrane.

Counting rule: each atom is followed in *unwrapped* fractional z (frame-to-frame displacements by
the minimum image), so a jump through the periodic boundary is no crossing. Space outside the
membranes is split into zones k = (k + h, k + 1 - h) (h = half thickness, fractional). An atom
whose zone goes from k to k + 1 crossed the membrane left -> right (along +c); from k to k - 1,
right -> left. Entering the membrane and going back out on the same side is no crossing; an atom
that starts inside the membrane is counted from the first zone it reaches.

Directions (METHOD.md 9): left -> right is +c. At an interface membrane they are named by physics,
``direction_lr`` / ``direction_rl`` = "metal_to_electrolyte" or "electrolyte_to_metal" (the two
interfaces of a periodic cell face opposite ways along c); inside a phase they stay "+c" / "-c".

Counting starts when the counter is made (the pipeline makes its counters on the frame that ends
the NVT equilibration); ``start_frame`` is that frame's index in the analysed series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class FluxCounter:
    name: str
    position_frac: float
    thickness_A: float = 3.0
    direction_lr: str = "+c"
    direction_rl: str = "-c"
    start_frame: int = 0
    cumulative_lr: list[int] = field(default_factory=list)
    cumulative_rl: list[int] = field(default_factory=list)
    areas_nm2: list[float] = field(default_factory=list)
    _unwrapped: np.ndarray | None = None
    _prev_frac: np.ndarray | None = None
    _zone: np.ndarray | None = None
    _lr: int = 0
    _rl: int = 0

    def _zones(self, s: np.ndarray, h: float) -> np.ndarray:
        """Zone index for unwrapped positions s relative to the membrane; -huge inside a membrane."""
        u = s + h  # membrane k occupies u in [k, k + 2h]
        k = np.floor(u)
        inside = (u - k) <= 2 * h
        z = k.astype(np.int64)
        z[inside] = np.iinfo(np.int64).min
        return z

    def update(self, frac_z: np.ndarray, cell: np.ndarray) -> None:
        """Add one frame: ``frac_z`` of the counted atoms (e.g. all Li), ``cell`` rows in Angstrom."""
        ab = np.cross(cell[0], cell[1])
        area = float(np.linalg.norm(ab))
        spacing = abs(float(np.linalg.det(cell))) / area  # c-plane spacing, Angstrom
        h = 0.5 * self.thickness_A / spacing
        if self._prev_frac is None:
            self._unwrapped = np.mod(frac_z, 1.0) - self.position_frac
            self._prev_frac = np.mod(frac_z, 1.0)
            self._zone = self._zones(self._unwrapped, h)
        else:
            f = np.mod(frac_z, 1.0)
            dz = f - self._prev_frac
            dz -= np.round(dz)
            self._unwrapped = self._unwrapped + dz
            self._prev_frac = f
            z = self._zones(self._unwrapped, h)
            outside = z != np.iinfo(np.int64).min
            known = self._zone != np.iinfo(np.int64).min
            both = outside & known
            step = z[both] - self._zone[both]
            self._lr += int(step[step > 0].sum())
            self._rl += int(-step[step < 0].sum())
            self._zone = np.where(outside, z, self._zone)
        self.cumulative_lr.append(self._lr)
        self.cumulative_rl.append(self._rl)
        self.areas_nm2.append(area / 100.0)


def flux_per_nm2_ns(cumulative: np.ndarray, time_ps: np.ndarray, area_nm2: float,
                    t0_ps: float | None = None, t1_ps: float | None = None) -> float:
    """Crossings per nm^2 per ns between the first frame at or after t0 and the last frame at or before t1
    (default: the whole series): (count at the later frame - count at the earlier) / area / their time apart."""
    cumulative = np.asarray(cumulative)
    time_ps = np.asarray(time_ps)
    i0 = 0 if t0_ps is None else int(np.searchsorted(time_ps, t0_ps))
    i1 = len(time_ps) - 1 if t1_ps is None else int(np.searchsorted(time_ps, t1_ps, side="right")) - 1
    if i1 <= i0:
        return float("nan")
    dt_ns = (time_ps[i1] - time_ps[i0]) / 1000.0
    return float((cumulative[i1] - cumulative[i0]) / area_nm2 / dt_ns)


def window_flux(cumulative: np.ndarray, time_ps: np.ndarray, area_nm2: float, t0_ns: float, t1_ns: float,
                tol_ps: float = 1e-6) -> float:
    """Flux (atoms/nm^2/ns) over the window [t0, t1] ns of ``time_ps``; NaN unless the series (the frames
    counted by the membrane) covers the whole window to within ``tol_ps`` (a run that ends at 4.5 ns gives
    no 4-5 ns value)."""
    time_ps = np.asarray(time_ps, float)
    if len(time_ps) < 2 or t0_ns * 1000.0 < time_ps[0] - tol_ps or t1_ns * 1000.0 > time_ps[-1] + tol_ps:
        return float("nan")
    return flux_per_nm2_ns(cumulative, time_ps, area_nm2, t0_ns * 1000.0 - tol_ps, t1_ns * 1000.0 + tol_ps)


def plane_flux(frac_z_frames, cells, time_ps: np.ndarray, positions_frac: list[float],
               thickness_A: float = 3.0) -> tuple[float, float, list[tuple[float, float]]]:
    """Mean flux (+c, -c) in atoms/nm^2/ns over membranes at ``positions_frac`` through a whole trajectory
    (``frac_z_frames``: per frame, the fractional z of the counted atoms), and the per-membrane values.
    In a homogeneous phase (bulk argyrodite) every plane has the same expected flux: the mean of several
    is the same quantity with less noise."""
    counters = [FluxCounter(f"plane_{k}", p, thickness_A) for k, p in enumerate(positions_frac)]
    for z, cell in zip(frac_z_frames, cells):
        for fc in counters:
            fc.update(z, cell)
    per = []
    for fc in counters:
        area = float(np.mean(fc.areas_nm2))
        per.append((flux_per_nm2_ns(fc.cumulative_lr, time_ps, area), flux_per_nm2_ns(fc.cumulative_rl, time_ps, area)))
    arr = np.array(per, float).reshape(-1, 2)
    return float(np.mean(arr[:, 0])), float(np.mean(arr[:, 1])), per

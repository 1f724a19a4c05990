"""Event times from the per-frame series (METHOD.md section 7, *ref* Table 5), with documented
thresholds. Each series is first smoothed with a centred moving average of ``window_ps``.

- decomposition end: the first time the smoothed intact-PS4 fraction comes within
  ``decomposition_tol`` (absolute fraction) of its final value (mean of the last 10 % of frames).
  NaN if the fraction never falls by more than ``decomposition_tol`` overall (nothing decomposed).
- crystallisation start: the first time the smoothed crystallinity exceeds the amorphous level
  ``amorphous_percent`` (55 %: amorphous SEI sits at 50-55 %) by ``start_margin`` percentage points.
- crystallisation end: the first time after the start at which the smoothed crystallinity reaches
  its maximum minus ``end_margin`` percentage points. NaN when there is no start.
"""

from __future__ import annotations

import numpy as np

DEFAULTS = dict(window_ps=20.0, decomposition_tol=0.02, amorphous_percent=55.0, start_margin=5.0, end_margin=2.0)


def smooth(y: np.ndarray, time_ps: np.ndarray, window_ps: float) -> np.ndarray:
    """Centred moving average over ``window_ps`` (NaN-aware); unchanged for a single frame."""
    y = np.asarray(y, dtype=float)
    if len(y) < 2:
        return y.copy()
    dt = float(np.median(np.diff(time_ps)))
    w = max(1, int(round(window_ps / dt)) if dt > 0 else 1)
    if w == 1:
        return y.copy()
    valid = np.isfinite(y).astype(float)
    k = np.ones(w)
    num = np.convolve(np.where(np.isfinite(y), y, 0.0), k, mode="same")
    den = np.convolve(valid, k, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def event_times(time_ps: np.ndarray, ps4_fraction: np.ndarray, crystallinity: np.ndarray,
                **thresholds) -> dict[str, float]:
    """Event times in ns (NaN when the event does not happen) and the thresholds used."""
    th = {**DEFAULTS, **thresholds}
    t_ns = np.asarray(time_ps, dtype=float) / 1000.0
    out = dict(th)
    out.update(decomposition_end_ns=float("nan"), crystallisation_start_ns=float("nan"),
               crystallisation_end_ns=float("nan"))
    if len(t_ns) == 0:
        return out
    f = smooth(ps4_fraction, time_ps, th["window_ps"])
    tail = max(1, len(f) // 10)
    final = np.nanmean(f[-tail:]) if np.any(np.isfinite(f[-tail:])) else np.nan
    if np.isfinite(final) and np.nanmax(f) - final > th["decomposition_tol"]:
        hit = np.nonzero(f <= final + th["decomposition_tol"])[0]
        if hit.size:
            out["decomposition_end_ns"] = float(t_ns[hit[0]])
    c = smooth(crystallinity, time_ps, th["window_ps"])
    if np.any(np.isfinite(c)):
        start = np.nonzero(c > th["amorphous_percent"] + th["start_margin"])[0]
        if start.size:
            i0 = start[0]
            out["crystallisation_start_ns"] = float(t_ns[i0])
            target = np.nanmax(c[i0:]) - th["end_margin"]
            end = np.nonzero(c[i0:] >= target)[0]
            out["crystallisation_end_ns"] = float(t_ns[i0 + end[0]])
    return out

"""Event times from the per-frame series (METHOD.md section 7, *ref* Table 5), with documented
thresholds. Each series is first smoothed with a centred moving average of ``window_ps``.

- decomposition end: the first time the smoothed intact-PS4 fraction comes within
  ``decomposition_tol`` (absolute fraction) of its final value (mean of the last 10 % of frames).
  NaN if the fraction never falls by more than ``decomposition_tol`` overall (nothing decomposed).
- crystallisation start and end: crystallisation is the rise of the crystallinity above the
  amorphous plateau (the amorphous SEI sits at 50-55 %; the study's (100)/(100) SEI starts to
  crystallise at 0.24 ns, before its decomposition ends at 0.39 ns, so a fixed threshold above the
  band, e.g. 60 %, comes too late). From the first time the smoothed crystallinity reaches
  ``fit_from_percent`` (50 %, the bottom of the amorphous band) to the end of the run, the series
  is fitted by least squares with a ramp: a plateau (the amorphous level), a linear rise, a
  plateau (the crystalline level). Start = the ramp's start, end = the ramp's end. No
  crystallisation (both NaN) if the rise is smaller than ``min_rise_percent`` percentage points or
  the crystallinity never reaches ``fit_from_percent``; the end is NaN if the ramp ends within
  ``window_ps`` of the end of the run (still rising: the end is not observed). The fitted levels are returned as ``amorphous_level_percent`` and
  ``crystalline_level_percent``.
"""

from __future__ import annotations

import numpy as np

DEFAULTS = dict(window_ps=20.0, decomposition_tol=0.02, fit_from_percent=50.0, min_rise_percent=5.0)
_MAX_FIT_POINTS = 1000  # the ramp fit uses at most this many (evenly spaced) points of the smoothed series


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


def _ramp_sse(t: np.ndarray, y: np.ndarray, ts: float, te: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of squared residuals and levels (a, b) of the best ramp for one start ``ts`` and each end in ``te``."""
    u = np.clip((t[None, :] - ts) / np.maximum(te[:, None] - ts, 1e-12), 0.0, 1.0)  # (n_te, n_t)
    v = 1.0 - u
    svv, suu, suv = (v * v).sum(1), (u * u).sum(1), (u * v).sum(1)
    svy, suy = v @ y, u @ y
    det = svv * suu - suv * suv
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(det > 0, (suu * svy - suv * suy) / det, (svy + suy) / len(y))
        b = np.where(det > 0, (svv * suy - suv * svy) / det, a)
    r = y[None, :] - a[:, None] * v - b[:, None] * u
    return (r * r).sum(1), a, b


def ramp_fit(t: np.ndarray, y: np.ndarray, n_grid: int = 100) -> tuple[float, float, float, float]:
    """Least-squares ramp y = a (t <= ts), a + (b - a) (t - ts) / (te - ts) (ts < t < te), b (t >= te).

    Grid search of (ts, te) over ``n_grid`` + 1 times spanning t, then a finer grid around the best pair;
    the levels (a, b) are linear least squares for each pair. Returns (ts, te, a, b)."""
    t, y = np.asarray(t, float), np.asarray(y, float)
    if len(t) > _MAX_FIT_POINTS:
        k = np.linspace(0, len(t) - 1, _MAX_FIT_POINTS).round().astype(int)
        t, y = t[k], y[k]
    grid = np.linspace(t[0], t[-1], n_grid + 1)
    best = (np.inf, t[0], t[-1], float(np.mean(y)), float(np.mean(y)))
    for _ in range(2):
        step = grid[1] - grid[0] if len(grid) > 1 else 0.0
        for ts in grid:
            te = grid[grid > ts]
            if not te.size:
                continue
            sse, a, b = _ramp_sse(t, y, ts, te)
            k = int(np.argmin(sse))
            if sse[k] < best[0]:
                best = (float(sse[k]), float(ts), float(te[k]), float(a[k]), float(b[k]))
        _, ts0, te0, _, _ = best
        lo, hi = max(t[0], ts0 - step), min(t[-1], te0 + step)
        grid = np.linspace(lo, hi, 2 * n_grid + 1)  # the fine pass: the best pair +- one coarse step
    return best[1], best[2], best[3], best[4]


def event_times(time_ps: np.ndarray, ps4_fraction: np.ndarray, crystallinity: np.ndarray,
                **thresholds) -> dict[str, float]:
    """Event times in ns (NaN when the event does not happen), the thresholds used and the fitted levels."""
    th = {**DEFAULTS, **thresholds}
    t_ns = np.asarray(time_ps, dtype=float) / 1000.0
    out = dict(th)
    out.update(decomposition_end_ns=float("nan"), crystallisation_start_ns=float("nan"),
               crystallisation_end_ns=float("nan"), amorphous_level_percent=float("nan"),
               crystalline_level_percent=float("nan"))
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
    reached = np.nonzero(np.isfinite(c) & (c >= th["fit_from_percent"]))[0]
    if reached.size:
        sel = np.arange(reached[0], len(c))
        sel = sel[np.isfinite(c[sel])]
        if sel.size >= 4:
            ts, te, a, b = ramp_fit(t_ns[sel], c[sel])
            out.update(amorphous_level_percent=a, crystalline_level_percent=b)
            if b - a >= th["min_rise_percent"]:
                out["crystallisation_start_ns"] = ts
                if te < t_ns[sel[-1]] - th["window_ps"] / 1000.0:
                    out["crystallisation_end_ns"] = te
    return out

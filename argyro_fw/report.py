"""Read-outs from MongoDB: workflow progress by stage, and the results table."""

from __future__ import annotations

from collections import Counter, defaultdict

STATES = ("COMPLETED", "RUNNING", "RESERVED", "READY", "WAITING", "FIZZLED", "DEFUSED", "PAUSED")


def stage_progress(lp) -> dict[str, dict[str, int]]:
    """{stage: {state: count}} over all fireworks (stage = spec.argyro_stage, else 'other')."""
    out: dict[str, Counter] = defaultdict(Counter)
    for fw in lp.fireworks.find({}, {"state": 1, "spec.argyro_stage": 1}):
        out[fw.get("spec", {}).get("argyro_stage", "other")][fw["state"]] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def results_rows(db) -> list[dict]:
    """One row per analysis document (interface, T, SEI, crystallinity, composition, flux, events)."""
    rows = []
    for a in db.analyses.find({}).sort([("interface", 1), ("temperature_K", 1)]):
        r = a.get("results", {})
        f = r.get("final", {})
        rows.append({
            "interface": a.get("interface"), "temperature_K": a.get("temperature_K"), "frames": r.get("n_frames"),
            "sei_thickness_A": f.get("sei_thickness_A"), "crystallinity_percent": f.get("crystallinity_percent"),
            "ps4_intact_fraction": f.get("ps4_intact_fraction"), "sei_composition_SPCl": f.get("sei_composition"),
            "flux_atoms_nm2_ns": r.get("flux", {}), "events_ns": r.get("events", {}), "h5": a.get("h5_path"),
        })
    return rows


def _fmt(x, spec=".2f"):
    if x is None:
        return "-"
    if isinstance(x, (list, tuple)):
        return "/".join(_fmt(v, spec) for v in x)
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return str(x)


def results_table(rows: list[dict]) -> str:
    head = f"{'interface':20s} {'T/K':>6s} {'frames':>6s} {'SEI/A (2 sides)':>16s} {'cryst/%':>8s} {'PS4':>5s} {'S/P/Cl':>15s}  flux L->R/R->L (atoms/nm2/ns)"
    lines = [head, "-" * len(head)]
    for r in rows:
        flux = "; ".join(f"{k} {_fmt(v.get('lr'))}/{_fmt(v.get('rl'))}" for k, v in r["flux_atoms_nm2_ns"].items()) or "-"
        lines.append(f"{str(r['interface']):20s} {_fmt(r['temperature_K'], '.0f'):>6s} {str(r['frames']):>6s} "
                     f"{_fmt(r['sei_thickness_A'], '.1f'):>16s} {_fmt(r['crystallinity_percent'], '.1f'):>8s} "
                     f"{_fmt(r['ps4_intact_fraction']):>5s} {_fmt(r['sei_composition_SPCl']):>15s}  {flux}")
    return "\n".join(lines)

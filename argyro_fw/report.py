"""Read-outs from MongoDB: workflow progress by stage, and the results table."""

from __future__ import annotations

from collections import Counter, defaultdict

from . import store

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
    for a in store.read(db, store.ANALYSES.name, sort=[("interface", 1), ("temperature_K", 1)]):
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


def study_rows(db) -> dict:
    """The study-level results: surface ranking, interfaces (gamma_inter with strain correction), bulk diffusion
    per temperature and the Arrhenius fits, one entry per study document."""
    out = {}
    for st in store.read(db, store.STUDIES.name, sort="name"):
        name = st["name"]
        out[name] = {
            "bulk": st.get("bulk", {}),
            "surfaces": (st.get("surfaces") or {}).get("ranking", []),
            "interfaces": [{k: i.get(k) for k in ("key", "termination", "li_plane", "mismatch_pct", "symmetric",
                                                   "gamma_inter_eV_nm2", "E_str_argyrodite_eV_nm2", "E_str_li_eV_nm2",
                                                   "gamma_inter_min_eV_nm2", "removed_for_balance")}
                           for i in store.read(db, store.INTERFACES.name, {"study": name}, sort="key")],
            "diffusion": [{k: d.get(k) for k in ("temperature_K", "D_cm2_s", "D_std_cm2_s", "sigma_S_cm",
                                                  "sigma_std_S_cm")}
                          for d in store.read(db, store.DIFFUSION.name, {"study": name}, sort="temperature_K")],
            "arrhenius": st.get("arrhenius", {}),
            "complete": bool(st.get("complete")),
        }
    return out


def study_tables(db) -> str:
    lines = []
    for name, s in study_rows(db).items():
        b = s["bulk"]
        lines.append(f"study {name!r}: bulk {b.get('chosen', '-')} (a = {_fmt(b.get('a_relaxed_A'), '.3f')} A), "
                     f"{'complete' if s['complete'] else 'running'}")
        if s["surfaces"]:
            lines.append(f"  {'surface':28s} {'termination':12s} gamma_surf/(eV/nm2)")
            for r in s["surfaces"][:5]:
                lines.append(f"  {r['key']:28s} {r['termination']:12s} {_fmt(r['gamma_surf_eV_nm2'], '.3f')}")
            if len(s["surfaces"]) > 5:
                lines.append(f"  ... {len(s['surfaces']) - 5} more")
        if s["interfaces"]:
            lines.append(f"  {'interface':32s} {'mism/%':>6s} {'sym':>5s} {'g_inter':>8s} {'E_str':>7s} {'g_min':>8s}  (eV/nm2)")
            for i in s["interfaces"]:
                e_str = (i["E_str_argyrodite_eV_nm2"] or 0) + (i["E_str_li_eV_nm2"] or 0)
                lines.append(f"  {i['key']:32s} {_fmt(i['mismatch_pct']):>6s} {str(i['symmetric']):>5s} "
                             f"{_fmt(i['gamma_inter_eV_nm2'], '.3f'):>8s} {_fmt(e_str, '.3f'):>7s} "
                             f"{_fmt(i['gamma_inter_min_eV_nm2'], '.3f'):>8s}")
        if s["diffusion"]:
            lines.append(f"  {'bulk T/K':>10s} {'D/(cm2/s)':>12s} {'sigma/(S/cm)':>13s}")
            for d in s["diffusion"]:
                lines.append(f"  {_fmt(d['temperature_K'], '.0f'):>10s} {_fmt(d['D_cm2_s'], '.3e'):>12s} "
                             f"{_fmt(d['sigma_S_cm'], '.3e'):>13s}")
        a = s["arrhenius"]
        if a:
            D, sg = a.get("D", {}), a.get("sigma", {})
            lines.append(f"  Arrhenius: Ea(D) = {_fmt(D.get('Ea_eV'), '.3f')} eV, D(300 K) = {_fmt(D.get('at_300K'), '.3e')} "
                         f"cm2/s; Ea(sigma) = {_fmt(sg.get('Ea_eV'), '.3f')} eV, sigma(300 K) = "
                         f"{_fmt(sg.get('at_300K'), '.3e')} S/cm")
    return "\n".join(lines)

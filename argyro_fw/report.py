"""Read-outs from MongoDB: workflow progress by stage, the results tables, and the study report.

:func:`write_report` (``argyro report -o DIR``) writes ``DIR/report.html``: one self-contained page (figures
embedded as base64 PNG, no JavaScript, nothing fetched from the network) with the study's tables and figures as
the paper shows them, for a finished or a running study; the study's published values
(:mod:`argyro_fw.study.reference`) stand beside ours, unfinished fireworks are listed as pending and FIZZLED ones
with their error (read from FireWorks' launches through the LaunchPad).
"""

from __future__ import annotations

import base64
import io
import math
import re
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from . import __version__, results, store
from .analysis.diffusion import KB_EV
from .core.serialise import write_atomic
from .errors import ArgyroError
from .study import reference as ref
from .templating import render_html

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


# ============================================================================================ the HTML report

REPORT_FILE = "report.html"
TEMPLATE = "report/report.html.j2"

#: the report's sections in order: (id, heading, the firework stages whose results it shows)
SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("workflow", "Workflow", ()),
    ("bulk", "Bulk choice and chemical potentials", ("bulk-dft", "phase-dft", "e0-dft", "bulk-choose")),
    ("terminations", "Surface terminations (Table 2)", ("surface-dft", "surface-rank")),
    ("interfaces", "Interfaces (Tables 3 and 4)", ("interface-dft", "interface-strain", "interface-energy")),
    ("active-learning", "Active learning", ("mlip-foundation", "al-explore", "al-label", "al-train", "al-select",
                                            "al-collect", "mlip-final")),
    ("md", "Interface MD: coordination, SEI, crystallinity and Li flux", ("md-prerelax", "md", "analysis")),
    ("diffusion", "Bulk diffusion and conductivity", ("bulk-md", "diffusion", "arrhenius")),
)
PENDING_STATES = ("READY", "WAITING", "RESERVED", "RUNNING", "PAUSED", "DEFUSED")
CN_PAIRS_PLOTTED = ("S-P", "S-Li", "P-Li", "Cl-Li")


def _c(text, cls: str = "") -> dict:
    """A table cell: its text and CSS class ("ref" for the study's values, "num" for numbers); None/NaN -> "-"."""
    if text is None or (isinstance(text, float) and not math.isfinite(text)) or text == "":
        text = "-"
    return {"t": str(text), "c": cls}


def _n(x, spec: str = ".3f", cls: str = "num") -> dict:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _c("-" if x is None or x == "" else str(x), cls)
    if not math.isfinite(v):
        return _c("-", cls)
    return _c(format(int(round(v)), spec) if spec.endswith("d") else format(v, spec), cls)


def _ok(x) -> bool:
    """x is a finite number."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _r(x, spec: str = ".3f") -> dict:
    """A cell with the study's value (styled apart)."""
    if isinstance(x, ref.Ref):
        return _c(x.text(_spec_g(spec)), "ref num")
    if isinstance(x, (tuple, list)):
        return _c(" / ".join(_n(v, spec)["t"] for v in x), "ref num")
    return _n(x, spec, "ref num")


def _spec_g(spec: str) -> str:
    return spec if spec.endswith(("f", "e", "g")) else "g"


def _table(columns: list[str], rows: list[list[dict]], ref_from: int | None = None) -> dict:
    """A table for the template: header cells (those from ``ref_from`` on are the study's) and rows of cells."""
    head = [_c(c, "ref" if ref_from is not None and i >= ref_from else "") for i, c in enumerate(columns)]
    return {"head": head, "rows": rows}


# --------------------------------------------------------------------------------------------- figures

def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(fig_id: str, title: str, fig, caption: str = "", wide: bool = False) -> dict:
    """A matplotlib figure as an embedded PNG (data URI)."""
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return {"id": fig_id, "title": title, "caption": caption, "uri": _data_uri(buf.getvalue()), "missing": "",
            "wide": wide}


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _file_figure(fig_id: str, title: str, path: str | None, caption: str = "") -> dict:
    """A PNG written by a firework (e.g. an AL iteration's parity plot), embedded; missing -> a note."""
    p = Path(path) if path else None
    data = p.read_bytes() if p is not None and p.is_file() else b""
    if not data.startswith(b"\x89PNG"):
        return {"id": fig_id, "title": title, "caption": caption, "uri": "",
                "missing": f"not available: {path or 'no file recorded'}", "wide": False}
    return {"id": fig_id, "title": title, "caption": caption, "uri": _data_uri(data), "missing": "", "wide": False}


def _slug(text: str) -> str:
    """An id for the HTML page: letters and digits, the rest one dash each ("(100)/(100) 400K" -> "100-100-400k")."""
    return re.sub("-+", "-", "".join(ch if ch.isalnum() else "-" for ch in str(text))).strip("-").lower()


def _gamma_figure(terms) -> dict:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(terms) + 2), 3.6))
    x = np.arange(len(terms))
    labels = [f"({p}) {t}" for p, t in zip(terms["plane"], terms["termination"])]
    ax.bar(x, terms["gamma_surf_eV_nm2"], color="#4477aa", label="this study's run")
    sv = terms["study_gamma_surf_eV_nm2"].astype(float)
    if np.isfinite(sv).any():
        ax.plot(x, sv, "D", color="#cc3311", ms=6, label="published (Table 2)")
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("gamma_surf (eV/nm2)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8)
    return _figure("gamma-surf", "Surface energy of every termination", fig,
                   "Bars: gamma_surf of our terminations in rank order; diamonds: the study's Table 2 value of the "
                   "termination with the same plane and name (METHOD.md 8).", wide=len(terms) > 10)


def _al_figure(key: str, it) -> dict:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.bar(it["iteration"], it["dataset_size"], color="#bbbbbb", label="dataset size")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training frames")
    ax2 = ax.twinx()
    ax2.plot(it["iteration"], it["uncertainty_p95_eV_A"], "o-", color="#cc3311", label="force uncertainty p95")
    thr = it["threshold_eV_A"].dropna()
    if len(thr):
        ax2.axhline(float(thr.iloc[-1]), color="k", ls="--", lw=1, label=f"threshold {float(thr.iloc[-1]):g} eV/A")
    ax2.set_ylabel("committee force uncertainty p95 (eV/A)")
    ax2.set_ylim(bottom=0)
    ax.set_xticks(list(it["iteration"]))
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    return _figure(f"al-{_slug(key)}", f"Active learning of {key}", fig,
                   "Training-set size (bars) and the 95th percentile of the committee's per-frame force uncertainty "
                   "(points) per iteration, against the convergence threshold (dashed).")


def _time_axis(df) -> tuple[np.ndarray, str]:
    """Time in ns, or in ps for runs shorter than 1 ns."""
    t = np.asarray(df.index, float)
    if len(t) and np.nanmax(t) >= 1000.0:
        return t / 1000.0, "time (ns)"
    return t, "time (ps)"


def _md_figures(tag: str, title: str, df, is_ref_run: bool) -> list[dict]:
    plt = _plt()
    t, xlabel = _time_axis(df)
    scale = 1000.0 if xlabel == "time (ns)" else 1.0  # event times are in ns
    figs = []
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    for pair in CN_PAIRS_PLOTTED:
        col = f"coordination/{pair} [neighbours]"
        if col in df:
            ax.plot(t, df[col], lw=1.2, label=f"CN {pair}")
    if is_ref_run:
        for key, color in (("cn_S-Li", "C1"), ("cn_P-Li", "C2")):
            ax.axhline(float(ref.ANALYSIS[key].value), color=color, ls=":", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("coordination number")
    ax.legend(fontsize=8, ncol=2)
    figs.append(_figure(f"md-{tag}-cn", f"{title}: coordination numbers", fig,
                        "Mean number of B within 3 A of each A (METHOD.md 7)"
                        + ("; dotted: the study's ~8 (S-Li) and ~10 (P-Li)." if is_ref_run else ".")))
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    cols = [c for c in df.columns if c.startswith("sei/thickness")]
    for c in cols:
        name = c.split(" [")[0]
        label = {"sei/thickness_total_A": "total"}.get(name, name.replace("sei/thickness_A/", "interface "))
        ax.plot(t, df[c], lw=1.8 if label == "total" else 1.0, label=label)
    if is_ref_run:
        ax.axhline(float(ref.ANALYSIS["sei_thickness_A"].value), color="k", ls=":", lw=1, label="study ~64 A")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("SEI thickness (A)")
    if cols:
        ax.legend(fontsize=8)
    figs.append(_figure(f"md-{tag}-sei", f"{title}: SEI thickness", fig,
                        "SEI thickness along the interface normal (METHOD.md 7 and 9); NaN (gaps) where it is undefined."))
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    col = "crystallinity_percent [%]"
    if col in df:
        ax.plot(t, df[col], lw=1.2, color="#4477aa", label="crystallinity")
    lo, hi = ref.ANALYSIS["crystallinity_amorphous_percent"].value
    ax.axhspan(lo, hi, color="#dddddd", alpha=0.6, label="study: amorphous SEI 50-55 %")
    ax.axhline(float(ref.ANALYSIS["crystallinity_crystalline_percent"].value), color="k", ls=":", lw=1,
               label="study: crystalline SEI ~80 %")
    for k, (name, v) in enumerate(sorted((df.attrs.get("events") or {}).items())):
        try:
            v = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v) and name.endswith("_ns"):
            ax.axvline(v * 1000.0 / scale, color=f"C{k + 1}", ls="--", lw=1,
                       label=f"{name.removesuffix('_ns')} {v:.3g} ns")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("S with 8 Li neighbours (%)")
    ax.legend(fontsize=7)
    figs.append(_figure(f"md-{tag}-crystallinity", f"{title}: crystallinity and event times", fig,
                        "Degree of crystallisation (S atoms with exactly 8 Li within 3 A / all S) with the event times "
                        "(dashed) from argyro_fw.analysis.events."))
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    membranes = sorted({c.split("/")[1] for c in df.columns if c.startswith("flux/")})
    for k, m in enumerate(membranes):
        lr, rl = f"flux/{m}/cumulative_lr [crossings]", f"flux/{m}/cumulative_rl [crossings]"
        if lr in df:
            ax.plot(t, df[lr], color=f"C{k}", lw=1.2, label=f"{m} L->R")
        if rl in df:
            ax.plot(t, df[rl], color=f"C{k}", lw=1.2, ls="--", label=f"{m} R->L")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cumulative Li crossings")
    if membranes:
        ax.legend(fontsize=7, ncol=2)
    figs.append(_figure(f"md-{tag}-flux", f"{title}: cumulative Li crossings per membrane", fig,
                        "Li atoms crossing each 3 A membrane, left to right (solid) and right to left (dashed)."))
    return figs


def _fit_times_T(arr_h5: str | None, q: str, ea: float, y300: float) -> bool:
    """Whether the stored Arrhenius fit of ``q`` is of ln(q T) (the sigma T form) rather than ln(q): its file's
    prefactor reproduces the 300 K value only in the form it was fitted in."""
    if not arr_h5 or not Path(arr_h5).is_file():
        return False
    with h5py.File(arr_h5, "r") as h:
        g = h.get(f"arrhenius/{q}")
        if g is None or "prefactor" not in g.attrs:
            return False
        plain = float(g.attrs["prefactor"]) * math.exp(-ea / (KB_EV * 300.0))
    return abs(plain / 300.0 - y300) < 1e-6 * y300 < abs(plain - y300)


def _arrhenius_figure(diff, arr: dict, arr_h5: str | None = None) -> dict:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.6))
    T = diff["temperature_K"].to_numpy(float)
    for ax, (q, col, std, unit, rkey, rEa) in zip(axes, (
            ("D", "D_cm2_s", "D_std_cm2_s", "cm2/s", "D_300K_cm2_s", "Ea_D_eV"),
            ("sigma", "sigma_S_cm", "sigma_std_S_cm", "S/cm", "sigma_300K_S_cm", "Ea_sigma_eV"))):
        y, e = diff[col].to_numpy(float), diff[std].to_numpy(float)
        ax.errorbar(1000.0 / T, y, yerr=np.where(np.isfinite(e), e, 0.0), fmt="o", color="#4477aa", capsize=3,
                    label=f"{q} (MLMD)")
        a = arr.get(q) or {}
        ea, y300 = results._f(a.get("Ea_eV")), results._f(a.get("at_300K"))
        if math.isfinite(ea) and math.isfinite(y300) and y300 > 0:
            x = np.linspace(1000.0 / max(T.max(), 300.0), 1000.0 / 300.0, 60)
            times_T = _fit_times_T(arr_h5, q, ea, y300)
            line = y300 * np.exp(-ea / KB_EV * (x / 1000.0 - 1.0 / 300.0)) * (300.0 * x / 1000.0 if times_T else 1.0)
            ax.plot(x, line, "-", color="#4477aa", lw=1,
                    label=f"Arrhenius fit of ln({q}{' T' if times_T else ''}), Ea = {ea:.3f} eV")
            s300 = results._f(a.get("at_300K_std"))
            s300 = s300 if math.isfinite(s300) else 0.0
            ax.errorbar([1000.0 / 300.0], [y300], yerr=[[min(s300, 0.9 * y300)], [s300]], fmt="s",
                        mfc="white", color="#4477aa", capsize=3, label=f"300 K: {y300:.3g} {unit}")
        r = ref.BULK[rkey]
        ax.plot([1000.0 / 300.0], [r.value], "*", color="#cc3311", ms=12,
                label=f"published 300 K: {r.value:g} {unit}, Ea {ref.BULK[rEa].value:g} eV")
        ax.set_yscale("log")
        ax.set_xlabel("1000 / T (1/K)")
        ax.set_ylabel(f"{q} ({unit})")
        ax.legend(fontsize=7)
    return _figure("arrhenius", "Arrhenius plots of D and sigma", fig,
                   "Bulk Li diffusion coefficient and conductivity per temperature (error bars: one standard deviation), "
                   "the Arrhenius fit extrapolated to 300 K (open square) and the study's published 300 K values (stars).",
                   wide=True)


# --------------------------------------------------------------------------------------------- fireworks

def _fireworks(lp, study: str | None) -> list[dict]:
    """The study's fireworks (those of workflows whose metadata names it; all when none does)."""
    ids = None
    if study:
        ids = [i for wf in lp.workflows.find({"metadata.argyro_study": study}, {"nodes": 1}) for i in wf["nodes"]]
    q = {"fw_id": {"$in": ids}} if ids else {}
    return list(lp.fireworks.find(q, {"fw_id": 1, "name": 1, "state": 1, "spec.argyro_stage": 1, "launches": 1,
                                      "archived_launches": 1}).sort("fw_id", 1))


def _fizzle_error(lp, fw: dict) -> tuple[str, str]:
    """(one line, full text) of a FIZZLED firework's error from its newest launch."""
    ids = list(fw.get("launches") or []) + list(fw.get("archived_launches") or [])
    launch = lp.launches.find_one({"launch_id": {"$in": ids}}, sort=[("launch_id", -1)]) if ids else None
    exc = (((launch or {}).get("action") or {}).get("stored_data") or {}).get("_exception") or {}
    text = str(exc.get("_stacktrace") or exc.get("_details") or "")
    lines = [x for x in text.strip().splitlines() if x.strip()]
    if not lines:
        return "no error recorded in the launch", ""
    return lines[-1].strip(), text


def _stage(fw: dict) -> str:
    return (fw.get("spec") or {}).get("argyro_stage", "other")


def _section_status(lp, fws: list[dict], stages: tuple[str, ...]) -> dict:
    mine = [f for f in fws if _stage(f) in stages]
    counts = Counter(f["state"] for f in mine)
    pending = [{"fw_id": f["fw_id"], "name": f.get("name", ""), "state": f["state"]} for f in mine
               if f["state"] in PENDING_STATES]
    fizzled = []
    for f in mine:
        if f["state"] == "FIZZLED":
            line, full = _fizzle_error(lp, f)
            fizzled.append({"fw_id": f["fw_id"], "name": f.get("name", ""), "error": line, "trace": full})
    summary = ", ".join(f"{counts[s]} {s}" for s in STATES if counts.get(s)) or "no fireworks of these stages yet"
    return {"stages": ", ".join(stages), "summary": summary, "pending": pending, "fizzled": fizzled,
            "n": len(mine), "complete": bool(mine) and counts.get("COMPLETED", 0) == len(mine)}


# --------------------------------------------------------------------------------------------- sections

def _bulk_section(st: dict) -> dict:
    b = st.get("bulk") or {}
    rows = [[_c("chosen bulk cell"), _c(str(b.get("chosen", "-"))), _c("lowest-energy disordered cell (METHOD.md 1)", "ref")],
            [_c("a of the relaxed cell (V^(1/3), A)"), _n(b.get("a_relaxed_A"), ".3f"),
             _c("a, b, c = " + ", ".join(f"{v:g}" for v in ref.RELAXED_ABC_A) + " A; "
                + ", ".join(f"{v:g}" for v in ref.RELAXED_ANGLES_DEG) + " deg (METHOD.md 1)", "ref")]]
    for k, e in sorted((b.get("energies_eV") or {}).items()):
        rows.append([_c(f"E({k}) (eV)"), _n(e, ".4f"), _c("")])
    facts = _table(["quantity", "this run", "published"], rows, ref_from=2)
    mu = st.get("chemical_potentials_eV") or {}
    mu_t = _table(["element", "mu (eV/atom)"], [[_c(k), _n(v, ".4f")] for k, v in mu.items()])
    efu = st.get("e_fu_eV") or {}
    efu_t = _table(["phase", "E (eV per formula unit)"], [[_c(k), _n(v, ".4f")] for k, v in efu.items()])
    e0 = st.get("e0s_eV") or {}
    e0_t = _table(["element", "E0 (eV)"], [[_c(k), _n(v, ".4f")] for k, v in e0.items()])
    return {"have": bool(b), "facts": facts, "mu": mu_t if mu else None, "efu": efu_t if efu else None,
            "e0": e0_t if e0 else None}


def _terminations_section(terms) -> dict:
    rows = []
    for r in terms.itertuples(index=False):
        rows.append([_n(r.rank, "d"), _c(f"({r.plane})"), _c(r.termination), _n(r.gamma_surf_eV_nm2, ".3f"),
                     _c(r.composition), _n(r.charge_e, "d"), _n(r.area_A2, ".1f"),
                     _r(r.study_gamma_surf_eV_nm2, ".3f"), _c(r.study_composition or "-", "ref"),
                     _r(r.study_charge_e, "d")])
    table = _table(["rank", "plane", "termination", "gamma_surf (eV/nm2)", "composition (formula / 4)", "charge (e)",
                    "area (A2)", "study gamma_surf", "study composition", "study charge"], rows, ref_from=7)
    ours = Counter(terms["plane"]) if len(terms) else Counter()
    planes = list(ref.TERMINATION_COUNTS) + sorted(set(ours) - set(ref.TERMINATION_COUNTS))
    counts = _table(["plane", "terminations (this run)", "terminations (study, METHOD.md 2)"],
                    [[_c(f"({p})"), _n(ours.get(p, 0), "d"), _r(ref.TERMINATION_COUNTS.get(p, "-"), "d")]
                     for p in planes], ref_from=2)
    lowest = _table(["published lowest three (METHOD.md 2)", "gamma_surf (eV/nm2)"],
                    [[_c(f"({p}) {t}", "ref"), _r(g, ".3f")] for p, t, g in ref.LOWEST_GAMMA_SURF], ref_from=0)
    fig = _gamma_figure(terms) if len(terms) else None
    return {"have": bool(len(terms)), "table": table, "counts": counts, "lowest": lowest, "figure": fig}


def _interfaces_section(itf) -> dict:
    """Per interface a table of quantities (rows): this run beside the study's model with the same planes."""
    tables = []
    for r in itf.itertuples(index=False):
        atoms = f"{int(r.li_metal_atoms)} + {int(r.argyrodite_atoms)}" if _ok(r.li_metal_atoms) else "-"
        study_atoms = (f"{int(r.study_li_metal_atoms)} + {int(r.study_argyrodite_atoms)}"
                       if _ok(r.study_li_metal_atoms) else "-")
        s3, s8 = ref.INTERFACE_SECTIONS["atoms"], ref.INTERFACE_SECTIONS["E_str"]
        rows = [
            ("termination (argyrodite side)", _c(r.termination), _c("-", "ref"), ""),
            ("lattice mismatch (%)", _n(r.mismatch_pct, ".2f"), _r(r.study_mismatch_pct, ".2f"), s3),
            ("interface area (A2)", _n(r.area_A2, ".1f"), _c("-", "ref"), ""),
            ("atoms (Li metal + argyrodite), DFT model", _c(atoms, "num"), _c(study_atoms, "ref num"), s3),
            ("symmetric", _c("yes" if r.symmetric else "no"), _c("yes", "ref"), s3),
            ("removed for charge balance", _c(r.removed_for_balance), _c("-", "ref"), ""),
            ("gamma_surf of the termination (eV/nm2)", _n(r.gamma_surf_eV_nm2, ".3f"), _c("-", "ref"), ""),
            ("gamma_surf after charge balancing (eV/nm2)", _n(r.gamma_surf_balanced_eV_nm2, ".3f"), _c("-", "ref"),
             "8 (Table 4)"),
            ("gamma_inter, charged model (eV/nm2)", _n(r.gamma_inter_charged_eV_nm2, ".3f"), _c("-", "ref"),
             "8 (Table 4)"),
            ("gamma_inter, charge-balanced (eV/nm2)", _n(r.gamma_inter_eV_nm2, ".3f"), _r(r.study_gamma_inter_eV_nm2, ".3f"), s3),
            ("E_str argyrodite slab (eV/nm2)", _n(r.E_str_argyrodite_eV_nm2, ".3f"), _r(r.study_E_str_argyrodite_eV_nm2, ".3f"), s8),
            ("E_str Li slab (eV/nm2)", _n(r.E_str_li_eV_nm2, ".3f"), _r(r.study_E_str_li_eV_nm2, ".3f"), s8),
            ("E_str total (eV/nm2)", _n(r.E_str_eV_nm2, ".3f"),
             _r(r.study_E_str_argyrodite_eV_nm2 + r.study_E_str_li_eV_nm2, ".3f"), s8),
            ("gamma_inter_min = gamma_inter - E_str (eV/nm2)", _n(r.gamma_inter_min_eV_nm2, ".3f"), _c("-", "ref"), ""),
            ("MLMD cell atoms", _n(r.mlmd_atoms, "d"), _r(r.study_mlmd_atoms, "d"), ref.INTERFACE_SECTIONS["mlmd_atoms"]),
        ]
        study = r.study_interface if isinstance(r.study_interface, str) else "no model with these planes"
        tables.append({"title": f"{r.interface} {r.termination}", "key": r.key,
                       "table": _table(["quantity", "this run", f"study {study}", "METHOD.md"],
                                       [[_c(q), ours, theirs, _c(sec, "ref")] for q, ours, theirs, sec in rows],
                                       ref_from=2)})
    t3 = _table(["Table 3 (METHOD.md 8)", "E_str (eV/nm2)"],
                [[_c(k, "ref"), _r(v, ".3f")] for k, v in ref.TABLE3_E_STR_eV_nm2.items()], ref_from=0)
    return {"have": bool(len(itf)), "tables": tables, "table3": t3, "reading": ref.E_STR_LI_READING,
            "charged_missing": bool(len(itf)) and bool(itf["gamma_inter_charged_eV_nm2"].isna().all())}


def _al_section(al, val, itf) -> list[dict]:
    out = []
    names = {r.key: r.interface for r in itf.itertuples(index=False)} if len(itf) else {}
    for key in sorted(set(al["al_name"])) if len(al) else []:
        it = al[al["al_name"] == key].sort_values("iteration")
        rows = [[_n(r.iteration, "d"), _n(r.dataset_size, "d"), _n(r.uncertainty_mean_eV_A, ".3f"),
                 _n(r.uncertainty_p95_eV_A, ".3f"), _n(r.uncertainty_max_eV_A, ".3f"), _n(r.threshold_eV_A, ".3f"),
                 _c("yes" if r.converged else "no"), _n(r.selected, "d"), _c(r.stopped if isinstance(r.stopped, str) else "continued")]
                for r in it.itertuples(index=False)]
        table = _table(["iteration", "dataset (frames)", "uncertainty mean (eV/A)", "p95 (eV/A)", "max (eV/A)",
                        "threshold (eV/A)", "converged", "frames selected", "outcome"], rows)
        v = val[val["al_name"] == key] if len(val) else val
        vrows = [[_c(r.kind), _n(r.iteration, "d"), _c(Path(str(r.model)).name), _n(r.energy_rmse_meV_atom, ".1f"),
                  _n(r.force_rmse_meV_A, ".1f"), _n(r.n_frames, "d"),
                  _r(r.study_energy_rmse_meV_atom, ".1f"), _r(r.study_force_rmse_meV_A, ".1f")]
                 for r in v.itertuples(index=False)]
        vt = _table(["model", "iteration", "file", "energy RMSE (meV/atom)", "force RMSE (meV/A)", "frames",
                     "study final model energy RMSE", "study final model force RMSE"], vrows, ref_from=6)
        last = it.iloc[-1]
        plots = [p for p in str(last["plots"] or "").split(";") if p]
        parity = next((p for p in plots if "parity" in Path(p).name), None)
        hist = next((p for p in plots if "uncertainty" in Path(p).name), None)
        figs = [_al_figure(key, it),
                _file_figure(f"parity-{_slug(key)}", f"Force parity, iteration {int(last['iteration'])}", parity,
                             "Committee members' force components against the reference labels (validation set)."),
                _file_figure(f"uncertainty-{_slug(key)}", f"Force uncertainty, iteration {int(last['iteration'])}", hist,
                             "Histogram of the per-frame committee force uncertainty against the threshold.")]
        out.append({"key": key, "name": names.get(key, ""), "table": table, "validation": vt,
                    "has_final": bool(len(v)) and bool((v["kind"] == "final").any()), "figures": figs})
    return out


def _flux_rows(title: str, name: str, entry, pos) -> list[list[dict]]:
    """The flux table's rows of one membrane: the whole run and each window, with the study's value where it has one."""
    if not isinstance(entry, dict):
        return [[_c(title), _c(name), _n(pos, ".3f"), _c("whole run"), _n(entry, ".3g"), _c("-"), _c("-"),
                 _c("-", "ref"), _c("-", "ref")]]
    d_lr, d_rl = entry.get("direction_lr", "+c"), entry.get("direction_rl", "-c")
    dirs = f"L->R {d_lr}, R->L {d_rl}" if (d_lr, d_rl) != ("+c", "-c") else "L->R +c, R->L -c"
    pos = entry.get("position_frac", pos)
    rows = []
    parts = [(None, "whole run", entry)]
    parts += [(w, f"{w.replace('_', ' ')} ({_n(we.get('t0_ns'), 'g')['t']}-{_n(we.get('t1_ns'), 'g')['t']} ns)", we)
              for w, we in (entry.get("windows") or {}).items() if isinstance(we, dict)]
    for wkey, label, e in parts:
        if wkey is not None and not (_ok(e.get("lr")) or _ok(e.get("rl"))):
            continue  # a window the run does not reach
        rkey = ref.FLUX_MEMBRANE_REF.get((name, wkey))
        rows.append([_c(title), _c(name), _n(pos, ".3f"), _c(label), _n(e.get("lr"), ".3g"), _n(e.get("rl"), ".3g"),
                     _c(dirs), _r(ref.FLUX[rkey].value, ".2f") if rkey else _c("-", "ref"),
                     _c(rkey.replace("_", " ") if rkey else "-", "ref")])
    return rows


def _md_section(db, ana, itf) -> dict:
    names = {r.key: (r.interface, r.li_plane, r.plane) for r in itf.itertuples(index=False)} if len(itf) else {}
    runs, flux_rows = [], []
    for k, a in enumerate(ana.itertuples(index=False)):
        key = a.interface
        label, li, pl = names.get(key, (str(key), None, None))
        T = a.temperature_K
        is_ref = (li, pl) == ref.ANALYSIS_INTERFACE and math.isfinite(T) and T == ref.ANALYSIS_TEMPERATURE_K
        title = f"{label} at {T:g} K" if math.isfinite(T) else str(label)
        doc = store.find_one(db, store.ANALYSES.name, {"h5_path": a.h5_path}) or {}
        summ = doc.get("results") or {}
        final = summ.get("final") or {}
        cn = final.get("cn") or {}
        thick = final.get("sei_thickness_A")
        comp = final.get("sei_composition")
        rows = [[_c(f"CN {p} (final)"), _n(cn.get(p), ".2f"),
                 _r(ref.ANALYSIS[f"cn_{p}"], ".0f") if f"cn_{p}" in ref.ANALYSIS else _c("-", "ref")]
                for p in CN_PAIRS_PLOTTED]
        rows += [[_c("intact PS4 fraction (final)"), _n(final.get("ps4_intact_fraction"), ".2f"), _c("-", "ref")],
                 [_c("crystallinity (%) (final)"), _n(final.get("crystallinity_percent"), ".1f"),
                  _c("amorphous 50-55, crystalline just under 80", "ref")],
                 [_c("SEI thickness, total (A) (final)"), _n(final.get("sei_thickness_total_A"), ".1f"),
                  _c(ref.ANALYSIS["sei_thickness_A"].note, "ref")],
                 [_c("SEI thickness, two interfaces (A) (final)"),
                  _c(" / ".join(_n(x, ".1f")["t"] for x in thick) if isinstance(thick, list) else _n(thick, ".1f")["t"], "num"),
                  _c("-", "ref")],
                 [_c("SEI composition S / P / Cl (final)"),
                  _c(" / ".join(_n(x, ".2f")["t"] for x in comp) if isinstance(comp, list) else "-", "num"),
                  _c("x, y = 0.14-0.15", "ref")]]
        for name, r in ref.EVENTS_ns.items():
            rows.append([_c(f"event: {name.removesuffix('_ns').replace('_', ' ')} (ns)"),
                         _n((summ.get("events") or {}).get(name), ".3g"), _r(r, ".3g")])
        for name, v in sorted((summ.get("events") or {}).items()):
            if name not in ref.EVENTS_ns:
                rows.append([_c(f"event: {name.removesuffix('_ns').replace('_', ' ')} (ns)"), _n(v, ".3g"), _c("-", "ref")])
        summary = _table(["quantity", "this run", "published ((100)/(100), 400 K; METHOD.md 7)"], rows, ref_from=2)
        figs, missing = [], ""
        tag = _slug(f"{k + 1} {label} {T:g}K" if math.isfinite(T) else f"{k + 1} {label}")
        if a.h5_path and Path(a.h5_path).is_file():
            df = results.load_analysis(a.h5_path)
            figs = _md_figures(tag, title, df, is_ref)
            membranes = (df.attrs.get("flux") or {})
        else:
            missing = f"analysis file not found: {a.h5_path}"
            membranes = {}
        for m, entry in (summ.get("flux") or {}).items():
            flux_rows += _flux_rows(title, m, entry, (membranes.get(m) or {}).get("position_frac"))
        runs.append({"title": title, "h5": a.h5_path, "frames": a.n_frames, "duration_ps": a.duration_ps,
                     "summary": summary, "figures": figs, "missing": missing})
    flux = _table(["run", "membrane", "position (fractional z)", "window", "flux L->R (atoms/nm2/ns)",
                   "flux R->L (atoms/nm2/ns)", "directions", "study L->R / R->L ((100)/(100), 400 K)", "study value"],
                  flux_rows, ref_from=7)
    return {"runs": runs, "flux": flux if flux_rows else None}


def _diffusion_section(diff, st: dict) -> dict:
    rows = [[_n(r.temperature_K, ".0f"), _n(r.D_cm2_s, ".3e"), _n(r.D_std_cm2_s, ".2e"), _n(r.sigma_S_cm, ".3e"),
             _n(r.sigma_std_S_cm, ".2e"), _n(r.sigma_mstd_S_cm, ".3e")] for r in diff.itertuples(index=False)]
    table = _table(["T (K)", "D (cm2/s)", "D std", "sigma Nernst-Einstein (S/cm)", "sigma std", "sigma from charge MSD (S/cm)"],
                   rows)
    arr = st.get("arrhenius") or {}
    arows = []
    for q, unit, rv, re_ in (("D", "cm2/s", "D_300K_cm2_s", "Ea_D_eV"), ("sigma", "S/cm", "sigma_300K_S_cm", "Ea_sigma_eV")):
        a = arr.get(q) or {}
        arows.append([_c(q), _n(a.get("Ea_eV"), ".3f"), _n(a.get("Ea_std_eV"), ".3f"), _n(a.get("at_300K"), ".3e"),
                      _n(a.get("at_300K_std"), ".2e"), _c(unit), _r(ref.BULK[re_], ".2f"), _r(ref.BULK[rv], ".3g")])
    fits = _table(["quantity", "Ea (eV)", "Ea std (eV)", "value at 300 K", "std at 300 K", "unit",
                   "study Ea (eV)", "study value at 300 K"], arows, ref_from=6)
    fig = _arrhenius_figure(diff, arr, st.get("arrhenius_h5")) if len(diff) else None
    return {"have": bool(len(diff)), "table": table, "fits": fits, "have_fit": bool(arr), "figure": fig}


# --------------------------------------------------------------------------------------------- the page

def report_context(lp, study: str | None = None) -> dict:
    """Everything the report template shows, prepared (numbers formatted, figures embedded)."""
    db = lp.db
    names = results.study_names(db)
    if study and study not in names:
        names_txt = ", ".join(names) or "none yet"
        raise ArgyroError(f"no study {study!r} in the database (studies: {names_txt})")
    study = study or (names[0] if names else None)
    st = results.study_document(db, study) if study else {}
    fws = _fireworks(lp, study)
    status = {sid: _section_status(lp, fws, stages) for sid, _, stages in SECTIONS}
    counts = Counter(f["state"] for f in fws)
    by_stage: dict[str, Counter] = defaultdict(Counter)
    for f in fws:
        by_stage[_stage(f)][f["state"]] += 1
    progress = _table(["stage"] + list(STATES), [[_c(s)] + [_n(c.get(k, 0), "d") for k in STATES]
                                                 for s, c in sorted(by_stage.items())])
    fizzled = [x for s in status.values() for x in s["fizzled"]]
    listed = {x["fw_id"] for x in fizzled}
    for f in fws:  # FIZZLED fireworks of stages no section shows
        if f["state"] == "FIZZLED" and f["fw_id"] not in listed:
            line, full = _fizzle_error(lp, f)
            fizzled.append({"fw_id": f["fw_id"], "name": f.get("name", ""), "error": line, "trace": full})
    terms = results.terminations(db, study)
    itf = results.interfaces(db, study)
    al = results.al_iterations(db, study)
    val = results.validation(db, study)
    ana = results.analyses(db, study)
    diff = results.diffusion(db, study)
    if st.get("complete"):
        state = "complete"
    elif counts.get("FIZZLED"):
        state = f"running, {counts['FIZZLED']} FIZZLED"
    elif fws:
        state = "running"
    else:
        state = "not started"
    sections = [{"id": sid, "title": title, "n": i + 1, "status": status[sid]} for i, (sid, title, _) in enumerate(SECTIONS)]
    return {
        "title": f"argyro study report: {study or 'no study yet'}",
        "study": study or "", "state": state, "all_studies": names,
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "version": __version__,
        "database": f"{lp.host}:{lp.port}/{lp.name}",
        "n_fireworks": len(fws), "n_completed": counts.get("COMPLETED", 0),
        "sections": sections, "s": {x["id"]: x for x in sections},
        "progress": progress, "fizzled": fizzled,
        "bulk": _bulk_section(st), "terminations": _terminations_section(terms),
        "interfaces": _interfaces_section(itf), "al": _al_section(al, val, itf),
        "md": _md_section(db, ana, itf), "diffusion": _diffusion_section(diff, st),
    }


def render_report(lp, study: str | None = None) -> str:
    return render_html(TEMPLATE, **report_context(lp, study))


def write_report(lp, out_dir: str | Path, study: str | None = None) -> Path:
    """Write ``out_dir/report.html`` (one self-contained page); returns its path."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    return write_atomic(d / REPORT_FILE, render_report(lp, study)).resolve()


def figure_ids(page: str) -> list[str]:
    """The ``data-figure`` ids of the embedded figures of a rendered report (for checks)."""
    return re.findall(r'data-figure="([^"]+)"', page)

"""The study's results as pandas DataFrames: for notebooks, for ``argyro results --csv/--json`` and the report.

Every table function takes ``source``: a launchpad file (``launchpad/my_launchpad.yaml``), a FireWorks
LaunchPad, a pymongo Database, :class:`~argyro_fw.settings.DBSettings`, a ``mongodb://`` URI, or None (the
default launchpad file of the current folder). Documents are read through :mod:`argyro_fw.store`. Where
METHOD.md gives the study's value (:mod:`argyro_fw.study.reference`) it is a ``study_*`` column beside ours.

    >>> from argyro_fw import results
    >>> results.terminations("launchpad/my_launchpad.yaml").head()
    >>> results.load_analysis(results.analyses(lp)["h5_path"][0]).plot(y="crystallinity_percent [%]")

:func:`load_analysis` reads one analysis HDF5 file (:func:`argyro_fw.analysis.pipeline.write_h5`) as a
DataFrame of its per-frame time series, indexed by time, with the units in every column name.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from . import store
from .core.chemistry import ELEMENTS
from .launchpad import DEFAULT_LAUNCHPAD, get_launchpad
from .settings import DBSettings, parse_uri
from .study import reference as ref

#: the tables ``argyro results --csv DIR`` / ``--json DIR`` write, one file each
TABLES = ("studies", "terminations", "interfaces", "al_iterations", "validation", "analyses", "diffusion")


# ------------------------------------------------------------------------------------------- source

def database(source: Any = None):
    """The results database (pymongo Database) of ``source`` (see the module docstring)."""
    if source is None:
        source = DEFAULT_LAUNCHPAD
    if isinstance(source, DBSettings):
        return store.database(settings=source)
    if isinstance(source, str) and source.startswith("mongodb://"):
        return store.database(settings=parse_uri(source, "results source"))
    if isinstance(source, (str, os.PathLike)):
        return get_launchpad(source).db
    if hasattr(source, "list_collection_names"):  # a pymongo Database
        return source
    if hasattr(source, "db") and hasattr(source, "fireworks"):  # a FireWorks LaunchPad
        return source.db
    raise TypeError(f"results: cannot read from {type(source).__name__} (a launchpad file, LaunchPad, Database, "
                    "DBSettings or mongodb:// URI)")


def study_names(source: Any = None) -> list[str]:
    """The studies in the database, newest first."""
    db = database(source)
    return [d["name"] for d in store.read(db, store.STUDIES.name, sort=[("updated_at", -1)], projection={"name": 1})]


def study_document(source: Any, name: str | None = None) -> dict:
    """The study's document (``name``, else the newest); {} when there is none yet."""
    db = database(source)
    q = {"name": name} if name else {}
    docs = store.read(db, store.STUDIES.name, q, sort=[("updated_at", -1)])
    return docs[0] if docs else {}


def _interface_keys(db, study: str | None) -> list[str] | None:
    if not study:
        return None
    return [d["key"] for d in store.read(db, store.INTERFACES.name, {"study": study}, projection={"key": 1})]


# ------------------------------------------------------------------------------------------- helpers

def plane(miller) -> str:
    """"100" for [1, 0, 0] (a string stays as it is)."""
    if miller is None:
        return ""
    if isinstance(miller, str):
        return miller.strip("()")
    return "".join(str(int(m)) for m in miller)


def _num(x: float) -> str:
    return f"{x:g}"


def table2_composition(composition: dict | None) -> str:
    """The slab formula divided by 4 as the study's Table 2 writes it (METHOD.md 8): "Li10 P2 S8 Cl1.5"."""
    if not composition:
        return ""
    parts = []
    for el in ELEMENTS:
        n = composition.get(el, 0) / ref.TABLE2_COMPOSITION_DIVISOR
        if n:
            parts.append(el if n == 1 else f"{el}{_num(n)}")
    return " ".join(parts)


def _f(x) -> float:
    """A float (NaN for None or anything that is not a number)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b.c": value}; short lists of numbers -> "name[i]"."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out |= _flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(d, (list, tuple)) and 0 < len(d) <= 8 and all(v is None or isinstance(v, (int, float)) for v in d):
        for i, v in enumerate(d):
            out[f"{prefix}[{i}]"] = _f(v)
    elif isinstance(d, (list, tuple)):
        out[prefix] = json.dumps(d, default=str)
    else:
        out[prefix] = d
    return out


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with at least ``columns`` (in this order), also when there are no rows."""
    df = pd.DataFrame(rows)
    for c in columns:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    return df[columns + [c for c in df.columns if c not in columns]]


# ------------------------------------------------------------------------------------------- tables

def studies(source: Any = None) -> pd.DataFrame:
    """One row per study: the chosen bulk, its relaxed a, chemical potentials (eV), Arrhenius fits, completion."""
    db = database(source)
    rows = []
    for st in store.read(db, store.STUDIES.name, sort="name"):
        b = st.get("bulk") or {}
        row = {"study": st["name"], "bulk": b.get("chosen"), "a_relaxed_A": _f(b.get("a_relaxed_A")),
               "complete": bool(st.get("complete")), "n_terminations": (st.get("surfaces") or {}).get("n_terminations")}
        row |= {f"mu_{el}_eV": _f(v) for el, v in (st.get("chemical_potentials_eV") or {}).items()}
        arr = st.get("arrhenius") or {}
        for q in ("D", "sigma"):
            a = arr.get(q) or {}
            row[f"Ea_{q}_eV"] = _f(a.get("Ea_eV"))
            row[f"Ea_{q}_std_eV"] = _f(a.get("Ea_std_eV"))
            row[f"{q}_300K"] = _f(a.get("at_300K"))
            row[f"{q}_300K_std"] = _f(a.get("at_300K_std"))
        row |= {"study_Ea_D_eV": ref.BULK["Ea_D_eV"].value, "study_D_300K": ref.BULK["D_300K_cm2_s"].value,
                "study_Ea_sigma_eV": ref.BULK["Ea_sigma_eV"].value,
                "study_sigma_300K": ref.BULK["sigma_300K_S_cm"].value}
        rows.append(row)
    return _frame(rows, ["study", "bulk", "a_relaxed_A", "complete"])


def _table2_match(pl: str, term: str, comp: str, charge) -> tuple | None:
    cands = ref.table2_for(pl, term)
    for key in (lambda c: c[1] == comp, lambda c: c[2] == charge):
        hit = [c for c in cands if key(c)]
        if hit:
            return hit[0]
    return None


def terminations(source: Any = None, study: str | None = None) -> pd.DataFrame:
    """One row per termination, ranked by gamma_surf (Table 2's columns: plane, termination, gamma_surf,
    composition (slab formula / 4), charge), with the study's Table 2 row of the same plane and name."""
    db = database(source)
    rows = []
    for d in store.read(db, store.SURFACE_ENERGIES.name, {"study": study} if study else {},
                        sort=[("study", 1), ("rank", 1)]):
        pl, term = plane(d.get("miller")), d.get("termination")
        comp = table2_composition(d.get("composition"))
        charge = d.get("formal_charge")
        m = _table2_match(pl, term, comp, charge)
        rows.append({"study": d["study"], "rank": d["rank"], "plane": pl, "termination": term,
                     "gamma_surf_eV_nm2": _f(d.get("gamma_surf_eV_nm2")), "composition": comp,
                     "charge_e": charge, "formula": d.get("formula"), "area_A2": _f(d.get("area_A2")),
                     "energy_eV": _f(d.get("energy_eV")), "key": d["key"],
                     "study_gamma_surf_eV_nm2": m[0] if m else math.nan, "study_composition": m[1] if m else None,
                     "study_charge_e": m[2] if m else None})
    return _frame(rows, ["study", "rank", "plane", "termination", "gamma_surf_eV_nm2", "composition", "charge_e",
                         "study_gamma_surf_eV_nm2"])


def _removed(x) -> str:
    if isinstance(x, dict):
        return " ".join(f"{k}{v}" for k, v in x.items())
    if isinstance(x, (list, tuple)):
        return ", ".join(str(v) for v in x)
    return "" if x is None else str(x)


def interfaces(source: Any = None, study: str | None = None) -> pd.DataFrame:
    """One row per interface (Tables 3 and 4): mismatch, area, atoms, gamma_surf and gamma_inter before (charged,
    when balancing removed atoms) and after charge balancing, E_str of both slabs, gamma_inter_min; the study's values
    beside."""
    db = database(source)
    rows = []
    for d in store.read(db, store.INTERFACES.name, {"study": study} if study else {}, sort=[("study", 1), ("key", 1)]):
        pl, li = plane(d.get("miller")), plane(d.get("li_plane"))
        e_arg, e_li = _f(d.get("E_str_argyrodite_eV_nm2")), _f(d.get("E_str_li_eV_nm2"))
        r = ref.interface_ref(li, pl)
        cell = d.get("mlmd_cell") or {}
        row = {"study": d["study"], "key": d["key"], "interface": f"({li})/({pl})", "termination": d.get("termination"),
               "li_plane": li, "plane": pl, "mismatch_pct": _f(d.get("mismatch_pct")), "area_A2": _f(d.get("area_A2")),
               "li_metal_atoms": d.get("li_metal_atoms"), "argyrodite_atoms": d.get("argyrodite_atoms"),
               "symmetric": d.get("symmetric"), "removed_for_balance": _removed(d.get("removed_for_balance")),
               "gamma_surf_eV_nm2": _f(d.get("gamma_surf_eV_nm2")),
               "gamma_surf_charged_eV_nm2": _f(d.get("gamma_surf_charged_eV_nm2")),
               "gamma_surf_balanced_eV_nm2": _f(d.get("gamma_surf_balanced_eV_nm2")),
               "gamma_inter_charged_eV_nm2": _f(d.get("gamma_inter_charged_eV_nm2")),
               "gamma_inter_eV_nm2": _f(d.get("gamma_inter_eV_nm2")),
               "E_str_argyrodite_eV_nm2": e_arg, "E_str_li_eV_nm2": e_li, "E_str_eV_nm2": e_arg + e_li,
               "gamma_inter_min_eV_nm2": _f(d.get("gamma_inter_min_eV_nm2")),
               "final_model": d.get("final_model"), "mlmd_atoms": cell.get("n_atoms")}
        row |= {"study_interface": r.name if r else None,
                "study_mismatch_pct": r.mismatch_pct if r else math.nan,
                "study_li_metal_atoms": r.li_metal_atoms if r else None,
                "study_argyrodite_atoms": r.argyrodite_atoms if r else None,
                "study_gamma_inter_eV_nm2": r.gamma_inter_neutral_eV_nm2 if r else math.nan,
                "study_E_str_argyrodite_eV_nm2": r.E_str_argyrodite_eV_nm2 if r else math.nan,
                "study_E_str_li_eV_nm2": r.E_str_li_eV_nm2 if r else math.nan,
                "study_mlmd_atoms": r.mlmd_atoms if r else None}
        rows.append(row)
    return _frame(rows, ["study", "interface", "termination", "mismatch_pct", "area_A2", "li_metal_atoms",
                         "argyrodite_atoms", "gamma_surf_charged_eV_nm2", "gamma_surf_balanced_eV_nm2",
                         "gamma_inter_charged_eV_nm2", "gamma_inter_eV_nm2", "E_str_eV_nm2",
                         "gamma_inter_min_eV_nm2"])


def _al_docs(db, study: str | None, al_name: str | None) -> list[dict]:
    q: dict = {}
    keys = _interface_keys(db, study)
    if al_name:
        q = {"al_name": al_name}
    elif keys is not None:
        q = {"al_name": {"$in": keys}}
    return store.read(db, store.AL_ITERATIONS.name, q, sort=[("al_name", 1), ("iteration", 1)])


def al_iterations(source: Any = None, study: str | None = None, al_name: str | None = None) -> pd.DataFrame:
    """One row per active-learning iteration: dataset size, committee force uncertainty (mean, p95, max) against
    the threshold, converged, frames selected, committee force/energy RMSE range on the validation set."""
    db = database(source)
    rows = []
    for d in _al_docs(db, study, al_name):
        u, c = d.get("uncertainty_eV_A") or {}, d.get("convergence") or {}
        val = [v for v in (d.get("validation") or {}).values() if isinstance(v, dict)]
        fr = [_f(v.get("force_rmse_meV_A")) for v in val]
        er = [_f(v.get("energy_rmse_meV_atom")) for v in val]
        rows.append({"al_name": d["al_name"], "iteration": d["iteration"], "dataset_size": d.get("dataset_size"),
                     "uncertainty_mean_eV_A": _f(u.get("mean")), "uncertainty_p95_eV_A": _f(u.get("p95")),
                     "uncertainty_max_eV_A": _f(u.get("max")), "uncertainty_frames": u.get("n_frames"),
                     "threshold_eV_A": _f(c.get("threshold_eV_A")), "percentile": _f(c.get("percentile")),
                     "converged": c.get("converged"), "stopped": d.get("stopped"),
                     "selected": len((d.get("selected") or {}).get("indices") or []),
                     "committee_size": len(d.get("models") or []),
                     "force_rmse_min_meV_A": min(fr) if fr else math.nan,
                     "force_rmse_max_meV_A": max(fr) if fr else math.nan,
                     "energy_rmse_min_meV_atom": min(er) if er else math.nan,
                     "energy_rmse_max_meV_atom": max(er) if er else math.nan,
                     "plots": ";".join(d.get("plots") or [])})
    return _frame(rows, ["al_name", "iteration", "dataset_size", "uncertainty_p95_eV_A", "threshold_eV_A", "converged"])


def validation(source: Any = None, study: str | None = None) -> pd.DataFrame:
    """Energy (meV/atom) and force (meV/Å) RMSE per model: every committee member of every AL iteration, and
    each interface's final model where its validation is stored; the study's final-model RMSE beside."""
    db = database(source)
    itfs = {d["key"]: d for d in store.read(db, store.INTERFACES.name, {"study": study} if study else {})}
    rows = []

    def study_cols(key):
        d = itfs.get(key) or {}
        r = ref.interface_ref(plane(d.get("li_plane")), plane(d.get("miller")))
        return {"study_energy_rmse_meV_atom": r.energy_rmse_meV_atom if r else math.nan,
                "study_force_rmse_meV_A": r.force_rmse_meV_A if r else math.nan}

    for d in _al_docs(db, study, None):
        for model, v in (d.get("validation") or {}).items():
            if isinstance(v, dict):
                rows.append({"al_name": d["al_name"], "iteration": d["iteration"], "kind": "committee",
                             "model": model, "energy_rmse_meV_atom": _f(v.get("energy_rmse_meV_atom")),
                             "force_rmse_meV_A": _f(v.get("force_rmse_meV_A")), "n_frames": v.get("n_frames")}
                            | study_cols(d["al_name"]))
    for key, d in itfs.items():
        v = d.get("final_validation") or d.get("validation") or {}
        if isinstance(v, dict) and "force_rmse_meV_A" in v:
            rows.append({"al_name": key, "iteration": None, "kind": "final", "model": d.get("final_model"),
                         "energy_rmse_meV_atom": _f(v.get("energy_rmse_meV_atom")),
                         "force_rmse_meV_A": _f(v.get("force_rmse_meV_A")), "n_frames": v.get("n_frames")}
                        | study_cols(key))
    return _frame(rows, ["al_name", "iteration", "kind", "model", "energy_rmse_meV_atom", "force_rmse_meV_A",
                         "study_energy_rmse_meV_atom", "study_force_rmse_meV_A"])


def analyses(source: Any = None, study: str | None = None, interface: str | None = None) -> pd.DataFrame:
    """One row per analysed MD trajectory: interface, temperature, the summary of the HDF5 file flattened
    (``final.cn.S-Li``, ``final.sei_thickness_A[0]``, ``flux.<membrane>.lr``, ``events.<event>_ns``, ...) and the
    path of the file (read it with :func:`load_analysis`)."""
    db = database(source)
    q: dict = {}
    keys = _interface_keys(db, study)
    if interface:
        q = {"interface": interface}
    elif keys is not None:
        q = {"interface": {"$in": keys}}
    rows = []
    for d in store.read(db, store.ANALYSES.name, q, sort=[("interface", 1), ("temperature_K", 1), ("h5_path", 1)]):
        res = dict(d.get("results") or {})
        row = {"interface": d.get("interface"), "temperature_K": _f(d.get("temperature_K")),
               "n_frames": res.pop("n_frames", None), "duration_ps": _f(res.pop("duration_ps", None))}
        row |= _flatten(res)
        row |= {"h5_path": d.get("h5_path"), "trajectory": d.get("trajectory")}
        rows.append(row)
    return _frame(rows, ["interface", "temperature_K", "n_frames", "duration_ps"])


def diffusion(source: Any = None, study: str | None = None) -> pd.DataFrame:
    """One row per bulk MD temperature: D (cm²/s) and sigma (S/cm) with their standard deviations."""
    db = database(source)
    rows = []
    for d in store.read(db, store.DIFFUSION.name, {"study": study} if study else {},
                        sort=[("study", 1), ("temperature_K", 1)]):
        rows.append({"study": d["study"], "temperature_K": _f(d["temperature_K"]), "D_cm2_s": _f(d.get("D_cm2_s")),
                     "D_std_cm2_s": _f(d.get("D_std_cm2_s")), "sigma_S_cm": _f(d.get("sigma_S_cm")),
                     "sigma_std_S_cm": _f(d.get("sigma_std_S_cm")), "sigma_mstd_S_cm": _f(d.get("sigma_mstd_S_cm")),
                     "h5": d.get("h5"), "trajectory": d.get("trajectory")})
    return _frame(rows, ["study", "temperature_K", "D_cm2_s", "D_std_cm2_s", "sigma_S_cm", "sigma_std_S_cm"])


def tables(source: Any = None, study: str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of :data:`TABLES` (one database connection)."""
    db = database(source)
    funcs = {"studies": lambda: studies(db), "terminations": lambda: terminations(db, study),
             "interfaces": lambda: interfaces(db, study), "al_iterations": lambda: al_iterations(db, study),
             "validation": lambda: validation(db, study), "analyses": lambda: analyses(db, study),
             "diffusion": lambda: diffusion(db, study)}
    return {name: funcs[name]() for name in TABLES}


def write_tables(frames: dict[str, pd.DataFrame], out_dir: str | os.PathLike, fmt: str = "csv") -> list[Path]:
    """``DIR/<table>.csv`` (or ``.json``: a list of records, NaN as null) for each table."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in frames.items():
        p = d / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(p, index=False)
        else:
            p.write_text(df.to_json(orient="records", indent=1, default_handler=str) + "\n")
        paths.append(p)
    return paths


# ------------------------------------------------------------------------------------------- ours beside the study's

#: the columns every comparison table ends with
COMPARE_COLUMNS = ["quantity", "ours", "study", "unit", "METHOD.md"]
#: (table, title) of :func:`comparison`, in print order
COMPARISONS = (
    ("bulk", "bulk Li6PS5Cl: lattice, terminations, diffusion (METHOD.md 1, 2)"),
    ("terminations", "terminations, Table 2 (METHOD.md 2, 8)"),
    ("interfaces", "interfaces, Tables 3 and 4 (METHOD.md 3, 6, 8)"),
    ("active_learning", "active learning (METHOD.md 5)"),
    ("validation", "validation on the AIMD test set (METHOD.md 5)"),
    ("md", "MD analyses (METHOD.md 7: the study's values are for (100)/(100) at 400 K)"),
    ("diffusion", "bulk MD diffusion per temperature (METHOD.md 1 gives only the fits)"),
)


def _row(keys: dict, quantity: str, ours, study, unit: str, section: str) -> dict:
    return keys | {"quantity": quantity, "ours": ours, "study": study, "unit": unit, "METHOD.md": section}


def _rv(r: ref.Ref | None, k: int | None = None):
    """A Ref's value (a number, or "lo-hi" for a range); ``k`` picks one of a (L->R, R->L) pair."""
    if r is None:
        return None
    if k is not None:
        return r.value[k]
    return r.text() if isinstance(r.value, tuple) else r.value


def _compare_bulk(db, study: str | None) -> list[dict]:
    out = []
    for st in store.read(db, store.STUDIES.name, {"name": study} if study else {}, sort="name"):
        keys = {"study_name": st["name"]}
        b = st.get("bulk") or {}
        abc = ", ".join(f"{x:g}" for x in ref.RELAXED_ABC_A)
        out.append(_row(keys, "a of the relaxed cell", _f(b.get("a_relaxed_A")), f"{abc} (a, b, c)", "A", "1"))
        counts: dict[str, int] = {}
        for d in store.read(db, store.SURFACE_ENERGIES.name, {"study": st["name"]}, projection={"miller": 1}):
            counts[plane(d.get("miller"))] = counts.get(plane(d.get("miller")), 0) + 1
        for pl, n in ref.TERMINATION_COUNTS.items():
            out.append(_row(keys, f"terminations of ({pl})", counts.get(pl, 0) if counts else None, n, "terminations",
                            ref.TERMINATION_COUNTS_SECTION))
        arr = st.get("arrhenius") or {}
        for q, name, rv, re_, unit in (("D", "D", "D_300K_cm2_s", "Ea_D_eV", "cm2/s"),
                                       ("sigma", "sigma", "sigma_300K_S_cm", "Ea_sigma_eV", "S/cm")):
            a = arr.get(q) or {}
            out.append(_row(keys, f"Ea({name})", _f(a.get("Ea_eV")), _rv(ref.BULK[re_]), "eV", ref.BULK[re_].section))
            out.append(_row(keys, f"{name} at 300 K", _f(a.get("at_300K")), _rv(ref.BULK[rv]), unit,
                            ref.BULK[rv].section))
    return out


def _compare_terminations(db, study: str | None) -> list[dict]:
    out = []
    for r in terminations(db, study).itertuples(index=False):
        keys = {"study_name": r.study, "rank": r.rank, "plane": f"({r.plane})", "termination": r.termination,
                "charge_e": r.charge_e, "composition": r.composition}
        study_v = r.study_gamma_surf_eV_nm2 if isinstance(r.study_gamma_surf_eV_nm2, float) and \
            math.isfinite(r.study_gamma_surf_eV_nm2) else None
        out.append(_row(keys, "gamma_surf", r.gamma_surf_eV_nm2, study_v, "eV/nm2", ref.TABLE2_SECTION))
    return out


def _compare_interfaces(db, study: str | None) -> list[dict]:
    out = []
    for d in store.read(db, store.INTERFACES.name, {"study": study} if study else {}, sort=[("study", 1), ("key", 1)]):
        li, pl = plane(d.get("li_plane")), plane(d.get("miller"))
        r = ref.interface_ref(li, pl)
        keys = {"study_name": d["study"], "interface": f"({li})/({pl})", "termination": d.get("termination")}
        e_arg, e_li = _f(d.get("E_str_argyrodite_eV_nm2")), _f(d.get("E_str_li_eV_nm2"))
        sec = ref.INTERFACE_SECTIONS
        rows = (("lattice mismatch", _f(d.get("mismatch_pct")), r and r.mismatch_pct, "%", sec["mismatch_pct"]),
                ("Li metal atoms (DFT model)", d.get("li_metal_atoms"), r and r.li_metal_atoms, "atoms", sec["atoms"]),
                ("argyrodite atoms (DFT model)", d.get("argyrodite_atoms"), r and r.argyrodite_atoms, "atoms",
                 sec["atoms"]),
                ("gamma_surf (before balancing)", _f(d.get("gamma_surf_charged_eV_nm2")), None, "eV/nm2",
                 "8 (Table 4)"),
                ("gamma_surf (after balancing)", _f(d.get("gamma_surf_balanced_eV_nm2")), None, "eV/nm2",
                 "8 (Table 4)"),
                ("gamma_inter (charged model)", _f(d.get("gamma_inter_charged_eV_nm2")), None, "eV/nm2",
                 "8 (Table 4)"),
                ("gamma_inter (charge-balanced)", _f(d.get("gamma_inter_eV_nm2")),
                 r and r.gamma_inter_neutral_eV_nm2, "eV/nm2", sec["gamma_inter_neutral_eV_nm2"]),
                ("E_str argyrodite", e_arg, r and r.E_str_argyrodite_eV_nm2, "eV/nm2", sec["E_str"]),
                ("E_str Li", e_li, r and r.E_str_li_eV_nm2, "eV/nm2", sec["E_str"]),
                ("E_str (argyrodite + Li)", e_arg + e_li, r and r.E_str_argyrodite_eV_nm2 + r.E_str_li_eV_nm2,
                 "eV/nm2", sec["E_str"]),
                ("gamma_inter_min (strain-corrected)", _f(d.get("gamma_inter_min_eV_nm2")), None, "eV/nm2", "3"),
                ("MLMD cell atoms", (d.get("mlmd_cell") or {}).get("n_atoms"), r and r.mlmd_atoms, "atoms",
                 sec["mlmd_atoms"]))
        out += [_row(keys, q, ours, study_v if r else None, unit, section) for q, ours, study_v, unit, section in rows]
    return out


def _compare_al(db, study: str | None) -> list[dict]:
    out = []
    by_name: dict[str, list[dict]] = {}
    for d in _al_docs(db, study, None):
        by_name.setdefault(d["al_name"], []).append(d)
    for name, docs in by_name.items():
        keys = {"al_name": name}
        sizes = [d.get("dataset_size") for d in docs]
        converged = any((d.get("convergence") or {}).get("converged") for d in docs)
        first, last = sizes[0], sizes[-1]
        added = last - first if isinstance(first, int) and isinstance(last, int) else None
        al = ref.AL
        out += [_row(keys, "initial frames", first, al["initial_frames"].value, "frames", "5"),
                _row(keys, "iterations" + ("" if converged else " (not converged yet)"), len(docs),
                     al["iterations"].value, "iterations", "5"),
                _row(keys, "frames added", added, al["frames_added"].value, "frames", "5"),
                _row(keys, "dataset at convergence" if converged else "dataset so far", last,
                     al["dataset_final"].value, "frames", "5")]
    return out


def _compare_validation(db, study: str | None) -> list[dict]:
    out = []
    for r in validation(db, study).itertuples(index=False):
        it = "" if r.iteration is None or (isinstance(r.iteration, float) and math.isnan(r.iteration)) \
            else str(int(r.iteration))
        keys = {"al_name": r.al_name, "iteration": it, "kind": r.kind, "model": Path(str(r.model)).name}
        se, sf = r.study_energy_rmse_meV_atom, r.study_force_rmse_meV_A
        out.append(_row(keys, "energy RMSE", r.energy_rmse_meV_atom, None if math.isnan(_f(se)) else se,
                        "meV/atom", "5"))
        out.append(_row(keys, "force RMSE", r.force_rmse_meV_A, None if math.isnan(_f(sf)) else sf, "meV/A", "5"))
    return out


def _compare_md(db, study: str | None) -> list[dict]:
    names = {d["key"]: (plane(d.get("li_plane")), plane(d.get("miller")))
             for d in store.read(db, store.INTERFACES.name, {"study": study} if study else {})}
    q: dict = {}
    if study:
        q = {"interface": {"$in": list(names)}}
    out = []
    for d in store.read(db, store.ANALYSES.name, q, sort=[("interface", 1), ("temperature_K", 1), ("h5_path", 1)]):
        summ = d.get("results") or {}
        final = summ.get("final") or {}
        T = _f(d.get("temperature_K"))
        planes = names.get(d.get("interface"))
        is_ref = planes == ref.ANALYSIS_INTERFACE and T == ref.ANALYSIS_TEMPERATURE_K
        label = f"({planes[0]})/({planes[1]})" if planes else str(d.get("interface"))
        keys = {"interface": label, "T_K": T, "frames": summ.get("n_frames")}

        def add(quantity, ours, r, unit, k=None, keys=keys, is_ref=is_ref):
            out.append(_row(keys, quantity, ours, _rv(r, k) if is_ref else None, unit, r.section if r else "7"))

        cn = final.get("cn") or {}
        for pair in ("S-Li", "P-Li", "S-P"):
            add(f"CN {pair} (final)", _f(cn.get(pair)), ref.ANALYSIS.get(f"cn_{pair}"), "neighbours")
        add("intact PS4 fraction (final)", _f(final.get("ps4_intact_fraction")), None, "fraction")
        cr = _f(final.get("crystallinity_percent"))
        out.append(_row(keys, "crystallinity (final)", cr,
                        ("amorphous " + ref.ANALYSIS["crystallinity_amorphous_percent"].text() + ", crystalline "
                         + ref.ANALYSIS["crystallinity_crystalline_percent"].text()) if is_ref else None, "%", "7"))
        add("SEI thickness (final)", _f(final.get("sei_thickness_total_A")), ref.ANALYSIS["sei_thickness_A"], "A")
        add("SEI thickness (max)", _f(summ.get("sei_thickness_total_max_A")), None, "A")
        comp = final.get("sei_composition")
        comp = comp if isinstance(comp, (list, tuple)) and len(comp) == 3 else [None] * 3
        add("SEI Li2 S(1-x-y) P(x) Cl(y): x (final)", _f(comp[1]), ref.ANALYSIS["sei_composition_x_y"], "fraction")
        add("SEI Li2 S(1-x-y) P(x) Cl(y): y (final)", _f(comp[2]), ref.ANALYSIS["sei_composition_x_y"], "fraction")
        events = summ.get("events") or {}
        for name in list(ref.EVENTS_ns) + sorted(k for k in events if k not in ref.EVENTS_ns):
            add(f"event: {name.removesuffix('_ns').replace('_', ' ')}", _f(events.get(name)), ref.EVENTS_ns.get(name),
                "ns")
        for m, entry in (summ.get("flux") or {}).items():
            if not isinstance(entry, dict):
                continue
            parts = [(None, "whole run", entry)]
            parts += [(w, f"{w.replace('_', ' ')} {_f(we.get('t0_ns')):g}-{_f(we.get('t1_ns')):g} ns", we)
                      for w, we in (entry.get("windows") or {}).items() if isinstance(we, dict)]
            for wkey, wlabel, e in parts:
                rkey = ref.FLUX_MEMBRANE_REF.get((m, wkey))
                r = ref.FLUX[rkey] if rkey else None
                if wkey is not None and r is None and not any(math.isfinite(_f(e.get(x))) for x in ("lr", "rl")):
                    continue  # a window this run does not reach, without a published value
                for k, dkey in enumerate(("lr", "rl")):
                    named = entry.get(f"direction_{dkey}") or ("+c" if dkey == "lr" else "-c")
                    direction = ("L->R" if dkey == "lr" else "R->L") + (f" ({named})" if named else "")
                    add(f"Li flux {m}, {wlabel}, {direction}", _f(e.get(dkey)), r, "atoms/nm2/ns", k)
    return out


def _compare_diffusion(db, study: str | None) -> list[dict]:
    out = []
    for r in diffusion(db, study).itertuples(index=False):
        keys = {"study_name": r.study, "T_K": r.temperature_K}
        out.append(_row(keys, "D (Li)", r.D_cm2_s, None, "cm2/s", "1"))
        out.append(_row(keys, "sigma (Nernst-Einstein)", r.sigma_S_cm, None, "S/cm", "1"))
    return out


def comparison(source: Any = None, study: str | None = None) -> dict[str, pd.DataFrame]:
    """Our values beside the study's, one DataFrame per :data:`COMPARISONS` table: the columns naming the row
    (interface, temperature, model, ...), then ``quantity``, ``ours``, ``study`` (the published value from
    :mod:`argyro_fw.study.reference`, None where METHOD.md gives none), ``unit`` and the ``METHOD.md`` section."""
    db = database(source)
    funcs = {"bulk": _compare_bulk, "terminations": _compare_terminations, "interfaces": _compare_interfaces,
             "active_learning": _compare_al, "validation": _compare_validation, "md": _compare_md,
             "diffusion": _compare_diffusion}
    out = {}
    for name, _ in COMPARISONS:
        rows = funcs[name](db, study)
        df = pd.DataFrame(rows)
        out[name] = df if len(df) else pd.DataFrame(columns=COMPARE_COLUMNS)
    return out


def _cell(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "-"
        if x == int(x) and abs(x) < 1e6:
            return f"{x:.0f}" if abs(x) >= 10 else f"{x:g}"
        return f"{x:.4g}"
    return str(x) if str(x) else "-"


def format_comparison(tables: dict[str, pd.DataFrame]) -> str:
    """The tables of :func:`comparison` as text, each: header, a rule with its title, one line per row. Empty
    tables are left out."""
    titles = dict(COMPARISONS)
    blocks = []
    for name, df in tables.items():
        if df.empty:
            continue
        cols = [c for c in df.columns if c != "study_name" or df[c].nunique() > 1]
        head = {"T_K": "T/K", "charge_e": "charge/e", "study_name": "study (name)", "METHOD.md": "METHOD.md"}
        cells = [[_cell(v) for v in row] for row in df[cols].itertuples(index=False)]
        names = [head.get(c, c) for c in cols]
        widths = [max([len(n)] + [len(r[k]) for r in cells]) for k, n in enumerate(names)]
        right = {c for c in cols if c in ("ours", "study", "T_K", "frames", "rank", "charge_e", "iteration")}

        def line(vals, widths=widths, cols=cols, right=right):
            return "  ".join(v.rjust(w) if c in right else v.ljust(w) for v, w, c in zip(vals, widths, cols)).rstrip()

        header = line(names)
        title = f"-- {titles.get(name, name)} "
        blocks.append("\n".join([header, title + "-" * max(3, len(header) - len(title))] + [line(r) for r in cells]))
    return "\n\n".join(blocks)


def comparison_text(source: Any = None, study: str | None = None) -> str:
    """What ``argyro results`` prints: a line per study (bulk, completion), then :func:`format_comparison`."""
    db = database(source)
    lines = []
    for st in store.read(db, store.STUDIES.name, {"name": study} if study else {}, sort="name"):
        b = st.get("bulk") or {}
        lines.append(f"study {st['name']!r}: bulk {b.get('chosen') or '-'}, "
                     f"{'complete' if st.get('complete') else 'running'}")
    body = format_comparison(comparison(db, study))
    if not body:
        return "\n".join(lines + ["no results in the database yet"])
    return "\n".join(lines + ([""] if lines else []) + [body])


# ------------------------------------------------------------------------------------------- HDF5

#: short names for the columns of 2-D datasets whose ``columns`` attribute is a sentence
_COLUMN_NAMES = {"sei/thickness_A": ("above", "below")}
_IDENT = re.compile(r"^[A-Za-z0-9_.+-]{1,16}$")


def _units(ds) -> str:
    u = ds.attrs.get("units")
    if isinstance(u, bytes):
        u = u.decode()
    if u:
        return str(u)
    return "crossings" if ds.name.rsplit("/", 1)[-1].startswith("cumulative") else "dimensionless"


def _column_labels(name: str, ds, n: int) -> list[str]:
    if name in _COLUMN_NAMES and len(_COLUMN_NAMES[name]) == n:
        return list(_COLUMN_NAMES[name])
    cols = ds.attrs.get("columns")
    if isinstance(cols, bytes):
        cols = cols.decode()
    parts = [p.strip() for p in str(cols).split(",")] if cols is not None else []
    if len(parts) == n and all(_IDENT.match(p) for p in parts):
        return parts
    return [str(i) for i in range(n)]


def _plain_attrs(attrs) -> dict:
    out = {}
    for k, v in attrs.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, bytes):
            v = v.decode()
        out[k] = v
    return out


def load_analysis(path: str | os.PathLike) -> pd.DataFrame:
    """An analysis HDF5 file's per-frame time series as a DataFrame indexed by ``time [ps]``.

    One column per dataset with one value per frame, named ``<dataset path> [<units>]`` (e.g.
    ``coordination/S-Li [neighbours]``, ``crystallinity_percent [%]``, ``sei/thickness_A/above [Angstrom]``,
    ``flux/interface/cumulative_lr [crossings]``). The file's attributes and the event times are in
    ``df.attrs`` (``df.attrs["events"]``); RDFs are in :func:`load_rdf`."""
    with h5py.File(path, "r") as h:
        if "time_ps" not in h:
            raise ValueError(f"{path}: not an argyro analysis file (no /time_ps)")
        t = h["time_ps"][:]
        n = len(t)
        cols: dict[str, np.ndarray] = {}

        def visit(name, obj):
            if not isinstance(obj, h5py.Dataset) or name == "time_ps" or obj.ndim == 0 or obj.shape[0] != n:
                return
            if name.startswith("rdf/") or obj.ndim > 2:
                return
            units = _units(obj)
            data = obj[:]
            if data.ndim == 1:
                cols[f"{name} [{units}]"] = data
            else:
                for k, lab in enumerate(_column_labels(name, obj, data.shape[1])):
                    cols[f"{name}/{lab} [{units}]"] = data[:, k]

        h.visititems(visit)
        df = pd.DataFrame(cols, index=pd.Index(t, name=f"time [{_units(h['time_ps'])}]"))
        df.attrs = _plain_attrs(h.attrs)
        if "events" in h:
            df.attrs["events"] = _plain_attrs(h["events"].attrs)
        if "flux" in h:
            df.attrs["flux"] = {m: _plain_attrs(h[f"flux/{m}"].attrs) for m in h["flux"]}
    return df


def load_rdf(path: str | os.PathLike) -> pd.DataFrame:
    """The averaged RDFs of an analysis HDF5 file, indexed by ``r [Angstrom]``, one column per pair."""
    with h5py.File(path, "r") as h:
        if "rdf" not in h:
            raise ValueError(f"{path}: no /rdf group")
        g = h["rdf"]
        r = g["r_A"][:]
        df = pd.DataFrame({f"{k} [g(r)]": g[k][:] for k in g if k != "r_A"},
                          index=pd.Index(r, name=f"r [{_units(g['r_A'])}]"))
    return df

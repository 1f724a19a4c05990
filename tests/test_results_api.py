"""Issue 17: the results API (``argyro_fw.results``): pandas tables from any source, ``argyro results --csv/--json``,
the HDF5 loader with units in the column names, and the README's notebook example run exactly as written.

The database holds the demo study's records, written by argyro's store functions (``test_report.build_study_db``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import BIN, REPO, run
from test_report import ITF_KEY, STUDY, study_records


@pytest.fixture
def state(launchpad_dir, tmp_path_factory, monkeypatch):
    """The study's records (test_report.study_records: built once per session, copied into this test's database)."""
    from argyro_fw.launchpad import get_launchpad

    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    return lp, study_records(lp, tmp_path_factory, monkeypatch)


def test_tables_from_every_kind_of_source(state, launchpad_dir, db_settings):
    from argyro_fw import results

    lp, made = state
    uri = f"mongodb://{db_settings.host}:{db_settings.port}/{db_settings.name}"
    sources = [lp, lp.db, launchpad_dir / "my_launchpad.yaml", str(launchpad_dir / "my_launchpad.yaml"), db_settings, uri]
    for src in sources:
        t = results.terminations(src)
        assert len(t) == 4 and list(t["rank"]) == [0, 1, 2, 3], type(src)
    with pytest.raises(TypeError):
        results.terminations(42)

    t = results.terminations(lp, STUDY)
    first = t.iloc[0]
    # Table 2's layout: composition = slab formula / 4; the study's row with the same plane, name and composition
    assert (first.plane, first.termination, first.composition, first.charge_e) == ("100", "Li-P-S-Cl", "Li10 P2 S8 Cl1.5", 10)
    assert first.study_gamma_surf_eV_nm2 == 1.006 and first.gamma_surf_eV_nm2 == pytest.approx(1.08)
    assert t.set_index("termination").loc["Li-Cl", "study_gamma_surf_eV_nm2"] == 2.203
    assert results.terminations(lp, "no-such-study").empty

    i = results.interfaces(lp, STUDY).iloc[0]
    assert i.interface == "(100)/(100)" and i.study_interface == "(100)/(100)"
    assert i.study_gamma_inter_eV_nm2 == -7.807 and i.study_E_str_li_eV_nm2 == 0.229
    assert i.E_str_eV_nm2 == pytest.approx(-0.05 + 0.21) and (i.li_metal_atoms, i.argyrodite_atoms) == (99, 84)
    assert math.isnan(i.gamma_inter_charged_eV_nm2) and i.removed_for_balance == "P2"

    al = results.al_iterations(lp, STUDY)
    assert list(al["iteration"]) == [0, 1] and list(al["dataset_size"]) == [450, 650]
    assert list(al["converged"]) == [False, True] and list(al["selected"]) == [200, 0]
    assert (al["uncertainty_p95_eV_A"] > 0).all() and (al["threshold_eV_A"] == 0.1).all()
    v = results.validation(lp, STUDY)
    assert len(v) == 7 and list(v["kind"]).count("committee") == 6 and (v["study_force_rmse_meV_A"] == 46.8).all()
    final = v[v["kind"] == "final"].iloc[0]
    assert final.force_rmse_meV_A == 44.0 and final.energy_rmse_meV_atom == 4.1 and final.model.endswith("final.model")

    a = results.analyses(lp, STUDY)
    assert len(a) == 1 and a.loc[0, "interface"] == ITF_KEY and a.loc[0, "temperature_K"] == 400.0
    s = made["summary"]
    assert a.loc[0, "n_frames"] == s["n_frames"] == 24
    assert a.loc[0, "final.cn.S-Li"] == pytest.approx(s["final"]["cn"]["S-Li"])
    assert a.loc[0, "final.sei_thickness_A[1]"] == pytest.approx(s["final"]["sei_thickness_A"][1])
    assert a.loc[0, "flux.interface.rl"] == pytest.approx(s["flux"]["interface"]["rl"])

    d = results.diffusion(lp, STUDY)
    assert list(d["temperature_K"]) == [600.0, 800.0] and (d["D_cm2_s"] > 0).all()
    st = results.studies(lp).iloc[0]
    assert st.study == STUDY and st.Ea_D_eV == pytest.approx(made["arrhenius"]["D"]["Ea_eV"])
    assert st.study_D_300K == 5.79e-7 and st.mu_Li_eV == -1.906

    # an empty database: every table with its columns, no rows
    empty = results.tables(lp.db, "nothing-yet")
    assert set(empty) == set(results.TABLES) and all(df.empty for k, df in empty.items() if k != "studies")
    assert "gamma_surf_eV_nm2" in empty["terminations"].columns


def test_load_analysis_units_in_column_names(state):
    from argyro_fw import results

    _, made = state
    df = results.load_analysis(made["h5"])
    assert df.index.name == "time [ps]" and len(df) == 24
    assert all(re.search(r" \[[^\]]+\]$", c) for c in df.columns), list(df.columns)
    with h5py.File(made["h5"]) as h:
        assert np.array_equal(df.index.to_numpy(), h["time_ps"][:])
        assert np.array_equal(df["coordination/S-Li [neighbours]"].to_numpy(), h["coordination/S-Li"][:])
        assert np.array_equal(df["crystallinity_percent [%]"].to_numpy(), h["crystallinity_percent"][:], equal_nan=True)
        thick = h["sei/thickness_A"][:]
        assert np.array_equal(df["sei/thickness_A/above [Angstrom]"].to_numpy(), thick[:, 0], equal_nan=True)
        assert np.array_equal(df["sei/thickness_A/below [Angstrom]"].to_numpy(), thick[:, 1], equal_nan=True)
        assert np.array_equal(df["sei/composition/Cl [fraction]"].to_numpy(), h["sei/composition"][:, 2], equal_nan=True)
        assert np.array_equal(df["flux/interface/cumulative_lr [crossings]"].to_numpy(),
                              h["flux/interface/cumulative_lr"][:])
        assert set(df.attrs["events"]) >= {"decomposition_end_ns", "crystallisation_start_ns"}
        assert df.attrs["n_frames"] == 24 and df.attrs["flux"]["interface"]["units"] == "atoms/nm2/ns"
    rdf = results.load_rdf(made["h5"])
    assert rdf.index.name == "r [Angstrom]" and "S-P [g(r)]" in rdf.columns
    other = made["h5"].parent / "not_an_analysis.h5"
    with h5py.File(other, "w") as h:
        h["x"] = [1.0]
    with pytest.raises(ValueError, match="not an argyro analysis file"):
        results.load_analysis(other)


def test_cli_results_csv_and_json(state, launchpad_dir, cli_env, tmp_path):
    from argyro_fw import results

    lpfile = str(launchpad_dir / "my_launchpad.yaml")
    p = run([str(BIN / "argyro"), "results", "-l", lpfile, "--study", STUDY, "--csv", str(tmp_path / "csv")], cli_env)
    written = sorted(x.rsplit("/", 1)[-1] for x in p.stdout.split())
    assert written == sorted(f"{t}.csv" for t in results.TABLES)
    t = pd.read_csv(tmp_path / "csv" / "terminations.csv")
    assert list(t["termination"])[:2] == ["Li-P-S-Cl", "Li-Cl"] and t.loc[0, "study_gamma_surf_eV_nm2"] == 1.006
    assert pd.read_csv(tmp_path / "csv" / "al_iterations.csv")["dataset_size"].tolist() == [450, 650]
    run([str(BIN / "argyro"), "results", "-l", lpfile, "--json", str(tmp_path / "js")], cli_env)
    d = json.loads((tmp_path / "js" / "diffusion.json").read_text())
    assert [r["temperature_K"] for r in d] == [600.0, 800.0]
    itf = json.loads((tmp_path / "js" / "interfaces.json").read_text())[0]
    assert itf["gamma_inter_charged_eV_nm2"] is None and itf["study_gamma_inter_eV_nm2"] == -7.807  # NaN -> null
    # stdout JSON keeps the earlier keys and adds the tables
    out = json.loads(run([str(BIN / "argyro"), "results", "-l", lpfile, "--json"], cli_env).stdout)
    assert {"analyses", "studies", "tables"} <= set(out) and len(out["tables"]["terminations"]) == 4
    assert out["analyses"][0]["interface"] == ITF_KEY


def _readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Report and results API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_notebook_example_runs_as_written(state, tmp_path, cli_env, monkeypatch):
    """The README's notebook example, unchanged, against a launchpad at the path it names."""
    import matplotlib

    matplotlib.use("Agg")
    code = _readme_example()
    lines = [x for x in code.strip().splitlines() if x.strip()]
    assert len(lines) <= 10, f"the README promises a 10-line example ({len(lines)} lines)"
    work = tmp_path / "notebook"
    work.mkdir()
    run([str(BIN / "argyro"), "init", "--dir", str(work / "demo-output" / "launchpad")], cli_env)
    monkeypatch.chdir(work)
    buf = io.StringIO()
    ns: dict = {}
    with contextlib.redirect_stdout(buf):
        exec(compile(code, "README.md", "exec"), ns)
    out = buf.getvalue()
    assert "Li-P-S-Cl" in out and "1.006" in out and "-7.807" in out and "800.0" in out
    assert "uncertainty_p95_eV_A" in out and "0.126" in out  # pandas elides middle columns at 80 characters
    assert isinstance(ns["ts"], pd.DataFrame) and ns["ts"].index.name == "time [ps]"
    import matplotlib.pyplot as plt

    assert plt.get_fignums()  # the plot was made
    plt.close("all")


def _rows(text: str, table_title: str) -> list[list[str]]:
    """The rows of one printed table (split on two or more spaces), found by the title in its rule line."""
    blocks = text.split("\n\n")
    block = next(b for b in blocks if len(b.splitlines()) > 1 and b.splitlines()[1].startswith(f"-- {table_title}"))
    lines = block.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    assert header[-5:] == ["quantity", "ours", "study", "unit", "METHOD.md"], header
    return [re.split(r"\s{2,}", ln.strip()) for ln in lines[2:]]


def _find(rows, *cells) -> list[str]:
    hit = [r for r in rows if all(c in r for c in cells)]
    assert len(hit) == 1, (cells, hit)
    return hit[0]


def test_cli_results_prints_ours_beside_the_study(state, launchpad_dir, cli_env):
    """Issue 15: `argyro results` prints each value beside the study's value (from argyro_fw.study.reference) with
    its unit: our stored value in the "ours" column, METHOD.md's in the "study" column."""
    from argyro_fw.study import reference as ref

    _, made = state
    lpfile = str(launchpad_dir / "my_launchpad.yaml")
    text = run([str(BIN / "argyro"), "results", "-l", lpfile], cli_env).stdout
    assert text.startswith("study 'demo': bulk bulk/disordered-0, running")

    # surface energies (Table 2): ours 1.08 beside 1.006 for (100) Li-P-S-Cl
    t = _rows(text, "terminations")
    assert _find(t, "(100)", "Li-P-S-Cl", "gamma_surf")[-4:] == ["1.08", "1.006", "eV/nm2", "8"]
    assert _find(t, "(100)", "Li-Cl", "gamma_surf")[-4:-1] == ["2.31", "2.203", "eV/nm2"]

    # interfaces (Tables 3, 4): gamma_inter, E_str, atoms, mismatch, MLMD cell
    i = _rows(text, "interfaces")
    r = ref.interface_ref("100", "100")
    assert _find(i, "(100)/(100)", "gamma_inter (charge-balanced)")[-4:-1] == ["-7.52", "-7.807", "eV/nm2"]
    assert _find(i, "(100)/(100)", "E_str argyrodite")[-4:-1] == ["-0.05", "-0.074", "eV/nm2"]
    assert _find(i, "(100)/(100)", "E_str Li")[-4:-1] == ["0.21", str(r.E_str_li_eV_nm2), "eV/nm2"]
    assert _find(i, "(100)/(100)", "E_str (argyrodite + Li)")[-4:-1] == ["0.16", "0.155", "eV/nm2"]
    assert _find(i, "(100)/(100)", "lattice mismatch")[-4:-1] == ["0.41", "0.37", "%"]
    assert _find(i, "(100)/(100)", "MLMD cell atoms")[-4:-1] == ["2231", "2220", "atoms"]
    assert _find(i, "(100)/(100)", "gamma_inter (charged model)")[-4:-1] == ["-", "-", "eV/nm2"]  # not stored / none

    # validation: every committee member and the final model beside 4.5 meV/atom and 46.8 meV/A
    v = _rows(text, "validation")
    assert _find(v, "final", "final.model", "energy RMSE")[-4:-1] == ["4.1", "4.5", "meV/atom"]
    assert _find(v, "final", "final.model", "force RMSE")[-4:-1] == ["44", "46.8", "meV/A"]
    committee_force = [x for x in v if "committee" in x and "force RMSE" in x]
    assert len(committee_force) == 6 and all(x[-3:-1] == ["46.8", "meV/A"] for x in committee_force)

    # bulk: D and Ea fits beside 0.18 eV, 5.79e-7 cm2/s, 0.12 eV, 0.139 S/cm; termination counts beside METHOD.md 2
    b = _rows(text, "bulk Li6PS5Cl")
    arr = made["arrhenius"]
    assert _find(b, "Ea(D)")[-4:] == [f"{arr['D']['Ea_eV']:.4g}", "0.18", "eV", "1"]
    assert _find(b, "D at 300 K")[-3:-1] == ["5.79e-07", "cm2/s"]
    assert _find(b, "Ea(sigma)")[-4:-1] == [f"{arr['sigma']['Ea_eV']:.4g}", "0.12", "eV"]
    assert _find(b, "sigma at 300 K")[-3:-1] == ["0.139", "S/cm"]
    assert _find(b, "terminations of (100)")[-4:-1] == ["4", "6", "terminations"]

    # active learning: dataset sizes beside 450 initial frames and 6 iterations
    al = _rows(text, "active learning")
    assert _find(al, "initial frames")[-4:-1] == ["450", "450", "frames"]
    assert _find(al, "iterations")[-4:-1] == ["2", "6", "iterations"]

    # MD analysis of (100)/(100) at 400 K: SEI thickness, composition, events, flux beside Table 5 and section 7
    md = _rows(text, "MD analyses")
    s = made["summary"]
    assert all(x[:3] == ["(100)/(100)", "400", "24"] for x in md)
    ev = s["events"]
    row = _find(md, "event: decomposition end")
    assert row[-4:-1] == [_ns(ev.get("decomposition_end_ns")), "0.39", "ns"]
    assert _find(md, "event: crystallisation start")[-3:-1] == ["0.24", "ns"]
    assert _find(md, "event: crystallisation end")[-3:-1] == ["2.43", "ns"]
    assert _find(md, "SEI thickness (final)")[-3:-1] == ["64", "A"]
    x_row = _find(md, "SEI Li2 S(1-x-y) P(x) Cl(y): x (final)")
    assert x_row[-3:-1] == ["0.14-0.15", "fraction"]
    assert _find(md, "CN S-Li (final)")[-4:-1] == [f"{s['final']['cn']['S-Li']:.4g}", "8", "neighbours"]
    flux = {x[3].rsplit(" (", 1)[0]: x for x in md if x[3].startswith("Li flux ")}  # "... L->R (<direction>)"
    assert flux["Li flux interface, whole run, L->R"][-4:-1] == [f"{s['flux']['interface']['lr']:.4g}", "65.25",
                                                                 "atoms/nm2/ns"]
    assert flux["Li flux interface, whole run, R->L"][-4:-1] == [f"{s['flux']['interface']['rl']:.4g}", "64.12",
                                                                 "atoms/nm2/ns"]
    # the study's SEI windows at the membrane a quarter into the electrolyte; this 0.1 ns run reaches neither
    assert flux["Li flux electrolyte_quarter, amorphous sei 0.5-1.5 ns, L->R"][-4:-1] == ["-", "12.94", "atoms/nm2/ns"]
    assert flux["Li flux electrolyte_quarter, crystalline sei 4-5 ns, R->L"][-4:-1] == ["-", "0.23", "atoms/nm2/ns"]
    assert "Li flux electrode_centre, amorphous sei 0.5-1.5 ns, L->R" not in flux  # neither ours nor the study's

    # diffusion per temperature: ours, no published value per temperature
    d = _rows(text, "bulk MD diffusion")
    assert _find(d, "600", "D (Li)")[-3:] == ["-", "cm2/s", "1"]

    # --json carries the same comparison
    js = json.loads(run([str(BIN / "argyro"), "results", "-l", lpfile, "--json"], cli_env).stdout)["comparison"]
    g = next(x for x in js["interfaces"] if x["quantity"] == "gamma_inter (charge-balanced)")
    assert (g["ours"], g["study"], g["unit"]) == (-7.52, -7.807, "eV/nm2")


def _ns(x) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}"


def test_results_comparison_for_another_interface_has_no_study_value(state):
    """The section 7 values are the (100)/(100) model's at 400 K: another temperature is printed without them."""
    from argyro_fw import results, store

    lp, made = state
    doc = store.find_one(lp.db, store.ANALYSES.name, {}) or {}
    store.put_analysis(lp.db, made["summary"], str(made["h5"]) + ".copy", doc.get("trajectory"),
                       interface=ITF_KEY, temperature_K=300.0)
    md = results.comparison(lp, STUDY)["md"]
    at300 = md[md["T_K"] == 300.0]
    at400 = md[md["T_K"] == 400.0]
    assert len(at300) == len(at400) > 0 and at300["study"].isna().all()
    assert at400.set_index("quantity").loc["SEI thickness (final)", "study"] == 64
    text = results.format_comparison({"md": md})
    assert "(100)/(100)  300" in text

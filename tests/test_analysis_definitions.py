"""Issue 15, analysis items 7-11 (METHOD.md sections 7 and 9) on synthetic frames and series with known answers:
SEI thickness through the whole run, SEI composition from SEI Li, Li flux with membranes placed after the NVT
equilibration and the study's windows, event times on series shaped like the study's Fig. 11, and the Arrhenius
fit of ln(sigma) with kinisi."""

from __future__ import annotations

import json
from pathlib import Path

import ase
import ase.io
import h5py
import numpy as np
import pymongo
import pytest
import yaml
from pymatgen.io.ase import AseAtomsAdaptor

from argyro_fw.analysis.diffusion import KB_EV, arrhenius_fit, bulk_flux, nernst_einstein
from argyro_fw.analysis.events import event_times
from argyro_fw.analysis.pipeline import AnalysisOptions, FrameAccumulator, analyze_trajectory
from argyro_fw.errors import ConfigError
from argyro_fw.study import config
from conftest import BIN, REPO, run
from stacks import argyrodite

# --- a synthetic Li | Li2S-like SEI | PS4 electrolyte | SEI | (Li) cell -----------------------------------
A_L2S = 5.70  # Li2S conventional cell (Angstrom); the cell is 2 x 2 of them in-plane
A_XY = 2 * A_L2S
D_PS = 2.05  # P-S bond
LAYER_DZ = 5.0  # PS4 layers along c
EXPAND = 1.6  # a broken unit: its S pushed out to 1.6 x 2.05 = 3.28 A (> 3 A) from its P
TETRA = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3.0)


def _li2s_block(n_cells: int) -> tuple[list[str], np.ndarray]:
    """Antifluorite Li2S, 2 x 2 x n conventional cells, its lowest S plane at z = 0 (S planes every a/2)."""
    s_frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    li_frac = np.array([[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
    sym, pos = [], []
    for i in range(2):
        for j in range(2):
            for k in range(n_cells):
                for f in s_frac:
                    sym.append("S")
                    pos.append((f + [i, j, k]) * A_L2S)
                for f in li_frac:
                    sym.append("Li")
                    pos.append((f + [i, j, k]) * A_L2S)
    return sym, np.array(pos)


def synthetic_cell(n_layers: int = 4, n_sei_cells: int = 2, n_li_layers: int = 6, substitute: tuple[int, int] = (0, 0)):
    """(symbols, positions, c, info). Along c: bcc Li (z = 0 ..), SEI block, PS4 layers, mirrored SEI block; the Li
    metal continues through the periodic boundary. ``substitute``: the numbers of SEI S made P and Cl (spread
    evenly over both blocks). ``info``: index arrays of the PS4 units per layer and of the Li metal, the z of the
    outermost SEI S on each side."""
    sym: list[str] = []
    pos: list[np.ndarray] = []
    # Li metal: bcc, 3 x 3 in-plane (a = 3.8 A, strained to the cell), layers every a / 2
    a_li = A_XY / 3
    li_idx = []
    for layer in range(n_li_layers):
        off = 0.0 if layer % 2 == 0 else 0.5
        for i in range(3):
            for j in range(3):
                li_idx.append(len(sym))
                sym.append("Li")
                pos.append(np.array([(i + off) * a_li, (j + off) * a_li, layer * a_li / 2]))
    z_li_top = (n_li_layers - 1) * a_li / 2
    bsym, bpos = _li2s_block(n_sei_cells)
    keep = bpos[:, 2] <= (2 * n_sei_cells - 1) * A_L2S / 2 + A_L2S / 4 + 1e-6  # S planes and the Li above the last
    bsym, bpos = [s for s, k in zip(bsym, keep) if k], bpos[keep]
    top_s = max(p[2] for s, p in zip(bsym, bpos) if s == "S")
    z_low = z_li_top + 2.5  # lowest S of the lower block: the outermost non-Li atom in the Li metal (below)
    for s, p in zip(bsym, bpos):
        sym.append(s)
        pos.append(p + [0, 0, z_low])
    z_p0 = z_low + top_s + 7.0
    units = []
    for layer in range(n_layers):
        this = []
        for i in range(2):
            for j in range(2):
                centre = np.array([(i + 0.25) * A_L2S, (j + 0.25) * A_L2S, z_p0 + layer * LAYER_DZ])
                idx = [len(sym)]
                sym.append("P")
                pos.append(centre)
                for v in TETRA:
                    idx.append(len(sym))
                    sym.append("S")
                    pos.append(centre + D_PS * v)
                this.append(idx)
        units.append(this)
    z_pn = z_p0 + (n_layers - 1) * LAYER_DZ
    z_up_base = z_pn + 7.0 + top_s  # mirrored block: its outermost S plane here
    for s, p in zip(bsym, bpos):
        sym.append(s)
        pos.append(np.array([p[0], p[1], z_up_base - p[2]]))
    z_high = z_up_base
    c = z_high + 2.5 + 0.0  # the Li metal's z = 0 layer is 2.5 A above the upper outermost S
    pos = np.array(pos)
    sym = np.array(sym, dtype=object)
    # substitutions in the SEI: evenly spaced among its S (never PS4 S)
    sei_s = [k for k in range(len(sym)) if sym[k] == "S" and not any(k in u for lay in units for u in lay)]
    n_p, n_cl = substitute
    pick = np.array(sei_s)[np.linspace(0, len(sei_s) - 1, n_p + n_cl).round().astype(int)]
    sym[pick[0::2][:n_p]] = "P"
    rest = [k for k in pick if sym[k] == "S"][:n_cl]
    sym[rest] = "Cl"
    info = {"units": units, "li_metal": np.array(li_idx), "z_low": z_low, "z_high": z_high, "n_sei_s": len(sei_s)}
    return list(sym), pos, c, info


def _cell(c):
    return np.diag([A_XY, A_XY, c])


def _break(pos: np.ndarray, unit: list[int]) -> None:
    p = pos[unit[0]]
    pos[unit[1:]] = p + EXPAND * (pos[unit[1:]] - p)


def _frame(sym, pos, c) -> FrameAccumulator:
    acc = FrameAccumulator(sym, AnalysisOptions(progress=False, auto_membranes=False))
    acc.add(pos, _cell(c))
    return acc


def _intact_span(pos, units, broken_layers) -> float:
    idx = [k for lay, us in enumerate(units) if lay not in broken_layers for u in us for k in u]
    return float(np.ptp(pos[idx, 2])) if idx else 0.0


# --- item 7: SEI thickness -------------------------------------------------------------------------------
def test_sei_thickness_grows_monotonically_to_the_non_li_extent_and_stays_finite():
    sym, pos0, c, info = synthetic_cell(n_layers=6)
    extent = info["z_high"] - info["z_low"]
    order = [0, 5, 1, 4, 2, 3]  # break whole layers from both edges inwards
    thick, parts, broken = [], [], []
    for step in range(len(order) + 1):
        pos = pos0.copy()
        for lay in broken:
            for u in info["units"][lay]:
                _break(pos, u)
        acc = _frame(sym, pos, c)
        assert acc.series["ps4"][0] == pytest.approx(1 - len(broken) / 6)
        t = acc.series["sei_total"][0]
        expected = extent - _intact_span(pos, info["units"], broken)
        assert t == pytest.approx(expected, abs=1e-6)
        assert acc.series["non_li_extent"][0] == pytest.approx(extent, abs=1e-6)
        thick.append(t)
        parts.append(acc.series["sei_thickness"][0])
        if step < len(order):
            broken.append(order[step])
    assert np.all(np.isfinite(thick)) and np.all(np.diff(thick) > 0)
    assert thick[-1] == pytest.approx(extent, abs=1e-6)  # no PS4 left: the whole non-Li extent
    # the two per-interface parts add up to the total while an intact region exists, NaN after
    for t, (up, down) in zip(thick[:-1], parts[:-1]):
        assert up > 0 and down > 0 and up + down == pytest.approx(t, abs=1e-6)
    assert np.isnan(parts[-1]).all()


@pytest.mark.parametrize("n_broken_layers", [2, 6])
def test_densified_sei_is_thinner(n_broken_layers):
    """Scaling the z coordinates of everything but the Li metal by 0.95 (about the electrolyte's middle) lowers
    the thickness by 5 %, with intact PS4 left and with none left."""
    sym, pos, c, info = synthetic_cell(n_layers=6)
    for lay in [0, 5, 1, 4, 2, 3][:n_broken_layers]:
        for u in info["units"][lay]:
            _break(pos, u)
    before = _frame(sym, pos, c).series["sei_total"][0]
    dense = pos.copy()
    rest = np.setdiff1d(np.arange(len(sym)), info["li_metal"])
    mid = 0.5 * (info["z_low"] + info["z_high"])
    dense[rest, 2] = mid + 0.95 * (dense[rest, 2] - mid)
    after = _frame(sym, dense, c).series["sei_total"][0]
    assert np.isfinite(after) and after < before and after == pytest.approx(0.95 * before, rel=1e-6)


def test_no_li_metal_no_thickness():
    """Bulk Li2S (no Li-metal gap): the thickness is NaN, the composition is still defined."""
    s, p = _li2s_block(2)
    acc = _frame(s, p, 2 * A_L2S)
    assert np.isnan(acc.series["sei_total"][0])
    assert acc.series["sei_comp"][0] == (1.0, 0.0, 0.0)


# --- item 8: SEI composition -----------------------------------------------------------------------------
@pytest.mark.parametrize("broken", [False, True])
def test_sei_composition_from_the_anions_bound_to_sei_li(broken):
    """Li2 S(1-x-y) P(x) Cl(y) from the S, P, Cl bound to SEI Li (>= 3 S/P/Cl neighbours): here the SEI blocks
    with 9 of their S made P and 9 made Cl; the intact PS4 units, the broken ones (no Li near them) and the Li
    metal add nothing. Finite whether or not any PS4 is left."""
    sym, pos, c, info = synthetic_cell(n_layers=4, substitute=(9, 9))
    if broken:
        for lay in info["units"]:
            for u in lay:
                _break(pos, u)
    acc = _frame(sym, pos, c)
    n = info["n_sei_s"]
    assert acc.series["sei_comp"][0] == pytest.approx(((n - 18) / n, 9 / n, 9 / n), abs=1e-12)
    assert sum(acc.series["sei_comp"][0]) == pytest.approx(1.0)
    # Li2S stoichiometry: 2 Li per anion in the blocks; the SEI Li are those with >= 3 anion neighbours
    assert acc.series["sei_li"][0] > 0 and 1.0 < acc.series["li_per_anion"][0] <= 2.0


def test_argyrodite_li_are_no_sei_li():
    """Bulk argyrodite: every Li has four S/Cl neighbours, two of them PS4 S; counting only anions outside
    intact PS4 units it has two, so there is no SEI Li and the composition is NaN (not the argyrodite's)."""
    at = AseAtomsAdaptor.get_atoms(argyrodite()) * (2, 2, 2)
    acc = FrameAccumulator(at.get_chemical_symbols(), AnalysisOptions(progress=False))
    acc.add(at.get_positions(), at.cell.array)
    assert acc.series["sei_li"][0] == 0 and np.isnan(acc.series["sei_comp"][0]).all()


def test_decomposed_argyrodite_anion_ratio_is_the_studys():
    """Li2S with 1/7 of its S made P and 1/7 made Cl (the anion ratio of decomposed Li6PS5Cl): x = y = 1/7, the
    study's 0.14-0.15."""
    s, p = _li2s_block(7)  # 2 x 2 x 7 cells: 112 S
    s = np.array(s, dtype=object)
    si = np.nonzero(s == "S")[0]
    s[si[0::7]] = "P"
    s[si[3::7]] = "Cl"
    acc = _frame(list(s), p, 7 * A_L2S)
    assert acc.series["sei_comp"][0] == pytest.approx((5 / 7, 1 / 7, 1 / 7))


# --- item 9: flux ----------------------------------------------------------------------------------------
DT_PS = 10.0  # ps between frames of the synthetic flux trajectory
NVT_PS = 50.0


def _flux_trajectory(tmp_path: Path) -> tuple[Path, dict]:
    """5 ns of frames every 10 ps. Until the end of the NVT stage (50 ps) the cell's non-Li-metal atoms sit 2 A
    higher; then they stay put. Five tracer Li cross membranes at known times."""
    sym, pos, c, info = synthetic_cell(n_layers=4)
    cell = _cell(c)
    rest = np.setdiff1d(np.arange(len(sym)), info["li_metal"])
    z_up, z_low = info["z_high"], info["z_low"]
    L = z_up - z_low
    z_q = z_low + 0.25 * L
    xy = [(0.3 * A_XY, 0.6 * A_XY), (0.6 * A_XY, 0.3 * A_XY), (0.15 * A_XY, 0.85 * A_XY), (0.85 * A_XY, 0.15 * A_XY),
          (0.45 * A_XY, 0.45 * A_XY)]
    # (z before, z after, crossing time ns): +c at the upper interface (electrolyte -> metal) inside the amorphous
    # window; -c there (metal -> electrolyte) at 3 ns, in no window; +c at the quarter membrane at 4.5 ns
    # (crystalline window) and at 0.02 ns (before the NVT end: not counted); -c at the lower interface
    # (electrolyte -> metal there) at 1.0 ns
    tracers = [(z_up - 3.5, z_up + 3.5, 0.8), (z_up + 3.5, z_up - 3.5, 3.0), (z_q - 3.5, z_q + 3.5, 4.5),
               (z_q - 3.5 + 0.9, z_q + 3.5 + 0.9, 0.02), (z_low + 3.5, z_low - 3.5, 1.0)]
    frames = []
    times = np.arange(0, 5000.0 + DT_PS / 2, DT_PS)
    for t in times:
        x = pos.copy()
        if t < NVT_PS:
            x[rest, 2] += 2.0
        tr = []
        for (za, zb, tc), (px, py) in zip(tracers, xy):
            f = np.clip((t - (tc * 1000 - DT_PS)) / (2 * DT_PS), 0, 1)
            tr.append([px, py, za + f * (zb - za)])
        at = ase.Atoms(sym + ["Li"] * len(tracers), positions=np.vstack([x, tr]), cell=cell, pbc=True)
        frames.append(at)
    traj = tmp_path / "flux.extxyz"
    ase.io.write(traj, frames)
    return traj, {"c": c, "z_up": z_up, "z_low": z_low, "z_q": z_q, "area_nm2": A_XY * A_XY / 100.0}


def test_flux_membranes_after_nvt_windows_and_directions(tmp_path):
    traj, g = _flux_trajectory(tmp_path)
    opts = AnalysisOptions(timestep_ps=DT_PS, nvt_ps=NVT_PS, progress=False,
                           flux_windows={"amorphous_sei": [0.5, 1.5], "crystalline_sei": [4.0, 5.0], "late": [4.5, 5.5]})
    summary = analyze_trajectory(traj, tmp_path / "f.h5", opts)
    f = summary["flux"]
    a = g["area_nm2"]
    run_ns = 5.0 - NVT_PS / 1000.0
    assert summary["flux_from_ps"] == NVT_PS
    # positions from the frame at the end of the NVT stage, not frame 0 (2 A lower here)
    assert f["interface"]["position_frac"] == pytest.approx(g["z_up"] / g["c"])
    assert f["interface_below"]["position_frac"] == pytest.approx(g["z_low"] / g["c"])
    assert f["electrolyte_quarter"]["position_frac"] == pytest.approx(g["z_q"] / g["c"])
    # the upper interface: Li metal above, so +c is electrolyte -> metal
    up = f["interface"]
    assert (up["direction_lr"], up["direction_rl"]) == ("electrolyte_to_metal", "metal_to_electrolyte")
    assert up["electrolyte_to_metal"] == pytest.approx(1 / a / run_ns)
    assert up["metal_to_electrolyte"] == pytest.approx(1 / a / run_ns)
    w = up["windows"]["amorphous_sei"]
    assert w["electrolyte_to_metal"] == pytest.approx(1 / a / 1.0) and w["metal_to_electrolyte"] == 0.0
    assert up["windows"]["crystalline_sei"]["lr"] == 0.0 and up["windows"]["crystalline_sei"]["rl"] == 0.0
    # the lower interface faces the other way: its -c crossing is electrolyte -> metal
    low = f["interface_below"]
    assert (low["direction_lr"], low["direction_rl"]) == ("metal_to_electrolyte", "electrolyte_to_metal")
    assert low["windows"]["amorphous_sei"]["electrolyte_to_metal"] == pytest.approx(1 / a)
    assert low["metal_to_electrolyte"] == 0.0
    # the quarter membrane: the 0.02 ns crossing is before the membranes exist; the 4.5 ns one is crystalline
    q = f["electrolyte_quarter"]
    assert (q["direction_lr"], q["direction_rl"]) == ("+c", "-c")
    assert q["lr"] == pytest.approx(1 / a / run_ns) and q["rl"] == 0.0
    assert q["windows"]["crystalline_sei"]["lr"] == pytest.approx(1 / a) and q["windows"]["amorphous_sei"]["lr"] == 0.0
    assert np.isnan(q["windows"]["late"]["lr"])  # the run ends at 5 ns: no 4.5-5.5 ns value
    for m in ("electrode_centre", "electrolyte_centre"):
        assert f[m]["lr"] == 0.0 and f[m]["rl"] == 0.0
    with h5py.File(tmp_path / "f.h5") as h:
        gq = h["flux/electrolyte_quarter"]
        cum = gq["cumulative_lr"][:]
        assert len(cum) == 501 and cum[:5].tolist() == [0] * 5 and cum[-1] == 1
        assert gq.attrs["flux_lr_crystalline_sei"] == pytest.approx(1 / a)
        assert list(gq.attrs["window_crystalline_sei_ns"]) == [4.0, 5.0]
        assert h["flux/interface"].attrs["direction_lr"] == "electrolyte_to_metal"
        assert h.attrs["nvt_ps"] == NVT_PS and h.attrs["flux_from_ps"] == NVT_PS


def test_flux_from_frame_zero_sees_the_early_crossing(tmp_path):
    """Without nvt_ps the membranes come from frame 0 (2 A higher here) and the 0.02 ns crossing counts."""
    traj, g = _flux_trajectory(tmp_path)
    s = analyze_trajectory(traj, tmp_path / "f0.h5", AnalysisOptions(timestep_ps=DT_PS, progress=False))
    assert s["flux"]["interface"]["position_frac"] == pytest.approx((g["z_up"] + 2.0) / g["c"])
    assert s["flux_from_ps"] == 0.0


def test_cli_nvt_and_windows(tmp_path, cli_env):
    traj, g = _flux_trajectory(tmp_path)
    out = tmp_path / "c.h5"
    p = run([str(BIN / "argyro"), "analyze", str(traj), "-o", str(out), "--quiet", "--timestep-ps", str(DT_PS),
             "--nvt-ps", str(NVT_PS), "--flux-window", "amorphous_sei=0.6:1.6"], cli_env)
    s = json.loads(p.stdout)
    w = s["flux"]["interface"]["windows"]
    assert w["amorphous_sei"]["t0_ns"] == 0.6 and w["crystalline_sei"]["t1_ns"] == 5.0  # the other default kept
    assert s["flux"]["interface"]["position_frac"] == pytest.approx(g["z_up"] / g["c"])
    bad = run([str(BIN / "argyro"), "analyze", str(traj), "-o", str(out), "--flux-window", "x=2:1"], cli_env, check=False)
    assert bad.returncode == 2 and "T0 < T1" in bad.stderr


def test_firework_learns_nvt_from_the_md_run(tmp_path, launchpad_dir, db_settings, monkeypatch):
    """AnalyzeTrajectoryTask: nvt_ps and flux_windows as parameters; without nvt_ps, the protocol.json of the MD run
    directory next to the trajectory gives it."""
    from fireworks import Workflow
    from fireworks.core.fworker import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from argyro_fw.flows.analysis import analysis_firework
    from argyro_fw.launchpad import get_launchpad
    from argyro_fw.md.protocol import MDProtocol

    run_dir = tmp_path / "md_run"
    run_dir.mkdir()
    traj, g = _flux_trajectory(run_dir)
    (run_dir / "protocol.json").write_text(json.dumps(MDProtocol(nvt_ps=NVT_PS, npt_ns=5.0).to_dict()))
    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    lp.add_wf(Workflow([analysis_firework(str(traj), name="from-protocol", timestep_ps=DT_PS),
                        analysis_firework(str(traj), name="explicit", timestep_ps=DT_PS, nvt_ps=0.0,
                                          flux_windows={"w": [1.0, 2.0]}, h5_name="explicit.h5")]))
    monkeypatch.chdir(tmp_path)
    rapidfire(lp, FWorker.from_file(str(launchpad_dir / "my_fworker.yaml")), strm_lvl="WARNING")
    assert [d["state"] for d in lp.fireworks.find({})] == ["COMPLETED"] * 2
    docs = {Path(d["h5_path"]).name: d["results"] for d in
            pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name].analyses.find({})}
    assert docs["analysis.h5"]["flux_from_ps"] == NVT_PS
    assert docs["analysis.h5"]["flux"]["interface"]["position_frac"] == pytest.approx(g["z_up"] / g["c"])
    assert docs["explicit.h5"]["flux_from_ps"] == 0.0
    assert set(docs["explicit.h5"]["flux"]["interface"]["windows"]) == {"w"}


def test_bulk_flux_counts_both_ways():
    """Bulk argyrodite flux (from the bulk MD): mean over four planes of +c and -c crossings per nm^2 per ns."""
    cell = np.diag([10.0, 10.0, 20.0])
    frames = []
    n = 101
    for k in range(n):
        f = k / (n - 1)
        z = [0.02 + 0.96 * f,  # +c through all four planes (membranes 3 A = 0.15 thick, centred at 1/8, 3/8, ...)
             0.52 - 0.04 * f]  # moves -c between two planes: no crossing
        frames.append(ase.Atoms(["Li", "Li", "S"], scaled_positions=[[0.1, 0.1, z[0]], [0.5, 0.5, z[1]], [0.3, 0.3, 0.3]],
                                cell=cell, pbc=True))
    pos, neg = bulk_flux(frames, "Li", 10.0)  # 1 ns
    assert pos == pytest.approx(1 / 1.0 / 1.0) and neg == 0.0  # each plane: 1 crossing, 1 nm2, 1 ns
    pos2, _ = bulk_flux(frames, "Li", 10.0, from_ps=900.0)  # only the last 0.1 ns: the +c atom is past every plane
    assert pos2 == 0.0


def test_config_flux_windows():
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    cfg = config.from_dict(data)
    assert cfg.analysis.flux_windows == {"amorphous_sei": [0.5, 1.5], "crystalline_sei": [4.0, 5.0]}
    assert AnalysisOptions().flux_windows == cfg.analysis.flux_windows  # one default, the config's
    for bad in ({"x": [2.0, 1.0]}, {"x": [1.0]}, {"x": "1-2"}, {"x": [-1, 1]}):
        data["analysis"] = {"flux_windows": bad}
        with pytest.raises(ConfigError, match="analysis.flux_windows.x"):
            config.from_dict(data)


# --- item 10: event times --------------------------------------------------------------------------------
def _fig11(seed: int, t_dec=0.4, t_c0=0.25, t_c1=2.4, plateau=52.0, top=78.0, noise=(0.01, 1.5)):
    """Series shaped like the study's Fig. 11 every 0.1 ps for 5 ns: PS4 fraction falls to 0 over t_dec ns;
    crystallinity climbs to the amorphous plateau within ~0.1 ns, then rises linearly from t_c0 to t_c1 ns."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, 5000.0, 0.1)
    tn = t / 1000.0
    ps4 = np.clip(1.0 - tn / t_dec, 0.0, None) ** 1.5 + rng.normal(0, noise[0], t.size)
    rise = np.clip((tn - t_c0) / (t_c1 - t_c0), 0.0, 1.0)
    cryst = np.where(tn < t_c0, plateau * (1 - np.exp(-tn / 0.02)), plateau + (top - plateau) * rise)
    return t, ps4, cryst + rng.normal(0, noise[1], t.size)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_event_times_on_fig11_series(seed):
    t, ps4, cryst = _fig11(seed)
    ev = event_times(t, ps4, cryst)
    assert abs(ev["decomposition_end_ns"] - 0.4) < 0.1
    assert abs(ev["crystallisation_start_ns"] - 0.25) < 0.1
    assert abs(ev["crystallisation_end_ns"] - 2.4) < 0.1
    # the study's Table 5 order: crystallisation starts before decomposition ends, while still in the 50-55 % band
    assert ev["crystallisation_start_ns"] < ev["decomposition_end_ns"] < ev["crystallisation_end_ns"]
    assert 50.0 <= ev["amorphous_level_percent"] <= 55.0 and ev["crystalline_level_percent"] == pytest.approx(78, abs=1)


def test_event_times_table5_numbers():
    """(100)/(100) 400 K: decomposition ends 0.39 ns, crystallisation 0.24-2.43 ns."""
    t, ps4, cryst = _fig11(3, t_dec=0.39, t_c0=0.24, t_c1=2.43, plateau=53.0, top=79.0)
    ev = event_times(t, ps4, cryst)
    for k, v in (("decomposition_end_ns", 0.39), ("crystallisation_start_ns", 0.24), ("crystallisation_end_ns", 2.43)):
        assert abs(ev[k] - v) < 0.1, (k, ev[k])


def test_no_crystallisation_and_unfinished_rise():
    t, ps4, cryst = _fig11(4, top=52.5)  # stays amorphous
    ev = event_times(t, ps4, cryst)
    assert np.isnan(ev["crystallisation_start_ns"]) and np.isnan(ev["crystallisation_end_ns"])
    t, ps4, cryst = _fig11(5, t_c0=1.0, t_c1=8.0)  # still rising at the end of the 5 ns run
    ev = event_times(t, ps4, cryst)
    assert abs(ev["crystallisation_start_ns"] - 1.0) < 0.1 and np.isnan(ev["crystallisation_end_ns"])
    ev = event_times(t, np.full(t.size, 1.0), cryst)  # nothing decomposes
    assert np.isnan(ev["decomposition_end_ns"])


# --- item 11: Arrhenius of ln(sigma) with kinisi ---------------------------------------------------------
def test_arrhenius_sigma_is_ln_sigma_against_inverse_T():
    """Nernst-Einstein sigma from noise-free D with Ea(D) = 0.18 eV at 400-1000 K: ln(sigma) = ln(D) - ln(T) + const,
    and the least-squares slope of -ln(T) against 1/T over the four points is 597 K, so Ea(sigma) = 0.18 eV -
    k_B x 597 K = 0.129 eV (a fit of ln(sigma T) would give 0.18 eV)."""
    T = np.array([400.0, 600.0, 800.0, 1000.0])
    slope_K = np.polyfit(1 / T, -np.log(T), 1)[0]
    assert slope_K == pytest.approx(597, abs=1)
    D = 3e-3 * np.exp(-0.18 / (KB_EV * T))
    sigma = nernst_einstein(D, 192, 20.3**3, T)
    f = arrhenius_fit(T, sigma, n_samples=400, n_burn=200)  # no uncertainties given: equal relative ones
    assert f.Ea_eV == pytest.approx(0.129, abs=0.005)
    assert f.Ea_eV == pytest.approx(0.18 - KB_EV * slope_K, abs=0.002)
    assert 0 < f.Ea_std_eV < 0.005 and f.value_300K > 0 and f.value_300K_std > 0
    fd = arrhenius_fit(T, D, 0.01 * D, n_samples=400, n_burn=200)
    assert fd.Ea_eV == pytest.approx(0.18, abs=0.003)
    assert f.Ea_eV < fd.Ea_eV - 0.04  # Ea(sigma) < Ea(D), as the study's 0.12 vs 0.18 eV


def test_arrhenius_file_fits_ln_sigma(tmp_path):
    from argyro_fw.analysis.diffusion import DiffusionResult
    from argyro_fw.analysis.diffusion_io import arrhenius_to_h5, diffusion_to_h5

    files = []
    for T in (400.0, 600.0, 800.0, 1000.0):
        D = 3e-3 * np.exp(-0.18 / (KB_EV * T))
        sig = float(nernst_einstein(D, 192, 20.3**3, T))
        res = DiffusionResult(specie="Li", temperature_K=T, D_cm2_s=D, D_std_cm2_s=0.01 * D, dt_ps=np.arange(3.0),
                              msd_A2=np.arange(3.0), msd_std_A2=np.ones(3), sigma_S_cm=sig, sigma_std_S_cm=0.01 * sig,
                              sigma_mstd_S_cm=float("nan"), sigma_mstd_std_S_cm=float("nan"), n_atoms=192,
                              volume_A3=20.3**3, start_dt_ps=1.0, flux_pos_c_nm2_ns=30.0 + T / 100,
                              flux_neg_c_nm2_ns=31.0)
        files.append(diffusion_to_h5(res, tmp_path / f"d{T:.0f}.h5"))
    summary = arrhenius_to_h5(files, tmp_path / "arr.h5")
    assert summary["sigma"]["Ea_eV"] == pytest.approx(0.129, abs=0.005)
    assert summary["D"]["Ea_eV"] == pytest.approx(0.18, abs=0.003)
    assert summary["sigma"]["fit"] == "ln(sigma) against 1/T" and "sigma_mstd" not in summary
    assert summary["sigma"]["at_300K"] > 0 and summary["sigma"]["Ea_ci95_eV"][0] < summary["sigma"]["Ea_eV"]
    assert summary["bulk_flux"]["pos_c"] == [34.0, 36.0, 38.0, 40.0]
    with h5py.File(tmp_path / "arr.h5") as h:
        assert h["arrhenius/sigma"].attrs["Ea_eV"] == summary["sigma"]["Ea_eV"]
        assert h["flux_neg_c_nm2_ns"][:].tolist() == [31.0] * 4

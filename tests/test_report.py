"""Issue 17: the study report in a real headless browser, and FireWorks' web GUI through ``argyro lpad``.

The database state is the demo study's shape (study "demo", the (100)/(100) interface at 400 K, bulk MD at 600
and 800 K), written with argyro's own store functions: an analysis HDF5 made by the analysis pipeline from a
small Li | Li2S | argyrodite trajectory, AL plots made by the AL plotting code, diffusion files and the Arrhenius
fit made by the diffusion I/O code, and FireWorks fireworks in every state (COMPLETED, FIZZLED with a real
exception, WAITING, READY). The page is opened in Debian's Chromium (installed here if missing).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import ase.io
import numpy as np
import pytest

from argyro_fw import store
from conftest import BIN, REPO, auth_server, free_port, run
from stacks import argyrodite, stack_li_li2s_argyrodite

STUDY = "demo"
ITF_KEY = "interface/100_Li-P-S-Cl_0__Li100"


# ----------------------------------------------------------------------------------------- the database state

def _trajectory(path: Path, n_frames: int = 24) -> Path:
    """A small Li | Li2S | argyrodite stack whose Li drift along c (some cross the membranes), rattled."""
    at, _ = stack_li_li2s_argyrodite(n_li2s_planes=4, li_cells=3)
    rng = np.random.default_rng(0)
    li = np.array([s == "Li" for s in at.get_chemical_symbols()])
    movers = np.flatnonzero(li)[::7]
    frames = []
    for k in range(n_frames):
        a = at.copy()
        pos = a.get_positions() + rng.normal(0.0, 0.04, size=(len(a), 3))
        pos[movers, 2] += 0.9 * k * np.where(np.arange(len(movers)) % 2 == 0, 1.0, -1.0)
        a.set_positions(pos)
        a.wrap()
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")
    return path


def _fireworks(lp, tmp_path: Path, monkeypatch) -> dict:
    """Fireworks of the study in every state the report shows: COMPLETED, FIZZLED (a real exception), WAITING
    behind the FIZZLED one, READY (added afterwards)."""
    from fireworks import Firework, PyTask, Workflow
    from fireworks.core.fworker import FWorker
    from fireworks.core.rocket_launcher import rapidfire

    from argyro_fw.flows.stages import stage_spec

    ok = lambda stage, name, **kw: Firework([PyTask(func="json.dumps", args=[1])], name=name,  # noqa: E731
                                            spec=stage_spec(stage), **kw)
    done = [ok(s, f"{s}:x") for s in ("bulk-dft", "bulk-choose", "surface-dft", "surface-rank", "interface-dft",
                                        "interface-energy", "al-train", "al-select", "md", "analysis", "bulk-md")]
    bad = Firework([PyTask(func="json.loads", args=["not json"])], name="diffusion:1000K", spec=stage_spec("diffusion"))
    waiting = ok("arrhenius", "arrhenius", parents=[bad])
    lp.add_wf(Workflow(done + [bad, waiting], name="argyro-demo", metadata={"argyro_study": STUDY}))
    monkeypatch.chdir(tmp_path)
    rapidfire(lp, FWorker(), strm_lvl="ERROR")
    lp.add_wf(Workflow([ok("analysis", "analysis:bulk-600K")], name="mlmd", metadata={"argyro_study": STUDY}))
    return {"fizzled": "diffusion:1000K", "waiting": "arrhenius", "ready": "analysis:bulk-600K"}


def build_study_db(lp, tmp_path: Path, monkeypatch, with_fireworks: bool = True) -> dict:
    """The demo study's records in ``lp``'s database, made with argyro's own functions; returns what was made."""
    from argyro_fw.analysis.diffusion import KB_EV, DiffusionResult, nernst_einstein
    from argyro_fw.analysis.diffusion_io import arrhenius_to_h5, diffusion_to_h5
    from argyro_fw.analysis.pipeline import AnalysisOptions, analyze_trajectory
    from argyro_fw.mlip.plots import plot_iteration

    db = lp.db
    made: dict = {}
    bulk = argyrodite()
    store.put_structures(db, STUDY, "bulk", [("bulk/chosen", bulk, {"from": "bulk/disordered-0"})])
    mu = {"Li": -1.906, "P": -5.412, "S": -4.128, "Cl": -1.842}
    store.update_study(db, STUDY, {
        "bulk": {"chosen": "bulk/disordered-0", "a_relaxed_A": 9.97,
                 "energies_eV": {"bulk/ordered": -213.11, "bulk/disordered-0": -213.52, "bulk/disordered-1": -213.40}},
        "chemical_potentials_eV": mu, "e_fu_eV": {"Li6PS5Cl": -53.38, "Li3P": -12.47, "Li2S": -7.94, "LiCl": -6.92},
        "e0s_eV": {"Li": -0.29, "P": -1.88, "S": -1.08, "Cl": -0.32}, "surfaces": {"n_terminations": 4}})
    # terminations: Table 2 rows of (100) (their compositions x 4) with our energies
    rows = []
    for g, (term, comp, q) in zip((1.08, 2.31, 3.10, 5.20), (
            ("Li-P-S-Cl", {"Li": 40, "P": 8, "S": 32, "Cl": 6}, 10), ("Li-Cl", {"Li": 32, "P": 4, "S": 20, "Cl": 6}, 6),
            ("Li-S", {"Li": 32, "P": 4, "S": 22, "Cl": 4}, 4), ("S(Li-Cl)", {"Li": 32, "P": 4, "S": 28, "Cl": 6}, -10))):
        rows.append({"key": f"surface/100_{term}", "miller": [1, 0, 0], "termination": term, "composition": comp,
                     "formal_charge": q, "gamma_surf_eV_nm2": g, "energy_eV": -400.0 - g, "area_A2": 97.2})
    store.put_surface_energies(db, STUDY, rows)
    store.update_study(db, STUDY, {"surfaces.ranking": [{k: r[k] for k in ("key", "termination", "miller",
                                                                             "gamma_surf_eV_nm2")} for r in rows],
                                   "surfaces.top": [rows[0]["key"]]})
    store.put_interface(db, STUDY, ITF_KEY, {
        "surface": rows[0]["key"], "termination": "Li-P-S-Cl", "miller": [1, 0, 0], "gamma_surf_eV_nm2": 1.08,
        "li_plane": "100", "mismatch_pct": 0.41, "area_A2": 97.2, "symmetric": True, "removed_for_balance": {"P": 2},
        "li_metal_atoms": 99, "argyrodite_atoms": 84, "composition": {"Li": 139, "P": 6, "S": 32, "Cl": 6},
        "gamma_inter_eV_nm2": -7.52, "E_str_argyrodite_eV_nm2": -0.05, "E_str_li_eV_nm2": 0.21,
        "gamma_inter_min_eV_nm2": -7.68, "energies_eV": {"total": -700.0}, "final_model": str(tmp_path / "final.model"),
        "heads": ["Default", "pt_head"], "mlmd_cell": {"n_atoms": 2231, "built_as": "mlmd-cell"},
        # the final model on its test set (the field argyro_fw.results.validation reads)
        "final_validation": {"energy_rmse_meV_atom": 4.1, "force_rmse_meV_A": 44.0, "n_frames": 500}})
    # two AL iterations, the plots made by the AL plotting code
    rng = np.random.default_rng(1)
    made["al_plots"] = []
    for i, (size, scale, conv) in enumerate(((450, 0.30, False), (650, 0.08, True))):
        d = tmp_path / "al" / f"iter_{i:02d}"
        d.mkdir(parents=True)
        unc = np.abs(rng.normal(scale, scale / 3, 300))
        ref_f = rng.normal(0, 1.0, 900)
        models = [str(d / f"model_{s}" / f"committee_{s}.model") for s in range(3)]
        plots = [str(p) for p in plot_iteration(d, unc, 0.1, {m: (ref_f, ref_f + rng.normal(0, scale / 2, 900))
                                                               for m in models})]
        made["al_plots"] += plots
        store.put_al_iteration(db, {
            "al_name": ITF_KEY, "iteration": i, "dataset_size": size, "dataset_file": str(d / "train.xyz"),
            "models": models, "uncertainty_eV_A": {"mean": float(unc.mean()), "p95": float(np.percentile(unc, 95)),
                                                    "max": float(unc.max()), "n_frames": 300},
            "convergence": {"threshold_eV_A": 0.1, "percentile": 95, "converged": conv},
            "validation": {m: {"energy_rmse_meV_atom": 5.0 - i + k * 0.3, "force_rmse_meV_A": 60.0 - 12 * i + k,
                               "n_frames": 31} for k, m in enumerate(models)},
            "selected": {"indices": [] if conv else list(range(200)), "hashes": []},
            **({"stopped": "converged"} if conv else {}), "plots": plots})
    # the MD run: a real analysis file from the analysis pipeline
    (tmp_path / "md").mkdir()
    traj = _trajectory(tmp_path / "md" / "traj.extxyz")
    h5 = tmp_path / "md" / "analysis.h5"
    summary = analyze_trajectory(traj, h5, AnalysisOptions(timestep_ps=5.0, progress=False))
    store.put_analysis(db, summary, h5, traj, interface=ITF_KEY, temperature_K=400.0)
    made["h5"] = h5
    made["summary"] = summary
    # bulk diffusion at 600 and 800 K (and 1000 K, whose firework FIZZLED below): files by the diffusion I/O code
    files = []
    for T in (600.0, 800.0):
        D = 3e-3 * np.exp(-0.2 / (KB_EV * T))
        sig = float(nernst_einstein(D, 24, 1000.0, T))
        res = DiffusionResult(specie="Li", temperature_K=T, D_cm2_s=D, D_std_cm2_s=0.1 * D, dt_ps=np.linspace(0.1, 10, 50),
                              msd_A2=6e4 * D * np.linspace(0.1, 10, 50), msd_std_A2=np.full(50, 0.1),
                              sigma_S_cm=sig, sigma_std_S_cm=0.1 * sig, sigma_mstd_S_cm=1.2 * sig,
                              sigma_mstd_std_S_cm=0.2 * sig, n_atoms=24, volume_A3=1000.0, start_dt_ps=1.0)
        f = diffusion_to_h5(res, tmp_path / "bulk" / f"diffusion_{T:.0f}K.h5")
        files.append(f)
        store.put_diffusion(db, {"study": STUDY, "temperature_K": T, "D_cm2_s": D, "D_std_cm2_s": 0.1 * D,
                                 "sigma_S_cm": sig, "sigma_std_S_cm": 0.1 * sig, "sigma_mstd_S_cm": 1.2 * sig,
                                 "h5": str(f)})
    arr = arrhenius_to_h5(files, tmp_path / "bulk" / "arrhenius.h5")
    store.update_study(db, STUDY, {"arrhenius": arr, "arrhenius_h5": str(tmp_path / "bulk" / "arrhenius.h5")})
    made["arrhenius"] = arr
    if with_fireworks:
        made["fireworks"] = _fireworks(lp, tmp_path, monkeypatch)
    return made


#: build_study_db's records (no fireworks) as first made in this test session: their analysis, plots and HDF5 files
#: take ~30 s, and tests/test_results_api.py reads the same records
_SHARED: dict = {}


def study_records(lp, tmp_path_factory, monkeypatch) -> dict:
    """The study's records in ``lp``'s database: built once per session (files in a session folder), copied after."""
    import copy

    if not _SHARED:
        _SHARED["made"] = build_study_db(lp, tmp_path_factory.mktemp("study-records"), monkeypatch, with_fireworks=False)
        _SHARED["docs"] = {c: list(lp.db[c].find()) for c in store.SCHEMAS}
    else:
        for c, docs in _SHARED["docs"].items():
            lp.db[c].delete_many({})
            if docs:
                lp.db[c].insert_many(copy.deepcopy(docs))
    return dict(_SHARED["made"])


@pytest.fixture
def study_lp(launchpad_dir, tmp_path, tmp_path_factory, monkeypatch):
    from argyro_fw.launchpad import get_launchpad

    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    (tmp_path / "state").mkdir()
    made = study_records(lp, tmp_path_factory, monkeypatch)
    made["fireworks"] = _fireworks(lp, tmp_path / "state", monkeypatch)
    return lp, made


# ----------------------------------------------------------------------------------------- Chromium

@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (installed with apt-get when missing, as .ci/run does)."""
    exe = shutil.which("chromium")
    if exe is None and shutil.which("apt-get") and os.geteuid() == 0:
        p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"], capture_output=True,
                           text=True, timeout=900)
        if p.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=600)
            p = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium"],
                               capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("chromium is not installed and cannot be installed here (needs root and apt-get)")
    return exe


def _chromium(exe: str, tmp: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--hide-scrollbars", f"--user-data-dir={tmp / 'chromium-profile'}", *args]
    env = dict(os.environ, HOME=str(tmp))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


class _Page(HTMLParser):
    """Headings, images, scripts and external references of an HTML page."""

    def __init__(self):
        super().__init__()
        self.h2: list[str] = []
        self.imgs: list[dict] = []
        self.scripts = 0
        self.external: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "h2":
            self._in_h2 = True
            self.h2.append("")
        if tag == "img":
            self.imgs.append(a)
        if tag == "script":
            self.scripts += 1
        for k in ("src", "href"):
            v = a.get(k) or ""
            if v and not v.startswith(("data:", "#")):
                self.external.append(v)

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data):
        if self._in_h2:
            self.h2[-1] += data


PROBE = """<script>
window.addEventListener('load', function () {
  var bad = [], ok = [];
  document.querySelectorAll('img').forEach(function (im) {
    (im.complete && im.naturalWidth > 0 && im.naturalHeight > 0 ? ok : bad).push(im.dataset.figure + ':' + im.naturalWidth);
  });
  document.body.setAttribute('data-probe-ok', ok.join(' '));
  document.body.setAttribute('data-probe-bad', bad.join(' '));
});
</script>"""


def _expected_figures(made) -> set[str]:
    tag = "1-100-100-400k"
    return {"gamma-surf", "arrhenius", f"al-{_slug(ITF_KEY)}", f"parity-{_slug(ITF_KEY)}",
            f"uncertainty-{_slug(ITF_KEY)}"} | {f"md-{tag}-{k}" for k in ("cn", "sei", "crystallinity", "flux")}


def _slug(text: str) -> str:
    return re.sub("-+", "-", "".join(ch if ch.isalnum() else "-" for ch in text)).strip("-").lower()


def test_report_in_headless_chromium(study_lp, tmp_path, chromium, cli_env, launchpad_dir):
    from PIL import Image

    from argyro_fw.report import SECTIONS

    lp, made = study_lp
    out = tmp_path / "report"
    p = run([str(BIN / "argyro"), "report", "-l", str(launchpad_dir / "my_launchpad.yaml"), "--study", STUDY,
             "-o", str(out)], cli_env)
    page_path = Path(p.stdout.strip().splitlines()[-1])
    assert page_path == (out / "report.html").resolve() and page_path.is_file()
    text = page_path.read_text()

    # self-contained, no JavaScript: no <script>, nothing but data: URIs and in-page anchors
    page = _Page()
    page.feed(text)
    assert page.scripts == 0 and not page.external, page.external
    # every section heading, in order
    titles = [t for _, t, _ in SECTIONS]
    assert [re.sub(r"^\d+\.\s*", "", h.strip()) for h in page.h2] == titles
    # every figure: present, a PNG data URI that decodes to a nonzero image
    figs = {im.get("data-figure"): im for im in page.imgs}
    assert set(figs) == _expected_figures(made), sorted(figs)
    for fid, im in figs.items():
        assert im["src"].startswith("data:image/png;base64,"), fid
        png = Image.open(io.BytesIO(base64.b64decode(im["src"].split(",", 1)[1])))
        assert png.format == "PNG" and png.size[0] > 100 and png.size[1] > 100, (fid, png.size)
    assert "data-missing-figure" not in text
    # the study's values beside ours, pending and FIZZLED fireworks with the error
    assert "1.006" in text and "-7.807" in text and "5.79e-07" in text and "0.139" in text
    assert "No validation of the final model" not in text and "final.model" in text
    assert "FIZZLED" in text and "JSONDecodeError" in text and made["fireworks"]["fizzled"] in text
    assert made["fireworks"]["waiting"] in text and made["fireworks"]["ready"] in text

    # Chromium: a screenshot of the page as a reader sees it (not blank). The page has no script, so this is what a
    # browser with JavaScript off shows too (headless Chromium's --screenshot itself needs scripting on).
    shot = tmp_path / "report.png"
    c = _chromium(chromium, tmp_path, "--window-size=1280,14000", f"--screenshot={shot}", page_path.as_uri())
    assert shot.is_file(), c.stderr[-3000:]
    img = Image.open(shot).convert("L")
    arr = np.asarray(img, float)
    assert img.size == (1280, 14000) and arr.std() > 20 and (arr < 128).mean() > 0.01
    rows = np.flatnonzero((arr < 250).any(axis=1))
    assert rows[-1] < 14000 - 50, "the page is longer than the screenshot"  # the whole page is in the picture
    Image.open(shot).crop((0, 0, 1280, int(rows[-1]) + 40)).save(shot)
    # Chromium decoded every image: a copy of the page with a probe script, the DOM dumped after load
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"))
    c = _chromium(chromium, tmp_path, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    dom = c.stdout
    okm = re.search(r'data-probe-ok="([^"]*)"', dom)
    badm = re.search(r'data-probe-bad="([^"]*)"', dom)
    assert okm and badm, c.stderr[-3000:]
    assert badm.group(1) == "", f"broken images: {badm.group(1)}"
    loaded = {x.split(":")[0] for x in okm.group(1).split()}
    assert loaded == _expected_figures(made)
    dom_page = _Page()
    dom_page.feed(dom)
    assert [re.sub(r"^\d+\.\s*", "", h.strip()) for h in dom_page.h2] == titles
    # the CI artefact
    ci = REPO / ".ci" / "work"
    if ci.is_dir():
        shutil.copy(shot, ci / "report-screenshot.png")
        shutil.copy(page_path, ci / "report.html")


def test_report_of_a_study_not_started(launchpad_dir, tmp_path, cli_env):
    """An empty database (a study not yet added): every section is there, marked pending; no figure."""
    out = tmp_path / "r"
    run([str(BIN / "argyro"), "report", "-l", str(launchpad_dir / "my_launchpad.yaml"), "-o", str(out)], cli_env)
    text = (out / "report.html").read_text()
    page = _Page()
    page.feed(text)
    assert len(page.h2) == 7 and not page.imgs
    assert text.count("Pending: no") >= 6 and "not started" in text
    bad = run([str(BIN / "argyro"), "report", "-l", str(launchpad_dir / "my_launchpad.yaml"), "--study", "nope",
               "-o", str(out)], cli_env, check=False)
    assert bad.returncode == 2 and "no study 'nope'" in bad.stderr and "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------------------- lpad webgui

SECRET = "w3bgui-Pa55"


@pytest.fixture
def auth_db(tmp_path):
    """An authenticated embedded MongoDB (user alice): the web GUI must get its password from argyro's wrapper."""
    yield from auth_server(tmp_path / "authdb", "alice", SECRET)


def test_lpad_webgui_through_the_wrapper(tmp_path, auth_db):
    env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "home"), HOME=str(tmp_path),
               ARGYRO_DB_URI=f"mongodb://alice@127.0.0.1:{auth_db}/webgui?authSource=admin", ARGYRO_DB_PASSWORD=SECRET,
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("ARGYRO_CONFIG", None)
    run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env)
    lpfile = tmp_path / "lp" / "my_launchpad.yaml"
    assert SECRET not in lpfile.read_text()
    # FireWorks' reset confirmation: today's date as the "password" (the database password comes from the env)
    run([str(BIN / "argyro"), "lpad", "-l", str(lpfile), "reset", "--password", time.strftime("%Y-%m-%d")], env)
    run([str(BIN / "argyro"), "lpad", "-l", str(lpfile), "add_scripts", "echo hi", "-n", "webgui-probe-fw"], env)
    port = free_port()
    log = open(tmp_path / "webgui.log", "w")
    proc = subprocess.Popen([str(BIN / "argyro"), "lpad", "-l", str(lpfile), "webgui", "--server_mode",
                             "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            cwd=tmp_path, start_new_session=True)
    try:
        body, status = "", None
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
                    status, body = r.status, r.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, (tmp_path / "webgui.log").read_text()[-3000:]
        assert status == 200, (tmp_path / "webgui.log").read_text()[-3000:]
        assert "FireWorks" in body and "webgui-probe-fw" in body
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()
    assert SECRET not in (tmp_path / "webgui.log").read_text()

"""The ``vasp_std`` stand-in (argyro_fw/standins/vasp.py): argyro's own VASP inputs go in, VASP's files come out,
read by pymatgen, ASE, custodian and argyro's parse path unchanged, with CHGNet's numbers; and every input
VASP refuses is refused, with the stand-in's message and no output written.

Real CHGNet and real parsers throughout. Runs that must behave as a separate program (MD reference, SIGKILL,
custodian) start the ``vasp_std`` wrapper; the others call :func:`run` in this process to share one model load.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.io.vasp import Oszicar, Outcar, Poscar, Vasprun, Xdatcar

from argyro_fw.dft.inputs import element_structure, maker, write_inputs
from argyro_fw.dft.parse import parse_vasp_dir
from argyro_fw.standins import vasp as sv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # the tests' crystal fixtures

pytestmark = pytest.mark.filterwarnings("ignore")


PAW = {}


def _paw_dir() -> Path:
    """A placeholder PAW library (one per session), as the rehearsal points $ARGYRO_POTCAR_DIR at."""
    if "dir" not in PAW:
        import tempfile

        PAW["dir"] = sv.write_placeholder_paw_dir(Path(tempfile.mkdtemp(prefix="paw-")), ["Li", "P", "S", "Cl"])
    return PAW["dir"]


def _inputs(d: Path, kind: str, structure, **options) -> Path:
    """argyro's own VASP inputs for ``kind`` in ``d``, the POTCAR assembled by argyro from placeholder files."""
    inp = maker(kind, **options).inputs(structure)
    write_inputs(inp, d, potcar=True, potcar_directory=_paw_dir())
    return d


def _run_here(d: Path) -> int:
    """The stand-in in this process, its standard output in vasp.out (as custodian redirects it)."""
    with open(d / "vasp.out", "w") as out:
        return sv.run(d, out=out)


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def chgnet():
    """CHGNet built by the test, independently of the stand-in's own."""
    import torch
    from chgnet.model.dynamics import CHGNetCalculator

    torch.set_num_threads(1)
    return CHGNetCalculator(use_device="cpu")


@pytest.fixture(scope="module")
def vasp_std(tmp_path_factory) -> Path:
    return sv.write_wrapper(tmp_path_factory.mktemp("bin"))


def _energy_forces_stress(calc, structure):
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.calc = calc
    return atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress(voigt=False)


@functools.cache
def _crystal(name: str):
    """stacks' crystals, built once (pymatgen's space-group expansion takes a second or more)."""
    return {"li2s": stacks.li2s, "li16": lambda: stacks.bcc_li() * (2, 2, 2), "argyrodite": stacks.argyrodite}[name]()


def li2s():
    return _crystal("li2s").copy()


def _li2s_rattled(seed: int = 1, amount: float = 0.08):
    s = li2s()
    rng = np.random.default_rng(seed)
    cart = s.cart_coords + rng.normal(0, amount, (len(s), 3))
    return Structure(s.lattice, s.species, cart, coords_are_cartesian=True)


# --- inputs argyro writes are accepted ------------------------------------------------------------------------
@pytest.mark.parametrize("kind,options,mode", [
    ("relax", {"system": "bulk"}, "relax"), ("relax", {"system": "interface"}, "relax"), ("static", {}, "single"),
    ("aimd", {"ps": 0.1}, "md"), ("label", {}, "single"), ("e0", {}, "single")])
def test_every_kind_argyro_renders_is_accepted(tmp_path, kind, options, mode):
    structure = element_structure("Li") if kind == "e0" else _crystal("argyrodite").copy()
    inp = sv.check_inputs(_inputs(tmp_path, kind, structure, **options))
    assert inp.settings.mode == mode
    assert inp.species == [p.element for p in inp.potcar]
    assert not any(tmp_path.glob("vasprun.xml"))


# --- numbers and formats --------------------------------------------------------------------------------------
def test_single_point_is_chgnets_and_every_reader_reads_it(tmp_path, chgnet):
    import ase.io

    d = _inputs(tmp_path, "static", _li2s_rattled())
    assert _run_here(d) == 0
    e, f, stress = _energy_forces_stress(chgnet, Poscar.from_file(d / "POSCAR").structure)
    vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)  # default: also reads the placeholder POTCAR
    assert len(vr.ionic_steps) == 1 and vr.converged
    assert vr.final_energy == pytest.approx(e, abs=1e-5)
    np.testing.assert_allclose(vr.ionic_steps[0]["forces"], f, atol=1e-5)
    assert vr.potcar_symbols == ["PAW_PBE Li placeholder", "PAW_PBE S placeholder"]
    assert "argyro-standin" in vr.vasp_version
    res = parse_vasp_dir(d)  # argyro's own parse path
    assert res.final_energy == pytest.approx(e, abs=1e-5) and res.converged_ionic and res.converged_electronic
    np.testing.assert_allclose(res.steps[0].stress, stress, atol=1e-6)  # kBar and VASP's sign, back to ASE's
    assert Outcar(d / "OUTCAR").final_energy == pytest.approx(e, abs=1e-5)
    assert Oszicar(d / "OSZICAR").final_energy == pytest.approx(e, abs=1e-5)
    assert len(Xdatcar(d / "XDATCAR").structures) == 1
    atoms = ase.io.read(d / "OUTCAR")  # ASE's OUTCAR reader too
    assert atoms.get_potential_energy() == pytest.approx(e, abs=1e-5)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), stress, atol=1e-6)
    assert "running on" in (d / "vasp.out").read_text()


def test_relaxation_ends_at_chgnets_minimum_below_ediffg(tmp_path, chgnet):
    s = _li2s_rattled()
    s.scale_lattice(s.volume * 1.06)
    d = _inputs(tmp_path, "relax", s, system="bulk", ediffg=-0.05, nsw=80)  # ISIF 3: cell and ions
    assert _run_here(d) == 0
    vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)
    contcar = Poscar.from_file(d / "CONTCAR").structure
    e, f, _ = _energy_forces_stress(chgnet, contcar)
    assert vr.converged_ionic and 1 < len(vr.ionic_steps) < 80
    assert vr.final_energy == pytest.approx(e, abs=1e-4)
    assert np.linalg.norm(vr.ionic_steps[-1]["forces"], axis=1).max() < 0.05
    assert np.linalg.norm(f, axis=1).max() < 0.05
    assert vr.ionic_steps[-1]["e_fr_energy"] < vr.ionic_steps[0]["e_fr_energy"]
    assert abs(contcar.volume - s.volume) > 0.5  # the cell moved (ISIF 3)
    n = len(vr.ionic_steps)
    assert len(Oszicar(d / "OSZICAR").ionic_steps) == n and len(Xdatcar(d / "XDATCAR").structures) == n
    assert "reached required accuracy" in (d / "vasp.out").read_text()
    res = parse_vasp_dir(d)
    assert res.converged_ionic and res.final_energy == pytest.approx(e, abs=1e-4)


def test_relaxation_stops_at_nsw_unconverged_with_the_cell_kept_for_isif2(tmp_path):
    s = _li2s_rattled(seed=2, amount=0.15)
    d = _inputs(tmp_path, "relax", s, system="interface", ediffg=-0.001, nsw=3)  # ISIF 2: ions only
    assert _run_here(d) == 0
    vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)
    assert len(vr.ionic_steps) == 3 and not vr.converged_ionic  # what custodian's UnconvergedErrorHandler sees
    for st in vr.ionic_steps:
        np.testing.assert_allclose(st["structure"].lattice.matrix, s.lattice.matrix, atol=1e-6)
    assert "reached required accuracy" not in (d / "vasp.out").read_text()


# --- MD ---------------------------------------------------------------------------------------------------------
MD_T = 600.0


def _md_inputs(d: Path, ps: float, structure=None) -> Path:
    structure = _crystal("li16").copy() if structure is None else structure
    return _inputs(d, "aimd", structure, ps=ps, temperature=MD_T, potim=1.0, kpoints="gamma")


@pytest.fixture(scope="module")
def md_reference(tmp_path_factory, vasp_std):
    """A 10-step NVT MD (Nose-Hoover, SMASS 0) through the ``vasp_std`` wrapper, as custodian starts it."""
    d = _md_inputs(tmp_path_factory.mktemp("md"), ps=0.010)
    with open(d / "vasp.out", "w") as out:
        p = subprocess.run([str(vasp_std)], check=False, cwd=d, stdout=out, stderr=subprocess.PIPE, text=True, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return d


def test_md_gives_nsw_frames_near_tebeg(md_reference):
    d = md_reference
    xd = Xdatcar(d / "XDATCAR")
    assert len(xd.structures) == 10
    vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)
    assert vr.md_n_steps == 10 and vr.converged_ionic
    np.testing.assert_allclose(xd.structures[0].frac_coords, vr.ionic_steps[0]["structure"].frac_coords, atol=1e-7)
    temps = [s["T"] for s in Oszicar(d / "OSZICAR").ionic_steps]
    assert len(temps) == 10 and temps[0] == pytest.approx(MD_T, abs=1.0)  # started at TEBEG exactly
    assert 0.3 * MD_T < np.mean(temps) < 1.5 * MD_T
    contcar = Poscar.from_file(d / "CONTCAR")
    assert contcar.velocities is not None and np.abs(contcar.velocities).max() > 0
    res = parse_vasp_dir(d)
    assert len(res.steps) == 10 and res.steps[0].stress is None  # ISIF 0 (MD default): no stress, as VASP; none invented


def _frames(path: Path) -> list[np.ndarray]:
    return [s.frac_coords for s in Xdatcar(path).structures]


def _same_frac(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> bool:
    diff = np.asarray(a) - np.asarray(b)
    return bool(np.abs(diff - np.round(diff)).max() < atol)


def test_sigkill_mid_md_leaves_whole_frames_and_a_contcar_to_continue_from(tmp_path, vasp_std, md_reference):
    d = _md_inputs(tmp_path, ps=0.200)  # NSW 200: killed long before the end
    with open(d / "vasp.out", "w") as out:
        p = subprocess.Popen([str(vasp_std)], cwd=d, stdout=out, stderr=subprocess.DEVNULL, env=_env())
    try:
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None:
            if (d / "XDATCAR").is_file() and (d / "XDATCAR").read_text().count("Direct configuration") >= 3:
                break
            time.sleep(0.02)
        os.kill(p.pid, signal.SIGKILL)
    finally:
        p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL
    text = (d / "XDATCAR").read_text()
    k = text.count("Direct configuration")
    frames = _frames(d / "XDATCAR")
    assert 3 <= k < 10 and len(frames) == k  # every frame on disk is whole
    ref = _frames(md_reference / "XDATCAR")
    for i in range(k):
        assert _same_frac(frames[i], ref[i]), f"frame {i + 1} differs from the uninterrupted run"
    assert len(Oszicar(d / "OSZICAR").ionic_steps) == k
    contcar = Poscar.from_file(d / "CONTCAR")
    assert contcar.velocities is not None
    # CONTCAR holds where step k + 1 starts (VASP's CONTCAR after an MD step): continuing from it repeats no frame.
    # A kill between the frame and the CONTCAR write (microseconds) leaves the CONTCAR one step behind, i.e.
    # equal to the last frame, which a merger drops as a repeat.
    assert _same_frac(contcar.structure.frac_coords, ref[k]) or _same_frac(contcar.structure.frac_coords, frames[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=False)  # truncated, as a killed VASP leaves it
    assert len(vr.ionic_steps) == k
    from lxml.etree import XMLSyntaxError

    with pytest.raises(XMLSyntaxError):
        Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)

    # continue as a restart does (CONTCAR -> POSCAR, the steps left): the merged trajectory has the reference's
    # 10 frames, the first new one exactly where the CONTCAR left off (the thermostat restarts, so later frames
    # drift slowly from the uninterrupted run)
    if not _same_frac(contcar.structure.frac_coords, ref[k]):
        pytest.skip("killed between the XDATCAR frame and the CONTCAR write (the documented repeat)")
    (d / "POSCAR").write_text((d / "CONTCAR").read_text())
    _set_incar(d, "NSW    = 200", f"NSW    = {10 - k}")
    assert _run_here(d) == 0
    new = _frames(d / "XDATCAR")
    assert k + len(new) == 10 and _same_frac(new[0], ref[k])
    for i, f in enumerate(new):
        assert _same_frac(f, ref[k + i], atol=0.01 / 3.44)


@pytest.mark.parametrize("tags", ["MDALGO = 2\nSMASS = 0\nTEBEG = 300\nTEEND = 900",  # Nose-Hoover, a ramp
                                  "MDALGO = 3\nLANGEVIN_GAMMA = 10 10\nTEBEG = 300",  # Langevin
                                  "SMASS = -3\nTEBEG = 300"])  # NVE
def test_md_thermostats(tmp_path, tags):
    d = tmp_path
    (d / "INCAR").write_text(f"IBRION = 0\nPOTIM = 1\nNSW = 3\nISYM = 0\n{tags}\n")
    Poscar(li2s()).write_file(d / "POSCAR")
    sv.write_placeholder_potcar(["Li", "S"], d / "POTCAR")
    (d / "KPOINTS").write_text("Gamma only\n0\nGamma\n1 1 1\n")
    assert _run_here(d) == 0
    temps = [s["T"] for s in Oszicar(d / "OSZICAR").ionic_steps]
    assert len(temps) == 3 and temps[0] == pytest.approx(300, abs=1) and len(Xdatcar(d / "XDATCAR").structures) == 3


def test_stopcar_finishes_the_ionic_step_and_writes_final_outputs(tmp_path):
    d = _inputs(tmp_path, "aimd", li2s(), ps=0.1, temperature=300.0, kpoints="gamma")
    (d / "STOPCAR").write_text("LSTOP = .TRUE.\n")
    assert _run_here(d) == 0
    vr = Vasprun(d / "vasprun.xml", exception_on_bad_xml=True)  # complete file
    assert len(vr.ionic_steps) == 1 and len(Xdatcar(d / "XDATCAR").structures) == 1
    assert Outcar(d / "OUTCAR").is_stopped
    assert Poscar.from_file(d / "CONTCAR").velocities is not None


# --- refusals ---------------------------------------------------------------------------------------------------
def _set_incar(d: Path, old: str, new: str) -> None:
    text = (d / "INCAR").read_text()
    assert old in text
    (d / "INCAR").write_text(text.replace(old, new))


REFUSALS = {
    "missing KPOINTS": (lambda d: (d / "KPOINTS").unlink(), "No KPOINTS file"),
    "POTCAR order swapped": (lambda d: sv.write_placeholder_potcar(["S", "Li"], d / "POTCAR"),
                             "differ in order or kind"),
    "POTCAR short of a species": (lambda d: sv.write_placeholder_potcar(["Li"], d / "POTCAR"),
                                  "number of types in POSCAR and POTCAR differ"),
    "unknown tag": (lambda d: _set_incar(d, "ENCUT ", "ENCUTT"), "ENCUTT (line"),
    "malformed KPOINTS": (lambda d: (d / "KPOINTS").write_text("Gamma\n0\nGamma\n4 4 x\n"),
                          "Error reading KPOINTS file"),
    "KPOINTS without a grid": (lambda d: (d / "KPOINTS").write_text("Gamma\n0\nGamma\n"), "Error reading KPOINTS file"),
    "value of the wrong type": (lambda d: _set_incar(d, "NSW    = 5", "NSW    = five"), "Error reading item 'NSW'"),
    "line without =": (lambda d: _set_incar(d, "IBRION = 0", "IBRION 0"), "has no '='"),
    "NSW < 0": (lambda d: _set_incar(d, "NSW    = 5", "NSW    = -5"), "NSW = -5"),
    "no such IBRION": (lambda d: _set_incar(d, "IBRION = 0", "IBRION = 4"), "IBRION = 4 is not a VASP ionic algorithm"),
    "MD without a time step": (lambda d: _set_incar(d, "POTIM  = 1", "POTIM  = 0"), "positive time step"),
    "thermostat at 0 K": (lambda d: _set_incar(d, "TEBEG  = 600", "TEBEG  = 0"), "positive temperatures"),
    "missing POSCAR": (lambda d: (d / "POSCAR").unlink(), "No POSCAR file"),
    "malformed POSCAR": (lambda d: (d / "POSCAR").write_text(
        (d / "POSCAR").read_text().replace("Li S\n8 4\n", "Li S\n8 four\n")), "does not read as integers"),
    "POTCAR dataset without ZVAL": (lambda d: (d / "POTCAR").write_text(
        "\n".join(ln for ln in (d / "POTCAR").read_text().splitlines() if "ZVAL" not in ln or " S " in ln)),
        "a dataset is incomplete"),
    "empty INCAR": (lambda d: (d / "INCAR").write_text("\n"), "INCAR is empty"),
    "unimplemented SMASS": (lambda d: _set_incar(d, "SMASS  = 0", "SMASS  = 2"), "not implemented by this stand-in"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refusal(tmp_path, capsys, case):
    d = _md_inputs(tmp_path, ps=0.005, structure=li2s())  # Li8 S4; NSW 5, POTIM 1, TEBEG 600
    mutate, message = REFUSALS[case]
    mutate(d)
    out = io.StringIO()
    assert sv.run(d, out=out) == 1
    assert message in " ".join(out.getvalue().replace("|", " ").split()), out.getvalue()
    assert "I REFUSE TO CONTINUE WITH THIS SICK JOB" in out.getvalue()
    assert message.split()[0] in capsys.readouterr().err
    for name in ("vasprun.xml", "OUTCAR", "OSZICAR", "CONTCAR", "XDATCAR"):
        assert not (d / name).exists(), name


# --- through custodian, as argyro runs VASP -------------------------------------------------------------------------
def test_custodian_continues_an_unconverged_relaxation_and_argyro_parses_it(tmp_path, vasp_std, chgnet, monkeypatch):
    """argyro's run_vasp (custodian, VaspJob, the relax handlers) on the wrapper: NSW too small, so custodian's
    UnconvergedErrorHandler rereads the inputs (placeholder POTCAR included), copies CONTCAR to POSCAR and reruns
    until the relaxation converges; a refused input fails run_vasp with the stand-in's message in vasp.out."""
    from argyro_fw.dft.run import VaspRunError, corrections, run_vasp

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    d = _inputs(tmp_path / "ok", "relax", _li2s_rattled(seed=0, amount=0.1), system="interface", nsw=7,
                ediffg=-0.05)
    log = run_vasp(d, "relax", str(vasp_std), polling_s=0.5)
    fixes = corrections(log)
    assert fixes and {f["handler"] for f in fixes} == {"UnconvergedErrorHandler"}
    assert (d / "INCAR.orig").is_file() and "running on" in (d / "vasp.out").read_text()
    res = parse_vasp_dir(d)
    e, f, _ = _energy_forces_stress(chgnet, Poscar.from_file(d / "CONTCAR").structure)
    assert res.converged_ionic and res.final_energy == pytest.approx(e, abs=1e-4)
    assert np.linalg.norm(f, axis=1).max() < 0.05

    bad = _inputs(tmp_path / "bad", "label", _li2s_rattled(seed=3))
    sv.write_placeholder_potcar(["S", "Li"], bad / "POTCAR")
    with pytest.raises(VaspRunError):
        run_vasp(bad, "label", str(vasp_std), polling_s=0.5)
    assert "differ in order or kind" in " ".join((bad / "vasp.out").read_text().replace("|", " ").split())
    assert not (bad / "vasprun.xml").exists()

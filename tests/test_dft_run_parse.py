"""Issue 4, acceptance 2-4: parsing real VASP output, the run firework under custodian.

VASP cannot run here (licence). The run tests use a stand-in executable at that boundary only
(tests/standins/fake_vasp.py): it writes the real VASP output files of ../shared/data/vasp/Al-relax.
Custodian, the parsing, the FireWorks workflow and the database are all real.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import ase.io
from ase import units
import numpy as np
import pymongo
import pytest
from pymatgen.io.vasp import Vasprun

from argyro_fw.dft.dataset import evenly_spaced, frames_from_result, structure_hash, write_extxyz
from argyro_fw.dft.parse import VaspParseError, parse_vasp_dir
from conftest import REPO, SHARED

AL = SHARED / "data" / "vasp" / "Al-relax"
FAKE_VASP = f"{sys.executable} {REPO / 'tests' / 'standins' / 'fake_vasp.py'}"


def test_parse_matches_pymatgen_directly():
    res = parse_vasp_dir(AL)
    vr = Vasprun(str(AL / "vasprun.xml.gz"), parse_potcar_file=False)
    assert len(res.steps) == len(vr.ionic_steps) == 2
    for ours, theirs in zip(res.steps, vr.ionic_steps):
        assert ours.energy == theirs["e_fr_energy"]
        assert ours.e_0_energy == theirs["e_0_energy"]
        np.testing.assert_array_equal(ours.forces, np.array(theirs["forces"]))
        np.testing.assert_allclose(ours.stress, -0.1 * units.GPa * np.array(theirs["stress"]), rtol=1e-12)
    assert res.final_structure == vr.final_structure
    assert res.final_energy == pytest.approx(-3.74204295)
    # (the OUTCAR in that folder comes from a different run of the same cell: not compared)


def test_extxyz_roundtrip_through_ase(tmp_path):
    res = parse_vasp_dir(AL)
    path = write_extxyz(frames_from_result(res, "bulk_al"), tmp_path / "d.extxyz")
    back = ase.io.read(path, ":")
    ref = ase.io.read(AL / "vasprun.xml.gz", ":")  # ASE's own VASP reader as the second opinion
    assert len(back) == 2
    for b, r, st in zip(back, ref, res.steps):
        assert b.info["REF_energy"] == pytest.approx(r.get_potential_energy(force_consistent=True), abs=1e-8)
        np.testing.assert_allclose(b.arrays["REF_forces"], r.get_forces(), atol=1e-8)
        np.testing.assert_allclose(np.asarray(b.info["REF_stress"]).reshape(3, 3), r.get_stress(voigt=False), atol=1e-10)
        np.testing.assert_allclose(b.cell[:], r.cell[:], atol=1e-8)
        assert b.info["config_type"] == "bulk_al"
    assert structure_hash(back[0]) == structure_hash(ref[0])


def test_selection_helpers():
    assert evenly_spaced(4000, 201)[:3] == [0, 20, 40] and len(evenly_spaced(4000, 201)) == 201
    assert evenly_spaced(4000, 201)[-1] == 3999


def test_truncated_vasprun_is_named_error(tmp_path):
    data = gzip.open(AL / "vasprun.xml.gz").read()
    (tmp_path / "vasprun.xml").write_bytes(data[: len(data) // 2])
    with pytest.raises(VaspParseError, match="vasprun.xml"):
        parse_vasp_dir(tmp_path)
    with pytest.raises(VaspParseError, match="no vasprun.xml"):
        parse_vasp_dir(tmp_path / "empty")


def _run_wf(tmp_path, lpdir, fw, env_overrides, monkeypatch):
    from fireworks import Workflow
    from fireworks.core.rocket_launcher import rapidfire
    from fireworks.core.fworker import FWorker

    from argyro_fw.launchpad import get_launchpad

    for k, v in env_overrides.items():
        monkeypatch.setenv(k, v)
    lp = get_launchpad(lpdir / "my_launchpad.yaml")
    lp.add_wf(Workflow([fw]))
    monkeypatch.chdir(tmp_path)
    rapidfire(lp, FWorker.from_file(str(lpdir / "my_fworker.yaml")), strm_lvl="WARNING")
    return lp


def _al_structure():
    from pymatgen.core import Structure

    return Structure.from_file(str(AL / "POSCAR"))


def test_run_firework_with_standin_completes_and_stores(tmp_path, launchpad_dir, db_settings, monkeypatch):
    from argyro_fw.flows.dft import vasp_firework

    fw = vasp_firework(_al_structure(), "relax", name="al-relax", vasp_cmd=FAKE_VASP, potcar=False, polling_s=0.2,
                       options={"system": "bulk"})
    lp = _run_wf(tmp_path, launchpad_dir, fw, {}, monkeypatch)
    assert lp.fireworks.find_one({"name": "al-relax"})["state"] == "COMPLETED"
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    docs = list(db.calculations.find({}))
    assert len(docs) == 1
    d = docs[0]
    assert d["final_energy_eV"] == pytest.approx(-3.74204295)
    assert d["n_ionic_steps"] == 2 and len(d["ionic_steps"][0]["forces_eV_A"]) == 1
    assert d["custodian_corrections"] == []
    assert len(d["input_checksum"]) == 64
    assert ase.io.read(d["dataset_file"], ":")[-1].info["REF_energy"] == pytest.approx(-3.74204295)
    # started without an MPI launcher, the stand-in is one rank (tests/test_job_kinds.py: srun -n 2 on Slurm)
    launch_dir = lp.launches.find_one({})["launch_dir"]
    assert sorted(p.name for p in Path(launch_dir).glob("fake_vasp.rank*")) == ["fake_vasp.rank0"]
    assert "running on    1 total cores" in (Path(launch_dir) / "vasp.out").read_text()


def test_custodian_correction_applied_and_recorded(tmp_path, launchpad_dir, db_settings, monkeypatch):
    from argyro_fw.flows.dft import vasp_firework

    fw = vasp_firework(_al_structure(), "static", name="al-static", vasp_cmd=FAKE_VASP, potcar=False, polling_s=0.2)
    lp = _run_wf(tmp_path, launchpad_dir, fw, {"FAKE_VASP_FAIL_ONCE": "pricel"}, monkeypatch)
    assert lp.fireworks.find_one({"name": "al-static"})["state"] == "COMPLETED"
    d = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name].calculations.find_one({})
    corr = d["custodian_corrections"]
    assert len(corr) == 1 and corr[0]["errors"] == ["pricel"]
    assert corr[0]["actions"][0]["action"] == {"_set": {"SYMPREC": 1e-08, "ISYM": 0}}
    launch_dir = lp.launches.find_one({})["launch_dir"]
    incar = open(f"{launch_dir}/INCAR").read()
    assert "SYMPREC = 1e-08" in incar and "ISYM = 0" in incar


def test_crashed_run_leaves_no_document(tmp_path, launchpad_dir, db_settings, monkeypatch):
    from argyro_fw.flows.dft import vasp_firework

    fw = vasp_firework(_al_structure(), "static", name="al-crash", vasp_cmd=FAKE_VASP, potcar=False, polling_s=0.2)
    lp = _run_wf(tmp_path, launchpad_dir, fw, {"FAKE_VASP_TRUNCATE": "1"}, monkeypatch)
    assert lp.fireworks.find_one({"name": "al-crash"})["state"] == "FIZZLED"
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    assert db.calculations.count_documents({}) == 0
    launch = lp.launches.find_one({})
    msg = launch["action"]["stored_data"]["_exception"]["_stacktrace"]
    assert "vasprun.xml" in msg

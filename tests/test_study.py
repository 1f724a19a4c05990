"""Issue 9: the whole study from one config file.

Acceptance 2 and 4 run without running any firework (the DAG's stages are built by pure functions);
acceptance 1 and 3 run the miniature study of configs/demo.yaml end to end (`argyro demo`: CHGNet
stands in for VASP and for the DFT labels, a tiny MACE for the foundation model; real FireWorks,
real embedded MongoDB, real mace_run_train, real LAMMPS, real kinisi), killed mid-way and resumed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pymongo
import pytest
import yaml
from conftest import BIN, run
from pymatgen.core import Lattice, Structure

from argyro_fw.dft.inputs import maker
from argyro_fw.flows.study import (
    aimd_test_set,
    al_stage,
    bulk_aimd,
    bulk_candidates,
    bulk_mlmd_stage,
    initial_sources,
    initial_workflow,
    interface_stage,
    mlmd_stage,
    surface_stage,
)
from argyro_fw.study.config import load

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "configs" / "paper.yaml"
DEMO = ROOT / "configs" / "demo.yaml"


def _stages(wf) -> Counter:
    return Counter(fw.spec.get("argyro_stage") for fw in wf.fws)


def _aimd_incars(wf) -> dict[str, dict]:
    """{label: INCAR tags + n_atoms + k-grid} of a workflow's AIMD fireworks, rendered by the VASP input makers."""
    out = {}
    for fw in wf.fws:
        if fw.spec.get("argyro_stage") != "aimd":
            continue
        w = fw.tasks[0]
        inp = maker(w["kind"], **w["options"]).inputs(Structure.from_dict(w["structure"]))
        out[fw.tasks[2]["label"]] = dict(inp.incar, n_atoms=len(inp.structure), kpoints=list(inp.kpoints.kpts[0]))
    return out


def _config_with(tmp_path, change) -> Path:
    data = yaml.safe_load(DEMO.read_text())
    change(data)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("change, field", [
    (lambda d: d["surfaces"].update(colour="blue"), "surfaces.colour"),
    (lambda d: d.update(temprature=300), "temprature"),
    (lambda d: d["mlmd"].update(temperatures=[400, -300]), "mlmd.temperatures[1]"),
    (lambda d: d["active_learning"].update(committee_size=0), "active_learning.committee_size"),
    (lambda d: d["bulk_mlmd"].update(temperatures=[600]), "bulk_mlmd.temperatures"),
    (lambda d: d["final_model"].update(overrides={"max_num_epoch": 3}), "final_model.overrides.max_num_epoch"),
    (lambda d: d["surfaces"].update(planes=[[1, 1, 1]]), "surfaces.planes[0]"),
    (lambda d: d["mlmd"].update(supercell=[1000, 1000, 1000]), "mlmd.supercell"),
    (lambda d: d["mlmd"].update(layers=100000), "mlmd.layers"),
    (lambda d: d["bulk_mlmd"].update(supercell=[30, 30, 30]), "bulk_mlmd.supercell"),
    (lambda d: d["aimd"].update(li_ramp=[200]), "aimd.li_ramp"),
    (lambda d: d["aimd"].update(products=["li3p", "nacl"]), "aimd.products[1]"),
    (lambda d: d["aimd"].update(bulk_temperatures=[400, -1]), "aimd.bulk_temperatures[1]"),
])
def test_bad_config_is_refused_naming_the_field_and_nothing_is_added(tmp_path, cli_env, launchpad_dir, db_settings,
                                                                     change, field):
    cfg = _config_with(tmp_path, change)
    lp = str(launchpad_dir / "my_launchpad.yaml")
    p = run([str(BIN / "argyro"), "study", str(cfg), "--add", "-l", lp], cli_env, check=False)
    assert p.returncode == 2, p.stdout + p.stderr
    assert field in p.stderr and str(cfg) in p.stderr and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    assert db.fireworks.count_documents({}) == 0
    out = tmp_path / "wf.yaml"
    p = run([str(BIN / "argyro"), "study", str(cfg), "-o", str(out)], cli_env, check=False)
    assert p.returncode == 2 and field in p.stderr and not out.exists()


def _toy_slab(k: int) -> Structure:
    return Structure(Lattice.from_parameters(9.9, 9.9, 40, 90, 90, 90), ["Li", "S", "P", "Cl"],
                     [[0.1 * (k % 9), 0, 0.4], [0.5, 0.5, 0.45], [0, 0.5, 0.5], [0.5, 0, 0.55]])


def test_paper_config_stage_structure_and_lpad_add(tmp_path, cli_env, launchpad_dir, db_settings):
    """Fireworks per stage for 28 terminations, 3 interfaces and 2 MLMD temperatures (paper.yaml), built by the
    same functions the deciding fireworks call; the first stage's file is added with FireWorks' own `lpad add`."""
    cfg = load(PAPER)
    assert cfg.mlmd.temperatures == [300, 400] and cfg.surfaces.top_n == 3 and cfg.engine == "vasp"
    first = initial_workflow(cfg)
    # METHOD.md 5: Li-metal ramp and the Li3P / Li2S / LiCl ramps are AIMD fireworks of the first stage
    assert _stages(first) == {"bulk-dft": 3, "phase-dft": 4, "e0-dft": 4, "aimd": 4, "bulk-choose": 1}
    choose = next(fw for fw in first.fws if fw.spec["argyro_stage"] == "bulk-choose")
    assert len(first.links.parent_links[choose.fw_id]) == 15  # waits for every energy and AIMD
    incar = _aimd_incars(first)
    li = incar["aimd/li-ramp"]
    assert (li["TEBEG"], li["TEEND"], li["POTIM"], li["IBRION"], li["MDALGO"], li["SMASS"]) == (200, 1200, 2.0, 0, 2, 0)
    assert li["NSW"] == 5000 and li["n_atoms"] == 54 and li["kpoints"] != [1, 1, 1]  # 3x3x3 bcc, k-grid (METHOD.md 4)
    assert {k: (v["n_atoms"], v["kpoints"]) for k, v in incar.items() if k != "aimd/li-ramp"} == {
        "aimd/li3p-ramp": (64, [1, 1, 1]), "aimd/li2s-ramp": (96, [1, 1, 1]), "aimd/licl-ramp": (64, [1, 1, 1])}
    sel = {fw.tasks[2]["label"]: fw.tasks[2]["select"] for fw in first.fws if fw.spec["argyro_stage"] == "aimd"}
    assert set(map(str, sel.values())) == {"{'even': 100}"}

    bulk = bulk_candidates(cfg)[1][1]
    aimd = bulk_aimd(cfg, bulk, bulk_candidates(cfg)[0][1])
    slabs = [{"key": f"surface/s{k}", "id": f"s{k}", "structure": _toy_slab(k)} for k in range(28)]
    surf = surface_stage(cfg, slabs, context={}, aimd=aimd)
    # bulk AIMD at 400-1000 K (75 frames each) and the ordered vs disordered 600 K 40 ps validation -> Li MSD
    assert _stages(surf) == {"surface-dft": 28, "aimd": 6, "aimd-validation": 1, "surface-rank": 1}
    rank = next(fw for fw in surf.fws if fw.spec["argyro_stage"] == "surface-rank")
    assert len(surf.links.parent_links[rank.fw_id]) == 28 + 4 + 1
    incar = _aimd_incars(surf)
    assert {k: (v["TEBEG"], v["POTIM"], v["NSW"], v["n_atoms"]) for k, v in incar.items()} == {
        "aimd/bulk/400K": (400, 2.0, 5000, 52), "aimd/bulk/600K": (600, 2.0, 5000, 52),
        "aimd/bulk/800K": (800, 2.0, 5000, 52), "aimd/bulk/1000K": (1000, 2.0, 5000, 52),
        "aimd/validation/disordered": (600, 2.0, 20000, 52), "aimd/validation/ordered": (600, 2.0, 20000, 52)}
    # every surface calculation is a VASP firework (inputs -> custodian -> parse)
    dft = next(fw for fw in surf.fws if fw.spec["argyro_stage"] == "surface-dft")
    assert [t.__class__.__name__ for t in dft.tasks] == ["WriteVaspInputs", "RunVaspCustodian", "ParseVaspToDb"]

    parts = {p: _toy_slab(0) for p in ("total", "arg_free", "li_free")}
    itfs = [{"key": f"interface/i{k}", "parts": parts, "miller": [1, 0, 0], "termination": "Li-P-S-Cl",
             "li_plane": "100", "argyrodite_atoms": 10} for k in range(3)]
    # the first was charge balanced by removing atoms: Table 4's model before balancing is relaxed too
    itfs[0] = dict(itfs[0], parts=dict(parts, total_charged=_toy_slab(1)), composition_charged={"Li": 1})
    inter = interface_stage(cfg, itfs, context={})
    # METHOD.md 9: the strained slabs follow the relaxed interface: interface-strain is a child of the interface's
    # relaxation only, and the interface energy waits for it (its detour, the strained slabs, comes before)
    by_name = {fw.name: fw for fw in inter.fws}
    for k in range(3):
        strain, energy = by_name[f"interface-strain:interface/i{k}"], by_name[f"interface-energy:interface/i{k}"]
        assert [by_name_id.name for by_name_id in inter.fws
                if by_name_id.fw_id in inter.links.parent_links[strain.fw_id]] == [f"interface-dft:interface/i{k}/total"]
        assert strain.fw_id in inter.links.parent_links[energy.fw_id]
        assert len(inter.links.parent_links[energy.fw_id]) == (5 if k == 0 else 4)
        # a failed relaxation of Table 4's charged model never stops the branch (interface-energy then runs without it)
        assert energy.spec["_allow_fizzled_parents"] is (k == 0)
    assert "interface-dft:interface/i0/total_charged" in by_name
    assert by_name["interface-dft:interface/i0/total_charged"].tasks[0]["options"] == {"system": "interface"}
    # the interface cell (no vacuum) relaxes its ions only: rendered as --system interface, ISIF 2 (METHOD.md 4)
    total = next(fw for fw in inter.fws if fw.name == "interface-dft:interface/i0/total")
    w = total.tasks[0]
    assert w["options"] == {"system": "interface"}
    assert maker(w["kind"], **w["options"]).inputs(_toy_slab(0)).incar["ISIF"] == 2
    assert _stages(inter) == {"interface-dft": 10, "interface-strain": 3, "interface-energy": 3, "mlip-final": 3,
                              "bulk-model": 1, "summary": 1}
    summary = next(fw for fw in inter.fws if fw.spec["argyro_stage"] == "summary")
    choose_model = next(fw for fw in inter.fws if fw.spec["argyro_stage"] == "bulk-model")
    finals = {fw.fw_id for fw in inter.fws if fw.spec["argyro_stage"] == "mlip-final"}
    # every final model is scored on the bulk AIMD frames before the bulk MLMD; the summary waits for that
    assert set(inter.links.parent_links[choose_model.fw_id]) == finals
    assert inter.links.parent_links[summary.fw_id] == [choose_model.fw_id]
    # the final-model firework of the first interface carries METHOD.md 6's variants, the others do not
    assert [fw.tasks[0]["variants"] for fw in inter.fws if fw.spec["argyro_stage"] == "mlip-final"] == [True, False, False]
    # the interface's AIMD test set (a detour of interface-energy, so the final model waits for it): 400 and 1000 K,
    # 1 fs, Gamma only, 250 frames each
    test = aimd_test_set(cfg, "interface/i0", _toy_slab(0))
    incar = _aimd_incars(test)
    assert {k: (v["TEBEG"], v["POTIM"], v["kpoints"]) for k, v in incar.items()} == {
        "aimd/test/interface/i0/400K": (400, 1.0, [1, 1, 1]), "aimd/test/interface/i0/1000K": (1000, 1.0, [1, 1, 1])}
    assert {str(fw.tasks[2]["select"]) for fw in test.fws} == {"{'even': 250}"}
    # the AL loop starts from 75 x 4 bulk + 100 Li + 50 interface-relaxation frames (METHOD.md 5: 450)
    aimd_files = {f"aimd/bulk/{T}K": f"/b{T}.xyz" for T in (400, 600, 800, 1000)} | {"aimd/li-ramp": "/li.xyz"}
    src = initial_sources(cfg, aimd_files, "/relax.xyz")
    assert sum(s["n"] for s in src) == 450 and {s["path"] for s in src} == set(aimd_files.values()) | {"/relax.xyz"}

    e0s = {"Li": -0.3, "P": -1.9, "S": -1.1, "Cl": -0.3}  # what the study's e0 fireworks hand on
    al = al_stage(cfg, "interface/i0", _toy_slab(0), dft_e0s=e0s)
    assert _stages(al) == {"al-explore": 1, "al-train": cfg.active_learning.committee_size, "al-select": 1}
    # labels are VASP label fireworks (added by the explore firework as a detour), exploration uses the foundation
    al_cfg = al.fws[0].tasks[0]["cfg"]
    assert al_cfg["labeller"] == "engine" and al_cfg["label_engine"]["engine"] == "vasp"
    assert al_cfg["explorer"] == "mace:" + cfg.active_learning.foundation_model
    # the committee trains with the study's DFT isolated-atom E0s (METHOD.md 4-5), not the foundation's
    assert cfg.active_learning.e0s == "dft" and al_cfg["e0s"] == e0s
    with pytest.raises(ValueError, match="no isolated-atom energy"):
        al_stage(cfg, "interface/i0", _toy_slab(0), dft_e0s={"Li": -0.3})

    cell = [{"key": "interface/i0", "structure": _toy_slab(0)}]
    md_first = mlmd_stage(cfg, "/m/final.model", cell)
    md_bulk = bulk_mlmd_stage(cfg, "/m/final.model", _toy_slab(1))
    md_other = mlmd_stage(cfg, "/m/final.model", cell)
    assert _stages(md_other) == {"md-prerelax": 2, "md": 2, "analysis": 2}
    # METHOD.md 6: one run (the first interface at 400 K) extended to 10 ns in the same run directory
    md_ext = mlmd_stage(cfg, "/m/final.model", cell, extend=True)
    ext = [fw for fw in md_ext.fws if fw.name.startswith("md-extend:")]
    assert _stages(md_ext) == {"md-prerelax": 2, "md": 3, "analysis": 3} and len(ext) == 1
    assert ext[0].tasks[0]["extend_to_ns"] == 10.0 and ext[0].name.endswith("_400K")
    base = next(fw for fw in md_ext.fws if fw.name == ext[0].name.replace("md-extend:", "md:"))
    assert ext[0].tasks[0]["run_dir"] == base.tasks[0]["run_dir"]
    assert _stages(md_bulk) == {"bulk-md": 4, "diffusion": 4, "arrhenius": 1}
    ana = next(fw for fw in md_first.fws if fw.spec["argyro_stage"] == "analysis").tasks[0]
    # membranes from the end of NVT, the study's flux windows (METHOD.md 7, 9)
    assert ana["nvt_ps"] == 10.0 and ana["flux_windows"] == {"amorphous_sei": [0.5, 1.5], "crystalline_sei": [4.0, 5.0]}
    dif = next(fw for fw in md_bulk.fws if fw.spec["argyro_stage"] == "diffusion").tasks[0]
    assert dif["flux_from_ps"] == cfg.bulk_mlmd.nvt_ps
    md = next(fw for fw in md_first.fws if fw.spec["argyro_stage"] == "md")
    assert md.tasks[0]["engine"] == "mliap" and md.tasks[0]["protocol"]["npt_ns"] == 5.0
    bulk_md = next(fw for fw in md_bulk.fws if fw.spec["argyro_stage"] == "bulk-md")
    assert len(Structure.from_dict(bulk_md.tasks[0]["structure"])) == 8 * 4  # 2x2x2 of the given cell

    # the whole study for 28 terminations, 3 interfaces, 2 temperatures (one AL iteration each)
    total = (_stages(first) + _stages(surf) + _stages(inter) + _stages(al) + _stages(al) + _stages(al)
             + _stages(md_first) + _stages(md_other) + _stages(md_other) + _stages(md_bulk) + _stages(test) + _stages(test) + _stages(test))
    assert total["md"] == 6 and total["analysis"] == 6 and total["surface-dft"] == 28 and total["bulk-md"] == 4
    assert total["aimd"] == 4 + 6 + 3 * 2
    assert sum(total.values()) == 16 + 36 + 21 + 3 * 5 + 3 * 6 + 9 + 3 * 2

    # written for lpad add, and FireWorks' own lpad adds it
    out = tmp_path / "paper_wf.yaml"
    run([str(BIN / "argyro"), "study", str(PAPER), "-o", str(out)], cli_env)
    run([str(BIN / "lpad"), "-l", str(launchpad_dir / "my_launchpad.yaml"), "add", str(out)], cli_env)
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    assert Counter(f["spec"]["argyro_stage"] for f in db.fireworks.find({})) == _stages(first)
    assert db.workflows.find_one({})["metadata"] == {"argyro_study": "li-argyrodite-2026"}


EXPECTED_STAGES = {"bulk-dft", "phase-dft", "e0-dft", "mlip-foundation", "bulk-choose", "surface-dft", "surface-rank",
                   "interface-dft", "interface-strain", "interface-energy", "al-explore", "al-label", "al-collect", "al-train",
                   "al-select", "mlip-final",
                   "md-prerelax", "md", "analysis", "bulk-md", "diffusion", "arrhenius", "summary",
                   "aimd", "aimd-validation", "bulk-model"}


def check_complete_demo(db, stdout: str) -> None:
    """The demo study in ``db`` is complete and ``stdout`` (the last `argyro demo`'s output) printed its tables: every
    stage of the DAG ran, the study's records are in MongoDB (tests/test_chaos.py runs it under SIGKILLs)."""
    fws = list(db.fireworks.find({}, {"fw_id": 1, "state": 1, "spec.argyro_stage": 1}))
    assert all(f["state"] == "COMPLETED" for f in fws), Counter(f["state"] for f in fws)
    assert {f["spec"]["argyro_stage"] for f in fws} == EXPECTED_STAGES
    # the study's results are in MongoDB and printed
    st = db.studies.find_one({"name": "demo"})
    assert st["complete"] and st["bulk"]["chosen"].startswith("bulk/disordered_")
    assert len(st["surfaces"]["ranking"]) == st["surfaces"]["n_terminations"] >= 2
    gammas = [r["gamma_surf_eV_nm2"] for r in st["surfaces"]["ranking"]]
    assert gammas == sorted(gammas) and all(np.isfinite(gammas))
    itf = db.interfaces.find_one({"study": "demo"})
    assert np.isclose(itf["gamma_inter_min_eV_nm2"],
                      itf["gamma_inter_eV_nm2"] - itf["E_str_argyrodite_eV_nm2"] - itf["E_str_li_eV_nm2"])
    # Table 4: gamma_surf and gamma_inter before and after charge balancing (the model before it was relaxed too)
    assert itf["composition_charged"] and np.isfinite(itf["gamma_inter_charged_eV_nm2"])
    assert np.isfinite(itf["gamma_surf_balanced_eV_nm2"]) and np.isfinite(itf["gamma_surf_charged_eV_nm2"])
    assert set(itf["energies_eV"]) == {"total", "total_charged", "arg_free", "li_free", "arg_strained", "li_strained"}
    assert itf["heads"] == ["pt_head", "Default"] and Path(itf["final_model"]).is_file()
    fv = itf["final_validation"]  # the final model and every committee member on the interface's AIMD test set
    assert fv["test_kind"] == "aimd" and len(fv["test_set"]) == 2  # 400 and 1000 K
    assert fv["n_frames"] == sum(len(ase.io.read(f, ":")) for f in fv["test_set"]) == 4
    assert np.isfinite(fv["energy_rmse_meV_atom"]) and fv["force_rmse_meV_A"] > 0
    assert len(fv["committee"]) == 3 and all(c["n_frames"] == 4 for c in fv["committee"])
    # average RDFs of the final model's MD against the AIMD test runs (METHOD.md 5), HDF5 + PNG
    rdf = fv["rdf"]
    assert Path(rdf["h5"]).is_file() and Path(rdf["png"]).is_file()
    assert set(rdf["by_temperature"]) == {"400K", "1000K"} and "S-P" in rdf["by_temperature"]["400K"]
    # the AL loop's initial set: bulk AIMD (2 T x 3), Li ramp (3), interface relaxation (<= 3 frames)
    explore = db.fireworks.find_one({"spec.argyro_stage": "al-explore"})
    src = explore["spec"]["_tasks"][0]["cfg"]["al"]["initial_sources"]
    assert sorted(s["config_type"] for s in src) == ["aimd-bulk-1000K", "aimd-bulk-400K", "aimd-li-ramp",
                                                     "interface-relax"]
    # the bulk model is the final model with the lowest force RMSE on the bulk AIMD frames; the ordered vs
    # disordered validation AIMD left both Li MSD curves
    assert st["bulk_model_choice"]["interface"] == itf["key"] and st["bulk_mlmd_model"] == itf["final_model"]
    val = st["bulk"]["validation_aimd"]
    assert val["temperature_K"] == 600 and len(val["disordered"]["msd_A2"]) == len(val["ordered"]["msd_A2"]) >= 2
    # the AL labels came from label fireworks of the engine, one per frame hash, stored once each
    labels = list(db.labels.find({}, {"hash": 1, "labeller": 1}))
    assert labels and {lab["labeller"] for lab in labels} == {"chgnet-standin"}
    assert len({lab["hash"] for lab in labels}) == len(labels)
    assert db.fireworks.count_documents({"spec.argyro_stage": "al-label"}) == len(labels)
    assert db.diffusion.count_documents({"study": "demo"}) == 2 and "D" in st["arrhenius"]
    ana = db.analyses.find_one({})
    assert Path(ana["h5_path"]).is_file() and ana["plots"]
    assert "Arrhenius: Ea(D) =" in stdout and itf["key"] in stdout and "all " in stdout


def test_decisions_energies_by_hand():
    """gamma_surf and gamma_inter (with strain correction) of the study's decision functions, against numbers
    worked out by hand (eV, Angstrom^2, eV/nm^2)."""
    from argyro_fw.study.decisions import gamma_surface, interface_energies

    ctx = {"e_fu": {"Li6PS5Cl": -50.0}, "mu": {"Li": -2.0, "P": -5.0, "S": -4.0, "Cl": -3.0}, "e_li_atom": -1.9}
    # Li40 P8 S32 Cl6: k = 8 formula units, excess Li -8, S -8, Cl -2
    slab = {"composition": {"Li": 40, "P": 8, "S": 32, "Cl": 6}, "area_A2": 100.0}
    # [E - 8*(-50) - (-8*-2 + -8*-4 + -2*-3)] / (2 * 1 nm2) = [-340 + 400 - 54] / 2 = 3.0
    assert gamma_surface(-340.0, slab, ctx) == pytest.approx(3.0)
    itf = {"key": "i", "composition": {"Li": 56, "P": 8, "S": 32, "Cl": 6}, "li_metal_atoms": 16, "area_A2": 200.0}
    E = {"i/total": {"energy_eV": -400.0}, "i/arg_strained": {"energy_eV": -100.0}, "i/arg_free": {"energy_eV": -101.0},
         "i/li_strained": {"energy_eV": -30.0}, "i/li_free": {"energy_eV": -30.4}}
    r = interface_energies(E, itf, ctx)
    # argyrodite part Li40 P8 S32 Cl6 as above; [-400 - 16*(-1.9) - 8*(-50) - 54] / (2 * 2 nm2) = -5.9
    assert r["gamma_inter_eV_nm2"] == pytest.approx(-23.6 / 4)
    assert r["E_str_argyrodite_eV_nm2"] == pytest.approx(1.0 / 4) and r["E_str_li_eV_nm2"] == pytest.approx(0.4 / 4)
    assert r["gamma_inter_min_eV_nm2"] == pytest.approx(-23.6 / 4 - 1.4 / 4)
    assert "gamma_inter_charged_eV_nm2" not in r  # nothing was removed: no model before balancing
    # Table 4: before balancing the interface held two more P (Li40 P10 S32 Cl6 + 16 Li metal): k = 10 (per P),
    # excess Li -20, S -18, Cl -4; [-420 - 16*(-1.9) - 10*(-50) - (-20*-2 + -18*-4 + -4*-3)] / (2 * 2 nm2)
    itf_c = dict(itf, composition_charged={"Li": 56, "P": 10, "S": 32, "Cl": 6}, li_metal_atoms_charged=16,
                 arg_free_area_A2=100.0, gamma_surf_eV_nm2=1.5)
    r = interface_energies(dict(E, **{"i/total_charged": {"energy_eV": -420.0}}), itf_c, ctx)
    assert r["gamma_inter_charged_eV_nm2"] == pytest.approx((-420 + 30.4 + 500 - 124) / 4)
    # gamma_surf after balancing: the balanced slab alone (arg_free, -101 eV on its own 100 A2) as gamma_surface above
    assert r["gamma_surf_balanced_eV_nm2"] == pytest.approx((-101 + 400 - 54) / 2)
    assert r["gamma_surf_charged_eV_nm2"] == 1.5
    # the charged model's relaxation failed: Table 4's gamma_inter before balancing is left out, nothing else
    r2 = interface_energies(E, itf_c, ctx)
    assert "gamma_inter_charged_eV_nm2" not in r2 and r2["gamma_surf_balanced_eV_nm2"] == r["gamma_surf_balanced_eV_nm2"]


def test_mlmd_variants_are_distinct_balanced_choices_and_a_symmetric_charged_model(tmp_path):
    """METHOD.md 6 variants of the first interface's MLMD cell (demo sizes): three symmetry-distinct charge-balancing
    choices, each neutral, and the fully symmetric model, which keeps the removed atoms (charged); the study runs each
    at 400 K for 3 ns (paper.yaml)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from argyro_fw.flows.study import mlmd_variants
    from argyro_fw.structures.bulk import disordered_candidates
    from argyro_fw.structures.charges import formal_charge
    from argyro_fw.structures.surfaces import SurfaceMaker, symmetric_terminations

    cfg = load(ROOT / "configs" / "demo.yaml")
    cfg.mlmd.variant_balance_choices, cfg.mlmd.variant_symmetric = [0, 1, 2], True
    bulk = disordered_candidates()[1]["structure"]  # the candidate with symmetric (100) terminations
    d_100 = float(np.cbrt(bulk.lattice.volume))
    term = symmetric_terminations(bulk, (1, 0, 0), SurfaceMaker(min_thickness=cfg.mlmd.layers * d_100))[0]
    itf = {"key": "interface/x", "miller": [1, 0, 0], "li_plane": "100", "termination": term["termination"]}
    vs = mlmd_variants(cfg, bulk, itf)
    assert [v["key"] for v in vs] == ["interface/x/balance0", "interface/x/balance1", "interface/x/balance2",
                                      "interface/x/symmetric"]
    balanced = [v["structure"] for v in vs[:3]]
    sm = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
    assert not sm.fit(balanced[0], balanced[1]) and not sm.fit(balanced[1], balanced[2])
    sym = vs[3]["structure"]
    removed = sum(vs[0]["removed_for_balance"].values())
    # the symmetric model keeps the atoms each balanced choice removes: exactly the slab's formal charge
    # (the Li metal is the same in all four cells)
    q_slab = formal_charge(term["structure"])
    assert q_slab != 0 and removed > 0
    for b in balanced:
        assert len(sym) == len(b) + removed and formal_charge(sym) - formal_charge(b) == q_slab
    paper = load(PAPER)
    assert (paper.mlmd.variant_balance_choices, paper.mlmd.variant_symmetric, paper.mlmd.variants_temperature,
            paper.mlmd.variants_npt_ns) == ([0, 1, 2], True, 400.0, 3.0)
    wf = mlmd_stage(paper, "/m/final.model", [{"key": "interface/x", "structure": balanced[0]}],
                    variants=[{"key": v["key"], "structure": v["structure"]} for v in vs])
    runs = [fw for fw in wf.fws if fw.spec["argyro_stage"] == "md"]
    variant_runs = [fw for fw in runs if "balance" in fw.name or "symmetric" in fw.name]
    assert len(variant_runs) == 4 and all(fw.tasks[0]["protocol"]["npt_ns"] == 3.0 and
                                          fw.tasks[0]["protocol"]["temperature"] == 400.0 for fw in variant_runs)


def test_yaml_error_names_the_line(tmp_path):
    from argyro_fw.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmlmd:\n  temperatures: [300, 400\n  npt_ns: 5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: not valid YAML at line 4, column \d+ \(") as e:
        load(bad)
    assert "\n" not in str(e.value)


def test_atom_bounds_of_the_paper_config_cover_its_cells():
    """The bound on the atoms a config implies holds the study's own MLMD cells (2220-2596 atoms, METHOD.md 6) and
    bulk cell (416 atoms) and is refused above max_atoms."""
    from argyro_fw.errors import ConfigError
    from argyro_fw.study.config import atoms_bounds, from_dict

    cfg = load(PAPER)
    b = atoms_bounds(cfg)
    assert 2596 <= b["mlmd.supercell / mlmd.layers / mlmd.li_layers / mlmd.max_area"] <= cfg.max_atoms
    assert b["bulk_mlmd.supercell"] == 416 == 52 * 8
    data = cfg.to_dict()
    data["max_atoms"] = 2000
    with pytest.raises(ConfigError, match="more than max_atoms 2,000"):
        from_dict(data)

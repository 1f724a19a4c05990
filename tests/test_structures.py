"""Issue 3 (parts done): bulk argyrodite from crystal facts, phases, formal charges, charge
balancing, the energy equations, and bad input."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from conftest import BIN, run
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from argyro_fw.errors import ArgyroError
from argyro_fw.structures import energies as en
from argyro_fw.structures.balance import balance, minimal_removal
from argyro_fw.structures.bulk import argyrodite_site_model, disordered_candidates, ordered_argyrodite
from argyro_fw.structures.charges import formal_charge
from argyro_fw.structures.phases import phase


def test_site_model_is_f43m():
    m = argyrodite_site_model()
    assert SpacegroupAnalyzer(m).get_space_group_symbol() == "F-43m"
    assert m.composition.reduced_formula == "Li6PS5Cl"
    assert sum(1 for s in m if "Li" in s.species.formula) == 48  # 48h, half occupied


def test_ordered_bulk_facts():
    s = ordered_argyrodite()
    assert len(s) == 52 and s.composition.formula == "Li24 P4 S20 Cl4"
    d = s.distance_matrix.copy()
    np.fill_diagonal(d, np.inf)
    assert d.min() > 1.8
    p = [i for i, x in enumerate(s) if x.specie.symbol == "P"]
    for i in p:
        near_s = [j for j, x in enumerate(s) if x.specie.symbol == "S" and s.get_distance(i, j) < 2.2]
        assert len(near_s) == 4
    assert formal_charge(s) == 0


def test_two_inequivalent_disordered_candidates():
    c = disordered_candidates()
    assert len(c) == 2 and sum(x["multiplicity"] for x in c) == 36  # C(4,2)^2 swaps in 2 classes
    for x in c:
        s = x["structure"]
        assert s.composition.formula == "Li24 P4 S20 Cl4" and formal_charge(s) == 0
        # two Cl now sit on former free-S (4d) sites: Cl-Li environments changed, P-S units intact
        p = [i for i, y in enumerate(s) if y.specie.symbol == "P"]
        assert all(sum(1 for j, y in enumerate(s) if y.specie.symbol == "S" and s.get_distance(i, j) < 2.2) == 4 for i in p)


@pytest.mark.parametrize("name,formula,sg", [("li", "Li2", "Im-3m"), ("li2s", "Li8 S4", "Fm-3m"),
                                              ("licl", "Li4 Cl4", "Fm-3m"), ("li3p", "Li6 P2", "P6_3/mmc")])
def test_phases(name, formula, sg):
    s = phase(name)
    assert s.composition.formula == formula and SpacegroupAnalyzer(s).get_space_group_symbol() == sg
    # METHOD.md's formal charges are the argyrodite's (P +5): metal Li and phosphide Li3P are not neutral
    assert formal_charge(s) == {"li": 2, "li3p": 16}.get(name, 0)


def test_formal_charge_and_balance_removes_two_p():
    counts = {"Li": 40, "P": 8, "S": 32, "Cl": 6}
    assert formal_charge(counts) == 10
    assert minimal_removal(counts, 10) == {"P": 2}
    # a real cell with that composition: P on a lattice, ranked choices by Ewald energy
    rng = np.random.default_rng(3)
    species = ["Li"] * 40 + ["P"] * 8 + ["S"] * 32 + ["Cl"] * 6
    grid = np.array(np.meshgrid(*[np.arange(5)] * 3)).reshape(3, -1).T[:86] / 5 + 0.01 * rng.random((86, 3))
    s = Structure(Lattice.cubic(15.0), species, grid)
    res = balance(s, max_candidates=100)
    assert res.removal == {"P": 2} and res.n_removed == 2
    assert res.combinations_total == 28 and not res.capped
    assert all(c["structure"].composition.formula == "Li40 P6 S32 Cl6" for c in res.candidates)
    energies = [c["energy_eV"] for c in res.candidates]
    assert energies == sorted(energies) and len(set(np.round(energies, 6))) > 1
    assert sum(c["multiplicity"] for c in res.candidates) == 28


def test_balance_impossible_is_named():
    with pytest.raises(ArgyroError, match="no removal"):
        minimal_removal({"Li": 1, "S": 10}, 11, max_atoms=5)


def test_chemical_potentials_solve_all_four_equations():
    e = {"Li6PS5Cl": -40.0, "Li3P": -12.0, "Li2S": -9.0, "LiCl": -7.0}
    mu = en.chemical_potentials(e)
    for ph, comp in en.REFERENCE_PHASES.items():
        assert sum(n * mu[el] for el, n in comp.items()) == pytest.approx(e[ph], abs=1e-12)


def test_energy_equations_by_hand():
    mu = {"Li": -2.0, "P": -5.0, "S": -4.0, "Cl": -1.5}
    # gamma = (E_slab - E_bulk - sum n mu) / 2A, A in nm^2
    g = en.surface_energy(-500.0, -480.0, {"Li": 4, "P": -2, "S": 0, "Cl": 2}, mu, 100.0)
    assert g == pytest.approx((-500 + 480 - (4 * -2.0 + -2 * -5.0 + 2 * -1.5)) / 2.0)
    gi = en.interface_energy(-900.0, -480.0, -400.0, {"Li": 3}, mu, 200.0)
    assert gi == pytest.approx((-900 + 480 + 400 + 6.0) / 4.0)
    es = en.strain_energy(-99.0, -100.0, 50.0)
    assert es == pytest.approx(1.0 / 1.0)
    assert en.interface_energy_min(-8.0, 0.5, 0.25) == pytest.approx(-8.75)
    k, n = en.excess_vs_bulk({"Li": 40, "P": 8, "S": 32, "Cl": 6}, {"Li": 6, "P": 1, "S": 5, "Cl": 1})
    assert k == 8 and n == {"Li": -8, "P": 0, "S": -8, "Cl": -2}


def test_cli_build_and_bad_input(tmp_path):
    import os

    env = dict(os.environ)
    run([str(BIN / "argyro"), "build", "bulk", "--disordered", "-o", str(tmp_path / "dis")], env)
    summary = json.loads((tmp_path / "dis" / "summary.json").read_text())
    assert len(summary["candidates"]) == 2
    assert Structure.from_file(str(tmp_path / "dis" / "POSCAR_disordered_0")).composition.formula == "Li24 P4 S20 Cl4"
    run([str(BIN / "argyro"), "build", "phase", "li", "--supercell", "3", "3", "3", "-o", str(tmp_path / "li")], env)
    assert json.loads((tmp_path / "li" / "summary.json").read_text())["li"]["n_atoms"] == 54
    # unknown element: named error, nothing written
    (tmp_path / "bad.vasp").write_text("x\n1.0\n5 0 0\n0 5 0\n0 0 5\nFe\n1\ndirect\n0 0 0\n")
    p = run([str(BIN / "argyro"), "build", "balance", str(tmp_path / "bad.vasp"), "-o", str(tmp_path / "out")], env, check=False)
    assert p.returncode == 2 and "Fe" in p.stderr and not (tmp_path / "out").exists()
    # non-periodic file
    (tmp_path / "mol.xyz").write_text("2\n\nLi 0 0 0\nS 0 0 2.4\n")
    p = run([str(BIN / "argyro"), "build", "balance", str(tmp_path / "mol.xyz"), "-o", str(tmp_path / "out2")], env, check=False)
    assert p.returncode == 2 and "periodic" in p.stderr and not (tmp_path / "out2").exists()


# ---- surfaces, interfaces, MLMD cells (issue 3, acceptance 2, 4, 6) ----------------------------------------

import spglib

from argyro_fw.structures.energies import REFERENCE_PHASES
from argyro_fw.structures.interfaces import InterfaceMaker, build_interface, match_candidates, mismatch
from argyro_fw.structures.surfaces import symmetric_terminations


def _face_flip_maps_slab_onto_itself(slab: Structure, symprec: float = 0.1, tol: float = 0.2) -> bool:
    """Independent check with spglib: an operation whose rotation sends c to -c maps every atom onto an
    atom of the same species (within ``tol`` Angstrom)."""
    cell = (slab.lattice.matrix, slab.frac_coords, [s.specie.Z for s in slab])
    sym = spglib.get_symmetry(cell, symprec=symprec)
    if sym is None:
        return False
    numbers = np.array(cell[2])
    for rot, tr in zip(sym["rotations"], sym["translations"]):
        if rot[2, 2] != -1 or rot[2, 0] or rot[2, 1]:
            continue
        img = (rot @ slab.frac_coords.T).T + tr
        d = slab.lattice.get_all_distances(img, slab.frac_coords)
        same = numbers[:, None] == numbers[None, :]
        if np.all(np.where(same, d, np.inf).min(axis=1) < tol):
            return True
    return False


def framework_flip(slab: Structure, symprec: float = 0.1) -> bool:
    """The slab's framework (P, S, Cl; Li left out: they follow the bulk's P1 ordering) has a face-flipping
    operation (spglib)."""
    fw = slab.copy()
    fw.remove_species(["Li"])
    return _face_flip_maps_slab_onto_itself(fw, symprec, max(0.2, symprec + 1e-6))


def on_bulk_sites(slab: Structure, bulk: Structure, miller, tol: float = 0.02) -> bool:
    """Every atom of ``slab`` is an atom of ``bulk`` (same species, within ``tol`` Å) after one rigid motion: the
    rotation that takes the oriented cell's (pymatgen SlabGenerator) in-plane axes and normal onto the slab's
    x, y, z, and the translation that puts one slab P on a bulk P. Mirrored or moved Li fail it."""
    from pymatgen.core.surface import SlabGenerator

    ouc = SlabGenerator(bulk, miller, 10, 10, primitive=False, center_slab=False).oriented_unit_cell
    m = ouc.lattice.matrix
    n = np.cross(m[0], m[1])
    n /= np.linalg.norm(n)
    e1 = m[0] / np.linalg.norm(m[0])
    rot = np.vstack([e1, np.cross(n, e1), n])  # bulk Cartesian -> slab frame
    if not (np.allclose(rot @ m[0], slab.lattice.matrix[0], atol=1e-6)
            and np.allclose(rot @ m[1], slab.lattice.matrix[1], atol=1e-6)):
        return False
    back = slab.cart_coords @ rot  # slab frame -> bulk Cartesian (rot is orthonormal)
    species = [x.specie.symbol for x in slab]
    p0 = species.index("P")
    for q in [i for i, x in enumerate(ouc) if x.specie.symbol == "P"]:
        frac = ouc.lattice.get_fractional_coords(back + (ouc.cart_coords[q] - back[p0]))
        if all(ouc.lattice.get_all_distances(frac[[i for i, x in enumerate(species) if x == el]],
                                             ouc.frac_coords[[i for i, x in enumerate(ouc) if x.specie.symbol == el]])
               .min(axis=1).max() <= tol for el in set(species)):
            return True
    return False


@pytest.fixture(scope="module")
def ordered_bulk():
    return ordered_argyrodite()


@pytest.mark.parametrize("miller", [(1, 0, 0), (1, 1, 0)])
def test_every_symmetric_termination_has_a_face_flipping_operation(ordered_bulk, miller):
    """Issue 14 item 1: the framework of both faces is related by a face-flipping operation (spglib) and the Li
    are the bulk's own (every atom a bulk site: nothing mirrored onto the other face)."""
    terms = symmetric_terminations(ordered_bulk, miller)
    assert len(terms) >= 2
    fu = REFERENCE_PHASES["Li6PS5Cl"]
    labels = set()
    for t in terms:
        s = t["structure"]
        assert t["symmetric"] is True
        assert framework_flip(s)
        assert on_bulk_sites(s, ordered_bulk, miller)
        # the bookkeeping agrees with the atoms
        comp = {el: int(s.composition[el]) for el in ("Li", "P", "S", "Cl")}
        assert t["composition"] == comp
        assert t["formal_charge"] == comp["Li"] + 5 * comp["P"] - 2 * comp["S"] - comp["Cl"]
        k = t["bulk_formula_units"]
        assert all(t["excess_vs_bulk"][el] == pytest.approx(comp[el] - k * fu[el]) for el in comp)
        assert t["area_A2"] == pytest.approx(np.linalg.norm(np.cross(*s.lattice.matrix[:2])), rel=1e-9)
        z = s.cart_coords[:, 2]
        assert t["thickness_A"] == pytest.approx(z.max() - z.min()) and t["thickness_A"] >= 12.0
        assert t["vacuum_A"] > 10.0
        # every P keeps its four S, except a P of a face layer whose outer PS4 S were cut off with the next layer
        # (the study's "Li-P-..." faces): it keeps the S on the slab's side, at least two
        zf = [z[i] for i, x in enumerate(s) if x.specie.symbol != "Li"]
        for i, site in enumerate(s):
            if site.specie.symbol == "P":
                n_s = sum(n.specie.symbol == "S" for n in s.get_neighbors(site, 2.2))
                assert n_s == 4 or (n_s >= 2 and min(z[i] - min(zf), max(zf) - z[i]) < 1.0)
        labels.add(t["termination"])
    assert len(labels) >= 2


def test_a_cut_without_symmetry_is_not_reported(ordered_bulk):
    """The checkers are not trivially true: one S moved by ~0.7 Å breaks the framework's face flip, one Li moved
    or mirrored through the slab centre is no longer a bulk site."""
    t = symmetric_terminations(ordered_bulk, (1, 0, 0))[0]
    s = t["structure"].copy()
    i = next(i for i, site in enumerate(s) if site.specie.symbol == "S")
    s.translate_sites([i], [0.7 / s.lattice.a, 0.0, 0.0])
    assert not framework_flip(s)
    s = t["structure"].copy()
    li = [i for i, site in enumerate(s) if site.specie.symbol == "Li"]
    z = s.cart_coords[:, 2]
    k = li[int(np.argmin(z[li]))]
    s.replace(k, "Li", [*s.cart_coords[k][:2], z.max() + z.min() - z[k]], coords_are_cartesian=True)
    assert not on_bulk_sites(s, ordered_bulk, (1, 0, 0))


def test_ordered_100_terminations_named_as_the_study_names_them(ordered_bulk):
    """The ordered cell (Cl on 4a, free S on 4d) stacks along a: P + 4a Cl, PS4 S, 4d S, PS4 S, ... So its (100)
    faces are, by the naming rule read off Table 2: P with Cl ("Li-P-Cl"), 4d S ("Li-S"), and each under a PS4 S
    cap ("S(...)"). Per face, the framework atoms within 0.5 Å of the outermost one are the same on both faces."""
    terms = symmetric_terminations(ordered_bulk, (1, 0, 0))
    assert sorted(t["termination"] for t in terms) == sorted(["Li-P-Cl", "Li-S", "S(Li-P-Cl)", "S(Li-S)"])
    for t in terms:
        s = t["structure"]
        z = s.cart_coords[:, 2]
        fw = [i for i, x in enumerate(s) if x.specie.symbol != "Li"]
        lo, hi = z[fw].min(), z[fw].max()
        bottom = Counter(s[i].specie.symbol for i in fw if z[i] < lo + 0.5)
        top = Counter(s[i].specie.symbol for i in fw if z[i] > hi - 0.5)
        # outer layer per (100) face of the cell: a cap holds 4 PS4 S (2 tetrahedra x 2), a 4d layer 2 S,
        # a P layer 2 P and the 2 Cl of 4a
        assert bottom == top and bottom in ({"S": 4}, {"S": 2}, {"P": 2, "Cl": 2})
        assert t["s_capped"] == (bottom == {"S": 4})


def test_interface_matches_100_within_one_percent(ordered_bulk):
    slab = symmetric_terminations(ordered_bulk, (1, 0, 0))[0]["structure"]
    maker = InterfaceMaker(li_planes=["100"], li_layers=3, max_area=500.0, max_candidates=3, n_shift=2)
    cands = match_candidates(slab, maker)
    assert cands and cands[0]["mismatch_pct"] <= 1.0
    res = build_interface(slab, cands[0], maker)
    cell = res["structure"]
    # periodic in 3D, no two atoms closer than 1.5 A
    assert all(cell.lattice.pbc) and cell.lattice.volume > 0
    d = cell.distance_matrix
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 1.5
    # mismatch recomputed from the cells: slab in-plane vectors and the bcc Li(100) square lattice
    s_vec = np.array(cands[0]["substrate_matrix"]) @ slab.lattice.matrix[:2, :2]
    f_vec = np.array(cands[0]["film_matrix"]) @ (3.44 * np.eye(2))
    ls, lf = np.linalg.norm(s_vec, axis=1), np.linalg.norm(f_vec, axis=1)
    assert res["mismatch_pct"] == pytest.approx(np.max(np.abs(lf / ls - 1)) * 100, rel=1e-6)
    # the common cell is the average of the two: |a| between the two lengths, the mean of them
    la = np.linalg.norm(cell.lattice.matrix[:2], axis=1)
    assert la == pytest.approx((ls + lf) / 2, rel=1e-6)
    # atom bookkeeping: every atom of the slab supercell plus the Li metal
    n_sub = abs(round(np.linalg.det(np.array(cands[0]["substrate_matrix"]))))
    assert res["argyrodite_atoms"] == n_sub * len(slab)
    assert len(cell) == res["argyrodite_atoms"] + res["li_metal_atoms"]
    assert mismatch(f_vec, s_vec)[0] == pytest.approx(res["mismatch_pct"])


def test_cli_surfaces_interface_mlmd_and_bad_input(tmp_path):
    import os

    env = dict(os.environ)
    A = str(BIN / "argyro")
    run([A, "build", "bulk", "--ordered", "-o", str(tmp_path / "b")], env)
    bulk = str(tmp_path / "b" / "POSCAR_ordered")
    run([A, "build", "surfaces", bulk, "--miller", "1", "0", "0", "-o", str(tmp_path / "s")], env)
    summ = json.loads((tmp_path / "s" / "surfaces.json").read_text())
    assert summ["counts"]["100"] == summ["total"] == len(summ["slabs"]) >= 2
    for t in summ["slabs"]:
        assert {"miller", "termination", "composition", "formal_charge", "excess_vs_bulk", "area_A2", "thickness_A",
                "vacuum_A", "symmetric"} <= set(t)
        assert framework_flip(Structure.from_file(str(tmp_path / "s" / t["file"])))
    slab_file = str(tmp_path / "s" / summ["slabs"][0]["file"])
    run([A, "build", "interface", slab_file, "--li-planes", "100", "--li-layers", "2", "--candidates", "1",
         "--max-area", "500", "-o", str(tmp_path / "i")], env)
    itf = json.loads((tmp_path / "i" / "interfaces.json").read_text())["interfaces"][0]
    assert itf["mismatch_pct"] <= 1.0 and itf["min_distance_A"] >= 1.5
    run([A, "build", "mlmd-cell", bulk, "--miller", "1", "0", "0", "--layers", "1", "--li-layers", "2",
         "--supercell", "2", "1", "1", "-o", str(tmp_path / "m")], env)
    ml = json.loads((tmp_path / "m" / "mlmd_cell.json").read_text())
    cell = Structure.from_file(str(tmp_path / "m" / "POSCAR_mlmd"))
    assert len(cell) == ml["n_atoms"] == 2 * (ml["li_metal_atoms"] + ml["argyrodite_atoms"])
    # the argyrodite part is neutral after balancing (Li metal counted apart)
    arg = {el: int(cell.composition[el]) for el in ("P", "S", "Cl")}
    n_li_arg = int(cell.composition["Li"]) - 2 * ml["li_metal_atoms"]
    assert n_li_arg + 5 * arg["P"] - 2 * arg["S"] - arg["Cl"] == 0
    # a Miller index the cell cannot give, and (111): named errors, nothing written
    for bad in (["2", "0", "0"], ["1", "1", "1"]):
        p = run([A, "build", "surfaces", bulk, "--miller", *bad, "-o", str(tmp_path / "bad")], env, check=False)
        assert p.returncode == 2 and "Miller index" in p.stderr and not (tmp_path / "bad").exists()
    (tmp_path / "mol.xyz").write_text("2\n\nLi 0 0 0\nS 0 0 2.4\n")
    p = run([A, "build", "surfaces", str(tmp_path / "mol.xyz"), "-o", str(tmp_path / "bad2")], env, check=False)
    assert p.returncode == 2 and "periodic" in p.stderr and not (tmp_path / "bad2").exists()


def test_structures_firework_stores_dict_file_and_metadata(tmp_path, cli_env, launchpad_dir, db_settings):
    """A FireWorks run of BuildStructuresTask (surfaces of the (100) plane) on the embedded server: one document
    per slab with the structure dict, the file and the metadata; a rerun replaces instead of duplicating."""
    import pymongo
    from fireworks import Firework, Workflow

    from argyro_fw.flows.structures import BuildStructuresTask
    from argyro_fw.launchpad import get_launchpad

    lp = get_launchpad(launchpad_dir / "my_launchpad.yaml")
    bulk = ordered_argyrodite()
    fw = Firework([BuildStructuresTask(what="surfaces", params={"bulk": bulk.as_dict(), "planes": [[1, 0, 0]]},
                                       study="t")], name="surfaces")
    lp.add_wf(Workflow([fw]))
    lpf, fwf = str(launchpad_dir / "my_launchpad.yaml"), str(launchpad_dir / "my_fworker.yaml")
    run([str(BIN / "argyro"), "rlaunch", "-l", lpf, "-w", fwf, "rapidfire"], cli_env, cwd=tmp_path, timeout=600)
    db = pymongo.MongoClient(db_settings.host, db_settings.port)[db_settings.name]
    docs = list(db.structures.find({"study": "t"}))
    expected = symmetric_terminations(bulk, (1, 0, 0))
    assert len(docs) == len(expected) >= 2
    for d in docs:
        s = Structure.from_dict(d["structure"])
        assert s.composition.formula == d["formula"] == Structure.from_file(d["metadata"]["file"]).composition.formula
        assert d["metadata"]["symmetric"] is True and d["metadata"]["miller"] == [1, 0, 0]
        assert framework_flip(s) and on_bulk_sites(s, bulk, (1, 0, 0))
    fw_id = lp.get_fw_ids()[0]
    lp.rerun_fw(fw_id)
    run([str(BIN / "argyro"), "rlaunch", "-l", lpf, "-w", fwf, "rapidfire"], cli_env, cwd=tmp_path, timeout=600)
    assert db.structures.count_documents({"study": "t"}) == len(expected)

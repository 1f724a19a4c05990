"""Issue 3 (parts done): bulk argyrodite from crystal facts, phases, formal charges, charge
balancing, the energy equations, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from argyro_fw.errors import ArgyroError
from argyro_fw.structures import energies as en
from argyro_fw.structures.balance import balance, minimal_removal
from argyro_fw.structures.bulk import argyrodite_site_model, disordered_candidates, ordered_argyrodite
from argyro_fw.structures.charges import formal_charge
from argyro_fw.structures.phases import phase
from conftest import BIN, run


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

"""Issue 4, acceptance 1: rendered VASP inputs hold exactly METHOD.md's values (docs/dft_fidelity.md)."""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from argyro_fw.dft.inputs import maker, render_inputs, write_inputs
from argyro_fw.dft.kpoints import grid_from_spacing
from argyro_fw.errors import ArgyroError, ConfigError
from conftest import BIN, REPO, run

# the study's relaxed disordered cell (METHOD.md 1), triclinic
TRICLINIC = Lattice.from_parameters(9.96, 9.94, 10.03, 88.8, 90.2, 91.0)


def _bulk(n_extra: int = 0) -> Structure:
    rng = np.random.default_rng(0)
    species = ["Li", "P", "S", "Cl"] * 13  # 52 atoms
    coords = rng.random((52, 3))
    return Structure(TRICLINIC, species, coords)


def _large() -> Structure:
    s = _bulk()
    s.make_supercell([1, 1, 2])  # 104 atoms
    return s


def _slab() -> Structure:
    s = _bulk()
    lat = Lattice.from_parameters(9.96, 9.94, 30.0, 88.8, 90.2, 91.0)
    return Structure(lat, s.species, s.frac_coords * [1, 1, 1 / 3])


CASES = {
    "relax": lambda: maker("relax", system="bulk").inputs(_bulk()),
    "relax-slab": lambda: maker("relax").inputs(_slab()),
    "relax-strained": lambda: maker("relax", system="slab", strain_to=(9.9, 9.9)).inputs(_slab()),
    "static": lambda: maker("static").inputs(_bulk()),
    "aimd": lambda: maker("aimd", temperature=600, ps=40, system="bulk").inputs(_bulk()),
    "aimd-interface": lambda: maker("aimd", system="interface", ps=1).inputs(_large()),
    "aimd-large": lambda: maker("aimd", system="bulk", ps=1).inputs(_large()),
    "aimd-ramp": lambda: maker("aimd", temperature=200, end_temperature=1200, ps=1).inputs(_bulk()),
    "label": lambda: maker("label").inputs(_large()),
    "e0": lambda: maker("e0").inputs(Structure(Lattice.cubic(5), ["S"], [[0, 0, 0]])),
}


def _incar_tags(text: str) -> dict[str, str]:
    tags = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if "=" in line:
            k, v = (x.strip() for x in line.split("=", 1))
            tags[k] = v
    return tags


def _fidelity_rows():
    text = (REPO / "docs" / "dft_fidelity.md").read_text()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if len(cells) == 4 and cells[0] in CASES:
            rows.append(tuple(cells[:3]))
    return rows


ROWS = _fidelity_rows()


def test_fidelity_table_is_complete():
    assert len(ROWS) >= 30
    assert {r[0] for r in ROWS} == set(CASES)


@pytest.mark.parametrize("case,tag,value", ROWS, ids=[f"{r[0]}:{r[1]}" for r in ROWS])
def test_fidelity_table(case, tag, value):
    files = render_inputs(CASES[case]())
    if tag.startswith("KPOINTS."):
        lines = files["KPOINTS"].splitlines()
        got = {"KPOINTS.style": lines[2].strip(), "KPOINTS.grid": lines[3].strip()}[tag]
    else:
        got = _incar_tags(files["INCAR"])[tag]
    assert got == value


def test_kpoint_grid_triclinic_by_hand():
    """n_i = ceil(|b_i| / 0.32) with |b_i| (2 pi included) computed here from the metric."""
    a = TRICLINIC.matrix
    b = 2 * math.pi * np.linalg.inv(a).T
    expected = tuple(math.ceil(np.linalg.norm(bi) / 0.32) for bi in b)
    assert grid_from_spacing(TRICLINIC, 0.32) == expected
    # a long, skewed cell gets different n_i per direction
    skew = Lattice.from_parameters(4.0, 7.5, 21.0, 70, 100, 115)
    bs = 2 * math.pi * np.linalg.inv(skew.matrix).T
    assert grid_from_spacing(skew, 0.32) == tuple(math.ceil(np.linalg.norm(x) / 0.32) for x in bs)
    assert len(set(grid_from_spacing(skew, 0.32))) == 3


def test_strained_relax_sets_in_plane_cell():
    inp = maker("relax", system="slab", strain_to=(9.5, 9.6, 90.0)).inputs(_slab())
    a, b, c = inp.structure.lattice.abc
    assert (round(a, 6), round(b, 6), round(inp.structure.lattice.gamma, 6)) == (9.5, 9.6, 90.0)
    assert c == pytest.approx(30.0)


def test_aimd_nsw_from_duration():
    inp = maker("aimd", temperature=400, ps=2.5, system="interface").inputs(_large())
    assert inp.incar["POTIM"] == 1.0 and inp.incar["NSW"] == 2500


def test_e0_magmom_and_box():
    inp = maker("e0").inputs(Structure(Lattice.cubic(5), ["P"], [[0, 0, 0]]))
    assert inp.incar["MAGMOM"] == [3.0] and inp.incar["ISPIN"] == 2
    assert inp.structure.lattice.abc == pytest.approx((15, 16, 17))


def test_bad_options_named():
    with pytest.raises(ArgyroError, match="temperature"):
        maker("aimd", temperature=-5).inputs(_bulk())
    with pytest.raises(ArgyroError, match="encutt"):
        maker("relax", encutt=500)
    with pytest.raises(ArgyroError, match="kind"):
        maker("md")


def _fake_paw(tmp_path):
    """A PAW folder of stand-in POTCAR files (header lines only; real POTCARs are licensed)."""
    for el in ("Li", "P", "S", "Cl"):
        (tmp_path / "paw" / el).mkdir(parents=True)
        (tmp_path / "paw" / el / "POTCAR").write_text(f"  PAW_PBE {el} 00Jan0000\n   TITEL  = PAW_PBE {el} 00Jan0000\n End of Dataset\n")
    return tmp_path / "paw"


def test_potcar_assembled_in_poscar_order(tmp_path):
    paw = _fake_paw(tmp_path)
    inp = maker("static").inputs(_bulk())
    paths = write_inputs(inp, tmp_path / "calc", potcar=True, potcar_directory=paw)
    titels = [ln.split("=")[1].split()[1] for ln in paths["POTCAR"].read_text().splitlines() if "TITEL" in ln]
    poscar_species = paths["POSCAR"].read_text().splitlines()[5].split()
    assert titels == poscar_species == ["Li", "P", "S", "Cl"]


def test_potcar_required_but_not_configured_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("ARGYRO_POTCAR_DIR", raising=False)
    with pytest.raises(ConfigError, match="ARGYRO_POTCAR_DIR"):
        write_inputs(maker("static").inputs(_bulk()), tmp_path / "calc", potcar=True)
    assert not (tmp_path / "calc").exists()


def test_render_vasp_cli(tmp_path):
    _bulk().to(filename=str(tmp_path / "POSCAR"))
    env = dict(os.environ, ARGYRO_POTCAR_DIR=str(_fake_paw(tmp_path)))
    run([str(BIN / "argyro"), "render", "vasp", "--kind", "aimd", "--ramp", "200", "1200", "--ps", "3",
         "--system", "bulk", str(tmp_path / "POSCAR"), "-o", str(tmp_path / "out")], env)
    tags = _incar_tags((tmp_path / "out" / "INCAR").read_text())
    assert (tags["TEBEG"], tags["TEEND"], tags["NSW"], tags["SMASS"]) == ("200", "1200", "1500", "0")
    assert (tmp_path / "out" / "POTCAR").exists()
    script = (tmp_path / "out" / "run.sh").read_text()
    assert "--vasp-cmd 'srun vasp_std'" in script and os.access(tmp_path / "out" / "run.sh", os.X_OK)
    # a missing PAW folder when one is required: named error, nothing written
    env.pop("ARGYRO_POTCAR_DIR")
    p = run([str(BIN / "argyro"), "render", "vasp", "--kind", "static", "--require-potcar", str(tmp_path / "POSCAR"),
             "-o", str(tmp_path / "out2")], env, check=False)
    assert p.returncode == 2 and "ARGYRO_POTCAR_DIR" in p.stderr and not (tmp_path / "out2").exists()

"""METHOD.md 5: average RDFs of the final model's MD against the AIMD test trajectory (S-P above all), as HDF5 and
PNG. The RDFs are checked against a brute force over all minimum-image pair distances, written here."""

from __future__ import annotations

import numpy as np
from ase import Atoms

from argyro_fw.analysis.neighbours import RDF_CUTOFF
from argyro_fw.analysis.rdf_validation import average_rdfs, compare, plot_png, read_h5, write_h5


def _frames(seed: int, n: int = 6) -> list[Atoms]:
    """PS4-like units (P with 4 S at ~2.05 Å) and Li/Cl in a 12 Å box, thermally displaced."""
    rng = np.random.default_rng(seed)
    cell = np.eye(3) * 12.0
    base, symbols = [], []
    for c in ([2, 2, 2], [8, 8, 2], [2, 8, 8], [8, 2, 8]):
        base.append(c)
        symbols.append("P")
        for v in ([1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]):
            base.append(np.array(c) + 2.05 * np.array(v) / np.sqrt(3))
            symbols.append("S")
    for k in range(12):
        base.append(rng.uniform(0, 12, 3))
        symbols.append("Li" if k < 10 else "Cl")
    base = np.array(base, float)
    return [Atoms(symbols, positions=base + rng.normal(0, 0.05, base.shape), cell=cell, pbc=True) for _ in range(n)]


def _brute_rdf(frames, a, b, edges):
    """g_AB(r) by brute force: every pair's minimum-image distance (cubic box), the ideal-gas normalisation."""
    hist = np.zeros(len(edges) - 1)
    for f in frames:
        s = np.array(f.get_chemical_symbols())
        L = f.cell.array[0, 0]
        ia, ib = np.flatnonzero(s == a), np.flatnonzero(s == b)
        d = f.positions[ia][:, None, :] - f.positions[ib][None, :, :]
        d -= L * np.round(d / L)
        r = np.linalg.norm(d, axis=-1)
        if a == b:
            r = r[np.triu_indices(len(ia), 1)]
        hist += np.histogram(r.ravel(), bins=edges)[0]
    n_a, n_b = np.count_nonzero(s == a), np.count_nonzero(s == b)
    n_pairs = n_a * (n_a - 1) / 2 if a == b else n_a * n_b
    shell = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return hist / (len(frames) * n_pairs / f.get_volume() * shell)


def test_average_rdfs_equal_a_brute_force_and_the_s_p_peak_is_the_bond():
    frames = _frames(0)
    r, g = average_rdfs(frames, bins=80)
    edges = np.linspace(0, RDF_CUTOFF, 81)
    assert np.allclose(r, 0.5 * (edges[1:] + edges[:-1]))
    for pair in ("S-P", "S-Li", "Cl-Li", "Li-Li", "S-S"):
        a, b = pair.split("-")
        assert np.allclose(g[pair], _brute_rdf(frames, a, b, edges), equal_nan=True), pair
    assert abs(r[np.argmax(g["S-P"])] - 2.05) < 0.1  # the P-S bond


def test_compare_writes_h5_and_png_and_tells_a_broken_model_apart(tmp_path):
    ref = _frames(1)
    same = compare(ref, _frames(2))  # another sample of the same structure
    broken = [f.copy() for f in ref]
    for f in broken:  # a model that stretches every P-S bond by 0.4 Å
        s = np.array(f.get_chemical_symbols())
        for ip in np.flatnonzero(s == "P"):
            d = f.positions - f.positions[ip]
            near = (s == "S") & (np.linalg.norm(d, axis=1) < 2.5)
            f.positions[near] += 0.4 * d[near] / np.linalg.norm(d[near], axis=1)[:, None]
    bad = compare(ref, broken)
    assert same["difference"]["S-P"]["rms"] < bad["difference"]["S-P"]["rms"]
    assert abs(bad["difference"]["S-P"]["peak_model_A"] - 2.45) < 0.1
    assert abs(bad["difference"]["S-P"]["peak_reference_A"] - 2.05) < 0.1
    h5 = write_h5({400.0: same, 1000.0: bad}, tmp_path / "rdf.h5", {"model": "m"})
    back = read_h5(h5)
    assert set(back) == {400.0, 1000.0}
    assert np.allclose(back[1000.0]["model"]["S-P"], bad["model"]["S-P"], equal_nan=True)
    assert np.allclose(back[400.0]["aimd"]["S-Li"], same["aimd"]["S-Li"], equal_nan=True)
    png = plot_png({400.0: same, 1000.0: bad}, tmp_path / "rdf.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000

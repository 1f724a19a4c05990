"""The study's AIMD (METHOD.md 1, 4, 5): the Li MSD of the ordered vs disordered validation, and the CHGNet stand-in
for VASP's AIMD that the demo runs (the VASP engine's AIMD inputs are checked in tests/test_study.py)."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice

from argyro_fw.analysis.metrics import li_msd
from argyro_fw.demo.chgnet import aimd_chgnet, chgnet_calculator
from argyro_fw.dft.dataset import evenly_spaced
from argyro_fw.structures.phases import phase


def test_li_msd_unwraps_across_the_cell_and_averages_over_origins():
    """Li moving at a constant velocity through the periodic boundary (positions wrapped into the cell): the MSD
    at lag k is (k |v| dt)^2 exactly; a fixed S atom is not counted; a random walk's MSD matches a brute force over
    origins of the unwrapped positions."""
    cell = np.diag([6.0, 7.0, 8.0])
    v = np.array([0.9, -0.4, 0.3])  # Å per frame: crosses every face within 20 frames
    start = np.array([[5.5, 0.2, 7.9], [1.0, 3.0, 4.0]])
    frames = []
    for k in range(20):
        pos = start + k * v
        frac = pos @ np.linalg.inv(cell)
        frames.append(np.vstack([(frac - np.floor(frac)) @ cell, [[3.0, 3.0, 3.0]]]))
    t, msd = li_msd(frames, cell, ["Li", "Li", "S"], frame_ps=0.1)
    assert np.allclose(t, 0.1 * np.arange(20))
    assert np.allclose(msd, (np.arange(20) * np.linalg.norm(v)) ** 2)

    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(0, 0.3, size=(30, 4, 3)), axis=0) + 2.0
    wrapped = [((w @ np.linalg.inv(cell)) % 1.0) @ cell for w in walk]
    _, msd = li_msd(wrapped, cell, ["Li"] * 4, frame_ps=1.0)
    brute = [np.mean([np.sum((walk[i + k] - walk[i]) ** 2, axis=-1).mean() for i in range(30 - k)]) for k in range(30)]
    assert np.allclose(msd, brute)


def test_chgnet_aimd_stand_in_frames_are_labelled_by_chgnet_and_follow_the_ramp():
    """The stand-in's frames carry CHGNet's own energy and forces of their positions (recomputed here), are the
    evenly spaced steps of the run, and the ramp 200 -> 1200 K heats the cell."""
    li = phase("li")
    li.lattice = Lattice.cubic(3.44)
    li.make_supercell([2, 2, 2])
    frames = aimd_chgnet(li, 200.0, 1200.0, ps=0.04, timestep_fs=2.0, select={"even": 4}, config_type="aimd-li")
    assert [a.info["step"] for a in frames] == evenly_spaced(20, 4)
    calc = chgnet_calculator()
    for a in (frames[0], frames[-1]):
        b = a.copy()
        b.calc = calc
        assert abs(b.get_potential_energy() - a.info["REF_energy"]) < 1e-4
        assert np.abs(b.get_forces() - a.arrays["REF_forces"]).max() < 1e-4
        # as VASP's MD frames (ISIF 0): no stress label, so none is trained as if measured
        assert a.info["config_type"] == "aimd-li" and "REF_stress" not in a.info
    # every frame moved from the perfect lattice (the MD ran); the positions differ frame to frame
    assert np.abs(frames[-1].get_positions() - frames[0].get_positions()).max() > 1e-3

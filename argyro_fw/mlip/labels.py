"""Labelling frames with a reference calculator, never twice: each label is kept in a cache (the
store's ``labels`` collection, :class:`argyro_fw.store.LabelCache`) under the frame's structure hash
(species, cell, positions to 1e-4 A).

The reference is the DFT path on a cluster; in tests and the demo a stand-in calculator (CHGNet,
offline) is used and its name is stored with every label. No database here: the cache is passed in.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from ase import Atoms

from ..dft.dataset import canonical, structure_hash


class LabelCache(Protocol):
    def get(self, h: str) -> dict | None: ...

    def put(self, h: str, energy: float, forces, stress, labeller: str, n_atoms: int) -> dict: ...


def label_frames(frames: list[Atoms], calc, labeller: str, cache: LabelCache | None = None,
                 config_type: str = "al") -> tuple[list[Atoms], int]:
    """(labelled frames, number newly computed). Frames whose hash is in ``cache`` reuse its label."""
    out, new = [], 0
    for at in frames:
        at = canonical(at)
        h = structure_hash(at)
        doc = cache.get(h) if cache is not None else None
        if doc is None:
            if calc is None:
                raise ValueError(f"frame {h}: no label stored and no calculator to compute one")
            a = at.copy()
            a.calc = calc
            e = float(a.get_potential_energy())
            f = np.asarray(a.get_forces(), float)
            s = np.asarray(a.get_stress(voigt=False), float)
            doc = {"energy": e, "forces": f.tolist(), "stress": s.tolist(), "labeller": labeller}
            if cache is not None:
                cache.put(h, e, f, s, labeller, len(a))
            new += 1
        b = Atoms(at.get_chemical_symbols(), positions=at.get_positions(), cell=at.cell.array, pbc=True)
        b.info.update(REF_energy=doc["energy"], REF_stress=np.array(doc["stress"]), config_type=config_type,
                      frame_hash=h, labeller=doc["labeller"])
        b.arrays["REF_forces"] = np.array(doc["forces"])
        out.append(b)
    return out, new

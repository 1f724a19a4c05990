"""Labelling frames with a reference calculator, never twice: each label is stored in MongoDB
(collection ``labels``) under the frame's structure hash (species, cell, positions to 1e-4 A).

The reference is the DFT path on a cluster; in tests and the demo a stand-in (CHGNet, offline) is
used and its name is stored with every label.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from ase import Atoms

from ..dft.dataset import canonical, structure_hash


def label_frames(frames: list[Atoms], calc, labeller: str, db=None, config_type: str = "al") -> tuple[list[Atoms], int]:
    """(labelled frames, number newly computed). Frames whose hash is in ``db.labels`` reuse it."""
    out, new = [], 0
    for at in frames:
        at = canonical(at)
        h = structure_hash(at)
        doc = db.labels.find_one({"hash": h}) if db is not None else None
        if doc is None:
            a = at.copy()
            a.calc = calc
            e = float(a.get_potential_energy())
            f = np.asarray(a.get_forces(), float)
            s = np.asarray(a.get_stress(voigt=False), float)
            doc = {"hash": h, "energy": e, "forces": f.tolist(), "stress": s.tolist(), "labeller": labeller,
                   "n_atoms": len(a), "created_at": datetime.now(timezone.utc)}
            if db is not None:
                db.labels.update_one({"hash": h}, {"$setOnInsert": doc}, upsert=True)
            new += 1
        b = Atoms(at.get_chemical_symbols(), positions=at.get_positions(), cell=at.cell.array, pbc=True)
        b.info.update(REF_energy=doc["energy"], REF_stress=np.array(doc["stress"]), config_type=config_type,
                      frame_hash=h, labeller=doc["labeller"])
        b.arrays["REF_forces"] = np.array(doc["forces"])
        out.append(b)
    return out, new


def chgnet_labeller():
    """CHGNet (pretrained weights ship in the wheel): the offline stand-in for DFT labels."""
    from chgnet.model.dynamics import CHGNetCalculator

    return CHGNetCalculator(use_device="cpu")

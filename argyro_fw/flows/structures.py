"""FireTasks that build structures and store each one (dict + file + metadata) in MongoDB.

The science is in :mod:`argyro_fw.structures`; this module only writes files in the launch directory
and one document per structure in the ``structures`` collection (through :mod:`argyro_fw.store`).
Everything is built before anything is written, files go through tmp+rename, and the documents are
upserts keyed by a unique ``key``, so a rerun replaces instead of duplicating.
"""

from __future__ import annotations

from pathlib import Path

from fireworks import FiretaskBase, FWAction, explicit_serialize

from .. import compat, store
from ..core.chemistry import A_EXP
from ..core.serialise import as_structure, write_atomic
from ..structures.balance import balance
from ..structures.bulk import disordered_candidates, ordered_argyrodite
from ..structures.interfaces import InterfaceMaker, build_interface, match_candidates
from ..structures.surfaces import PLANES, SurfaceMaker, all_terminations
from ..study.outputs import BuiltStructure, emit

compat.install()


def build(what: str, params: dict) -> list[dict]:
    """Structures for ``what`` (bulk-ordered | bulk-disordered | surfaces | interfaces), each a dict with
    ``structure``, ``name`` and metadata. Pure: no files, no database."""

    if what == "bulk-ordered":
        return [{"structure": ordered_argyrodite(params.get("a", A_EXP)), "name": "bulk_ordered"}]
    if what == "bulk-disordered":
        return [dict(c, name=f"bulk_disordered_{k}") for k, c in enumerate(disordered_candidates(params.get("a", A_EXP)))]
    if what == "surfaces":
        maker = SurfaceMaker(**params.get("maker", {}))
        planes = [tuple(m) for m in params.get("planes", PLANES)]
        return [dict(t, name=f"slab_{t['id']}") for t in all_terminations(as_structure(params["bulk"]), planes, maker)]
    if what == "interfaces":
        slab = as_structure(params["slab"])
        removed = {}
        if params.get("balance", True):
            res = balance(slab, max_candidates=params.get("balance_candidates", 50))
            slab, removed = res.candidates[0]["structure"], res.removal
        maker = InterfaceMaker(**params.get("maker", {}))
        out = []
        for k, c in enumerate(match_candidates(slab, maker)[: params.get("n", 1)]):
            r = build_interface(slab, c, maker)
            out.append(dict(r, name=f"interface_{params.get('label', 'slab')}_{k}", removed_for_balance=removed))
        return out
    raise ValueError(f"structures to build: {what!r} is not one of bulk-ordered, bulk-disordered, surfaces, interfaces")


@explicit_serialize
class BuildStructuresTask(FiretaskBase):
    """Build ``what`` with ``params``; write POSCAR files; store one ``structures`` document each
    (metadata: the builder's fields, ``name`` and ``file``) and hand on a BuiltStructure record each.
    ``study``: a label stored with the documents (the study's name)."""

    required_params = ["what"]
    optional_params = ["params", "study"]

    def run_task(self, fw_spec):
        items = build(self["what"], dict(self.get("params") or {}))
        texts = [(Path.cwd() / f"POSCAR_{it['name']}", it["structure"].to(fmt="poscar")) for it in items]
        for path, text in texts:
            write_atomic(path, text)
        study = self.get("study") or ""
        keys = store.put_structures(
            store.database(fw_spec), study, self["what"],
            [(f"{self['what']}/{it['name']}", it["structure"],
              dict({k: v for k, v in it.items() if k != "structure"}, file=str(path), fw_id=fw_spec.get("_fw_id")))
             for it, (path, _) in zip(items, texts)])
        recs = [BuiltStructure(key=k, name=it["name"], file=str(path)) for k, it, (path, _) in zip(keys, items, texts)]
        return FWAction(stored_data={"n_structures": len(recs)}, **emit(*recs))

"""FireTasks that build structures and store each one (dict + file + metadata) in MongoDB.

The science is in :mod:`bulk`, :mod:`surfaces`, :mod:`interfaces`; this module only writes files in
the launch directory and one document per structure in the ``structures`` collection. Everything
is built before anything is written, files go through tmp+rename, and the documents are written
with one ``insert_many`` keyed by a unique ``key``, so a rerun replaces instead of duplicating.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fireworks import FiretaskBase, FWAction, explicit_serialize
from pymatgen.core import Structure

from .. import __version__, compat
from ..db.results import results_db
from ..templating import write_atomic

compat.install()


def _structure(x) -> Structure:
    return x if isinstance(x, Structure) else Structure.from_dict(x)


def build(what: str, params: dict) -> list[dict]:
    """Structures for ``what`` (bulk-ordered | bulk-disordered | surfaces | interfaces), each a dict with
    ``structure``, ``name`` and metadata. Pure: no files, no database."""
    from .bulk import disordered_candidates, ordered_argyrodite

    if what == "bulk-ordered":
        return [{"structure": ordered_argyrodite(params.get("a", 9.859)), "name": "bulk_ordered"}]
    if what == "bulk-disordered":
        return [dict(c, name=f"bulk_disordered_{k}") for k, c in enumerate(disordered_candidates(params.get("a", 9.859)))]
    if what == "surfaces":
        from .surfaces import PLANES, SurfaceMaker, all_terminations

        maker = SurfaceMaker(**params.get("maker", {}))
        planes = [tuple(m) for m in params.get("planes", PLANES)]
        return [dict(t, name=f"slab_{t['id']}") for t in all_terminations(_structure(params["bulk"]), planes, maker)]
    if what == "interfaces":
        from .balance import balance
        from .interfaces import InterfaceMaker, build_interface, match_candidates

        slab = _structure(params["slab"])
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


def _meta(d: dict) -> dict:
    import json

    return json.loads(json.dumps({k: v for k, v in d.items() if k != "structure"}, default=str))


@explicit_serialize
class BuildStructuresTask(FiretaskBase):
    """Build ``what`` with ``params``; write POSCAR files; store one ``structures`` document each.

    Pushes ``{"key", "name", "file"}`` of every structure to the children's ``structures`` list.
    ``study``: a label stored with the documents (the study's name)."""

    required_params = ["what"]
    optional_params = ["params", "study"]

    def run_task(self, fw_spec):
        items = build(self["what"], dict(self.get("params") or {}))
        texts = [(Path.cwd() / f"POSCAR_{it['name']}", it["structure"].to(fmt="poscar")) for it in items]
        now = datetime.now(timezone.utc)
        docs = []
        for it, (path, _) in zip(items, texts):
            key = f"{self.get('study', '')}/{self['what']}/{it['name']}"
            docs.append({"key": key, "study": self.get("study"), "kind": self["what"], "name": it["name"],
                         "structure": it["structure"].as_dict(), "formula": it["structure"].composition.formula,
                         "n_atoms": len(it["structure"]), "file": str(path), "metadata": _meta(it),
                         "fw_id": fw_spec.get("_fw_id"), "argyro_version": __version__, "created_at": now})
        for path, text in texts:
            write_atomic(path, text)
        db = results_db(fw_spec)
        db.structures.create_index("key", unique=True)
        db.structures.delete_many({"key": {"$in": [d["key"] for d in docs]}})
        if docs:
            db.structures.insert_many(docs)
        pushed = [{"key": d["key"], "name": d["name"], "file": d["file"]} for d in docs]
        return FWAction(stored_data={"n_structures": len(docs)},
                        mod_spec=[{"_push_all": {"structures": pushed}}] if pushed else None)

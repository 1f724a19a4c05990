"""The results store of a firework run on a compute node with no route to the database (FireWorks' offline mode).

How such a firework travels (README "Running on a cluster", shape b):

1. Login node: ``qlaunch -r`` reserves the firework and writes FW.json and FW_offline.json into its launch
   directory. argyro's queue adapter then stages there, in :data:`STAGED`, what the firework's tasks will read
   from the results store: each FireTask declares it in ``offline_reads(fw_spec, reads)`` on a :class:`Reads`,
   and :func:`argyro_fw.store.stage` fetches it.
2. Compute node: ``rlaunch singleshot --offline`` runs it. :func:`argyro_fw.store.database` returns an
   :class:`OfflineStore` (``$ARGYRO_OFFLINE=1``, :func:`offline_launch`): no task opens a database connection. A read is
   answered from the staged file; a read that was not staged is a named :class:`NotStaged` error. A write goes
   to its launch's :data:`JOURNAL`, one database operation per line, flushed and fsynced before the task goes on; what the
   launch wrote is kept for its own later reads.
3. Login node: ``argyro collect`` replays the journal of each launch that ended into the results store
   (:func:`argyro_fw.store.replay`) and then runs FireWorks' ``recover_offline``, which completes the launch
   with its FWAction. Every journalled operation can be applied again with the same result (replacements by
   ``_id``, upserts, ``$set``, deletes), so a collect cut in the middle is simply run again.

This module knows no database client; it reads and writes the launch directory only.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bson import ObjectId, json_util

from ..core.serialise import as_structure
from ..errors import ArgyroError, ConfigError
from .schemas import CALCULATIONS, LABELS, STRUCTURES

#: what the queue adapter stages at reservation (in the launch directory)
STAGED = "argyro_staged.json"
#: what an offline launch wrote (in the launch directory), one operation per line; one file per launch, so that a
#: later launch of the same firework in the same folder (``_launch_dir``) never writes into an earlier one's
JOURNAL = "argyro_journal.{launch_id}.jsonl"


def journal_path(launch_dir: str | os.PathLike, launch_id: int) -> Path:
    return Path(launch_dir) / JOURNAL.format(launch_id=int(launch_id))
#: FireWorks' own offline marker, written at reservation, updated by the offline Rocket
FW_OFFLINE = "FW_offline.json"
#: 1: this process runs an offline launch (its job script says so)
OFFLINE_ENV = "ARGYRO_OFFLINE"
JSON_OPTIONS = json_util.CANONICAL_JSON_OPTIONS  # ObjectIds and dates come back as they went


class NotStaged(ArgyroError, LookupError):
    """An offline launch read something its reservation did not stage."""


def dumps(obj) -> str:
    return json_util.dumps(obj, json_options=JSON_OPTIONS)


def loads(text: str):
    return json_util.loads(text, json_options=JSON_OPTIONS)


@dataclass
class Reads:
    """What a firework reads from the results store, declared by its tasks (``offline_reads``) and fetched at
    reservation. ``fields`` of a calculation: the fields its reader asks for (None: the whole document)."""

    structures: set[tuple[str, str]] = field(default_factory=set)
    calculations: list[dict] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    label_hashes: bool = False
    counts: set[tuple[str, str]] = field(default_factory=set)

    def structure(self, study: str, label: str) -> "Reads":
        self.structures.add((study, label))
        return self

    def calculation(self, calc_id=None, label: str | None = None, engine: str | None = None,
                    fields: list[str] | None = None) -> "Reads":
        q = {"calc_id": None if calc_id is None else str(calc_id), "label": label, "engine": engine,
             "fields": None if fields is None else sorted(fields)}
        if q not in self.calculations:
            self.calculations.append(q)
        return self

    def label(self, h: str) -> "Reads":
        self.labels.add(h)
        return self

    def all_label_hashes(self) -> "Reads":
        """Which structure hashes have a label (the hashes only, not the labels)."""
        self.label_hashes = True
        return self

    def count(self, collection: str, study: str) -> "Reads":
        self.counts.add((collection, study))
        return self


def offline_launch(directory: str | os.PathLike | None = None) -> Path | None:
    """The launch directory (the working directory) when this process runs a firework offline, else None.

    ``$ARGYRO_OFFLINE=1`` says so: argyro's queue adapter exports it in the job script of an ``--offline``
    rocket_launch (``argyro init --compute-nodes offline``), and the launch directory then holds what the
    reservation staged. Files alone never decide: a launch folder that an offline launch left (FireWorks reuses a
    firework's ``_launch_dir``) must not turn a later online run of the firework into an offline one."""
    v = os.environ.get(OFFLINE_ENV, "").strip()
    if v in ("", "0"):
        return None
    if v != "1":
        raise ConfigError(f"${OFFLINE_ENV}={v!r}: expected 1 (this job runs its firework offline) or 0")
    d = Path(directory or os.getcwd())
    staged = d / STAGED
    if not staged.is_file():
        raise ConfigError(f"${OFFLINE_ENV}=1 but {staged} does not exist: reserve the firework with `qlaunch -r` "
                          "and the queue adapter of `argyro init --compute-nodes offline`, which stages the "
                          "firework's reads there")
    return d


def _matches(doc: dict, flt: dict) -> bool:
    for k, v in flt.items():
        if isinstance(v, dict) and any(str(x).startswith("$") for x in v):
            if set(v) - {"$in", "$ne"}:
                raise ArgyroError(f"offline store: filter operator(s) {sorted(v)} on {k!r} are not supported")
            if "$in" in v and doc.get(k) not in v["$in"]:
                return False
            if "$ne" in v and doc.get(k) == v["$ne"]:
                return False
        elif doc.get(k) != v:
            return False
    return True


def _project(doc: dict | None, projection: dict | None) -> dict | None:
    if doc is None or not projection:
        return doc
    keep = {k for k, v in projection.items() if v}
    return {k: v for k, v in doc.items() if k in keep or k == "_id"}


class _Collection:
    """The part of a pymongo collection the store's write functions use: each write is journalled and kept."""

    def __init__(self, store: "OfflineStore", name: str):
        self.store, self.name = store, name

    def replace_one(self, flt: dict, doc: dict, upsert: bool = False):
        doc = dict(doc)
        doc.setdefault("_id", ObjectId())
        self.store._journal({"op": "replace_one", "collection": self.name, "filter": flt, "doc": doc, "upsert": upsert})
        self.store._keep(self.name, flt, doc)

    def update_one(self, flt: dict, update: dict, upsert: bool = False):
        self.store._journal({"op": "update_one", "collection": self.name, "filter": flt, "update": update,
                             "upsert": upsert})
        self.store._apply_update(self.name, flt, update, upsert)

    def insert_many(self, docs):
        docs = [dict(d) for d in docs]
        for d in docs:
            d.setdefault("_id", ObjectId())
        self.store._journal({"op": "insert_many", "collection": self.name, "docs": docs})
        self.store._written[self.name].extend(docs)

    def delete_many(self, flt: dict):
        self.store._journal({"op": "delete_many", "collection": self.name, "filter": flt})
        self.store._written[self.name] = [d for d in self.store._written[self.name] if not _matches(d, flt)]

    def find_one(self, flt: dict, projection: dict | None = None, sort=None):
        """Only what this launch wrote (the store's ``_upsert`` reads back the ``_id`` it wrote)."""
        for d in reversed(self.store._written[self.name]):
            if _matches(d, flt):
                return _project(d, projection)
        raise NotStaged(f"offline store: a read of {self.name} {flt} that no staged read answers")

    def create_index(self, *args, **kwargs):
        return None


class OfflineStore:
    """The results store of an offline launch (module docstring): the store's read functions are answered by the
    methods of the same name here, its write functions write through :class:`_Collection` into the journal."""

    offline = True

    def __init__(self, launch_dir: str | os.PathLike):
        self.dir = Path(launch_dir).resolve()
        path = self.dir / STAGED
        try:
            data = loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: the staged reads of this offline launch cannot be read ({exc})") from None
        self.header = data["header"]
        self._structures: dict[str, dict | None] = data[STRUCTURES.name]
        self._calculations: list[dict] = data[CALCULATIONS.name]
        self._labels: dict[str, dict | None] = data[LABELS.name]
        self._label_hashes = None if data["label_hashes"] is None else set(data["label_hashes"])
        self._counts = {(c["collection"], c["study"]): c["n"] for c in data["counts"]}
        self._written: dict[str, list[dict]] = defaultdict(list)
        self.journal_path = journal_path(self.dir, self.header["launch_id"])

    # -- pymongo surface for the store's writes
    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self, name)

    @property
    def name(self) -> str:
        return f"offline:{self.dir}"

    def _journal(self, op: dict) -> None:
        new = not self.journal_path.exists()
        lines = []
        if new:
            lines.append(dumps({"header": {"launch_id": self.header["launch_id"], "fw_id": self.header["fw_id"],
                                           "started_at": datetime.now(timezone.utc)}}))
        lines.append(dumps(dict(op, at=datetime.now(timezone.utc))))
        with open(self.journal_path, "a") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def _keep(self, collection: str, flt: dict, doc: dict) -> None:
        w = self._written[collection]
        w[:] = [d for d in w if not _matches(d, flt)]
        w.append(doc)

    def _apply_update(self, collection: str, flt: dict, update: dict, upsert: bool) -> None:
        """Keep what an update wrote, for this launch's own reads (top-level ``$set``/``$setOnInsert`` fields; a
        dotted path is journalled and replayed, not kept: no task reads such a document back)."""
        w = self._written[collection]
        hit = next((d for d in reversed(w) if _matches(d, flt)), None)
        plain = lambda u: {k: v for k, v in (u or {}).items() if "." not in k}  # noqa: E731
        if hit is None:
            if not upsert or (collection == LABELS.name and self._label_known(flt.get("hash"))):
                return
            w.append(dict(flt) | plain(update.get("$setOnInsert")) | plain(update.get("$set")))
        else:
            hit.update(plain(update.get("$set")))

    def _label_known(self, h) -> bool:
        return (self._labels.get(h) is not None) or bool(self._label_hashes and h in self._label_hashes)

    # -- the store's reads
    def ensure_indexes(self) -> None:
        return None

    def get_structure(self, study: str, label: str):
        key = f"{study}/{label}"
        for d in reversed(self._written[STRUCTURES.name]):
            if d.get("key") == key:
                return as_structure(d["structure"])
        if key not in self._structures:
            raise NotStaged(f"offline store: structure {key} was not staged for this firework "
                            "(its task's offline_reads does not declare it)")
        doc = self._structures[key]
        if doc is None:
            raise LookupError(f"store: no structure {key} in {STRUCTURES.name}")
        return as_structure(doc["structure"])

    def find_calculation(self, calc_id=None, label=None, engine=None, projection=None):
        for d in reversed(self._written[CALCULATIONS.name]):
            if (calc_id and str(d["_id"]) == str(calc_id)) or (
                    not calc_id and d.get("label") == label and (not engine or d.get("engine") == engine)):
                return _project(d, projection)
        want = {k for k, v in (projection or {}).items() if v and k != "_id"} or None
        q = {"calc_id": None if calc_id is None else str(calc_id), "label": label, "engine": engine}
        for c in self._calculations:
            if {k: c[k] for k in q} == q and (c["fields"] is None or (want is not None and want <= set(c["fields"]))):
                return _project(c["doc"], projection)
        raise NotStaged(f"offline store: calculation {q} (fields {sorted(want) if want else 'all'}) was not staged "
                        "for this firework (its task's offline_reads does not declare it)")

    def get_label(self, h: str):
        for d in reversed(self._written[LABELS.name]):
            if d.get("hash") == h:
                return d
        if h in self._labels:
            return self._labels[h]
        if self._label_hashes is not None and h not in self._label_hashes:
            return None
        raise NotStaged(f"offline store: the label {h} was not staged for this firework")

    def labelled_hashes(self, hashes=None) -> set[str]:
        if self._label_hashes is None:
            raise NotStaged("offline store: which frames have labels was not staged for this firework")
        have = self._label_hashes | {d["hash"] for d in self._written[LABELS.name]}
        return have if hashes is None else {h for h in hashes if h in have}

    def count(self, collection: str, query: dict | None = None) -> int:
        q = query or {}
        if set(q) != {"study"} or (collection, q["study"]) not in self._counts:
            raise NotStaged(f"offline store: count of {collection} {q} was not staged for this firework")
        if self._written[collection]:
            raise NotStaged(f"offline store: count of {collection} after this launch wrote to it")
        return self._counts[(collection, q["study"])]

    def read(self, collection: str, *args, **kwargs):
        raise NotStaged(f"offline store: a query of {collection} is not staged for offline fireworks")

    def find_one(self, collection: str, *args, **kwargs):
        raise NotStaged(f"offline store: a query of {collection} is not staged for offline fireworks")


_stores: dict[Path, OfflineStore] = {}


def store_for(launch_dir: Path) -> OfflineStore:
    """One OfflineStore per launch folder and process (a job runs one launch; its tasks share what it wrote). Loaded
    once: a later reservation into the same folder never turns a running launch into another one."""
    d = Path(launch_dir).resolve()
    if d not in _stores:
        _stores[d] = OfflineStore(d)
    return _stores[d]

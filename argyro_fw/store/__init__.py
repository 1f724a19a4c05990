"""The results store: the only module that knows collection names, document shapes, keys and indexes.

Every write to a results collection goes through a function of this module, and every document of
one collection has one shape (:data:`SCHEMAS`: the required fields; ``key``: the fields an upsert
is keyed by, the same everywhere). FireTasks get the database with :func:`database` (the FireWorker
env ``argyro_db`` written by ``argyro init``: host, port, name, username, authsource, never a
password), the CLI and the Python API with :func:`database` and their resolved settings; both share
one :class:`pymongo.MongoClient` per process and server (:func:`client`).

Collections (``argyro results`` and :mod:`argyro_fw.report` read them through :func:`read`):

========================  ============================================  ==================================
collection                one document per                              keyed by
========================  ============================================  ==================================
``studies``               study (bulk choice, mu, ranking, models, ...)  name
``structures``            built structure (bulk, surface, interface)     key (``STUDY/LABEL``)
``calculations``          energy calculation (VASP or a stand-in)        engine, label, directory, input_checksum
``labels``                labelled frame (energy, forces, stress)        hash (structure hash)
``surface_energies``      termination of a study (gamma_surf, rank)      study, key
``interfaces``            interface of a study (gamma_inter, model)      study, key
``al_iterations``         active-learning iteration of one loop          al_name, iteration
``analyses``              analysed MD trajectory (HDF5 summary)          h5_path
``diffusion``             bulk MD temperature of a study (D, sigma)      study, temperature_K
========================  ============================================  ==================================
"""

from __future__ import annotations

import functools
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pymongo
from bson import ObjectId

from .. import __version__
from ..core.serialise import as_structure, to_plain, write_atomic
from ..db.outage import in_worker, ride_out
from ..settings import DBSettings, resolve
from .offline import STAGED, NotStaged, OfflineStore, Reads, dumps, journal_path, loads, offline_launch, store_for
from .schemas import (
    AL_ITERATIONS,
    ANALYSES,
    CALCULATIONS,
    DIFFUSION,
    INTERFACES,
    LABELS,
    PER_STUDY,  # noqa: F401  (re-exported: the collections of one study)
    SCHEMAS,
    STRUCTURES,
    STUDIES,
    SURFACE_ENERGIES,
    Schema,
)

# ----------------------------------------------------------------------------------------- clients

_clients: dict[tuple, pymongo.MongoClient] = {}
_lock = threading.Lock()


def settings_from_spec(fw_spec: dict | None) -> DBSettings:
    """The results database of a firework: its FireWorker env ``argyro_db``, else :func:`settings.resolve`."""
    env = (fw_spec or {}).get("_fw_env", {}) or {}
    d = env.get("argyro_db")
    if not d:
        return resolve()
    return settings_from_dict(d, "fworker env argyro_db")


def settings_from_dict(d: dict, source: str) -> DBSettings:
    """DBSettings from a plain mapping (host, port, name, username, authsource, password_env, tls_ca_file; never a
    password): a FireWorker's ``argyro_db``, a queue adapter's ``results_db``, a staged launch's header."""
    return DBSettings(host=d["host"], port=int(d["port"]), name=d["name"], username=d.get("username"),
                      authsource=d.get("authsource"), password_env=d.get("password_env") or "ARGYRO_DB_PASSWORD",
                      tls_ca_file=d.get("tls_ca_file"), source=source)


def client(settings: DBSettings) -> pymongo.MongoClient:
    """One MongoClient per process and (server, user); a forked child makes its own."""
    key = (os.getpid(), settings.host, settings.port, settings.username, settings.authsource)
    with _lock:
        c = _clients.get(key)
        if c is None:
            c = _clients[key] = pymongo.MongoClient(**settings.client_kwargs())
        return c


def close_all() -> None:
    """Close this process's clients (tests, the CLI at exit)."""
    with _lock:
        for k, c in list(_clients.items()):
            if k[0] == os.getpid():
                c.close()
            _clients.pop(k)


_indexed: set[tuple] = set()


def database(fw_spec: dict | None = None, settings: DBSettings | None = None):
    """The results database (a pymongo Database) for a firework's spec or for explicit settings; the
    collections' key indexes are made on first use in each process. A firework that runs offline (FireWorks'
    ``rlaunch --offline`` on a compute node with no route to the database, :mod:`argyro_fw.store.offline`)
    gets its launch's :class:`~argyro_fw.store.offline.OfflineStore` instead: no connection is opened."""
    if fw_spec is not None and settings is None:
        d = offline_launch()
        if d is not None:
            return store_for(d)
    s = settings or settings_from_spec(fw_spec)
    db = client(s)[s.name]
    key = (os.getpid(), s.host, s.port, s.name)
    if key not in _indexed:
        ensure_indexes(db)
        _indexed.add(key)
    return db


# ------------------------------------------------------------------------------------------ writes

def _riding_out(fn):
    """A store function (the database first) that, in a worker process, waits out a database outage and is called
    again (:mod:`argyro_fw.db.outage`: every write here is an upsert by key or a whole replacement, every read a read).
    On an offline launch's store a read is answered by the OfflineStore's method of the same name and a write runs
    here against its journalling collections."""
    offline_name = fn.__name__

    @functools.wraps(fn)
    def wrapper(db, *args, **kwargs):
        if isinstance(db, OfflineStore):
            own = getattr(db, offline_name, None)
            return own(*args, **kwargs) if own else fn(db, *args, **kwargs)
        if not in_worker():
            return fn(db, *args, **kwargs)
        return ride_out(lambda: fn(db, *args, **kwargs), db.client, f"store.{fn.__name__}")

    return wrapper


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _checked(schema: Schema, doc: dict) -> dict:
    missing = [f for f in schema.required if f not in doc]
    if missing:
        raise ValueError(f"store: a {schema.name} document needs {missing}")
    return doc


def _upsert(db, schema: Schema, doc: dict) -> Any:
    """Replace the document with the same key (or insert it); returns its _id."""
    doc = _checked(schema, doc)
    flt = {k: doc.get(k) for k in schema.key}
    db[schema.name].replace_one(flt, doc, upsert=True)
    return db[schema.name].find_one(flt, {"_id": 1})["_id"]


@_riding_out
def ensure_indexes(db) -> None:
    """Unique indexes on every collection's key (idempotent)."""
    for s in SCHEMAS.values():
        db[s.name].create_index([(k, 1) for k in s.key], unique=s.unique)


@_riding_out
def put_structures(db, study: str, kind: str, items: Iterable[tuple[str, Any, dict]]) -> list[str]:
    """One ``structures`` document per (label, pymatgen Structure, metadata), keyed ``STUDY/LABEL``."""
    now = _now()
    docs = [_checked(STRUCTURES, {"key": f"{study}/{label}", "study": study, "kind": kind, "structure": s.as_dict(),
                                  "formula": s.composition.formula, "n_atoms": len(s), "metadata": to_plain(meta),
                                  "created_at": now})
            for label, s, meta in items]
    for d in docs:
        db[STRUCTURES.name].replace_one({"key": d["key"]}, d, upsert=True)
    return [d["key"] for d in docs]


@_riding_out
def get_structure(db, study: str, label: str):
    """The stored pymatgen Structure ``STUDY/LABEL``; a named error if it is not there."""
    doc = db[STRUCTURES.name].find_one({"key": f"{study}/{label}"}, {"structure": 1})
    if doc is None:
        raise LookupError(f"store: no structure {study}/{label} in {STRUCTURES.name}")
    return as_structure(doc["structure"])


@_riding_out
def put_calculation(db, doc: dict) -> Any:
    """One ``calculations`` document (keyed by engine, label, directory, input checksum); returns its _id.

    ``doc`` holds the engine's result (``final_energy_eV``, ``ionic_steps`` of energy_eV, forces_eV_A,
    stress_eV_A3, ``final_structure``, ...); missing bookkeeping fields are filled in here."""
    d = to_plain(dict(doc))
    d.setdefault("label", None)
    d.setdefault("directory", None)
    d.setdefault("input_checksum", None)
    d.setdefault("metadata", {})
    d.setdefault("argyro_version", __version__)
    d["completed_at"] = doc.get("completed_at") or _now()
    return _upsert(db, CALCULATIONS, d)


@_riding_out
def find_calculation(db, calc_id: str | None = None, label: str | None = None, engine: str | None = None,
                     projection: dict | None = None) -> dict | None:
    """A calculation by its _id, or the newest one with ``label`` (and ``engine`` if given)."""
    if calc_id:
        return db[CALCULATIONS.name].find_one({"_id": ObjectId(calc_id)}, projection)
    flt = {"label": label} | ({"engine": engine} if engine else {})
    return db[CALCULATIONS.name].find_one(flt, projection, sort=[("completed_at", -1)])


@_riding_out
def get_label(db, h: str) -> dict | None:
    return db[LABELS.name].find_one({"hash": h})


@_riding_out
def labelled_hashes(db, hashes: Iterable[str] | None = None) -> set[str]:
    """The hashes (of ``hashes``, or all) that have a label."""
    flt = {} if hashes is None else {"hash": {"$in": list(hashes)}}
    return {d["hash"] for d in db[LABELS.name].find(flt, {"hash": 1})}


@_riding_out
def put_label(db, h: str, energy: float, forces, stress, labeller: str, n_atoms: int, **extra) -> dict:
    """Store a frame's label once (the first one wins: a label is never recomputed or replaced)."""
    doc = _checked(LABELS, to_plain({"hash": h, "energy": float(energy), "forces": forces, "stress": stress,
                                     "labeller": labeller, "n_atoms": int(n_atoms), **extra}) | {"created_at": _now()})
    db[LABELS.name].update_one({"hash": h}, {"$setOnInsert": doc}, upsert=True)
    return doc


class LabelCache:
    """The ``labels`` collection as the label cache of :func:`argyro_fw.mlip.labels.label_frames`."""
    def __init__(self, db):
        self.db = db

    def get(self, h: str) -> dict | None:
        """The stored label, or None. On an offline launch, a label the store holds but the reservation did not
        stage counts as a miss: the labeller computes it again and the store keeps the first (:func:`put_label`)."""
        try:
            return get_label(self.db, h)
        except NotStaged:
            return None

    def put(self, h: str, energy: float, forces, stress, labeller: str, n_atoms: int) -> dict:
        return put_label(self.db, h, energy, forces, stress, labeller, n_atoms)


@_riding_out
def update_study(db, study: str, fields: dict) -> None:
    """Set ``fields`` (dotted paths allowed) on the study's document."""
    db[STUDIES.name].update_one({"name": study}, {"$set": to_plain(fields) | {"name": study, "updated_at": _now()}},
                                upsert=True)


@_riding_out
def put_surface_energies(db, study: str, rows: list[dict]) -> None:
    """The study's ranked terminations (``rows`` in rank order); replaces the study's earlier ranking."""
    now = _now()
    docs = [_checked(SURFACE_ENERGIES, to_plain(dict(r, study=study, rank=i)) | {"created_at": now})
            for i, r in enumerate(rows)]
    db[SURFACE_ENERGIES.name].delete_many({"study": study})
    if docs:
        db[SURFACE_ENERGIES.name].insert_many(docs)


@_riding_out
def put_interface(db, study: str, key: str, doc: dict) -> Any:
    return _upsert(db, INTERFACES, to_plain(dict(doc, study=study, key=key)))


@_riding_out
def update_interface(db, study: str, key: str, fields: dict) -> None:
    db[INTERFACES.name].update_one({"study": study, "key": key}, {"$set": to_plain(fields)})


@_riding_out
def put_al_iteration(db, record: dict) -> Any:
    return _upsert(db, AL_ITERATIONS, to_plain(record))


@_riding_out
def put_analysis(db, summary: dict, h5_path, trajectory, interface: str | None = None,
                 temperature_K: float | None = None, extra: dict | None = None) -> Any:
    """The summary of one analysed trajectory, keyed by its HDF5 path (absolute); returns its _id."""
    doc = {"h5_path": str(Path(h5_path).resolve()), "trajectory": str(Path(trajectory).resolve()),
           "interface": interface, "temperature_K": temperature_K, "results": to_plain(summary),
           "argyro_version": __version__, **to_plain(extra or {})}
    doc["created_at"] = _now()
    return _upsert(db, ANALYSES, doc)


@_riding_out
def put_diffusion(db, doc: dict) -> Any:
    return _upsert(db, DIFFUSION, to_plain(doc))


# ------------------------------------------------------------------------------------------- reads

@_riding_out
def read(db, collection: str, query: dict | None = None, sort: list | str | None = None,
         projection: dict | None = None) -> list[dict]:
    """Documents of one of :data:`SCHEMAS`' collections (a named error for any other name)."""
    if collection not in SCHEMAS:
        raise ValueError(f"store: unknown collection {collection!r} (known: {', '.join(SCHEMAS)})")
    cur = db[collection].find(query or {}, projection)
    if sort:
        cur = cur.sort(sort if isinstance(sort, list) else [(sort, 1)])
    return list(cur)


@_riding_out
def find_one(db, collection: str, query: dict, projection: dict | None = None) -> dict | None:
    if collection not in SCHEMAS:
        raise ValueError(f"store: unknown collection {collection!r} (known: {', '.join(SCHEMAS)})")
    return db[collection].find_one(query, projection)


@_riding_out
def count(db, collection: str, query: dict | None = None) -> int:
    return db[collection].count_documents(query or {})


# ---------------------------------------------------------------------- offline launches (login node side)

def fetch(db, reads: Reads) -> dict:
    """The documents ``reads`` names, as :class:`~argyro_fw.store.offline.OfflineStore` reads them (a named
    document that is not there is staged as None: the offline read then answers as the online one would)."""
    # one section per collection (named by it), plus which frames have labels and the counts
    out: dict[str, Any] = {STRUCTURES.name: {}, CALCULATIONS.name: [], LABELS.name: {}, "label_hashes": None,
                           "counts": []}
    for study, label in sorted(reads.structures):
        key = f"{study}/{label}"
        out[STRUCTURES.name][key] = db[STRUCTURES.name].find_one({"key": key}, {"_id": 0})
    for q in reads.calculations:
        proj = None if q["fields"] is None else {f: 1 for f in q["fields"]}
        doc = find_calculation(db, calc_id=q["calc_id"], label=q["label"], engine=q["engine"], projection=proj)
        out[CALCULATIONS.name].append(dict(q, doc=doc))
    for h in sorted(reads.labels):
        out[LABELS.name][h] = db[LABELS.name].find_one({"hash": h}, {"_id": 0})
    if reads.label_hashes:
        out["label_hashes"] = sorted(labelled_hashes(db))
    for collection, study in sorted(reads.counts):
        out["counts"].append({"collection": collection, "study": study, "n": count(db, collection, {"study": study})})
    return out


def stage(db, launch_dir: str | os.PathLike, fw, launch_id: int, header: dict | None = None) -> Path:
    """Stage into ``launch_dir`` what firework ``fw`` (reserved as ``launch_id``) reads from the store when it runs
    offline: each task's ``offline_reads(spec, reads)`` declares it. (Each launch journals into a file of its own.)"""
    reads = Reads()
    spec = dict(fw.spec)
    for task in fw.tasks:
        declare = getattr(task, "offline_reads", None)
        if declare is not None:
            declare(spec, reads)
    data = fetch(db, reads)
    data["header"] = {"launch_id": int(launch_id), "fw_id": int(fw.fw_id), "fw_name": fw.name,
                      "staged_at": _now(), "tasks": [t.fw_name for t in fw.tasks]} | to_plain(header or {})
    d = Path(launch_dir)
    return write_atomic(d / STAGED, dumps(data))


class JournalError(ValueError):
    pass


def read_journal(launch_dir: str | os.PathLike, launch_id: int) -> list[dict]:
    """The operations an offline launch journalled (a line cut by a kill is dropped: the launch did not end well)."""
    path = journal_path(launch_dir, launch_id)
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # no final newline: the last write was cut
    if not lines:
        return []
    head = loads(lines[0]).get("header") or {}
    if head.get("launch_id") != int(launch_id):
        raise JournalError(f"{path}: the journal of launch {head.get('launch_id')}, not of launch {launch_id}")
    return [loads(ln) for ln in lines[1:]]


def replay(db, launch_dir: str | os.PathLike, launch_id: int) -> int:
    """Apply an offline launch's journal to the results store; returns the number of operations. Applying it
    again gives the same documents (a replacement keeps the ``_id`` the launch handed on; inserts are by ``_id``)."""
    ops = read_journal(launch_dir, launch_id)
    for op in ops:
        coll = db[op["collection"]]
        kind = op["op"]
        if kind == "replace_one":
            doc = op["doc"]
            coll.delete_many({**op["filter"], "_id": {"$ne": doc["_id"]}})
            coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        elif kind == "update_one":
            coll.update_one(op["filter"], op["update"], upsert=op["upsert"])
        elif kind == "insert_many":
            for doc in op["docs"]:
                coll.replace_one({"_id": doc["_id"]}, doc, upsert=True)
        elif kind == "delete_many":
            coll.delete_many(op["filter"])
        else:
            raise JournalError(f"{journal_path(launch_dir, launch_id)}: unknown operation {kind!r}")
    return len(ops)

"""Charge balancing (METHOD.md sections 2-3 and 9): delete the minimum number of atoms that makes the formal
charge zero; enumerate *which* atoms completely up to the structure's symmetry, rank every symmetry-distinct
choice by its Ewald energy (formal charges Li +1, P +5, S -2, Cl -1) and return the lowest ``top_k``.

How (an exact symmetry-reduced search, checked in tests against a brute force and pymatgen):

* The removal sets are all combinations of the removal (``minimal_removal``), per element, of that element's
  sites: ``total`` = prod_el C(n_el, k_el). Up to ``max_sets`` of them are enumerated completely; above that a
  uniform random sample of ``max_sets`` distinct sets is drawn with ``seed`` (``truncated``/``sampled``, the
  seed and the counts are in the result and its :meth:`BalanceResult.record`).
* Energies: the Ewald matrix M of the full (charged) structure is computed once (pymatgen
  ``EwaldSummation.total_energy_matrix``, which excludes the charged-cell term); the Ewald energy of the
  structure without the sites R is the sum of M over the kept sites,
  ``M.sum() - 2 M[R, :].sum() + M[R, R].sum()`` (pymatgen's ``compute_partial_energy``), evaluated for all
  sets at once. The result is neutral, so no charged-cell term applies.
* Symmetry: spglib's operations of the structure (``symprec``) as permutations of its sites (closed into a
  group); each set's canonical form is the lexicographically smallest sorted image, and sets with the same
  canonical form are one choice. Its ``multiplicity`` is the orbit size (how many removal sets it stands
  for), its representative the member of lowest energy, ties broken by the smaller indices.

An optional ``energy(structure) -> float`` (e.g. an MLIP through :func:`ase_energy`) re-ranks the ``top_k``
Ewald choices; ``ewald_eV`` keeps the Ewald energy.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.ewald import EwaldSummation
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..errors import ArgyroError
from ..study.config import InterfacesCfg
from .charges import FORMAL_CHARGE, formal_charge

#: rows of removal sets handled at once (bounds the memory of the energy and symmetry steps)
_CHUNK_ELEMENTS = 4_000_000


@dataclass
class BalanceResult:
    removal: dict[str, int]  # element -> atoms removed
    n_removed: int
    candidates: list[dict]  # the top_k, ranked: structure, removed_indices, energy_eV, ewald_eV, multiplicity, rank
    total: int  # removal sets in the full space (prod C(n_el, k_el))
    tried: int  # distinct removal sets evaluated (== total unless sampled)
    truncated: bool  # the space was larger than max_sets: a uniform sample was ranked
    sampled: bool = False  # same as truncated (named for the record)
    seed: int | None = None  # the sampling seed (None: complete enumeration)
    n_distinct: int = 0  # symmetry-distinct choices among the evaluated sets
    n_symmetry_ops: int = 1  # site permutations of the structure's symmetry group used
    method: str = ""
    ranked: list[dict] = field(default_factory=list)  # the lowest max(keep, top_k), no structures

    # names of the first version (CLI summaries and older callers)
    @property
    def combinations_total(self) -> int:
        return self.total

    @property
    def combinations_tried(self) -> int:
        return self.tried

    @property
    def capped(self) -> bool:
        return self.truncated

    def record(self) -> dict:
        """Plain (JSON/BSON) summary: how the choices were found and the ranked list."""
        return {"removal": dict(self.removal), "n_removed": self.n_removed, "total": self.total,
                "tried": self.tried, "truncated": self.truncated, "sampled": self.sampled, "seed": self.seed,
                "n_distinct": self.n_distinct, "n_symmetry_ops": self.n_symmetry_ops, "method": self.method,
                "energy": "Ewald (formal charges), eV", "ranked": [dict(r) for r in self.ranked]}


def minimal_removal(counts: dict[str, int], charge: int, max_atoms: int = 12) -> dict[str, int]:
    """The fewest atoms (by element) whose formal charges sum to ``charge``.

    Ties are broken towards removing fewer distinct elements, then by element order Li, P, S, Cl.
    Raises ArgyroError if no removal of <= ``max_atoms`` atoms works.
    """
    if charge == 0:
        return {}
    els = [el for el in FORMAL_CHARGE if counts.get(el, 0) > 0 and FORMAL_CHARGE[el] * charge > 0]
    best = None
    for total in range(1, max_atoms + 1):
        for combo in itertools.combinations_with_replacement(els, total):
            c = Counter(combo)
            if any(c[el] > counts.get(el, 0) for el in c):
                continue
            if sum(FORMAL_CHARGE[el] * n for el, n in c.items()) == charge:
                key = (len(c), [list(FORMAL_CHARGE).index(e) for e in sorted(c, key=list(FORMAL_CHARGE).index)])
                if best is None or key < best[0]:
                    best = (key, dict(c))
        if best:
            return best[1]
    raise ArgyroError(f"composition {dict(counts)} with formal charge {charge:+d}: no removal of <= {max_atoms} atoms "
                      "makes it neutral")


def _with_charges(structure: Structure) -> Structure:
    s = structure.copy()
    s.remove_oxidation_states()
    s.add_oxidation_state_by_element(FORMAL_CHARGE)
    return s


def ewald_energy(structure: Structure) -> float:
    """Ewald energy (eV) with the formal charges (a direct EwaldSummation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # charged structures: pymatgen warns and adds its charged-cell term
        return float(EwaldSummation(_with_charges(structure)).total_energy)


def ewald_matrix(structure: Structure) -> np.ndarray:
    """The pairwise Ewald energy matrix (eV) with the formal charges; excludes the charged-cell term, so a
    neutral subset's energy is the sum of its submatrix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(EwaldSummation(_with_charges(structure)).total_energy_matrix, float)


def removal_energies(matrix: np.ndarray, sets: np.ndarray) -> np.ndarray:
    """Ewald energy (eV) of the structure without the sites of each row of ``sets`` (m, k), from its matrix."""
    sets = np.asarray(sets, np.intp)
    if sets.ndim != 2:
        raise ValueError("sets: expected a 2-d array (one removal set per row)")
    m, k = sets.shape
    if k == 0:
        return np.full(m, matrix.sum())
    rows = matrix.sum(axis=1)
    out = np.empty(m)
    step = max(1, _CHUNK_ELEMENTS // (k * k))
    for a in range(0, m, step):
        r = sets[a:a + step]
        out[a:a + step] = (matrix.sum() - 2.0 * rows[r].sum(axis=1)
                           + matrix[r[:, :, None], r[:, None, :]].sum(axis=(1, 2)))
    return out


def site_permutations(structure: Structure, symprec: float = InterfacesCfg.symprec) -> np.ndarray:
    """The structure's symmetry operations (spglib, ``symprec`` Å) as permutations of its sites, (n_ops, N):
    row g maps site i to site perm[g, i]; the identity first; closed under composition. Operations that do
    not map every site onto a site of the same species within ``symprec`` are left out."""
    n = len(structure)
    ident = np.arange(n)
    try:
        data = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    except Exception:  # spglib finds nothing
        return ident[None, :]
    if data is None:
        return ident[None, :]
    rots = data.rotations if hasattr(data, "rotations") else data["rotations"]
    trans = data.translations if hasattr(data, "translations") else data["translations"]
    frac = structure.frac_coords
    species = np.array([s.species_string for s in structure])
    lat = structure.lattice.matrix
    perms = {tuple(ident)}
    for r, t in zip(rots, trans):
        new = frac @ np.asarray(r, float).T + np.asarray(t, float)
        d = new[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ lat, axis=2)
        dist[species[:, None] != species[None, :]] = np.inf
        p = dist.argmin(axis=1)
        if dist[ident, p].max() <= symprec and len(set(p.tolist())) == n:
            perms.add(tuple(int(x) for x in p))
    group = set(perms)
    while True:  # closure (tolerant symmetry can leave a set of operations that is not quite a group)
        new = {tuple(np.asarray(b)[np.asarray(a)]) for a in group for b in group} - group
        if not new:
            break
        group |= new
    rest = sorted(g for g in group if g != tuple(ident))
    return np.array([tuple(ident)] + rest, dtype=np.intp)


def _lexmin(best: np.ndarray, other: np.ndarray) -> None:
    """Row-wise lexicographic minimum of two (m, k) arrays, into ``best``."""
    diff = best != other
    first = diff.argmax(axis=1)
    rows = np.arange(len(best))
    take = diff.any(axis=1) & (other[rows, first] < best[rows, first])
    best[take] = other[take]


def canonical_sets(sets: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """The canonical form of each removal set: the lexicographically smallest sorted image under ``perms``."""
    sets = np.sort(np.asarray(sets, np.intp), axis=1)
    out = sets.copy()
    for p in perms[1:]:
        _lexmin(out, np.sort(p[sets], axis=1))
    return out


def orbit_size(removed: np.ndarray, perms: np.ndarray) -> int:
    """How many distinct removal sets the symmetry group makes of ``removed``."""
    imgs = np.sort(perms[:, np.asarray(removed, np.intp)], axis=1)
    return int(len(np.unique(imgs, axis=0)))


def _orbit_sizes(reps: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """:func:`orbit_size` of each row of ``reps`` (m, k), vectorised when the rows fit an int64 key."""
    reps = np.asarray(reps, np.intp)
    n = perms.shape[1]
    if not len(reps) or not reps.shape[1]:
        return np.ones(len(reps), int)
    keys = _row_keys(reps, n)
    if len(keys) > 1:
        return np.array([orbit_size(r, perms) for r in reps], int)
    imgs = np.sort(perms[:, reps], axis=2)  # (n_ops, m, k)
    codes = np.sort(np.stack([_row_keys(im, n)[0] for im in imgs]), axis=0)  # (n_ops, m)
    return 1 + (np.diff(codes, axis=0) != 0).sum(axis=0)


def _pools(structure: Structure, removal: dict[str, int]) -> list[tuple[np.ndarray, int]]:
    return [(np.array([i for i, s in enumerate(structure) if s.specie.symbol == el], np.intp), n)
            for el, n in removal.items()]


def _all_sets(pools: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """Every removal set (the product over elements of the combinations of each element's sites), (total, k)."""
    parts = []
    for pool, n in pools:
        c = math.comb(len(pool), n)
        idx = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(len(pool)), n)),
                          dtype=np.intp, count=c * n).reshape(c, n)
        parts.append(pool[idx])
    grids = np.indices([len(p) for p in parts]).reshape(len(parts), -1)
    return np.sort(np.hstack([p[g] for p, g in zip(parts, grids)]), axis=1)


def _draw(pools: list[tuple[np.ndarray, int]], m: int, rng: np.random.Generator) -> np.ndarray:
    """``m`` independent, uniformly drawn removal sets (duplicates possible), (m, k)."""
    cols = []
    for pool, n in pools:
        out = np.empty((m, n), np.intp)
        step = max(1, _CHUNK_ELEMENTS // len(pool))
        for a in range(0, m, step):
            b = min(m, a + step)
            out[a:b] = np.argpartition(rng.random((b - a, len(pool))), n - 1, axis=1)[:, :n]
        cols.append(pool[out])
    return np.sort(np.hstack(cols), axis=1)


def sample_sets(pools: list[tuple[np.ndarray, int]], m: int, total: int, seed: int) -> np.ndarray:
    """``m`` distinct removal sets drawn uniformly (without replacement) with ``seed``: the first ``m`` distinct
    sets of a sequence of independent uniform draws."""
    rng = np.random.default_rng(seed)
    n_sites = 1 + max(int(p.max()) for p, _ in pools)
    drawn = np.empty((0, sum(n for _, n in pools)), np.intp)
    while True:
        _, first, _ = _unique_rows(drawn, n_sites)
        have = len(first)
        if have >= m:
            return drawn[np.sort(first)[:m]]
        need = m - have
        more = int(need * total / max(1, total - have) * 1.1) + 16
        drawn = np.vstack([drawn, _draw(pools, more, rng)])


def _row_keys(rows: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Sort keys (np.lexsort order: last key primary) of rows of integers in [0, n) in lexicographic order: one
    int64 per row (base n) when n**k fits, else the columns."""
    k = rows.shape[1]
    if k and n ** k < 2 ** 62:
        return (rows.astype(np.int64) @ (np.int64(n) ** np.arange(k - 1, -1, -1, dtype=np.int64)),)
    return tuple(rows[:, j] for j in range(k - 1, -1, -1))


def _unique_rows(rows: np.ndarray, n: int):
    """np.unique(rows, axis=0, return_index=True, return_inverse=True) for rows of integers in [0, n); through
    one int64 key per row when it fits (much faster)."""
    keys = _row_keys(rows, n)
    if len(keys) == 1:
        _, first, inv = np.unique(keys[0], return_index=True, return_inverse=True)
        return rows[first], first, inv.reshape(-1)
    uniq, first, inv = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return uniq, first, inv.reshape(-1)


def _iter_chunks(m: int, k: int) -> Iterator[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, k))
    for a in range(0, m, step):
        yield slice(a, min(m, a + step))


def ase_energy(calculator) -> Callable[[Structure], float]:
    """An energy function (eV) from any ASE calculator (e.g. an MLIP)."""
    def energy(structure: Structure) -> float:
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = calculator
        return float(atoms.get_potential_energy())

    return energy


def balance(structure: Structure, energy: Callable[[Structure], float] | None = None,
            max_candidates: int | None = None, max_atoms: int = 12, *, top_k: int = InterfacesCfg.balance_top_k,
            keep: int = InterfacesCfg.balance_candidates, max_sets: int = InterfacesCfg.balance_max_sets,
            seed: int = InterfacesCfg.balance_seed, symprec: float = InterfacesCfg.symprec) -> BalanceResult:
    """Neutralise ``structure`` by deleting the fewest atoms: every removal set enumerated up to symmetry
    (a uniform ``seed``-ed sample of ``max_sets`` when there are more), ranked by Ewald energy.

    Returns the ``top_k`` lowest choices with structures (``candidates``) and the lowest ``max(keep, top_k)``
    without (``ranked``). ``max_candidates``: the old name of ``top_k`` (it no longer caps the enumeration).
    ``energy``: re-ranks the ``top_k`` candidates with another energy (eV)."""
    if max_candidates is not None:
        top_k = max_candidates
    if top_k < 1 or max_sets < 1:
        raise ArgyroError(f"balance: top_k and max_sets must be >= 1 (got {top_k}, {max_sets})")
    q = formal_charge(structure)
    counts = Counter(s.specie.symbol for s in structure)
    removal = minimal_removal(counts, q, max_atoms)
    if not removal:
        e = ewald_energy(structure)
        rec = {"rank": 0, "removed_indices": [], "energy_eV": e, "multiplicity": 1}
        cand = dict(rec, structure=structure.copy(), ewald_eV=e)
        if energy is not None:
            cand["energy_eV"] = float(energy(structure))
        return BalanceResult({}, 0, [cand], 1, 1, False, n_distinct=1, method="neutral: nothing removed",
                             ranked=[rec])
    pools = _pools(structure, removal)
    total = math.prod(math.comb(len(p), n) for p, n in pools)
    sampled = total > max_sets
    sets = sample_sets(pools, max_sets, total, seed) if sampled else _all_sets(pools)
    perms = site_permutations(structure, symprec)
    matrix = ewald_matrix(structure)
    k = sets.shape[1]
    energies = np.empty(len(sets))
    canon = np.empty_like(sets)
    for sl in _iter_chunks(len(sets), k * max(k, len(perms))):
        energies[sl] = removal_energies(matrix, sets[sl])
        canon[sl] = canonical_sets(sets[sl], perms)
    uniq, _, inv = _unique_rows(canon, len(structure))
    # representative of each choice: its member of lowest energy (ties: smaller indices)
    order = np.lexsort(_row_keys(sets, len(structure)) + (np.round(energies, 6), inv))
    first = order[np.r_[True, inv[order][1:] != inv[order][:-1]]]  # one per choice, in choice order
    e_rep = energies[first]
    rank = np.lexsort(_row_keys(uniq, len(structure)) + (np.round(e_rep, 8),))
    n_rank = min(len(rank), max(keep, top_k))
    reps = sets[first[rank[:n_rank]]]
    sizes = _orbit_sizes(reps, perms)
    ranked = [{"rank": r, "removed_indices": [int(i) for i in rep], "energy_eV": float(e_rep[c]),
               "multiplicity": int(size)} for r, (rep, c, size) in enumerate(zip(reps, rank[:n_rank], sizes))]
    cands = []
    for rec in ranked[:top_k]:
        s = structure.copy()
        s.remove_sites(rec["removed_indices"])
        cands.append(dict(rec, structure=s, ewald_eV=rec["energy_eV"]))
    if energy is not None:
        for c in cands:
            c["energy_eV"] = float(energy(c["structure"]))
        cands.sort(key=lambda c: c["energy_eV"])
    method = (f"uniform sample of {len(sets)} of {total} removal sets (seed {seed}), ranked up to symmetry"
              if sampled else f"complete enumeration of {total} removal sets up to symmetry")
    return BalanceResult(removal, sum(removal.values()), cands, total, len(sets), sampled, sampled=sampled,
                         seed=seed if sampled else None, n_distinct=len(uniq), n_symmetry_ops=len(perms),
                         method=method, ranked=ranked)

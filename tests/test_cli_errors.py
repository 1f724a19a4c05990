"""Issue 2, acceptance 5 and the CLI contract: one-line errors within 10 s, --help everywhere."""

from __future__ import annotations

import os
import socket
import time

import pytest

from argyro_fw.cli import build_parser
from conftest import BIN, run


def _one_line_error(proc, *needles):
    err = proc.stderr.strip()
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def _env(tmp_path):
    env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "home"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("ARGYRO_DB_URI", None)
    env.pop("ARGYRO_CONFIG", None)
    return env


def test_missing_config(tmp_path):
    t0 = time.monotonic()
    p = run([str(BIN / "argyro"), "--config", str(tmp_path / "nope.yaml"), "init", "--dir", str(tmp_path / "lp")], _env(tmp_path), check=False)
    assert time.monotonic() - t0 < 10
    _one_line_error(p, "nope.yaml", "does not exist")
    assert not (tmp_path / "lp").exists()


def test_unreadable_config(tmp_path):
    (tmp_path / "cfgdir").mkdir()  # a directory cannot be read as a file (works as root too)
    p = run([str(BIN / "argyro"), "--config", str(tmp_path / "cfgdir"), "db", "uri"], _env(tmp_path), check=False)
    _one_line_error(p, "cfgdir", "cannot be read")


def test_config_unknown_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("db:\n  uri: mongodb://127.0.0.1:1/x\n  pasword: oops\n")
    p = run([str(BIN / "argyro"), "--config", str(cfg), "db", "uri"], _env(tmp_path), check=False)
    _one_line_error(p, "c.yaml", "pasword")


def test_unreachable_uri(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    p = run([str(BIN / "argyro"), "--uri", f"mongodb://127.0.0.1:{port}/x", "init", "--dir", str(tmp_path / "lp")],
            _env(tmp_path), check=False)
    assert time.monotonic() - t0 < 10
    _one_line_error(p, f"127.0.0.1:{port}", "not reachable")
    assert not (tmp_path / "lp").exists()


def test_port_in_use(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        p = run([str(BIN / "argyro"), "db", "start", "--path", str(tmp_path / "db"), "--port", str(port)], _env(tmp_path), check=False)
        assert time.monotonic() - t0 < 10
    _one_line_error(p, f"port {port}", "in use")
    assert not (tmp_path / "db" / "secantusd.pid").exists()


def test_password_in_uri_refused(tmp_path):
    p = run([str(BIN / "argyro"), "--uri", "mongodb://bob:hunter2@127.0.0.1:1/x", "db", "uri"], _env(tmp_path), check=False)
    err = _one_line_error(p, "password")
    assert "hunter2" not in err


def _all_command_paths(parser, prefix=()):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _all_command_paths(sub, (*prefix, name))


@pytest.mark.parametrize("path", [()] + list(_all_command_paths(build_parser())), ids=lambda p: " ".join(p) or "argyro")
def test_help_on_every_command(path):
    p = run([str(BIN / "argyro"), *path, "--help"], dict(os.environ), check=False)
    assert p.returncode == 0, p.stderr
    assert "usage:" in p.stdout.lower() or "usage:" in p.stderr.lower()


def test_version():
    from argyro_fw import __version__

    p = run([str(BIN / "argyro"), "--version"], dict(os.environ))
    assert p.stdout.strip() == f"argyro {__version__}"


@pytest.mark.parametrize("phase", ["li", "li2s", "licl"])
def test_surfaces_of_a_non_argyrodite_bulk_are_refused(tmp_path, phase):
    """`build surfaces` answers with a one-line error for bcc Li, Li2S and LiCl instead of rc 0 and no/nonsense slabs."""
    from argyro_fw.structures.phases import phase as make_phase

    poscar = tmp_path / "POSCAR"
    make_phase(phase).to(filename=str(poscar), fmt="poscar")
    p = run([str(BIN / "argyro"), "build", "surfaces", str(poscar), "-o", str(tmp_path / "out")], _env(tmp_path),
            check=False)
    formula = make_phase(phase).composition.reduced_formula
    _one_line_error(p, f"bulk {formula}", "Li6PS5Cl")
    assert not (tmp_path / "out").exists()


def test_render_vasp_refuses_coincident_atoms(tmp_path):
    """Two atoms 0.2 Å apart (here across the periodic boundary) are named and nothing is written; --min-distance
    sets the limit."""
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(6.0), ["Li", "S", "Cl"], [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.98, 0.0, 0.0]])
    (tmp_path / "POSCAR").write_text(s.to(fmt="poscar"))
    out = tmp_path / "in"
    p = run([str(BIN / "argyro"), "render", "vasp", str(tmp_path / "POSCAR"), "--kind", "static", "-o", str(out)],
            _env(tmp_path), check=False)
    _one_line_error(p, "atoms 1 (Li) and 3 (Cl)", "0.120 Å apart", "0.5 Å")
    assert not out.exists() or not any(out.iterdir())
    ok = run([str(BIN / "argyro"), "render", "vasp", str(tmp_path / "POSCAR"), "--kind", "static", "--min-distance",
              "0.1", "-o", str(out)], _env(tmp_path))
    assert ok.returncode == 0 and (out / "POSCAR").is_file()

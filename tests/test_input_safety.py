"""Issue 18 item 5: bad input never echoed, secrets never rendered.

- A binary file (random bytes, a PNG) given where a text file is expected (``argyro study --config``-style study
  configs, ``argyro init --profile``, the structure of ``argyro build ...`` / ``argyro render vasp``) is a one-line
  error ``FILE: not a text file (binary content at byte N)``, with none of its bytes in the output.
- The queue adapter refuses an ``env`` value (or any rendered value) holding the known database password, whatever
  the variable is called, without ever printing the password.
"""

from __future__ import annotations

import os
import re
import struct
import zlib

import pytest
import yaml
from conftest import BIN, REPO, run

from argyro_fw.errors import ArgyroError
from argyro_fw.queue.adapter import ArgyroQueueAdapter, known_secrets
from argyro_fw.textfile import binary_offset

SITE = {"scheduler": "slurm", "rocket_launch": "argyro rlaunch singleshot", "ntasks": 4}


def _png() -> bytes:
    """A real 4x4 RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([255, 0, 0] * 4) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def binaries(tmp_path):
    rnd = tmp_path / "random.yaml"
    data = bytes(range(256)) + os.urandom(4096)  # every byte value, at a known place, then random ones
    rnd.write_bytes(b"name: x\n" + data)
    png = tmp_path / "picture.png"
    png.write_bytes(_png())
    # the first binary byte: NUL at offset 8 in the random file; in the PNG the 0x89 at 0
    return {rnd: 8, png: 0}


def _check_one_line(p, path, offset):
    assert p.returncode != 0
    err = p.stderr.strip()
    assert "Traceback" not in p.stderr and len(err.splitlines()) == 1, p.stderr
    assert f"{path}: not a text file (binary content at byte {offset})" in err, err
    # nothing of the file is echoed: the output is plain printable ASCII
    out = p.stdout + p.stderr
    assert all(32 <= ord(c) < 127 or c in "\n" for c in out), repr(out[:300])
    assert "PNG" not in out and "IHDR" not in out


def test_binary_study_config_profile_and_structure_are_one_line_errors(binaries, cli_env, tmp_path):
    for path, off in binaries.items():
        p = run([str(BIN / "argyro"), "study", "--check", str(path)], cli_env, check=False)
        _check_one_line(p, path, off)
        assert p.stderr.strip().startswith("argyro study: error: study config ")
        p = run([str(BIN / "argyro"), "init", "--no-check", "--profile", str(path), "--dir", str(tmp_path / "lp")],
                cli_env, check=False)
        _check_one_line(p, path, off)
        assert "site profile" in p.stderr and not (tmp_path / "lp").exists()
        for cmd in (["build", "surfaces", str(path), "-o", str(tmp_path / "s")],
                    ["build", "balance", str(path), "-o", str(tmp_path / "b")],
                    ["render", "vasp", "--kind", "static", str(path), "-o", str(tmp_path / "v")]):
            p = run([str(BIN / "argyro"), *cmd], cli_env, check=False)
            _check_one_line(p, path, off)
            assert "structure file" in p.stderr, cmd
        assert not any((tmp_path / d).exists() for d in ("s", "b", "v"))


def test_binary_structure_formats_are_still_read(tmp_path, cli_env):
    """A gzipped POSCAR and an ASE trajectory are binary, yet structures: read, not refused."""
    import gzip

    import ase.io
    from ase.build import bulk

    from argyro_fw.cli.build import read_structure

    li = bulk("Li", "bcc", a=3.44, cubic=True)
    ase.io.write(tmp_path / "POSCAR", li, format="vasp")
    (tmp_path / "POSCAR.gz").write_bytes(gzip.compress((tmp_path / "POSCAR").read_bytes()))
    ase.io.write(tmp_path / "li.traj", li)
    for f in ("POSCAR.gz", "li.traj"):
        assert binary_offset((tmp_path / f).read_bytes()) is not None
        assert read_structure(tmp_path / f).composition.reduced_formula == "Li"


def test_text_files_with_unicode_are_not_binary(tmp_path, cli_env):
    cfg = tmp_path / "study.yaml"
    demo = (REPO / "configs" / "demo.yaml").read_text()
    cfg.write_text("# Li | Li₆PS₅Cl, Å, é\n" + demo, encoding="utf-8")
    p = run([str(BIN / "argyro"), "study", "--check", str(cfg)], cli_env)
    assert '"workdir"' in p.stdout
    assert binary_offset("Li₆PS₅Cl\ttab\r\n".encode()) is None
    assert binary_offset(b"ok\x00") == 2 and binary_offset(b"ok\xff") == 2


# ------------------------------------------------------------------------------------------- secrets in env values

SECRET = "Hunter2-db-secret"


def _script(settings):
    return ArgyroQueueAdapter(settings).get_script_str("/scratch/x")


def test_env_value_holding_the_password_is_refused(monkeypatch, tmp_path):
    for k in [k for k in os.environ if k.startswith("ARGYRO_DB_PASSWORD") or k == "ARGYRO_CONFIG"]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("ARGYRO_HOME", str(tmp_path / "home"))  # no embedded server's admin.password yet
    assert SECRET not in known_secrets()
    # not a known secret: an innocent value renders
    assert "export FOO=Hunter2-db-secret\n" in _script(dict(SITE, env={"FOO": SECRET}))
    sources = {
        "ARGYRO_DB_PASSWORD": lambda: monkeypatch.setenv("ARGYRO_DB_PASSWORD", SECRET),
        "ARGYRO_DB_PASSWORD_ALICE": lambda: monkeypatch.setenv("ARGYRO_DB_PASSWORD_ALICE", SECRET),
        "ARGYRO_DB_PASSWORD_FILE": lambda: (tmp_path.joinpath("pw").write_text(SECRET + "\n"),
                                            monkeypatch.setenv("ARGYRO_DB_PASSWORD_FILE", str(tmp_path / "pw"))),
        "config db.password_env": lambda: (monkeypatch.setenv("MY_DB_PW", SECRET),
                                           tmp_path.joinpath("c1.yaml").write_text("db: {password_env: MY_DB_PW}\n"),
                                           monkeypatch.setenv("ARGYRO_CONFIG", str(tmp_path / "c1.yaml"))),
        "config db.password_file": lambda: (tmp_path.joinpath("pw2").write_text(SECRET),
                                            tmp_path.joinpath("c2.yaml").write_text(
                                                yaml.safe_dump({"db": {"password_file": str(tmp_path / "pw2")}})),
                                            monkeypatch.setenv("ARGYRO_CONFIG", str(tmp_path / "c2.yaml"))),
        "embedded server admin.password": lambda: (tmp_path.joinpath("home", "db").mkdir(parents=True, exist_ok=True),
                                                   tmp_path.joinpath("home", "db", "admin.password").write_text(
                                                       SECRET + "\n")),
    }
    for name, setup in sources.items():
        for k in ("ARGYRO_DB_PASSWORD", "ARGYRO_DB_PASSWORD_ALICE", "ARGYRO_DB_PASSWORD_FILE", "ARGYRO_CONFIG"):
            monkeypatch.delenv(k, raising=False)
        tmp_path.joinpath("home", "db", "admin.password").unlink(missing_ok=True)
        setup()
        assert SECRET in known_secrets(), name
        for env in ({"FOO": SECRET}, {"FOO": f"mongodb://alice:{SECRET}@db:27017/x"}, {"FOO": f" {SECRET} "}):
            with pytest.raises(ArgyroError) as exc:
                _script(dict(SITE, env=env))
            msg = str(exc.value)
            assert "env FOO" in msg and "holds the database password" in msg and SECRET not in msg, (name, msg)
        with pytest.raises(ArgyroError, match="pre_rocket: its value holds the database password") as exc:
            _script(dict(SITE, pre_rocket=[f"export X={SECRET}"]))
        assert SECRET not in str(exc.value)
        # a value that does not hold it renders; the password file's name is allowed
        script = _script(dict(SITE, env={"FOO": "bar", "ARGYRO_DB_PASSWORD_FILE": str(tmp_path / "pw")}))
        assert SECRET not in script and "export FOO=bar\n" in script
    # a short password is refused as a whole value only, never by substring (no false alarms on common text)
    monkeypatch.delenv("ARGYRO_CONFIG", raising=False)
    tmp_path.joinpath("home", "db", "admin.password").unlink()
    monkeypatch.setenv("ARGYRO_DB_PASSWORD", "1234")
    with pytest.raises(ArgyroError, match="env N: its value holds"):
        _script(dict(SITE, env={"N": 1234}))  # YAML reads it as a number
    assert "export N=x1234y\n" in _script(dict(SITE, env={"N": "x1234y"}))


def test_cli_init_refuses_a_profile_env_holding_the_password(tmp_path, cli_env):
    profile = tmp_path / "site.yaml"
    profile.write_text(yaml.safe_dump({"env": {"DB_ACCESS": SECRET}, "ntasks": 4}))
    env = dict(cli_env, ARGYRO_DB_PASSWORD=SECRET, ARGYRO_DB_URI="mongodb://alice@127.0.0.1:1/study?authSource=admin")
    p = run([str(BIN / "argyro"), "init", "--site", "slurm", "--no-check", "--profile", str(profile), "--dir",
             str(tmp_path / "lp")], env, check=False)
    assert p.returncode != 0 and SECRET not in p.stdout + p.stderr
    assert re.search(r"env DB_ACCESS: its value holds the database password", p.stderr), p.stderr
    assert "Traceback" not in p.stderr
    assert not any(SECRET in f.read_text() for f in (tmp_path / "lp").glob("*")) if (tmp_path / "lp").exists() else True
    assert REPO.is_dir()

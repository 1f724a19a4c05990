"""Passwords: read from the environment or a file at run time, never printed or written to files.

Uses a real SecantusDB server started with --auth (SCRAM-SHA-256), as a site MongoDB with users.
"""

from __future__ import annotations

import os

import pytest

from conftest import BIN, auth_server, run

SECRET = "s3cr3t-Pa55word"


@pytest.fixture(scope="module")
def auth_db(tmp_path_factory):
    yield from auth_server(tmp_path_factory.mktemp("authdb"), "alice", SECRET)


def test_password_from_env_and_file_never_written(tmp_path, auth_db):
    port = auth_db
    uri = f"mongodb://alice@127.0.0.1:{port}/study?authSource=admin"
    env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "home"), ARGYRO_DB_URI=uri, ARGYRO_DB_PASSWORD=SECRET)
    p = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env)
    files = list((tmp_path / "lp").iterdir())
    assert {f.name for f in files} == {"my_launchpad.yaml", "my_fworker.yaml", "my_qadapter.yaml", "FW_config.yaml"}
    for f in files:
        assert SECRET not in f.read_text()
    assert SECRET not in p.stdout + p.stderr
    assert "alice" in (tmp_path / "lp" / "my_launchpad.yaml").read_text()

    # FireWorks through argyro's wrapper: authenticated with the env password
    lpfile = str(tmp_path / "lp" / "my_launchpad.yaml")
    out = run([str(BIN / "argyro"), "lpad", "-l", lpfile, "reset", "--password", ""], env, check=False)
    assert SECRET not in out.stdout + out.stderr
    out = run([str(BIN / "argyro"), "lpad", "-l", lpfile, "get_wflows", "-d", "count"], env)
    assert out.stdout.strip().splitlines()[-1] == "0"

    # the same from a password file
    pw_file = tmp_path / "pw"
    pw_file.write_text(SECRET + "\n")
    env_file = {k: v for k, v in env.items() if k != "ARGYRO_DB_PASSWORD"}
    env_file["ARGYRO_DB_PASSWORD_FILE"] = str(pw_file)
    out = run([str(BIN / "argyro"), "lpad", "-l", lpfile, "get_wflows", "-d", "count"], env_file)
    assert out.stdout.strip().splitlines()[-1] == "0"

    # without a password the server refuses (the test can fail: auth is really on)
    env_none = {k: v for k, v in env_file.items() if k != "ARGYRO_DB_PASSWORD_FILE"}
    out = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp2")], env_none, check=False)
    assert out.returncode != 0
    assert "password" in out.stderr and SECRET not in out.stderr


def test_wrong_password_is_one_line_error(tmp_path, auth_db):
    env = dict(os.environ, ARGYRO_HOME=str(tmp_path / "home"),
               ARGYRO_DB_URI=f"mongodb://alice@127.0.0.1:{auth_db}/study?authSource=admin",
               ARGYRO_DB_PASSWORD="wrong")
    out = run([str(BIN / "argyro"), "init", "--dir", str(tmp_path / "lp")], env, check=False)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "authentication failed" in out.stderr
    assert not (tmp_path / "lp").exists()

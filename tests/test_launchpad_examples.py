"""Issue 13, point 7: the commented examples in launchpad/ load with FireWorks' own readers, hold
no password, and have the keys `argyro init` writes (so they cannot drift from it). Issue 19,
point 5: examples of one job kind's worker (vasp) and adapter (lammps-md, a GPU job)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO

EXAMPLES = REPO / "launchpad"
NAMES = ("my_launchpad", "my_fworker", "my_qadapter", "my_fworker.vasp", "my_qadapter.lammps-md")
PASSWORDISH = re.compile(r"pass(word|wd)?|secret|token", re.I)


def _example(name: str) -> Path:
    return EXAMPLES / f"{name}.example.yaml"


def _keys(d, prefix=""):
    """Every key path of a nested dict, e.g. 'env.argyro_db.host'."""
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, prefix + k + ".")
    return out


@pytest.fixture
def no_password_env(monkeypatch):
    for var in ("ARGYRO_DB_PASSWORD", "ARGYRO_DB_PASSWORD_FILE"):
        monkeypatch.delenv(var, raising=False)


def test_examples_are_commented_and_hold_no_password():
    for name in NAMES:
        text = _example(name).read_text()
        assert sum(ln.lstrip().startswith("#") for ln in text.splitlines()) >= 5, f"{name}: explain the fields"
        assert "argyro init" in text
        d = yaml.safe_load(text)
        # a key that names a password may only name where it comes from (a variable or a file)
        for key in _keys(d):
            leaf = key.rsplit(".", 1)[-1]
            assert not PASSWORDISH.search(leaf) or leaf.endswith(("_env", "_FILE")), f"{name}: {key}"
        assert not re.search(r"^\s*password\s*:", text, re.M | re.I), name


def test_launchpad_example_loads_with_fireworks(no_password_env, monkeypatch):
    from fireworks import LaunchPad

    from argyro_fw import compat

    # the file names a user and no password: FireWorks alone refuses it, argyro's reader (installed
    # by every argyro command) takes the password from the variable the file names
    raw = yaml.safe_load(_example("my_launchpad").read_text())
    assert raw["username"] and "password" not in raw
    compat.install()
    monkeypatch.setenv(raw["argyro_password_env"], "from-the-environment")
    lp = LaunchPad.from_file(str(_example("my_launchpad")))
    try:
        assert (lp.host, lp.port, lp.name, lp.username, lp.authsource) == (
            "mongodb.example.org", 27017, "li_lpsc", "argyro", "admin")
        assert lp.password == "from-the-environment"
        assert lp.mongoclient_kwargs["retryWrites"] is False
    finally:
        lp.connection.close()


def test_fworker_example_loads_with_fireworks():
    from fireworks import FWorker

    w = FWorker.from_file(str(_example("my_fworker")))
    assert w.name == "argyro-slurm" and w.category == "__none__"
    assert w.query["spec._category"] == {"$exists": False}  # never argyro's fireworks: they have a job kind
    assert w.env["vasp_cmd"] == "srun -n 256 vasp_std" and w.env["argyro_db"]["password_env"] == "ARGYRO_DB_PASSWORD"
    v = FWorker.from_file(str(_example("my_fworker.vasp")))
    assert v.category == "vasp" and v.query["spec._category"] == "vasp" and v.env == w.env


def test_qadapter_example_loads_as_argyros_adapter(tmp_path):
    from fireworks.utilities.fw_serializers import load_object_from_file

    from argyro_fw.queue.adapter import ArgyroQueueAdapter

    qa = load_object_from_file(str(_example("my_qadapter")))  # what qlaunch -q does
    assert isinstance(qa, ArgyroQueueAdapter)
    script = qa.get_script_str(str(tmp_path))
    assert "--gres" not in script and "apptainer exec --bind /scratch" in script
    assert "ARGYRO_DB_PASSWORD_FILE" in script and "argyro rlaunch -l" in script
    md = load_object_from_file(str(_example("my_qadapter.lammps-md")))
    script = md.get_script_str(str(tmp_path))
    assert "#SBATCH --gres=gpu:1" in script and "#SBATCH --time=48:00:00" in script and "apptainer exec --nv" in script
    assert "my_fworker.lammps-md.yaml singleshot" in script and "argyro-gpu-check" in script


def test_examples_have_the_keys_argyro_init_writes(tmp_path):
    from argyro_fw.launchpad import init_files
    from argyro_fw.settings import DBSettings

    profile = yaml.safe_load((REPO / "sites" / "slurm-gpu-apptainer.yaml").read_text())
    settings = DBSettings(host="mongodb.example.org", port=27017, name="li_lpsc", username="argyro", authsource="admin")
    written = {p.stem: yaml.safe_load(p.read_text())
               for p in init_files(settings, tmp_path, site="slurm", profile=profile)}
    for name in NAMES:
        example = yaml.safe_load(_example(name).read_text())
        assert _keys(example) == _keys(written[name]), name
    for name in ("my_fworker", "my_fworker.vasp"):
        assert written[name] == yaml.safe_load(_example(name).read_text()), name
    for name in ("my_qadapter", "my_qadapter.lammps-md"):  # the same values but the site's paths
        example = yaml.safe_load(_example(name).read_text())
        assert {k: v for k, v in written[name].items() if k != "rocket_launch"} == \
            {k: v for k, v in example.items() if k != "rocket_launch"}, name

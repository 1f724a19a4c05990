"""Issue 13, point 6: the Jinja templates are package data, read through importlib.resources.

A wheel is built from a copy of the sources (offline, no build isolation), installed without
dependencies into a fresh temporary venv whose only extra path is the project venv's
site-packages (for the dependencies; its .pth files, the editable hook among them, are not run),
and a fresh interpreter of that venv renders one template of each kind (jobs, lammps, launchpad,
mace, vasp) through argyro's own functions. The copy that renders is the installed one, never
the source tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

TEMPLATES = REPO / "argyro_fw" / "templates"
KINDS = ("jobs", "lammps", "launchpad", "mace", "report", "vasp")

# Runs inside the temporary venv (python -I: no cwd, no PYTHON* variables on sys.path).
PROBE = textwrap.dedent(
    r"""
    import json, sys
    from pathlib import Path

    import yaml

    import argyro_fw
    from argyro_fw.cli import main
    from argyro_fw.md.protocol import MDProtocol, render_input
    from argyro_fw.paths import templates_dir
    from argyro_fw.queue.adapter import ArgyroQueueAdapter

    out = Path(sys.argv[1])
    texts = {}
    # vasp: `argyro render vasp Li --kind e0` (an element symbol: no structure file needed)
    assert main(["render", "vasp", "Li", "--kind", "e0", "--vasp-cmd", "srun -n 4 vasp_std",
                 "-o", str(out / "vasp")]) == 0
    texts["vasp/INCAR"] = (out / "vasp" / "INCAR").read_text()
    texts["vasp/KPOINTS"] = (out / "vasp" / "KPOINTS").read_text()
    texts["vasp/run.sh"] = (out / "vasp" / "run.sh").read_text()
    # mace: `argyro render mace --kind committee`
    for name in ("foundation.model", "train.xyz"):
        (out / name).write_text("")
    assert main(["render", "mace", "--kind", "committee", "--foundation", str(out / "foundation.model"),
                 "--train", str(out / "train.xyz"), "--seed", "7", "--device", "cpu", "-o", str(out / "mace")]) == 0
    texts["mace/train.sh"] = (out / "mace" / "train.sh").read_text()
    # launchpad: `argyro init --site slurm` (database from $ARGYRO_DB_URI, not contacted)
    assert main(["init", "--site", "slurm", "--no-check", "--dir", str(out / "lp")]) == 0
    for name in ("my_launchpad.yaml", "my_fworker.yaml", "my_qadapter.yaml"):
        texts["launchpad/" + name] = (out / "lp" / name).read_text()
    # jobs: the Slurm job script argyro's queue adapter writes for that my_qadapter.yaml
    qa = yaml.safe_load(texts["launchpad/my_qadapter.yaml"])
    qa = dict(qa, job_name="pkg-check", walltime="02:30:00")
    texts["jobs/slurm.sh"] = ArgyroQueueAdapter({k: v for k, v in qa.items() if k != "_fw_name"}).get_script_str(
        str(out / "launch"))
    # lammps: the MD input of one segment
    texts["lammps/in.md"] = render_input(MDProtocol(temperature=523.0, npt_ns=0.001, nvt_ps=1.0), "external",
                                         "system.data", "traj.lammpstrj", "restart")
    # report: `argyro report` of an empty study database (every section pending)
    assert main(["--uri", sys.argv[2], "init", "--site", "local", "--dir", str(out / "lpr")]) == 0
    assert main(["report", "-l", str(out / "lpr" / "my_launchpad.yaml"), "-o", str(out / "report")]) == 0
    texts["report/report.html"] = (out / "report" / "report.html").read_text()
    print(json.dumps({"argyro_fw": argyro_fw.__file__, "templates": str(templates_dir()), "sys_path": sys.path,
                      "texts": texts}))
    """
)


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, **kw)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built offline from a copy of pyproject.toml and argyro_fw/ (no build/ left in the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    shutil.copy2(REPO / "pyproject.toml", src)
    if (REPO / "README.md").is_file():
        shutil.copy2(REPO / "README.md", src)
    shutil.copytree(REPO / "argyro_fw", src / "argyro_fw", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(tmp / "dist"), str(src)], cwd=src)
    (whl,) = (tmp / "dist").glob("argyro-*.whl")
    return whl


def test_wheel_holds_every_template(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(REPO).as_posix() for p in TEMPLATES.rglob("*") if p.is_file()}
    assert {Path(s).parent.name for s in source} == set(KINDS)
    assert not source - names, f"templates missing from the wheel (pyproject package-data): {sorted(source - names)}"


def test_installed_copy_renders_every_kind(wheel, tmp_path, db_settings):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # the dependencies: the project venv's site-packages, as a plain path (its .pth files are not run,
    # so the editable install's finder that maps argyro_fw onto the checkout is not installed)
    deps = Path(sysconfig.get_paths()["purelib"])
    (site / "argyro-test-deps.pth").write_text(f"{deps}\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ARGYRO_", "PYTHON", "VIRTUAL_ENV")) and k != "SLURM_CONF"}
    env.update(ARGYRO_HOME=str(tmp_path / "home"), ARGYRO_DB_URI="mongodb://127.0.0.1:1/pkgcheck", HOME=str(tmp_path))
    report_db = f"mongodb://{db_settings.host}:{db_settings.port}/pkgcheck_report"
    res = json.loads(_run([str(py), "-I", str(probe), str(out), report_db], cwd=tmp_path,
                          env=env).stdout.splitlines()[-1])

    # the copy that ran is the installed one, not the source tree
    installed = Path(res["argyro_fw"]).resolve()
    assert installed.is_relative_to(site.resolve()) and not installed.is_relative_to(REPO), installed
    assert Path(res["templates"]).resolve() == installed.parent / "templates"
    assert str(REPO) not in res["sys_path"] and str(REPO / "argyro_fw") not in res["sys_path"]

    t = res["texts"]
    assert "argyro e0: isolated Li atom" in t["vasp/INCAR"] and "ISPIN  = 2" in t["vasp/INCAR"]
    assert t["vasp/KPOINTS"].splitlines()[3].split() == ["1", "1", "1"]
    assert "--vasp-cmd 'srun -n 4 vasp_std'" in t["vasp/run.sh"] and str(out / "vasp") in t["vasp/run.sh"]
    assert "mace_run_train --name=committee_7" in t["mace/train.sh"] and "--seed=7" in t["mace/train.sh"]
    assert "port: 1\n" in t["launchpad/my_launchpad.yaml"] and 'name: "pkgcheck"' in t["launchpad/my_launchpad.yaml"]
    assert 'name: "argyro-slurm"' in t["launchpad/my_fworker.yaml"]
    assert "argyro_fw.queue.adapter.ArgyroQueueAdapter" in t["launchpad/my_qadapter.yaml"]
    assert "#SBATCH --job-name=pkg-check" in t["jobs/slurm.sh"] and "#SBATCH --time=02:30:00" in t["jobs/slurm.sh"]
    assert f"cd {out / 'launch'}" in t["jobs/slurm.sh"] and "rlaunch -l" in t["jobs/slurm.sh"]
    assert "T = 523.0 K" in t["lammps/in.md"]
    assert t["report/report.html"].lstrip().lower().startswith("<!doctype html") and "<script" not in t["report/report.html"]
    assert all(f'<h2 id="{s}"' in t["report/report.html"] for s in ("terminations", "interfaces", "md", "diffusion"))
    assert "fix             nvt all nvt temp 523.0 523.0 0.1" in t["lammps/in.md"]

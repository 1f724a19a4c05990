"""Issue 8, acceptance 4 (static part): hadolint on the Dockerfile, apptainer.def structure.

The image build itself (`docker build --target cpu` on a locally made base) runs in .ci/run
only when ARGYRO_DOCKER_BUILD=1; this file says so when it is skipped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def test_hadolint_passes():
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    proc = subprocess.run([exe, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_targets_and_pins():
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM \$\{CPU_BASE\} AS cpu$", text, re.M) and re.search(r"^FROM \$\{CUDA_BASE\} AS gpu$", text, re.M)
    assert "ARG CUDA_BASE=" in text and "ARG KOKKOS_ARCH=" in text
    for flag in ("-DPKG_KOKKOS=ON", "-DKokkos_ENABLE_CUDA=ON", "-DPKG_ML-IAP=ON", "-DPKG_ML-SNAP=ON", "-DPKG_PYTHON=ON",
                 "-DBUILD_MPI=ON"):
        assert flag in text
    # cuequivariance and its ops package pinned to the same version (PLATFORM.md GPU speed trap)
    vers = dict(re.findall(r'"(cuequivariance(?:-torch|-ops-torch-cu12)?)==([\d.]+)"', text))
    assert len(vers) == 3 and len(set(vers.values())) == 1
    assert "torch==${TORCH_VERSION}" in text or "torch==2.13.0" in text


def test_apptainer_def_parses_and_points_at_the_docker_image():
    from spython.main.parse.parsers import SingularityParser

    text = (REPO / "apptainer.def").read_text()
    assert re.search(r"^Bootstrap:\s*docker-daemon$", text, re.M)
    assert re.search(r"^From:\s*argyro:gpu$", text, re.M)
    for section in ("%environment", "%runscript", "%labels", "%test"):
        assert re.search(rf"^{section}\s*$", text, re.M), section
    recipe = list(SingularityParser(str(REPO / "apptainer.def")).recipe.values())[0]
    assert recipe.fromHeader == "argyro:gpu"
    assert any(e.startswith("PATH=/opt/lammps/bin") for e in recipe.environ)
    assert "argyro" in recipe.cmd and recipe.labels


def test_docker_build_cpu_is_run_or_reported():
    if os.environ.get("ARGYRO_DOCKER_BUILD") != "1":
        print("SKIPPED-BY-DEFAULT: docker build --target cpu runs in .ci/run (containers/ci_docker_build.sh), "
              "or here with ARGYRO_DOCKER_BUILD=1")
        pytest.skip("docker image build runs in .ci/run, not in make test (set ARGYRO_DOCKER_BUILD=1 to run it here)")
    proc = subprocess.run(["bash", str(REPO / "containers" / "ci_docker_build.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "argyro 0." in proc.stdout and "ps4_intact_fraction" in proc.stdout

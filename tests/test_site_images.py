"""Issue 19, point 4: LAMMPS' KOKKOS code in the GPU image is built for one GPU architecture, so
the image tag names it (argyro:gpu-hopper90), each GPU site profile names the image of its
partition, and the job script of every GPU job kind (jobs: in the profile) checks the node's GPUs
against the image before the rocket (and LAMMPS) starts, failing with a message that names both.

The job scripts are rendered for every GPU job kind of every shipped profile and run here with stand-ins for
`module`, `apptainer` (runs the command with the image's ARGYRO_KOKKOS_ARCH, as the real image
sets it) and `nvidia-smi` (reports the node's compute capability)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from argyro_fw.queue.adapter import ArgyroQueueAdapter
from argyro_fw.queue.profile import resolve
from conftest import REPO


def _gpu_jobs(profile: Path) -> dict:
    """{kind: queue-adapter settings} of the profile's job kinds that hold a GPU in the container."""
    site = resolve(yaml.safe_load(profile.read_text()), "slurm")
    return {k: j.qadapter for k, j in site.kinds.items() if j.qadapter.get("gpus") and j.run_in == "container"}


SITES = sorted(p for p in (REPO / "sites").glob("*.yaml") if _gpu_jobs(p))
CASES = [(p, k) for p in SITES for k in _gpu_jobs(p)]
IDS = [f"{p.stem}-{k}" for p, k in CASES]
IMAGE = re.compile(r"argyro[-:]gpu-([a-z]+)(\d{2,3})(?:\.sif)?$")
ROCKET = "echo ROCKET-STARTED"


def _image_arch(image: str) -> tuple[str, str]:
    """(KOKKOS_ARCH, compute capability) from an image name such as .../argyro-gpu-hopper90.sif."""
    m = IMAGE.search(image)
    assert m, f"{image}: the image name must carry the Kokkos arch (argyro-gpu-<arch>.sif / argyro:gpu-<arch>)"
    digits = m.group(2)
    return (m.group(1) + digits).upper(), f"{digits[:-1]}.{digits[-1]}"


def _fake_bin(tmp_path: Path, node_cc: str) -> Path:
    b = tmp_path / "bin"
    b.mkdir(exist_ok=True)
    (b / "module").write_text("#!/bin/sh\nexit 0\n")
    (b / "nvidia-smi").write_text(f"#!/bin/sh\necho '0, NVIDIA Test GPU, {node_cc}'\n")
    # apptainer exec [--nv] [--bind X] IMAGE CMD...: run CMD with the image's environment
    (b / "apptainer").write_text(f"""#!/bin/bash
set -e
[ "$1" = exec ] || exit 64
shift
while [[ "$1" == --* ]]; do
    case "$1" in --bind) shift 2 ;; *) shift ;; esac
done
image=$1; shift
arch=$(basename "$image" | sed -E 's/^argyro-gpu-([a-z]+[0-9]+)\\.sif$/\\1/' | tr a-z A-Z)
export ARGYRO_KOKKOS_ARCH=$arch
export PATH={REPO / "containers"}:$PATH
exec "$@"
""")
    for f in b.iterdir():
        f.chmod(0o755)
    return b


def _script(profile: Path, kind: str, launch_dir: Path) -> str:
    settings = dict(_gpu_jobs(profile)[kind], scheduler="slurm", rocket_launch=ROCKET, logdir=str(launch_dir))
    return ArgyroQueueAdapter(settings).get_script_str(str(launch_dir))


def test_shipped_profiles_have_gpu_jobs():
    assert len(SITES) >= 2 and {k for _, k in CASES} == {"mace-train", "mlip-md", "lammps-md"}
    for p in SITES:  # jobs without a GPU (VASP, analysis on CPU nodes) do not run the GPU check
        for kind, job in resolve(yaml.safe_load(p.read_text()), "slurm").kinds.items():
            if kind not in _gpu_jobs(p):
                assert not any("argyro-gpu-check" in ln for ln in job.qadapter.get("pre_rocket", [])), (p.stem, kind)


@pytest.mark.parametrize("profile, kind", CASES, ids=IDS)
def test_profile_names_its_partitions_image_and_checks_it_before_the_rocket(profile, kind, tmp_path):
    prof = _gpu_jobs(profile)[kind]
    arch, _cc = _image_arch(prof["container_image"])
    assert prof.get("partition"), "a GPU profile is for one partition"
    checks = [ln for ln in prof.get("pre_rocket", []) if "argyro-gpu-check" in ln]
    assert len(checks) == 1, "pre_rocket must run argyro-gpu-check in the image"
    argv = shlex.split(checks[0])
    assert argv[:2] == ["apptainer", "exec"] and "--nv" in argv and argv[-1] == "argyro-gpu-check"
    assert argv[-2] == prof["container_image"], "the check must run in the same image as the job"
    script = _script(profile, kind, tmp_path)
    lines = script.splitlines()
    i_check = next(i for i, ln in enumerate(lines) if "argyro-gpu-check" in ln)
    i_rocket = next(i for i, ln in enumerate(lines) if ln.endswith(ROCKET))
    assert i_check < i_rocket and "set -eo pipefail" in script
    assert f"apptainer exec --nv --bind /scratch {prof['container_image']} {ROCKET}" in script
    assert f"--partition={prof['partition']}" in script and "--gres=gpu:" in script


def test_profiles_give_each_partition_its_own_architecture():
    seen = {}
    for p, kind in CASES:
        prof = _gpu_jobs(p)[kind]
        arch, _ = _image_arch(prof["container_image"])
        assert seen.setdefault(prof["partition"], arch) == arch
    assert len(set(seen.values())) >= 2, "the shipped examples show two partitions with different GPUs"


@pytest.mark.parametrize("profile, kind", CASES, ids=IDS)
def test_job_on_a_node_of_another_architecture_fails_before_lammps(profile, kind, tmp_path):
    prof = _gpu_jobs(profile)[kind]
    arch, cc = _image_arch(prof["container_image"])
    other = "8.0" if cc != "8.0" else "9.0"
    for node_cc, ok in ((cc, True), (other, False)):
        d = tmp_path / node_cc
        d.mkdir()
        (d / "job.sh").write_text(_script(profile, kind, d))
        env = dict(os.environ, PATH=f"{_fake_bin(d, node_cc)}:{os.environ['PATH']}")
        proc = subprocess.run(["bash", str(d / "job.sh")], capture_output=True, text=True, env=env, cwd=d)
        out = proc.stdout + proc.stderr
        if ok:
            assert proc.returncode == 0, out
            assert "ROCKET-STARTED" in out and f"compute capability {cc} matches the image ({arch})" in out
        else:
            assert proc.returncode == 3, out
            assert "ROCKET-STARTED" not in out  # nothing ran: no rocket, no LAMMPS
            assert f"has compute capability {other}" in out and f"Kokkos for {arch} (compute capability {cc})" in out


def test_gpu_check_reads_every_kokkos_arch_name(tmp_path):
    check = REPO / "containers" / "argyro-gpu-check"
    for arch, cc in (("AMPERE80", "8.0"), ("AMPERE86", "8.6"), ("ADA89", "8.9"), ("HOPPER90", "9.0"),
                     ("BLACKWELL100", "10.0"), ("BLACKWELL120", "12.0"), ("TURING75", "7.5")):
        (tmp_path / arch).mkdir()
        b = _fake_bin(tmp_path / arch, cc)
        env = dict(os.environ, PATH=f"{b}:{os.environ['PATH']}", ARGYRO_KOKKOS_ARCH=arch)
        proc = subprocess.run(["sh", str(check)], capture_output=True, text=True, env=env)
        assert proc.returncode == 0 and f"compute capability {cc} matches" in proc.stdout, proc.stderr
    # no GPU passed into the container: a clear failure, not a silent pass
    env = dict(os.environ, PATH="/usr/bin:/bin", ARGYRO_KOKKOS_ARCH="HOPPER90")
    proc = subprocess.run(["sh", str(check)], capture_output=True, text=True, env=env)
    assert proc.returncode == 3 and "no GPU visible" in proc.stderr

"""The command prefix that runs a job's command inside the container image."""

from __future__ import annotations

import os

RUNTIMES = ("apptainer", "singularity", "docker", "podman", "charliecloud", "none")


def container_prefix(runtime: str, image: str | None, binds: list[str], gpu: bool, workdir: str,
                     env_names: list[str] | None = None) -> list[str]:
    """argv prefix for ``runtime``: apptainer/singularity exec [--nv] [--bind ...] IMAGE; docker/podman
    run --rm --network host --entrypoint '' [--user UID:GID] [GPU flags] -v ... [-e NAME ...] -w WORKDIR IMAGE;
    charliecloud ch-run [--bind=...] IMAGE --; none: []. ``env_names``: variables the job script exports that
    the command needs (apptainer, singularity and ch-run pass the job's environment through; docker and podman
    get ``-e NAME``).

    docker/podman: the command given is a whole command line (``argyro rlaunch ...``, as ``apptainer exec``
    runs it), so the image's ENTRYPOINT (``argyro``) is cleared: kept, the job would run ``argyro argyro
    rlaunch`` (found by ``argyro rehearse --container docker``). Docker runs as the submitting user
    (``--user``, its uid:gid when the script is rendered, with HOME the job's folder), so files in the bound
    folders stay that user's; rootless podman maps the user itself."""
    if runtime not in RUNTIMES:
        raise ValueError(f"container_runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}")
    if runtime == "none":
        return []
    if not image:
        raise ValueError(f"container_runtime {runtime} needs container_image")
    if runtime in ("apptainer", "singularity"):
        cmd = [runtime, "exec"] + (["--nv"] if gpu else [])
        if binds:
            cmd += ["--bind", ",".join(binds)]
        return cmd + [image]
    if runtime in ("docker", "podman"):
        cmd = [runtime, "run", "--rm", "--network", "host", "--entrypoint", ""]
        if runtime == "docker":
            cmd += ["--user", f"{os.getuid()}:{os.getgid()}", "-e", f"HOME={workdir}"]
        if gpu:
            cmd += ["--gpus", "all"] if runtime == "docker" else ["--device", "nvidia.com/gpu=all"]
        for b in binds + [workdir]:
            src = b.split(":")[0]
            cmd += ["-v", b if ":" in b else f"{src}:{src}"]
        for name in env_names or []:
            cmd += ["-e", name]
        return cmd + ["-w", workdir, image]
    cmd = ["ch-run"] + [f"--bind={b}" for b in binds] + ["--cd", workdir, image, "--"]
    return cmd

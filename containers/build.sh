#!/usr/bin/env bash
# Build the argyro images: the Docker image (target gpu or cpu), then the Apptainer image from it.
#   containers/build.sh gpu [KOKKOS_ARCH]   -> docker image argyro:gpu, apptainer image argyro.sif
#   containers/build.sh cpu                 -> docker image argyro:cpu
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-gpu}
ARCH=${2:-HOPPER90}
docker build --target "$TARGET" --build-arg KOKKOS_ARCH="$ARCH" -t "argyro:$TARGET" .
if [ "$TARGET" = gpu ]; then
    if command -v apptainer >/dev/null; then apptainer build argyro.sif apptainer.def
    elif command -v singularity >/dev/null; then singularity build argyro.sif apptainer.def
    else echo "no apptainer/singularity here: copy the docker image to the cluster and run 'apptainer build argyro.sif apptainer.def' there"
    fi
fi

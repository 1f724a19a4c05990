#!/usr/bin/env bash
# Build the argyro images: the Docker image (target gpu or cpu), then the Apptainer image from it.
#   containers/build.sh gpu [KOKKOS_ARCH]   -> docker image argyro:gpu-<arch> (e.g. argyro:gpu-hopper90),
#                                              apptainer image argyro-gpu-<arch>.sif where apptainer exists
#   containers/build.sh cpu                 -> docker image argyro:cpu
# KOKKOS_ARCH is the Kokkos name of the GPUs' architecture; its digits are the compute capability
# (`nvidia-smi --query-gpu=compute_cap --format=csv` on a compute node): VOLTA70 is not supported by
# CUDA 13; TURING75, AMPERE80 (A100), AMPERE86, ADA89 (L40S), HOPPER90 (H100/H200),
# BLACKWELL100 (B200), BLACKWELL120. LAMMPS' KOKKOS code runs only on that architecture: one image
# per GPU partition, named in the site profile (sites/*.yaml), checked on the node by argyro-gpu-check.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${1:-gpu}
if [ "$TARGET" = gpu ]; then
    ARCH=${2:-HOPPER90}
    if ! [[ "$ARCH" =~ ^[A-Z]+[0-9]{2,3}$ ]]; then
        echo "KOKKOS_ARCH '$ARCH': expected a Kokkos GPU architecture such as AMPERE80 or HOPPER90" >&2
        exit 2
    fi
    TAG="gpu-${ARCH,,}"
    docker build --target gpu --build-arg KOKKOS_ARCH="$ARCH" -t "argyro:$TAG" .
    if command -v apptainer >/dev/null; then apptainer build --build-arg TAG="$TAG" "argyro-$TAG.sif" apptainer.def
    else
        echo "no apptainer here. On the cluster, either"
        echo "  docker save argyro:$TAG -o argyro-$TAG.tar   # copy it there, then in its folder:"
        echo "  apptainer build --build-arg TAG=$TAG argyro-$TAG.sif containers/apptainer-archive.def"
        echo "or push argyro:$TAG to a registry and: apptainer build argyro-$TAG.sif docker://REGISTRY/argyro:$TAG"
    fi
else
    docker build --target "$TARGET" -t "argyro:$TARGET" .
fi

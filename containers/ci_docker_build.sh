#!/usr/bin/env bash
# CI: build the Dockerfile's cpu target on a locally made Debian base (no image can be pulled
# here) and run argyro inside it: --version and a tiny analysis of kinisi's XDATCAR.
# Starts its own dockerd (root, no iptables/bridge) and stops it by its pid file.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${ARGYRO_DOCKER_WORK:-$ROOT/.ci/work/docker}
mkdir -p "$W"
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
fi
dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$W/data" --exec-root "$W/exec" \
    -H "unix://$W/docker.sock" --pidfile "$W/docker.pid" > "$W/dockerd.log" 2>&1 &
stop_dockerd() {
    local pid
    pid=$(cat "$W/docker.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    # dockerd leaves its network-namespace and overlay mounts behind: release them
    grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
}
trap stop_dockerd EXIT
export DOCKER_HOST="unix://$W/docker.sock"
for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
if ! docker image inspect argyro-base:bookworm >/dev/null 2>&1; then
    rm -rf "$W/rootfs"
    MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$W/rootfs" \
        "${MIRROR:-http://deb.debian.org/debian}" >/dev/null
    cp /etc/ssl/certs/ca-certificates.crt "$W/rootfs/etc/ssl/certs/ca-certificates.crt"
    tar -C "$W/rootfs" -c . | docker import - argyro-base:bookworm >/dev/null
fi
CTX="$W/context"
rm -rf "$CTX" && mkdir -p "$CTX"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 tar -c) | tar -x -C "$CTX"
WHEEL=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)
SPEC=torch==2.13.0
if [ -n "$WHEEL" ]; then cp "$WHEEL" "$CTX/containers/wheels/"; SPEC="/opt/argyro/wheels/$(basename "$WHEEL")"; fi
docker build --network host --target cpu --build-arg CPU_BASE=argyro-base:bookworm --build-arg TORCH_SPEC="$SPEC" \
    -t argyro:cpu "$CTX"
docker run --rm --network host argyro:cpu --version
docker run --rm --network host --entrypoint sh argyro:cpu -c \
    'argyro analyze "$(python -c "import kinisi, os; print(os.path.dirname(kinisi.__file__))")/tests/inputs/example_XDATCAR.gz" -o /tmp/a.h5 --quiet'

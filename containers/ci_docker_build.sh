#!/usr/bin/env bash
# CI: build the Dockerfile's cpu target from its default base as written (no --build-arg CPU_BASE),
# run argyro inside it (--version and a tiny analysis of kinisi's XDATCAR), then write the image's
# archive (docker save) and check that the Apptainer archive variant (containers/apptainer-archive.def)
# names it. The build itself runs ldd on lmp and liblammps (Dockerfile).
# No image can be pulled here: the Dockerfile's default base (ARG CPU_BASE, debian:bookworm-slim) is
# stood in for by a Debian bookworm minbase made with debootstrap and tagged with exactly that name;
# like the official image it has apt but no python3 and no CA certificates, so the Dockerfile's own
# apt-get install is what provides them.
# Uses the dockerd of $DOCKER_HOST when one answers there (.ci/run starts one with containers/dockerd.sh and
# keeps it for the rehearsal); otherwise starts its own (containers/dockerd.sh) and stops it at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=${ARGYRO_DOCKER_WORK:-$ROOT/.ci/work/docker}
mkdir -p "$W"
if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    echo "using the running dockerd at $DOCKER_HOST"  # .ci/run's, kept for the rehearsal's jobs
else
    DOCKER_HOST=$(bash "$ROOT/containers/dockerd.sh" start "$W")
    trap 'bash "$ROOT/containers/dockerd.sh" stop "$W"' EXIT
fi
export DOCKER_HOST
command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap >/dev/null

BASE=$(sed -n 's/^ARG CPU_BASE=//p' "$ROOT/Dockerfile")
if [ -z "$BASE" ]; then echo "Dockerfile: no 'ARG CPU_BASE=' default" >&2; exit 1; fi
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    rm -rf "$W/rootfs"
    MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    debootstrap --variant=minbase bookworm "$W/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >/dev/null
    for f in usr/bin/python3 etc/ssl/certs/ca-certificates.crt; do
        if [ -e "$W/rootfs/$f" ]; then echo "stand-in base has /$f: not as bare as $BASE" >&2; exit 1; fi
    done
    # site trust, not image content: this network intercepts TLS, so the host's extra CA certificates go
    # where update-ca-certificates (run when the Dockerfile installs ca-certificates) adds them to the bundle
    mkdir -p "$W/rootfs/usr/local/share/ca-certificates"
    for crt in /usr/local/share/ca-certificates/*.crt; do
        if [ -f "$crt" ]; then cp "$crt" "$W/rootfs/usr/local/share/ca-certificates/"; fi
    done
    tar -C "$W/rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["bash"]' \
        --change 'LABEL org.argyro.ci-stand-in=debootstrap-minbase-bookworm' - "$BASE" >/dev/null
    echo "stand-in for $BASE: debootstrap --variant=minbase bookworm (no python3, no CA certificates)"
fi

CTX="$W/context"
rm -rf "$CTX" && mkdir -p "$CTX"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 tar -c) | tar -x -C "$CTX"
WHEEL=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)
SPEC=torch==2.13.0
if [ -n "$WHEEL" ]; then cp "$WHEEL" "$CTX/containers/wheels/"; SPEC="/opt/argyro/wheels/$(basename "$WHEEL")"; fi
docker build --network host --target cpu --build-arg TORCH_SPEC="$SPEC" -t argyro:cpu "$CTX"
docker run --rm --network host argyro:cpu --version
docker run --rm --network host --entrypoint sh argyro:cpu -c \
    'argyro analyze "$(python -c "import kinisi, os; print(os.path.dirname(kinisi.__file__))")/tests/inputs/example_XDATCAR.gz" -o /tmp/a.h5 --quiet'
# the lmp binary itself starts (LD_LIBRARY_PATH set by the image)
docker run --rm --network host --entrypoint sh argyro:cpu -c 'lmp -h | grep -m1 -E "^Large-scale|^LAMMPS"'

# Apptainer without Docker on the cluster: the image's archive, and the def file that builds from it
ARCHIVE="$W/argyro-cpu.tar"
docker save argyro:cpu -o "$ARCHIVE"
tar -xOf "$ARCHIVE" manifest.json | grep -q '"argyro:cpu"' \
    || { echo "archive $ARCHIVE: manifest.json does not name argyro:cpu" >&2; exit 1; }
DEF="$ROOT/containers/apptainer-archive.def"
grep -qE '^Bootstrap:[[:space:]]*docker-archive[[:space:]]*$' "$DEF" \
    || { echo "$DEF: not 'Bootstrap: docker-archive'" >&2; exit 1; }
FROM=$(sed -n 's/^From:[[:space:]]*//p' "$DEF" | sed 's/{{ *TAG *}}/cpu/')
if [ "$FROM" != "$(basename "$ARCHIVE")" ]; then
    echo "$DEF: From with TAG=cpu is '$FROM', but the archive written is $(basename "$ARCHIVE")" >&2
    exit 1
fi
echo "archive: $(basename "$ARCHIVE") ($(du -h "$ARCHIVE" | cut -f1)) is what containers/apptainer-archive.def builds with --build-arg TAG=cpu"

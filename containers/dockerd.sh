#!/usr/bin/env bash
# A root dockerd for CI: `dockerd.sh start DIR` starts one with its data, exec root, socket and pid file under DIR
# (no iptables, no bridge: builds and jobs use the host network) and prints its DOCKER_HOST;
# `dockerd.sh stop DIR` stops it by its pid file and releases the mounts it leaves behind.
# Installs Debian's docker.io (and debootstrap, for containers/ci_docker_build.sh's stand-in base) if missing.
set -euo pipefail
cmd=${1:?usage: dockerd.sh start|stop DIR}
W=${2:?usage: dockerd.sh start|stop DIR}
case "$cmd" in
start)
    mkdir -p "$W"
    if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io debootstrap; } >/dev/null
    fi
    dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$W/data" --exec-root "$W/exec" \
        -H "unix://$W/docker.sock" --pidfile "$W/docker.pid" > "$W/dockerd.log" 2>&1 &
    for _ in $(seq 1 120); do
        if docker -H "unix://$W/docker.sock" info >/dev/null 2>&1; then
            echo "unix://$W/docker.sock"
            exit 0
        fi
        sleep 0.5
    done
    echo "dockerd did not start: $W/dockerd.log" >&2
    tail -20 "$W/dockerd.log" >&2
    exit 1
    ;;
stop)
    pid=$(cat "$W/docker.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
    # dockerd leaves its network-namespace and overlay mounts behind: release them
    grep -F " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    ;;
*)
    echo "usage: dockerd.sh start|stop DIR" >&2
    exit 2
    ;;
esac

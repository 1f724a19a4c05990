#!/usr/bin/env bash
# Stop the Slurm started by start.sh, by its pid files (never by process name).
DIR=$(realpath -m "${1:-.ci/work/slurm}")
for f in slurmd slurmctld munged; do
    if [ -f "$DIR/$f.pid" ]; then kill "$(cat "$DIR/$f.pid")" 2>/dev/null || true; fi
done

#!/usr/bin/env bash
# Stop the Slurm started by start.sh, by its pid files (never by process name).
DIR=$(realpath -m "${1:-.ci/work/slurm}")
for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    if [ -f "$DIR/$f" ]; then kill "$(cat "$DIR/$f")" 2>/dev/null || true; fi
done

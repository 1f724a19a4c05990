#!/usr/bin/env bash
# Stop the Slurm started by start.sh, by its pid files (never by process name).
DIR=$(realpath -m "${1:-.ci/work/slurm}")
for f in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$(cat "$DIR/munged.pidfile" 2>/dev/null)"; do
    if [ -n "$f" ] && [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
done

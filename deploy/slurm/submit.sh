#!/usr/bin/env bash
# Submits the shard array and a merge job that waits for all of it.
# Variables (SCX, SCX_SEEDS, SCX_SCENARIOS, SCX_RESULTS) pass through to both.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
array="$(sbatch --parsable --export=ALL "$here/scx-shard.sbatch")"
array="${array%%;*}"
sbatch --parsable --export=ALL --dependency="afterany:$array" "$here/scx-merge.sbatch"
echo "submitted shard array $array and its merge"

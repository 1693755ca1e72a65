#!/usr/bin/env bash
# Rerunnable benchmark of the local stack: ./bench/run.sh [--seconds N] [--connections N]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
# shellcheck source=scripts/lib/venv.sh
source "$REPO_ROOT/scripts/lib/venv.sh"
run_bench "$REPO_ROOT/bench/run.py" "hey wrk" "$@"

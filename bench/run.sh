#!/usr/bin/env bash
# Rerunnable benchmark of the local stack: ./bench/run.sh [--seconds N] [--connections N]
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  exec python3 "$REPO_ROOT/bench/run.py" --help
fi
# shellcheck source=scripts/lib/venv.sh
source "$REPO_ROOT/scripts/lib/venv.sh"
ensure_venv
ensure_redis
command -v hey >/dev/null 2>&1 || command -v wrk >/dev/null 2>&1 ||
  venv_die "bench needs a load generator: sudo apt-get install hey (or wrk)"
PATH="$REPO_ROOT/.venv/bin:$PATH" exec "$REPO_ROOT/.venv/bin/python" "$REPO_ROOT/bench/run.py" "$@"

#!/usr/bin/env bash
# What a sidecar hop costs: ./bench/mesh.sh [--rates 100,300] [--seconds 10]
# No mesh and the local mesh (real Envoy sidecars) at the same fixed request rates: latency, CPU per request, RSS.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  exec python3 "$REPO_ROOT/bench/mesh.py" --help
fi
# shellcheck source=scripts/lib/venv.sh
source "$REPO_ROOT/scripts/lib/venv.sh"
ensure_venv
ensure_redis
command -v hey >/dev/null 2>&1 || venv_die "bench needs hey for fixed request rates: sudo apt-get install hey"
PATH="$REPO_ROOT/.venv/bin:$PATH" exec "$REPO_ROOT/.venv/bin/python" "$REPO_ROOT/bench/mesh.py" "$@"

#!/usr/bin/env bash
# What a sidecar hop costs: ./bench/mesh.sh [--rates 100,300] [--seconds 10] [--mesh istio,linkerd]
# No mesh and the local mesh under each mesh's files (real Envoy sidecars both times: under linkerd it is Envoy
# enforcing Linkerd's intents, not linkerd2-proxy) at the same fixed request rates: latency, CPU per request, RSS.
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export REPO_ROOT
# shellcheck source=scripts/lib/venv.sh
source "$REPO_ROOT/scripts/lib/venv.sh"
run_bench "$REPO_ROOT/bench/mesh.py" "hey" "$@"

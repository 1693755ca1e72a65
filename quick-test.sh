#!/usr/bin/env bash
# quick-test.sh: one command that tells whether the shop works and what the mesh is doing.
# The checks live in scripts/quicktest/ (standard library only, run with the system python3); this wrapper checks the
# prerequisites and, in cluster mode, the context, the namespace and its mesh. The way in (the Istio ingress, a meshed
# relay pod under Linkerd) and every port-forward and throwaway pod are scripts/quicktest/access.py's, which closes
# and deletes them on any exit. Runs under macOS's bash 3.2: every array expansion guarded as ${a[@]+"${a[@]}"}.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/common.sh
source "${ROOT_DIR}/scripts/lib/common.sh"

DEFAULT_LOCAL_URL="http://localhost:5000"
DEFAULT_INVENTORY="${ROOT_DIR}/.local/mesh/inventory.json"

usage() {
  cat <<EOF
Usage: ./quick-test.sh [--cluster | --mesh istio|linkerd] [options]

Checks that the shop works and shows what the mesh does: every service healthy, the catalog through the gateway,
cart add/read/remove, a checkout repeated with the same Idempotency-Key after a decline or timeout (and nothing
charged twice), the 95/5 payment canary split, the GET success rate with catalog faults on, authorization (a
throwaway curl pod is refused by payment), mTLS, and Prometheus targets. Prints PASS / FAIL / SKIP with the reason
and the measured figures; exits 1 when any check FAILs.

Modes:
  (default)              the local stack (./run-local.sh) at ${DEFAULT_LOCAL_URL}; when the local mesh
                         (./run-local.sh --mesh istio) is running, found from its inventory, every mesh check too
  --local-mesh           the local mesh, from ${DEFAULT_INVENTORY#"${ROOT_DIR}/"} (fails when it is not running)
  --inventory FILE       the local mesh of another --data-dir (its mesh/inventory.json); implies --local-mesh
  --cluster              the cluster of the current kubectl context, namespace ${APP_NAMESPACE}; the mesh is detected
                         from the namespace (label istio-injection / annotation linkerd.io/inject)
  --mesh istio|linkerd   the cluster, with this mesh (no detection)

Options:
  --url URL              the gateway's URL (local default ${DEFAULT_LOCAL_URL}; in a cluster it replaces the
                         ingress / relay discovery)
  --service-urls LIST    local mode: name=url,... of the services to probe directly (default: the local ports of
                         docs/architecture.md when the gateway is on port 5000)
  --prometheus-url URL   the Prometheus whose targets to check (cluster default: found and port-forwarded)
  -n, --samples N        calls measured by the canary and success-rate checks (default 200)
  --json                 print the results as JSON on stdout (progress goes to stderr)
  --curl-image IMAGE     image of the throwaway authorization pod (default: a pinned curlimages/curl)
$(common_usage)

Examples:
  ./quick-test.sh                          # the local stack
  ./quick-test.sh --mesh istio -n 400      # a cluster running Istio, 400 samples
  ./quick-test.sh --cluster --json | jq .summary
EOF
}

MODE="local"
LOCAL_MESH=""
MESH=""
URL=""
PROMETHEUS_URL=""
PY_ARGS=()
CHECKS_PID=""

parse_args() {
  while (($#)); do
    case "$1" in
      --cluster) MODE="cluster" ;;
      --mesh)
        [[ "${2:-}" =~ ^(istio|linkerd)$ ]] || die "--mesh takes istio or linkerd, got '${2:-}'" 2
        MODE="cluster"
        MESH="$2"
        shift
        ;;
      --url)
        [[ "${2:-}" =~ ^https?:// ]] || die "--url needs an http(s) URL, got '${2:-}'" 2
        URL="$2"
        shift
        ;;
      --prometheus-url)
        [[ "${2:-}" =~ ^https?:// ]] || die "--prometheus-url needs an http(s) URL, got '${2:-}'" 2
        PROMETHEUS_URL="$2"
        shift
        ;;
      -n | --samples)
        [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive whole number, got '${2:-}'" 2
        PY_ARGS+=(--samples "$2")
        shift
        ;;
      --service-urls | --curl-image)
        [[ -n "${2:-}" ]] || die "$1 needs a value (see --help)" 2
        PY_ARGS+=("$1" "$2")
        shift
        ;;
      --json) PY_ARGS+=(--json) ;;
      --local-mesh) LOCAL_MESH="$DEFAULT_INVENTORY" ;;
      --inventory)
        [[ -n "${2:-}" ]] || die "--inventory needs a file (a local mesh's mesh/inventory.json)" 2
        LOCAL_MESH="$2"
        shift
        ;;
      *) parse_common_flag "$1" || die "unknown option: $1 (see --help)" 2 ;;
    esac
    shift
  done
}

# Everything the wrapper says goes to stderr, so that stdout holds only the table or the JSON.
say_step() { log_step "$@" >&2; }
say() { log_info "$@" >&2; }

cleanup() {
  # The checks close their port-forwards and delete their throwaway pods when they get TERM (Ctrl-C, a timeout).
  if [[ -n "$CHECKS_PID" ]] && kill -0 "$CHECKS_PID" 2>/dev/null; then
    kill -TERM "$CHECKS_PID" 2>/dev/null || true
    wait "$CHECKS_PID" 2>/dev/null || true
  fi
}

# json_get EXPR: the value of the Python expression EXPR over `d`, the JSON read from stdin ('' when the input is
# empty, not JSON, or lacks the field).
json_get() {
  python3 -c '
import json, sys
try:
    value = eval(sys.argv[1], {}, {"d": json.load(sys.stdin)})
except (ValueError, KeyError, IndexError, TypeError, AttributeError):
    value = ""
print("" if value is None else value)' "$1"
}

require_namespace() {
  local output
  if ! output="$(kube get namespace "$APP_NAMESPACE" -o json 2>&1)"; then
    if [[ "$output" == *NotFound* || "$output" == *"not found"* ]]; then
      die "namespace ${APP_NAMESPACE} not found in context ${CLUSTER_CONTEXT}: deploy first (./deploy-istio.sh or ./deploy-linkerd.sh)"
    fi
    die "cluster of context ${CLUSTER_CONTEXT} is not reachable ($(printf '%s' "$output" | head -n 1)): start it or switch context"
  fi
  NAMESPACE_JSON="$output"
}

detect_mesh() {
  local istio linkerd
  istio="$(json_get 'd["metadata"].get("labels", {}).get("istio-injection")' <<<"$NAMESPACE_JSON")"
  linkerd="$(json_get 'd["metadata"].get("annotations", {}).get("linkerd.io/inject")' <<<"$NAMESPACE_JSON")"
  if [[ "$istio" == enabled ]]; then
    MESH="istio"
  elif [[ "$linkerd" == enabled ]]; then
    MESH="linkerd"
  else
    MESH="none"
    log_warn "namespace ${APP_NAMESPACE} has neither istio-injection=enabled nor linkerd.io/inject=enabled: mesh checks will SKIP"
  fi
}

prepare_cluster() {
  require_cmd kubectl "$KUBECTL_HINT"
  CLUSTER_CONTEXT="$(kubectl config current-context 2>/dev/null)" ||
    die "kubectl has no current context: pick one with kubectl config use-context NAME"
  say "kubectl context: ${CLUSTER_CONTEXT}"
  require_namespace
  if [[ -z "$MESH" ]]; then
    detect_mesh
    say "mesh detected: ${MESH}"
  fi
}

# local_mesh_running: the default inventory exists and its ingress answers (a stale one does not count).
local_mesh_running() {
  local ingress
  [[ -f "$DEFAULT_INVENTORY" ]] || return 1
  ingress="$(json_get 'd["ingress"]["url"]' <"$DEFAULT_INVENTORY")"
  [[ -n "$ingress" ]] && curl -fsS -m 2 -o /dev/null "${ingress}/health" 2>/dev/null
}

main() {
  parse_args "$@"
  require_cmd python3 "install Python 3 (apt-get install python3 / brew install python)"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  if [[ "$MODE" == cluster ]]; then
    say_step "quick-test: cluster, namespace ${APP_NAMESPACE}"
    prepare_cluster
    PY_ARGS+=(--mode cluster --mesh "$MESH" --namespace "$APP_NAMESPACE")
    [[ -z "$URL" ]] || PY_ARGS+=(--url "$URL" --access "given URL")
  elif [[ -n "$LOCAL_MESH" ]] || { [[ -z "$URL" ]] && local_mesh_running; }; then
    LOCAL_MESH="${LOCAL_MESH:-$DEFAULT_INVENTORY}"
    say_step "quick-test: local mesh, from ${LOCAL_MESH}"
    URL="${URL:-$DEFAULT_LOCAL_URL}"
    PY_ARGS+=(--mode local --local-mesh "$LOCAL_MESH")
  else
    URL="${URL:-$DEFAULT_LOCAL_URL}"
    say_step "quick-test: local stack at ${URL}"
    PY_ARGS+=(--mode local --url "$URL")
  fi
  [[ -z "$PROMETHEUS_URL" ]] || PY_ARGS+=(--prometheus-url "$PROMETHEUS_URL")
  [[ -z "${NO_COLOR:-}" ]] || PY_ARGS+=(--no-color)
  [[ "$DRY_RUN" != 1 ]] || PY_ARGS+=(--dry-run)

  # The project-local CLIs the deploy scripts install, after the user's own.
  PATH="${PATH}:${TOOLS_BIN}"
  # In the background and waited for, so that INT/TERM reach the traps at once and cleanup() runs.
  local status=0
  PYTHONPATH="${ROOT_DIR}/scripts${PYTHONPATH:+:${PYTHONPATH}}" python3 -m quicktest ${PY_ARGS[@]+"${PY_ARGS[@]}"} &
  CHECKS_PID=$!
  wait "$CHECKS_PID" || status=$?
  CHECKS_PID=""
  return "$status"
}

main "$@"

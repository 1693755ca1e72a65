# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file
# The library every root script sources (build, deploy, uninstall, quick-test); mesh.sh builds the deploy and
# uninstall steps on it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"
#
# It defines: logging (log_step, log_info, log_warn, die), prerequisite checks (require_cmd, require_cluster),
# the `run` wrapper every state-changing command goes through (what makes --dry-run honest), confirm (--yes),
# common option parsing (--help, --dry-run, --yes), rollout waiting with diagnostics, the version pins and the
# checksum-verified download of istioctl / linkerd into a project-local folder.
# Functions only; the sourcing script owns `set -euo pipefail` and its own main().

# Guard against double sourcing (quick-test.sh and a deploy script may both source it).
if [[ -n "${_COMMON_SH_LOADED:-}" ]]; then
  return 0
fi
_COMMON_SH_LOADED=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# ---------------------------------------------------------------------------------------------------------------
# Version pins and names (one place; docs/upstream-facts.md and docs/deploy.md, "Versions", say why these versions).
# ---------------------------------------------------------------------------------------------------------------
ISTIO_VERSION="${ISTIO_VERSION:-1.30.4}"   # 1.30.4 fixes the Envoy CVEs of ISTIO-SECURITY-2026-006 that 1.30.3 has
LINKERD_VERSION="${LINKERD_VERSION:-edge-26.6.3}"   # Linkerd 2.20; the open-source project ships edge releases only
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.2.1}"

# Where the CLIs and add-ons come from. Overridable so tests (and air-gapped mirrors) can serve them locally.
ISTIO_RELEASE_BASE_URL="${ISTIO_RELEASE_BASE_URL:-https://github.com/istio/istio/releases/download}"
# The add-ons of the pinned release tag, never of a release branch (a branch moves under a pinned install).
ISTIO_ADDONS_BASE_URL="${ISTIO_ADDONS_BASE_URL:-https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons}"
LINKERD_RELEASE_BASE_URL="${LINKERD_RELEASE_BASE_URL:-https://github.com/linkerd/linkerd2/releases/download}"
# Linkerd publishes no .sha256 files since edge-25.9.4 (linkerd/linkerd2#14511): the sha256 of each asset comes from
# the digest GitHub's release API lists for it (assets[].digest, "sha256:<hex>"). LINKERD_CLI_SHA256 pins it instead
# (a mirror without that API).
LINKERD_RELEASE_API_URL="${LINKERD_RELEASE_API_URL:-https://api.github.com/repos/linkerd/linkerd2/releases/tags}"
GATEWAY_API_BASE_URL="${GATEWAY_API_BASE_URL:-https://github.com/kubernetes-sigs/gateway-api/releases/download}"

APP_NAMESPACE="${APP_NAMESPACE:-e-commerce}"
TOOLS_BIN="${TOOLS_BIN:-${REPO_ROOT}/.tools/bin}"
# The unique tag of each image of the last ./build.sh, which the deploy scripts roll out (git-ignored, like .tools/).
IMAGE_TAGS_FILE="${IMAGE_TAGS_FILE:-${REPO_ROOT}/.tools/image-tags}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-300s}"   # normalised by as_duration below: every CLI takes a Go duration
KUBECTL_REQUEST_TIMEOUT="${KUBECTL_REQUEST_TIMEOUT:-15s}"
# The app, a mesh and its add-ons use about 1.5-2 CPUs (docs/kubernetes.md, Footprint): below MIN_CPU_MILLI pods
# stay Pending; below RECOMMENDED_CPU_MILLI everything is slow.
MIN_CPU_MILLI="${MIN_CPU_MILLI:-2000}"
RECOMMENDED_CPU_MILLI="${RECOMMENDED_CPU_MILLI:-4000}"

# Set by parse_common_flag.
DRY_RUN="${DRY_RUN:-0}"
ASSUME_YES="${ASSUME_YES:-0}"

# ---------------------------------------------------------------------------------------------------------------
# Logging. Colour only when the stream is a terminal and NO_COLOR is unset (https://no-color.org).
# ---------------------------------------------------------------------------------------------------------------
# Decided once, here in the sourcing shell: inside $(...) stdout is a pipe, so testing -t there never sees a terminal.
_init_colours() {
  C_STEP="" C_OK="" C_OUT_RESET="" C_WARN="" C_ERROR="" C_ERR_RESET=""
  [[ -z "${NO_COLOR:-}" && "${TERM:-dumb}" != "dumb" ]] || return 0
  if [[ -t 1 ]]; then
    C_STEP=$'\033[1;34m' C_OK=$'\033[0;32m' C_OUT_RESET=$'\033[0m'
  fi
  if [[ -t 2 ]]; then
    C_WARN=$'\033[0;33m' C_ERROR=$'\033[0;31m' C_ERR_RESET=$'\033[0m'
  fi
}
_init_colours

log_step() { printf '%s==> %s%s\n' "$C_STEP" "$*" "$C_OUT_RESET"; }
log_info() { printf '    %s\n' "$*"; }
log_ok() { printf '    %sok%s %s\n' "$C_OK" "$C_OUT_RESET" "$*"; }
log_warn() { printf '%swarning:%s %s\n' "$C_WARN" "$C_ERR_RESET" "$*" >&2; }

# die MESSAGE [EXIT_CODE]: one line on stderr saying what is wrong and what to do, then exit non-zero.
die() {
  printf '%serror:%s %s\n' "$C_ERROR" "$C_ERR_RESET" "$1" >&2
  exit "${2:-1}"
}

# ---------------------------------------------------------------------------------------------------------------
# Durations. kubectl (rollout status, delete, wait), linkerd (check --wait) and helm (--timeout) parse their duration
# flags with Go's time.ParseDuration, which refuses a number without a unit ("300": missing unit) and so would turn a
# plain --timeout 300 into a failure that looks like a rollout that never became ready.
# ---------------------------------------------------------------------------------------------------------------
# as_duration VALUE: VALUE as a Go duration (whole seconds get an "s"), or non-zero for anything else.
as_duration() {
  if [[ "$1" =~ ^[0-9]+$ ]]; then
    printf '%ss\n' "$1"
  elif [[ "$1" =~ ^([0-9]+(ms|s|m|h))+$ ]]; then
    printf '%s\n' "$1"
  else
    return 1
  fi
}

# set_rollout_timeout VALUE WHERE: ROLLOUT_TIMEOUT from a flag or the environment, or stop with one line.
set_rollout_timeout() {
  ROLLOUT_TIMEOUT="$(as_duration "$1")" ||
    die "$2 needs a duration like 300s, 10m or 300 (seconds), got '$1'"
}

# ---------------------------------------------------------------------------------------------------------------
# Options shared by every script. In a script's argument loop:
#   *) parse_common_flag "$1" || die "unknown option: $1 (see --help)" ;;
# --help calls the script's own usage() and exits 0.
# ---------------------------------------------------------------------------------------------------------------
parse_common_flag() {
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --dry-run) DRY_RUN=1 ;;
    -y | --yes) ASSUME_YES=1 ;;
    --no-color)
      NO_COLOR=1
      _init_colours
      ;;
    *) return 1 ;;
  esac
}

# Text for the common flags, so every usage() lists them the same way.
common_usage() {
  cat <<'EOF'
Common options:
  --dry-run     print every command that would change the cluster or local images; change nothing
  -y, --yes     answer yes to every confirmation (needed when not on a terminal)
  --no-color    plain output even on a terminal (NO_COLOR=1 does the same)
  -h, --help    this help
EOF
}

# ---------------------------------------------------------------------------------------------------------------
# run: every command that changes state goes through here. Under --dry-run it prints the command instead.
# ---------------------------------------------------------------------------------------------------------------
_quote_cmd() {
  local out="" arg
  for arg in "$@"; do
    out+="$(printf '%q' "$arg") "
  done
  printf '%s' "${out% }"
}

run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] %s\n' "$(_quote_cmd "$@")"
    return 0
  fi
  printf '    + %s\n' "$(_quote_cmd "$@")"
  "$@"
}

# run_apply_from GENERATOR...: `GENERATOR | kubectl apply -f -`, the generator being a read-only command
# (linkerd install, kubectl kustomize). Under --dry-run neither runs: `linkerd install` needs a live cluster too.
run_apply_from() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] %s | kubectl apply -f -\n' "$(_quote_cmd "$@")"
    return 0
  fi
  printf '    + %s | kubectl apply -f -\n' "$(_quote_cmd "$@")"
  "$@" | kubectl apply -f - || die "$(_quote_cmd "$@") | kubectl apply -f - failed (see above): fix the cause and rerun"
}

# run_delete_from GENERATOR...: `GENERATOR | kubectl delete --ignore-not-found -f -` (NotFound is not an error).
run_delete_from() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] %s | kubectl delete --ignore-not-found -f -\n' "$(_quote_cmd "$@")"
    return 0
  fi
  printf '    + %s | kubectl delete --ignore-not-found -f -\n' "$(_quote_cmd "$@")"
  "$@" | kubectl delete --ignore-not-found --wait=false -f - ||
    die "$(_quote_cmd "$@") | kubectl delete -f - failed (see above): fix the cause and rerun"
}

# ---------------------------------------------------------------------------------------------------------------
# Confirmation. --yes answers yes; without a terminal and without --yes we refuse instead of hanging.
# Under --dry-run nothing changes, so the plan is shown without asking.
# ---------------------------------------------------------------------------------------------------------------
confirm() {
  local question="$1" answer
  if [[ "$ASSUME_YES" == 1 ]]; then
    log_info "$question yes (--yes)"
    return 0
  fi
  if [[ "$DRY_RUN" == 1 ]]; then
    log_info "$question (would ask; --dry-run continues)"
    return 0
  fi
  if [[ ! -t 0 ]]; then
    die "$question needs an answer but stdin is not a terminal: rerun with --yes"
  fi
  read -r -p "$question [y/N] " answer
  [[ "$answer" =~ ^([yY]|[yY][eE][sS])$ ]]
}

# ---------------------------------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------------------------------
# require_cmd NAME HINT: stop with one line when NAME is not on PATH.
require_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found on PATH: $2"
}

KUBECTL_HINT="install kubectl: https://kubernetes.io/docs/tasks/tools/"
DOCKER_HINT="install Docker Desktop, OrbStack or Docker Engine: https://docs.docker.com/get-docker/"

# require_docker_engine: the docker CLI alone is not enough; the engine must answer.
require_docker_engine() {
  require_cmd docker "$DOCKER_HINT"
  docker info >/dev/null 2>&1 ||
    die "the Docker engine is not reachable (docker info failed): start Docker Desktop/OrbStack or the docker service"
}

# kubectl with a request timeout, so an unreachable cluster fails fast instead of hanging.
kube() {
  kubectl --request-timeout="$KUBECTL_REQUEST_TIMEOUT" "$@"
}

# require_cluster: kubectl present, a current context (printed, so nobody deploys to the wrong cluster), the API
# server answering, and its nodes. Sets CLUSTER_CONTEXT and CLUSTER_NODES (lines: name, cpu, runtime, kubelet).
# Capacity is require_capacity's: an uninstall must work on any cluster, however small.
require_cluster() {
  require_cmd kubectl "$KUBECTL_HINT"
  CLUSTER_CONTEXT="$(kubectl config current-context 2>/dev/null)" ||
    die "kubectl has no current context: create a cluster (kind create cluster, minikube start) or run kubectl config use-context NAME"
  log_info "kubectl context: ${CLUSTER_CONTEXT}"
  local errors node_count cpu_milli
  set_rollout_timeout "$ROLLOUT_TIMEOUT" ROLLOUT_TIMEOUT
  make_temp_dir errors
  if ! CLUSTER_NODES="$(kube get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.allocatable.cpu}{"\t"}{.status.nodeInfo.containerRuntimeVersion}{"\t"}{.status.nodeInfo.kubeletVersion}{"\n"}{end}' 2>"${errors}/stderr")"; then
    if grep -qi forbidden "${errors}/stderr"; then
      # Reachable, but this user may not list nodes (common on shared cloud clusters).
      log_warn "you may not list nodes in '${CLUSTER_CONTEXT}': CPU and container runtime not checked"
      CLUSTER_NODES=""
      return 0
    fi
    die "cluster of context '${CLUSTER_CONTEXT}' is not reachable: start it or switch context (kubectl config use-context NAME)"
  fi
  [[ -n "$CLUSTER_NODES" ]] || die "cluster of context '${CLUSTER_CONTEXT}' has no nodes: wait for them or pick another context"
  node_count="$(printf '%s\n' "$CLUSTER_NODES" | grep -c .)"
  cpu_milli="$(cluster_cpu_milli "$CLUSTER_NODES")"
  log_info "nodes: ${node_count}, allocatable CPU: $((cpu_milli / 1000)).$(((cpu_milli % 1000) / 100))"
}

# require_capacity: enough allocatable CPU for the app, a mesh and its add-ons (install only; needs require_cluster).
require_capacity() {
  local cpu_milli
  [[ -n "${CLUSTER_NODES:-}" ]] || return 0   # nodes not listable: require_cluster warned already
  cpu_milli="$(cluster_cpu_milli "$CLUSTER_NODES")"
  if ((cpu_milli < MIN_CPU_MILLI)); then
    die "cluster '${CLUSTER_CONTEXT}' has ${cpu_milli}m allocatable CPU, at least ${MIN_CPU_MILLI}m needed: give the cluster more CPUs"
  fi
  if ((cpu_milli < RECOMMENDED_CPU_MILLI)); then
    log_warn "cluster '${CLUSTER_CONTEXT}' has ${cpu_milli}m allocatable CPU; ${RECOMMENDED_CPU_MILLI}m recommended, rollouts may be slow"
  fi
}

# cluster_cpu_milli NODE_LINES: sum of allocatable CPU in millicores ("4" -> 4000, "3500m" -> 3500).
cluster_cpu_milli() {
  local total=0 _name cpu _rest
  while IFS=$'\t' read -r _name cpu _rest; do
    [[ -n "$cpu" ]] || continue
    if [[ "$cpu" == *m ]]; then
      total=$((total + ${cpu%m}))
    else
      total=$((total + cpu * 1000))
    fi
  done <<<"$1"
  printf '%s\n' "$total"
}

# any_node_runs_docker: true when a node's container runtime is Docker (cri-dockerd); Linkerd's proxy-init then
# needs root (proxyInit.runAsRoot=true).
any_node_runs_docker() {
  local _name _cpu runtime _kubelet
  while IFS=$'\t' read -r _name _cpu runtime _kubelet; do
    [[ "$runtime" == docker://* ]] && return 0
  done <<<"${CLUSTER_NODES:-}"
  return 1
}

# ---------------------------------------------------------------------------------------------------------------
# Cluster state helpers (read-only)
# ---------------------------------------------------------------------------------------------------------------
namespace_exists() { kube get namespace "$1" >/dev/null 2>&1; }
crd_exists() { kube get crd "$1" >/dev/null 2>&1; }

# names_matching KIND REGEX: names of cluster-scoped objects of KIND whose name matches REGEX (one per line).
names_matching() {
  kube get "$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null | grep -E "$2" || true
}

# ---------------------------------------------------------------------------------------------------------------
# Rollouts
# ---------------------------------------------------------------------------------------------------------------
# wait_for_rollouts NAMESPACE [TIMEOUT]: wait for every Deployment, StatefulSet and DaemonSet of NAMESPACE; on
# the first one that does not come up, print its pods' events and logs and die.
wait_for_rollouts() {
  local namespace="$1" timeout="${2:-$ROLLOUT_TIMEOUT}" workloads workload
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] wait for every rollout in namespace %s (timeout %s)\n' "$namespace" "$timeout"
    return 0
  fi
  workloads="$(kube get deployments,statefulsets,daemonsets -n "$namespace" -o name 2>/dev/null || true)"
  for workload in $workloads; do
    if ! kubectl rollout status "$workload" -n "$namespace" --timeout="$timeout" >/dev/null 2>&1; then
      show_workload_diagnostics "$namespace" "$workload"
      die "${workload} in namespace ${namespace} did not become ready within ${timeout}: see the events and logs above"
    fi
    log_ok "${workload} (${namespace})"
  done
}

# show_workload_diagnostics NAMESPACE KIND/NAME: events and last log lines of the workload's pods.
show_workload_diagnostics() {
  local namespace="$1" workload="$2" name pods pod
  name="${workload#*/}"
  # ReplicaSet/StatefulSet pods are named <workload>-<suffix>.
  pods="$(kube get pods -n "$namespace" -o name 2>/dev/null | grep -E "^pod/${name}-" | head -n 3 || true)"
  log_warn "${workload} is not ready; its pods:"
  kube get pods -n "$namespace" -o wide 2>/dev/null | grep -E "^(NAME|${name}-)" >&2 || true
  for pod in $pods; do
    printf -- '--- events of %s\n' "$pod" >&2
    kube get events -n "$namespace" --field-selector "involvedObject.name=${pod#pod/}" --sort-by=.lastTimestamp >&2 2>/dev/null || true
    printf -- '--- last log lines of %s\n' "$pod" >&2
    kube logs "$pod" -n "$namespace" --all-containers --tail=30 >&2 2>/dev/null || true
  done
}

# ---------------------------------------------------------------------------------------------------------------
# Pinned CLIs in a project-local folder, verified against a sha256 the release publishes apart from the download.
# ---------------------------------------------------------------------------------------------------------------
# platform_os / platform_arch: the names release assets use.
platform_os() {
  case "$(uname -s)" in
    Linux) printf 'linux\n' ;;
    Darwin) printf 'darwin\n' ;;
    *) die "unsupported OS $(uname -s): install the CLI by hand and put it on PATH" ;;
  esac
}
platform_arch() {
  case "$(uname -m)" in
    x86_64 | amd64) printf 'amd64\n' ;;
    aarch64 | arm64) printf 'arm64\n' ;;
    *) die "unsupported CPU $(uname -m): install the CLI by hand and put it on PATH" ;;
  esac
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# sha256_stdin: the hex sha256 of stdin.
sha256_stdin() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  else
    shasum -a 256 | cut -d' ' -f1
  fi
}

# tree_digest DIR: one sha256 over the relative paths and contents of every file under DIR (caches and compiled
# Python left out): the same files give the same digest on any machine, one changed byte another.
tree_digest() {
  (
    cd "$1" || exit 1
    find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/.pytest_cache/*' ! -path '*/node_modules/*' |
      LC_ALL=C sort | while IFS= read -r file; do
        printf '%s  %s\n' "$(sha256_of "$file")" "$file"
      done
  ) | sha256_stdin
}

# make_temp_dir VAR: a fresh temporary folder in VAR, removed when the script exits (also after die).
_TEMP_DIRS=()
_remove_temp_dirs() { ((${#_TEMP_DIRS[@]} == 0)) || rm -rf ${_TEMP_DIRS[@]+"${_TEMP_DIRS[@]}"}; }
make_temp_dir() {
  local dir
  dir="$(mktemp -d)"
  _TEMP_DIRS+=("$dir")
  trap _remove_temp_dirs EXIT
  printf -v "$1" '%s' "$dir"
}

# Bounds of every download, so a stalled network fails instead of hanging the script.
CURL_CONNECT_TIMEOUT="${CURL_CONNECT_TIMEOUT:-15}"
CURL_MAX_TIME="${CURL_MAX_TIME:-300}"

# try_fetch URL DEST: download (HTTP errors fail, redirects followed, time bounded); on failure FETCH_ERROR holds
# curl's reason (e.g. "returned error: 404") and the status is non-zero.
try_fetch() {
  FETCH_ERROR=""
  local reason
  reason="$(curl --fail --silent --show-error --location --connect-timeout "$CURL_CONNECT_TIMEOUT" \
    --max-time "$CURL_MAX_TIME" --retry 2 -o "$2" "$1" 2>&1)" && return 0
  FETCH_ERROR="${reason##*curl: }"
  return 1
}

# fetch URL DEST: download, or stop with one line that carries curl's reason.
fetch() {
  try_fetch "$1" "$2" ||
    die "download of $1 failed (${FETCH_ERROR}): check the network, or point the *_BASE_URL variable at a mirror"
}

# run_kubectl_url VERB URL [ARGS]: `kubectl VERB -f URL ARGS` through run, the download bounded by curl's timeouts
# (kubectl's own fetch of a URL has none) and the API calls by kube's request timeout. A URL without http(s)://
# is a local file (an air-gapped mirror).
run_kubectl_url() {
  local verb="$1" url="$2" source="$2" download_dir
  shift 2
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] %s\n' "$(_quote_cmd kubectl "$verb" -f "$url" "$@")"
    return 0
  fi
  printf '    + %s\n' "$(_quote_cmd kubectl "$verb" -f "$url" "$@")"
  if [[ "$url" =~ ^https?:// ]]; then
    make_temp_dir download_dir   # (not "dir": make_temp_dir has a local of that name)
    source="${download_dir}/manifest.yaml"
    if ! try_fetch "$url" "$source"; then
      log_warn "download of ${url} failed (${FETCH_ERROR})"
      return 1
    fi
  fi
  kube "$verb" -f "$source" "$@"
}

# download_verified URL EXPECTED_SHA256 DEST: fetch URL to DEST only if its sha256 is EXPECTED_SHA256 (64 hex
# digits, from a source other than the download itself). On any failure nothing is left at DEST: fail closed.
download_verified() {
  local url="$1" expected="$2" dest="$3" tmp actual
  [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "no valid sha256 for $url ('${expected}'): refusing to install"
  make_temp_dir tmp
  fetch "$url" "$tmp/download"
  actual="$(sha256_of "$tmp/download")"
  [[ "$expected" == "$actual" ]] ||
    die "checksum mismatch for $url (expected $expected, got $actual): not installed; retry or check the mirror"
  mkdir -p "$(dirname "$dest")"
  mv "$tmp/download" "$dest"
}

# published_sha256 CHECKSUM_URL: the first word of a published checksum file (Istio's <asset>.sha256, written by
# istio/release-builder as "<hex> <name>").
published_sha256() {
  local tmp
  make_temp_dir tmp
  fetch "$1" "$tmp/checksum"
  awk 'NR == 1 { print $1 }' "$tmp/checksum"
}

# release_asset_sha256 RELEASE_JSON_URL ASSET: the hex sha256 that GitHub's release API lists for ASSET
# (assets[].digest = "sha256:<hex>"), or stop: an asset without a digest is not installed.
release_asset_sha256() {
  local tmp digest
  require_cmd python3 "the Linkerd CLI download reads GitHub's release API (JSON) with python3: install Python 3, or put linkerd ${LINKERD_VERSION} on PATH"
  make_temp_dir tmp
  fetch "$1" "$tmp/release.json"
  digest="$(python3 -c '
import json, sys
try:
    release = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(0)
for asset in release.get("assets") or [] if isinstance(release, dict) else []:
    if isinstance(asset, dict) and asset.get("name") == sys.argv[2]:
        print(asset.get("digest") or "")
' "$tmp/release.json" "$2")"
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] ||
    die "the release API at $1 lists no sha256 digest for $2 (got '${digest:-nothing}'): refusing to install; set LINKERD_CLI_SHA256 to a checksum you trust, or install linkerd yourself"
  printf '%s\n' "${digest#sha256:}"
}

# use_project_tools: CLIs installed by ensure_istioctl / ensure_linkerd come first on PATH.
use_project_tools() {
  [[ ":${PATH}:" == *":${TOOLS_BIN}:"* ]] || PATH="${TOOLS_BIN}:${PATH}"
}

# ensure_cli NAME WANTED VERSION_REGEX INSTALLER VERSION_COMMAND...: NAME at version WANTED on PATH (the project's
# .tools/bin first), else INSTALLER puts it into TOOLS_BIN.
ensure_cli() {
  local name="$1" wanted="$2" pattern="$3" installer="$4" have=""
  shift 4
  use_project_tools
  if command -v "$name" >/dev/null 2>&1; then
    have="$("$@" 2>/dev/null | grep -oE "$pattern" | head -n 1 || true)"
  fi
  if [[ "$have" == "$wanted" ]]; then
    log_info "${name} ${wanted}: $(command -v "$name")"
    return 0
  fi
  "$installer"
}

ensure_istioctl() {
  ensure_cli istioctl "$ISTIO_VERSION" '[0-9]+\.[0-9]+\.[0-9]+' install_istioctl istioctl version --remote=false
}

install_istioctl() {
  local os arch asset tmp
  os="$(platform_os)"
  arch="$(platform_arch)"
  # Istio names macOS "osx" (istio/release-builder pkg/build/archive.go: istioctl-<version>-<os>-<arch>.tar.gz, the
  # arch-less osx name being the deprecated duplicate).
  case "$os" in
    linux) asset="istioctl-${ISTIO_VERSION}-linux-${arch}.tar.gz" ;;
    darwin) asset="istioctl-${ISTIO_VERSION}-osx-${arch}.tar.gz" ;;
  esac
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] install istioctl %s into %s (verified against %s.sha256)\n' "$ISTIO_VERSION" "$TOOLS_BIN" "$asset"
    return 0
  fi
  log_info "installing istioctl ${ISTIO_VERSION} into ${TOOLS_BIN}"
  require_cmd curl "install curl (apt-get install curl / brew install curl)"
  make_temp_dir tmp
  local expected
  # (a failure inside $(...) has printed its one line already: only pass its status on)
  expected="$(published_sha256 "${ISTIO_RELEASE_BASE_URL}/${ISTIO_VERSION}/${asset}.sha256")" || exit "$?"
  download_verified "${ISTIO_RELEASE_BASE_URL}/${ISTIO_VERSION}/${asset}" "$expected" "$tmp/$asset"
  tar -xzf "$tmp/$asset" -C "$tmp" istioctl || die "$asset holds no istioctl: not installed"
  mkdir -p "$TOOLS_BIN"
  install -m 0755 "$tmp/istioctl" "$TOOLS_BIN/istioctl"
  log_ok "istioctl ${ISTIO_VERSION} installed: ${TOOLS_BIN}/istioctl"
}

ensure_linkerd() {
  ensure_cli linkerd "$LINKERD_VERSION" '(edge|stable)-[0-9.]+' install_linkerd linkerd version --client --short
}

install_linkerd() {
  local os arch asset
  os="$(platform_os)"
  arch="$(platform_arch)"
  # Linkerd names its darwin amd64 binary without the arch suffix.
  case "$os-$arch" in
    darwin-amd64) asset="linkerd2-cli-${LINKERD_VERSION}-darwin" ;;
    *) asset="linkerd2-cli-${LINKERD_VERSION}-${os}-${arch}" ;;
  esac
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] install linkerd %s into %s (verified against the sha256 digest the release API lists for %s)\n' \
      "$LINKERD_VERSION" "$TOOLS_BIN" "$asset"
    return 0
  fi
  log_info "installing linkerd ${LINKERD_VERSION} into ${TOOLS_BIN}"
  require_cmd curl "install curl (apt-get install curl / brew install curl)"
  local expected="${LINKERD_CLI_SHA256:-}"
  if [[ -z "$expected" ]]; then
    expected="$(release_asset_sha256 "${LINKERD_RELEASE_API_URL}/${LINKERD_VERSION}" "$asset")" || exit "$?"
  fi
  download_verified "${LINKERD_RELEASE_BASE_URL}/${LINKERD_VERSION}/${asset}" "$expected" "$TOOLS_BIN/linkerd"
  chmod 0755 "$TOOLS_BIN/linkerd"
  log_ok "linkerd ${LINKERD_VERSION} installed: ${TOOLS_BIN}/linkerd"
}

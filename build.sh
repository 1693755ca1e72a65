#!/usr/bin/env bash
# Build every image of the lab and make it visible to the cluster (kind, minikube, a registry or local Docker).
set -euo pipefail

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/common.sh"

# The image list: the single source the manifests and their validator read through --list-images.
# Each line: name:tag, directory under services/, optional build argument.
IMAGE_TABLE="
api-gateway:v1 api-gateway
catalog-service:v1 catalog
cart-service:v1 cart
payment-service:v1 payment
payment-service:v2 payment SERVICE_VERSION=v2
notification-service:v1 notification
loadgen:v1 loadgen
"

usage() {
  cat <<USAGE
Usage: ./build.sh [options]

Builds every image with build context services/ (docker build -f services/<dir>/Dockerfile services/), payment
twice (v1, and v2 with --build-arg SERVICE_VERSION=v2), then makes them visible to the cluster.

Where the images go (default: the local Docker engine, which Docker Desktop and OrbStack clusters use directly):
  --kind NAME             load them into the kind cluster NAME (kind load docker-image)
  --minikube              load them into minikube (minikube image load)
  --registry HOST:PORT    tag as HOST:PORT/<name>:<tag> and push (e.g. localhost:5001); deploy with the same
                          --registry so the manifests name these images
  --platform LIST         build with docker buildx for LIST (e.g. linux/amd64,linux/arm64); several platforms
                          need --registry, because a multi-arch image cannot be loaded into the local engine

Other:
  --list-images           print every image this script builds, one name:tag per line, and exit
$(common_usage)

Examples:
  ./build.sh                              # Docker Desktop / OrbStack Kubernetes
  ./build.sh --kind service-mesh-lab      # kind
  ./build.sh --registry localhost:5001    # a local registry (OrbStack's from the seed)
USAGE
}

list_images() {
  local name _rest
  while read -r name _rest; do
    [[ -z "$name" ]] || printf '%s\n' "$name"
  done <<<"$IMAGE_TABLE"
}

# build_one IMAGE DIR BUILD_ARG: build (and push or load) one image.
build_one() {
  local image="$1" dir="$2" build_arg="$3" services_dir="${REPO_ROOT}/services" ref output
  local -a build_args=()
  [[ -f "${services_dir}/${dir}/Dockerfile" ]] || die "services/${dir}/Dockerfile is missing: is the checkout complete?"
  [[ -z "$build_arg" ]] || build_args=(--build-arg "$build_arg")
  ref="${REGISTRY:+${REGISTRY}/}${image}"
  log_step "Building ${ref}"
  if [[ -n "$PLATFORM" ]]; then
    # buildx pushes straight to the registry, or loads a single-platform image into the local engine.
    output=--load
    [[ -z "$REGISTRY" ]] || output=--push
    run docker buildx build --platform "$PLATFORM" ${build_args[@]+"${build_args[@]}"} -t "$ref" \
      -f "${services_dir}/${dir}/Dockerfile" "$output" "$services_dir"
  else
    run docker build ${build_args[@]+"${build_args[@]}"} -t "$ref" -f "${services_dir}/${dir}/Dockerfile" "$services_dir"
    [[ -z "$REGISTRY" ]] || run docker push "$ref"
  fi
  if [[ -n "$KIND_CLUSTER" ]]; then
    run kind load docker-image "$ref" --name "$KIND_CLUSTER"
  elif ((USE_MINIKUBE)); then
    run minikube image load "$ref"
  fi
}

# require_multi_platform_builder: the current buildx builder must build several platforms at once. The "docker"
# driver only can with the containerd image store; a docker-container (or kubernetes/remote) builder always can.
require_multi_platform_builder() {
  local driver
  driver="$(docker buildx inspect 2>/dev/null | awk -F': *' '$1 == "Driver" { print $2; exit }')"
  if [[ "$driver" == docker ]]; then
    docker info --format='{{json .DriverStatus}}' 2>/dev/null | grep -q 'io.containerd.snapshotter' && return 0
  elif [[ -n "$driver" ]]; then
    return 0
  fi
  # network=host lets the builder container push to a registry on the host's localhost (localhost:5001).
  die "--platform ${PLATFORM} needs a multi-platform buildx builder (current driver: ${driver:-unknown}): docker buildx create --driver docker-container --driver-opt network=host --use"
}

check_prerequisites() {
  log_step "Checking prerequisites"
  require_docker_engine
  if [[ -n "$PLATFORM" ]]; then
    docker buildx version >/dev/null 2>&1 ||
      die "--platform needs docker buildx: install the buildx plugin (Docker Desktop and OrbStack ship it)"
    [[ "$PLATFORM" != *,* ]] || require_multi_platform_builder
  fi
  if [[ -n "$KIND_CLUSTER" ]]; then
    require_cmd kind "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" ||
      die "kind cluster '$KIND_CLUSTER' not found: create it with kind create cluster --name $KIND_CLUSTER"
  fi
  if ((USE_MINIKUBE)); then
    require_cmd minikube "install minikube: https://minikube.sigs.k8s.io/docs/start/"
    minikube status >/dev/null 2>&1 || die "minikube is not running: start it with minikube start"
  fi
  log_ok "docker engine answers"
}

main() {
  KIND_CLUSTER="" USE_MINIKUBE=0 REGISTRY="" PLATFORM=""
  while (($#)); do
    case "$1" in
      --list-images)
        list_images
        exit 0
        ;;
      --kind)
        [[ $# -ge 2 ]] || die "--kind needs a cluster name (kind get clusters lists them)"
        KIND_CLUSTER="$2"
        shift
        ;;
      --minikube) USE_MINIKUBE=1 ;;
      --registry)
        [[ $# -ge 2 ]] || die "--registry needs HOST:PORT, e.g. localhost:5001"
        REGISTRY="${2%/}"
        shift
        ;;
      --platform)
        [[ $# -ge 2 ]] || die "--platform needs a list, e.g. linux/amd64,linux/arm64"
        PLATFORM="$2"
        shift
        ;;
      *) parse_common_flag "$1" || die "unknown option: $1 (see ./build.sh --help)" ;;
    esac
    shift
  done

  local targets=0
  [[ -z "$KIND_CLUSTER" ]] || targets=$((targets + 1))
  [[ -z "$REGISTRY" ]] || targets=$((targets + 1))
  ((USE_MINIKUBE == 0)) || targets=$((targets + 1))
  ((targets <= 1)) || die "choose one of --kind, --minikube, --registry (see ./build.sh --help)"
  if [[ "$PLATFORM" == *,* && -z "$REGISTRY" ]]; then
    die "--platform with several platforms needs --registry: a multi-arch image cannot be loaded into the local engine"
  fi

  check_prerequisites
  local image dir build_arg
  # fd 3, so nothing build_one runs can swallow the table from stdin
  while read -r image dir build_arg <&3; do
    [[ -z "$image" ]] || build_one "$image" "$dir" "$build_arg"
  done 3<<<"$IMAGE_TABLE"

  log_step "Done"
  if [[ -n "$REGISTRY" ]]; then
    log_info "deploy with the same registry: ./deploy-istio.sh --registry ${REGISTRY} (or ./deploy-linkerd.sh)"
  else
    log_info "next: ./deploy-istio.sh or ./deploy-linkerd.sh"
  fi
}

main "$@"

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

Every image is tagged twice: as the manifests name it (payment-service:v2) and uniquely for this build
(payment-service:v2-<12 hex digits of the sources' content digest>). The unique tags are written to
${IMAGE_TAGS_FILE#"${REPO_ROOT}/"}, and the deploy scripts point the manifests at them, so a rebuilt image is rolled
out by the next deploy (with imagePullPolicy IfNotPresent a fixed tag would keep the old one) and an unchanged one
restarts nothing.

Where the images go (default: the local Docker engine, which Docker Desktop and OrbStack clusters use directly):
  --kind NAME             load them into the kind cluster NAME (kind load docker-image; with Docker's containerd
                          image store, where that fails, docker save --platform | kind load image-archive)
  --k3d NAME              import them into the k3d cluster NAME (k3d image import)
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
  ./build.sh --k3d lab                    # k3d
  ./build.sh --registry localhost:5001    # a local registry (OrbStack's from the seed)
USAGE
}

list_images() {
  local name _rest
  while read -r name _rest; do
    [[ -z "$name" ]] || printf '%s\n' "$name"
  done <<<"$IMAGE_TABLE"
}

# unique_tag IMAGE DIR BUILD_ARG: TAG-<12 hex>, the digest of the build's inputs (the whole build context, which
# SOURCES_DIGEST holds, the Dockerfile's folder and the build argument): it changes exactly when the image may.
unique_tag() {
  local image="$1" dir="$2" build_arg="$3"
  printf '%s-%s\n' "${image##*:}" "$(printf '%s %s %s\n' "$SOURCES_DIGEST" "$dir" "$build_arg" | sha256_stdin | cut -c1-12)"
}

# load_into_cluster REF...: make the images visible to the cluster chosen on the command line.
load_into_cluster() {
  local archive_dir platform
  if [[ -n "$KIND_CLUSTER" ]]; then
    if [[ "$DRY_RUN" == 1 ]]; then
      run kind load docker-image "$@" --name "$KIND_CLUSTER"
      return 0
    fi
    printf '    + %s\n' "$(_quote_cmd kind load docker-image "$@" --name "$KIND_CLUSTER")"
    kind load docker-image "$@" --name "$KIND_CLUSTER" && return 0
    # kubernetes-sigs/kind#3795: with Docker's containerd image store `kind load docker-image` fails (the archive it
    # saves names blobs of other platforms); an archive of the platform the cluster runs loads fine.
    platform="${PLATFORM:-$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}' 2>/dev/null || echo linux/amd64)}"
    log_warn "kind load docker-image failed (Docker's containerd image store?): loading a ${platform} archive instead"
    make_temp_dir archive_dir
    run docker save --platform "$platform" -o "${archive_dir}/images.tar" "$@" ||
      die "docker save of $* failed (see above): is the image built for ${platform}?"
    run kind load image-archive "${archive_dir}/images.tar" --name "$KIND_CLUSTER" ||
      die "kind could not load the images into cluster ${KIND_CLUSTER} (see above)"
  elif [[ -n "$K3D_CLUSTER" ]]; then
    run k3d image import "$@" --cluster "$K3D_CLUSTER" ||
      die "k3d could not import the images into cluster ${K3D_CLUSTER} (see above)"
  elif ((USE_MINIKUBE)); then
    local ref
    for ref in "$@"; do
      run minikube image load "$ref"
    done
  fi
}

# build_one IMAGE DIR BUILD_ARG: build (and push or load) one image, under its manifest tag and its unique tag.
build_one() {
  local image="$1" dir="$2" build_arg="$3" services_dir="${REPO_ROOT}/services" ref unique output
  local -a build_args=()
  [[ -f "${services_dir}/${dir}/Dockerfile" ]] || die "services/${dir}/Dockerfile is missing: is the checkout complete?"
  [[ -z "$build_arg" ]] || build_args=(--build-arg "$build_arg")
  ref="${REGISTRY:+${REGISTRY}/}${image}"
  unique="${ref%:*}:$(unique_tag "$image" "$dir" "$build_arg")"
  log_step "Building ${ref} (${unique##*:})"
  if [[ -n "$PLATFORM" ]]; then
    # buildx pushes straight to the registry, or loads a single-platform image into the local engine.
    output=--load
    [[ -z "$REGISTRY" ]] || output=--push
    run docker buildx build --platform "$PLATFORM" ${build_args[@]+"${build_args[@]}"} -t "$ref" -t "$unique" \
      -f "${services_dir}/${dir}/Dockerfile" "$output" "$services_dir"
  else
    run docker build ${build_args[@]+"${build_args[@]}"} -t "$ref" -t "$unique" -f "${services_dir}/${dir}/Dockerfile" "$services_dir"
    if [[ -n "$REGISTRY" ]]; then
      run docker push "$ref"
      run docker push "$unique"
    fi
  fi
  load_into_cluster "$ref" "$unique"
  BUILT_TAGS+="${image}"$'\t'"${unique##*:}"$'\n'
}

# write_image_tags: the unique tag of every image, for the deploy scripts (render_kustomization in mesh.sh).
write_image_tags() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] write the unique tags to %s\n' "$IMAGE_TAGS_FILE"
    return 0
  fi
  mkdir -p "$(dirname "$IMAGE_TAGS_FILE")"
  printf '# written by ./build.sh: <image as the manifests name it> <tag of this build>\n%s' "$BUILT_TAGS" >"$IMAGE_TAGS_FILE"
  log_info "unique tags written to ${IMAGE_TAGS_FILE}; the next deploy rolls them out"
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
  if [[ -n "$K3D_CLUSTER" ]]; then
    require_cmd k3d "install k3d: https://k3d.io/#installation"
    k3d cluster list --no-headers 2>/dev/null | awk '{ print $1 }' | grep -qx "$K3D_CLUSTER" ||
      die "k3d cluster '$K3D_CLUSTER' not found: create it with k3d cluster create $K3D_CLUSTER"
  fi
  if ((USE_MINIKUBE)); then
    require_cmd minikube "install minikube: https://minikube.sigs.k8s.io/docs/start/"
    minikube status >/dev/null 2>&1 || die "minikube is not running: start it with minikube start"
  fi
  log_ok "docker engine answers"
}

main() {
  KIND_CLUSTER="" K3D_CLUSTER="" USE_MINIKUBE=0 REGISTRY="" PLATFORM="" BUILT_TAGS=""
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
      --k3d)
        [[ $# -ge 2 ]] || die "--k3d needs a cluster name (k3d cluster list lists them)"
        K3D_CLUSTER="$2"
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
  [[ -z "$K3D_CLUSTER" ]] || targets=$((targets + 1))
  [[ -z "$REGISTRY" ]] || targets=$((targets + 1))
  ((USE_MINIKUBE == 0)) || targets=$((targets + 1))
  ((targets <= 1)) || die "choose one of --kind, --k3d, --minikube, --registry (see ./build.sh --help)"
  if [[ "$PLATFORM" == *,* && -z "$REGISTRY" ]]; then
    die "--platform with several platforms needs --registry: a multi-arch image cannot be loaded into the local engine"
  fi

  check_prerequisites
  SOURCES_DIGEST="$(tree_digest "${REPO_ROOT}/services")"
  local image dir build_arg
  # fd 3, so nothing build_one runs can swallow the table from stdin
  while read -r image dir build_arg <&3; do
    [[ -z "$image" ]] || build_one "$image" "$dir" "$build_arg"
  done 3<<<"$IMAGE_TABLE"
  write_image_tags

  log_step "Done"
  if [[ -n "$REGISTRY" ]]; then
    log_info "deploy with the same registry: ./deploy-istio.sh --registry ${REGISTRY} (or ./deploy-linkerd.sh)"
  else
    log_info "next: ./deploy-istio.sh or ./deploy-linkerd.sh"
  fi
}

main "$@"

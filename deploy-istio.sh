#!/usr/bin/env bash
# Deploy the shop on Istio: control plane (demo profile), add-ons, the app with its Istio configuration, monitoring.
set -euo pipefail

# shellcheck source=scripts/lib/mesh.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/mesh.sh"

usage() {
  cat <<USAGE
Usage: ./deploy-istio.sh [options]

Deploys the shop on Istio ${ISTIO_VERSION} in the current kubectl context, step by step:
  1. checks kubectl, the cluster (its context is printed), nodes and CPU
  2. installs istioctl ${ISTIO_VERSION} into .tools/bin when missing (sha256-verified)
  3. istioctl x precheck (read-only, before anything changes)
  4. removes Linkerd first if it is installed (asks, or --yes); istioctl install --set profile=demo -y
  5. add-ons from the ${ISTIO_VERSION} tag's samples/addons: ${ISTIO_ADDONS}
  6. applies ${ISTIO_DIR}/ (base layer + namespace label istio-injection=enabled + Istio configuration,
     DestinationRules first), creates the Grafana admin Secret once, applies ${MONITORING_DIR}/
  7. restarts workloads whose pods have no istio-proxy yet; waits for every rollout (on failure: the pod's events
     and logs); istioctl analyze -n ${APP_NAMESPACE}
  8. prints how to reach the shop, Grafana, Kiali and Jaeger, then runs ./quick-test.sh --mesh istio
Running it again changes nothing that is already right.

$(deploy_usage)
$(common_usage)
USAGE
}

print_istio_access() {
  local address
  log_step "How to reach it"
  address="$(kube get svc istio-ingressgateway -n "$ISTIO_NAMESPACE" \
    -o jsonpath='{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}' 2>/dev/null || true)"
  if [[ -n "$address" ]]; then
    log_info "shop:        http://${address}/"
  else
    log_info "shop:        kubectl -n ${ISTIO_NAMESPACE} port-forward svc/istio-ingressgateway 8080:80  -> http://localhost:8080/"
  fi
  grafana_access_hint
  log_info "Kiali:       istioctl dashboard kiali      (also: grafana, jaeger, prometheus, from the Istio add-ons)"
}

main() {
  while (($#)); do
    parse_deploy_flag "$@" || die "unknown option: $1 (see ./deploy-istio.sh --help)"
    shift "$DEPLOY_SHIFT"
  done

  log_step "Checking prerequisites"
  require_cluster
  require_capacity
  use_project_tools
  ensure_istioctl
  preflight_istio

  remove_other_mesh linkerd

  if ((SKIP_MESH_INSTALL)); then
    log_step "Istio control plane: skipped (--skip-mesh-install)"
    [[ "$DRY_RUN" == 1 ]] || namespace_exists "$ISTIO_NAMESPACE" ||
      die "--skip-mesh-install but namespace ${ISTIO_NAMESPACE} does not exist: drop the flag to install Istio"
  else
    install_istio_control_plane
    install_istio_addons
  fi

  apply_application "$ISTIO_DIR"
  put_pods_on_mesh istio-proxy
  log_step "Checking the Istio configuration"
  run istioctl analyze -n "$APP_NAMESPACE" ||
    die "istioctl analyze found errors in namespace ${APP_NAMESPACE} (see above): fix the istio/ manifests"
  print_istio_access
  run_quick_test istio
}

main "$@"

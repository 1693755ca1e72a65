#!/usr/bin/env bash
# Deploy the shop on Linkerd: Gateway API CRDs, control plane, viz, the app with its Linkerd configuration, monitoring.
set -euo pipefail

# shellcheck source=scripts/lib/mesh.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/mesh.sh"

usage() {
  cat <<USAGE
Usage: ./deploy-linkerd.sh [options]

Deploys the shop on Linkerd ${LINKERD_VERSION} in the current kubectl context, step by step:
  1. checks kubectl, the cluster (its context is printed), nodes and CPU
  2. installs the linkerd CLI ${LINKERD_VERSION} into .tools/bin when missing (sha256 from the release API)
  3. read-only preflight, before anything changes: an installed Gateway API must be ${GATEWAY_API_COMPATIBLE_MIN}..${GATEWAY_API_COMPATIBLE_MAX},
     helm present for --with-jaeger, linkerd check --pre
  4. removes Istio first if it is installed (asks, or --yes); Gateway API ${GATEWAY_API_VERSION} standard CRDs when
     absent (kept when a compatible version is installed)
  5. linkerd install --crds; linkerd install (proxyInit.runAsRoot=true only on nodes with
     the Docker runtime); linkerd check; linkerd viz install; linkerd viz check
  6. applies ${LINKERD_DIR}/ (base layer + namespace annotations linkerd.io/inject=enabled and
     default-inbound-policy deny + Servers, AuthorizationPolicies, HTTPRoutes), creates the Grafana admin Secret
     once, applies ${MONITORING_DIR}/
  7. restarts workloads whose pods have no linkerd-proxy yet; waits for every rollout; linkerd check --proxy
  8. prints how to reach the shop, Grafana and the Linkerd dashboard, then runs ./quick-test.sh --mesh linkerd
Running it again changes nothing that is already right.

Linkerd options:
  --with-jaeger          also install Jaeger (Helm, all-in-one) and turn on proxy tracing (needs helm)
$(deploy_usage)
$(common_usage)
USAGE
}

print_linkerd_access() {
  log_step "How to reach it"
  log_info "shop:        kubectl -n ${APP_NAMESPACE} port-forward svc/api-gateway 8080:5000  -> http://localhost:8080/"
  log_info "dashboard:   linkerd viz dashboard"
  grafana_access_hint
  log_info "live calls:  linkerd viz top -n ${APP_NAMESPACE} deploy/api-gateway; linkerd viz edges -n ${APP_NAMESPACE} deploy"
  if ((WITH_JAEGER)); then
    log_info "Jaeger:      kubectl -n ${JAEGER_NAMESPACE} get svc   (the query UI listens on port 16686)"
  fi
}

main() {
  WITH_JAEGER=0
  while (($#)); do
    if [[ "$1" == --with-jaeger ]]; then
      WITH_JAEGER=1
      shift
      continue
    fi
    parse_deploy_flag "$@" || die "unknown option: $1 (see ./deploy-linkerd.sh --help)"
    shift "$DEPLOY_SHIFT"
  done

  log_step "Checking prerequisites"
  require_cluster
  require_capacity
  use_project_tools
  ensure_linkerd
  preflight_linkerd "$WITH_JAEGER"

  remove_other_mesh istio

  if ((SKIP_MESH_INSTALL)); then
    log_step "Linkerd control plane: skipped (--skip-mesh-install)"
    [[ "$DRY_RUN" == 1 ]] || namespace_exists "$LINKERD_NAMESPACE" ||
      die "--skip-mesh-install but namespace ${LINKERD_NAMESPACE} does not exist: drop the flag to install Linkerd"
  else
    ensure_gateway_api
    ((WITH_JAEGER == 0)) || LINKERD_INSTALL_FLAGS=(${LINKERD_TRACING_FLAGS[@]+"${LINKERD_TRACING_FLAGS[@]}"})
    install_linkerd_control_plane
    install_linkerd_viz
    # After the control plane: Jaeger's collector must be meshed, Linkerd exports spans to nothing else.
    ((WITH_JAEGER == 0)) || install_jaeger_for_linkerd
  fi

  # No `linkerd viz allow-scrapes`: linkerd/authorization.yaml already authorizes the scrapes under the deny
  # default, and a second Server on the proxies' admin port would conflict (docs/kubernetes.md).
  apply_application "$LINKERD_DIR"
  put_pods_on_mesh linkerd-proxy
  log_step "Checking the proxies"
  run linkerd check --proxy --namespace "$APP_NAMESPACE" --wait "$ROLLOUT_TIMEOUT" ||
    die "linkerd check --proxy failed in ${APP_NAMESPACE} (see above): look at the pods' linkerd-proxy logs"
  print_linkerd_access
  run_quick_test linkerd
}

main "$@"

#!/usr/bin/env bash
# Remove Istio (and, unless --keep-app, the shop) from the cluster, then check that nothing of Istio is left.
set -euo pipefail

# shellcheck source=scripts/lib/mesh.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/mesh.sh"

usage() {
  cat <<USAGE
Usage: ./uninstall-istio.sh [options]

Removes from the current kubectl context, in this order:
  1. the application (namespace ${APP_NAMESPACE} and monitoring), or with --keep-app only its Istio configuration
  2. the add-ons (${ISTIO_ADDONS}) with their cluster-wide RBAC
  3. the control plane (istioctl uninstall --purge -y when istioctl is available) and namespace ${ISTIO_NAMESPACE}
  4. leftover istio* webhook configurations, the istio-injection / istio.io/rev namespace labels, *.istio.io CRDs
  5. with --keep-app: restarts the app so its pods run without sidecars
then lists anything of Istio that is still there (and fails if so). NotFound is not an error: rerun at will.

Options:
  --keep-app    keep the shop running, without the mesh
$(common_usage)
USAGE
}

main() {
  local keep_app=0
  while (($#)); do
    case "$1" in
      --keep-app) keep_app=1 ;;
      *) parse_common_flag "$1" || die "unknown option: $1 (see ./uninstall-istio.sh --help)" ;;
    esac
    shift
  done

  log_step "Checking prerequisites"
  require_cluster
  use_project_tools
  if ! istio_present; then
    log_info "Istio is not installed in cluster '${CLUSTER_CONTEXT}'"
  fi
  confirm "Remove Istio$( ((keep_app)) || echo ' and the shop') from cluster '${CLUSTER_CONTEXT}'?" ||
    die "aborted: nothing was changed"

  remove_istio "$keep_app"
  if ((keep_app)); then
    log_step "Restarting the application without sidecars"
    restart_workloads_unless_all_pods_have "$APP_NAMESPACE" none
    wait_for_rollouts "$APP_NAMESPACE"
  fi
  verify_removed istio
}

main "$@"

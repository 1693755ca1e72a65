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
  uninstall_mesh istio "$@"
}

main "$@"

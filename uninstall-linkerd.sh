#!/usr/bin/env bash
# Remove Linkerd (and, unless --keep-app, the shop) from the cluster, then check that nothing of Linkerd is left.
set -euo pipefail

# shellcheck source=scripts/lib/mesh.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/mesh.sh"

usage() {
  cat <<USAGE
Usage: ./uninstall-linkerd.sh [options]

Removes from the current kubectl context, in this order:
  1. the application (namespace ${APP_NAMESPACE} and monitoring), or with --keep-app only its Linkerd configuration
     (Servers, AuthorizationPolicies, HTTPRoutes, ... in ${APP_NAMESPACE})
  2. Jaeger (if --with-jaeger installed it), viz, then the control plane (linkerd viz uninstall / linkerd uninstall
     piped to kubectl delete, when the linkerd CLI is available) and their namespaces
  3. leftover linkerd* webhook configurations, the linkerd.io/inject and default-inbound-policy namespace
     annotations, *.linkerd.io CRDs, and the Gateway API CRDs only if deploy-linkerd.sh installed them
  4. with --keep-app: restarts the app so its pods run without proxies
then lists anything of Linkerd that is still there (and fails if so). NotFound is not an error: rerun at will.

Options:
  --keep-app    keep the shop running, without the mesh
$(common_usage)
USAGE
}

main() {
  uninstall_mesh linkerd "$@"
}

main "$@"

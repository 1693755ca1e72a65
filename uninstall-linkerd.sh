#!/usr/bin/env bash
# Remove the lab's Linkerd setup (and, unless --keep-app, the shop) from the cluster, only what is the lab's.
set -euo pipefail

# shellcheck source=scripts/lib/mesh.sh
source "$(dirname "${BASH_SOURCE[0]}")/scripts/lib/mesh.sh"

usage() {
  cat <<USAGE
Usage: ./uninstall-linkerd.sh [options]

Removes the lab from the current kubectl context, and only the lab: what carries its labels
(app.kubernetes.io/part-of and managed-by = service-mesh-lab), a namespace only if the lab created it (annotation
service-mesh-lab.io/created-by). First it prints the plan (what goes, what stays and why), then asks:
  1. the application's objects, and the namespaces ${APP_NAMESPACE} and monitoring if the lab created them
     (with --keep-app only the Linkerd configuration of ${APP_NAMESPACE} and its annotations)
  2. the lab's Linkerd objects elsewhere
  3. Jaeger, if deploy-linkerd.sh --with-jaeger installed it
  4. Linkerd's control plane (linkerd viz uninstall / linkerd uninstall --force piped to kubectl delete, their namespaces,
     linkerd* webhooks, cluster roles and *.linkerd.io CRDs; the Gateway API CRDs if the lab installed them and
     nothing else uses them) only if the lab installed it and no other namespace, pod or configuration uses
     it; otherwise it is listed as kept. --purge-mesh removes it cluster-wide anyway, naming who loses it
  5. with --keep-app: restarts the app so its pods run without proxies
then checks that everything the plan removes is gone (and fails if not). NotFound is not an error: rerun at will.
--dry-run prints the plan and every command, and changes nothing.

Options:
  --keep-app    keep the shop running, without the mesh
  --purge-mesh  remove Linkerd itself from the whole cluster even if the lab did not install it or others use it
$(common_usage)
USAGE
}

main() {
  uninstall_mesh linkerd "$@"
}

main "$@"

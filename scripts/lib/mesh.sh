# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file
# Mesh-specific steps shared by deploy-istio.sh, deploy-linkerd.sh, uninstall-istio.sh and uninstall-linkerd.sh:
# rendering and applying our kustomizations (with the image registry), detecting and removing each mesh, and
# moving the application's pods onto (or off) a mesh. Each idea is defined once here; the root scripts only
# decide the order. Sources common.sh.

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if [[ -n "${_MESH_SH_LOADED:-}" ]]; then
  return 0
fi
_MESH_SH_LOADED=1

# Our kustomizations (see docs/kubernetes.md for what each holds).
ISTIO_DIR="istio"
LINKERD_DIR="linkerd"
MONITORING_DIR="monitoring"
MONITORING_NAMESPACE="monitoring"
GRAFANA_SECRET="grafana-admin"

ISTIO_NAMESPACE="istio-system"
ISTIO_ADDONS="prometheus grafana jaeger kiali"
LINKERD_NAMESPACE="linkerd"
LINKERD_VIZ_NAMESPACE="linkerd-viz"
LINKERD_JAEGER_NAMESPACE="linkerd-jaeger"
# Cluster-scoped kinds a Linkerd extension creates (removed by its linkerd.io/extension label).
LINKERD_EXTENSION_CLUSTER_KINDS="clusterroles,clusterrolebindings,mutatingwebhookconfigurations,validatingwebhookconfigurations,apiservices"
# Gateway API bundles Linkerd 2.20 supports (linkerd docs, features/gateway-api: 1.2.1 - 1.5.1; 1.2.1 recommended,
# which is what deploy-linkerd.sh installs when none is there).
GATEWAY_API_COMPATIBLE_MIN="v1.2.1"
GATEWAY_API_COMPATIBLE_MAX="v1.5.1"
GATEWAY_API_CRD_PROBE="httproutes.gateway.networking.k8s.io"
# Marks Gateway API CRDs that deploy-linkerd.sh installed, so uninstall-linkerd.sh removes only those.
INSTALLED_BY_ANNOTATION="service-mesh-lab.io/installed-by"

REGISTRY="${REGISTRY:-}"
LINKERD_INSTALL_FLAGS=()   # extra `linkerd install` flags (tracing with --with-jaeger)

# ---------------------------------------------------------------------------------------------------------------
# Rendering and applying our kustomizations
# ---------------------------------------------------------------------------------------------------------------
# render_kustomization DIR: print the rendered YAML of DIR (relative to the repo). With REGISTRY set, every image
# that ./build.sh --list-images names is rewritten to REGISTRY/<name>:<tag> through a throw-away overlay (kustomize
# needs a relative path to the base, so the overlay lives under .tools/, which git ignores).
render_kustomization() {
  local dir="$1" overlay image
  [[ -f "${REPO_ROOT}/${dir}/kustomization.yaml" ]] || die "${dir}/kustomization.yaml is missing: is the checkout complete?"
  if [[ -z "$REGISTRY" ]]; then
    kubectl kustomize "${REPO_ROOT}/${dir}"
    return
  fi
  mkdir -p "${REPO_ROOT}/.tools"
  overlay="$(mktemp -d "${REPO_ROOT}/.tools/render.XXXXXX")"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../%s\nimages:\n' "$dir"
    while read -r image; do
      [[ -n "$image" ]] || continue
      printf -- '- name: %s\n  newName: %s/%s\n' "${image%%:*}" "$REGISTRY" "${image%%:*}"
    done <<<"$("${REPO_ROOT}/build.sh" --list-images)"
  } >"${overlay}/kustomization.yaml"
  # Removed here, not by an EXIT trap: this function runs in a command substitution (a subshell).
  local rendered status=0
  rendered="$(kubectl kustomize "$overlay")" || status=$?
  rm -rf "$overlay"
  ((status == 0)) || return "$status"
  printf '%s\n' "$rendered"
}

# yaml_docs KEEP|DROP KIND...: filter a multi-document YAML stream on stdin by top-level kind.
yaml_docs() {
  local mode="$1"
  shift
  awk -v mode="$mode" -v kinds=" $* " '
    function flush() {
      if (doc != "" && ((mode == "KEEP") == (index(kinds, " " kind " ") > 0))) printf "---\n%s", doc
      doc = ""; kind = ""
    }
    /^---/ { flush(); next }
    /^kind:[ \t]/ { kind = $2 }
    { doc = doc $0 "\n" }
    END { flush() }
  '
}

# namespaces_in_yaml: namespaces named by the objects of a rendered YAML stream on stdin (for waiting on them).
namespaces_in_yaml() {
  awk '/^---/ { k = "" } /^kind:[ \t]/ { k = $2 } /^  namespace:[ \t]/ { print $2 } k == "Namespace" && /^  name:[ \t]/ { print $2 }' |
    tr -d '"' | sort -u
}

# apply_kustomization DIR: render DIR (with REGISTRY) and apply it. DestinationRules go first, because a
# VirtualService naming a subset its DestinationRule does not define yet answers 503 (mesh-notes).
# Sets APPLIED_NAMESPACES to the namespaces its objects live in.
apply_kustomization() {
  local dir="$1" rendered first_pass
  if [[ "$DRY_RUN" == 1 ]]; then
    # Only Istio's configuration has DestinationRules to put first.
    printf '[dry-run] kubectl kustomize %s%s | kubectl apply -f -%s\n' "$dir" "${REGISTRY:+ with images from ${REGISTRY}}" \
      "$([[ "$dir" == "$ISTIO_DIR" ]] && echo '   (DestinationRules first)')"
    APPLIED_NAMESPACES=""
    return 0
  fi
  rendered="$(render_kustomization "$dir")" || die "kubectl kustomize ${dir} failed: fix the manifests (./test.sh checks them)"
  APPLIED_NAMESPACES="$(namespaces_in_yaml <<<"$rendered")"
  first_pass="$(yaml_docs KEEP CustomResourceDefinition Namespace DestinationRule <<<"$rendered")"
  if [[ -n "$first_pass" ]]; then
    printf '    + kubectl apply -f - (%s, first its namespaces, CRDs and DestinationRules)\n' "$dir"
    kubectl apply -f - <<<"$first_pass" || die "kubectl apply of ${dir}/ failed (see above): fix the cause and rerun"
  fi
  printf '    + kubectl apply -f - (%s)\n' "$dir"
  kubectl apply -f - <<<"$rendered" || die "kubectl apply of ${dir}/ failed (see above): fix the cause and rerun"
}

# ensure_namespace NAME: create NAME if missing (apply is idempotent), so injection is on before pods exist.
ensure_namespace() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] kubectl apply -f - (Namespace %s)\n' "$1"
    return 0
  fi
  namespace_exists "$1" && return 0
  printf '    + kubectl apply -f - (Namespace %s)\n' "$1"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1" | kubectl apply -f -
}

# ensure_grafana_admin_secret: Grafana's admin login, generated once with a random password (no password is in any
# file of the repository, and a rerun keeps the one already there). The password is never printed.
ensure_grafana_admin_secret() {
  local password_file
  if [[ "$DRY_RUN" != 1 ]] && kube get secret "$GRAFANA_SECRET" -n "$MONITORING_NAMESPACE" >/dev/null 2>&1; then
    log_info "secret ${MONITORING_NAMESPACE}/${GRAFANA_SECRET} exists; kept"
    return 0
  fi
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] kubectl -n %s create secret generic %s (admin user, random password)\n' "$MONITORING_NAMESPACE" "$GRAFANA_SECRET"
    return 0
  fi
  make_temp_dir password_file
  password_file+="/admin-password"
  (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$password_file")
  printf '    + kubectl -n %s create secret generic %s (admin user, random password)\n' "$MONITORING_NAMESPACE" "$GRAFANA_SECRET"
  kubectl -n "$MONITORING_NAMESPACE" create secret generic "$GRAFANA_SECRET" --from-literal=admin-user=admin \
    --from-file=admin-password="$password_file" >/dev/null ||
    die "could not create the secret ${MONITORING_NAMESPACE}/${GRAFANA_SECRET} (see above)"
}

grafana_access_hint() {
  log_info "Grafana:     kubectl -n ${MONITORING_NAMESPACE} port-forward svc/grafana 3000:3000  -> http://localhost:3000/ (viewer without login; admin password: kubectl -n ${MONITORING_NAMESPACE} get secret ${GRAFANA_SECRET} -o jsonpath='{.data.admin-password}' | base64 -d)"
  log_info "Prometheus:  kubectl -n ${MONITORING_NAMESPACE} port-forward svc/prometheus 9090:9090  -> http://localhost:9090/targets"
}

# ---------------------------------------------------------------------------------------------------------------
# Sidecars: which pods carry which proxy, and restarting the workloads whose pods are on the wrong mesh.
# ---------------------------------------------------------------------------------------------------------------
# pod_containers NAMESPACE: "pod|deletion time|phase|containers and init containers" per pod ("|", not a tab: read
# would merge the empty field between two tabs). Istio may run its proxy as a native sidecar (an init container), so
# both lists count.
pod_containers() {
  kube get pods -n "$1" -o jsonpath='{range .items[*]}{.metadata.name}{"|"}{.metadata.deletionTimestamp}{"|"}{.status.phase}{"|"}{.spec.containers[*].name} {.spec.initContainers[*].name}{"\n"}{end}' 2>/dev/null || true
}

# restart_workloads_unless_all_pods_have NAMESPACE WANTED_PROXY|none: restart every Deployment and StatefulSet of
# NAMESPACE when any pod lacks WANTED_PROXY (or, for "none", still carries a proxy). Pods already right are left
# alone, which keeps a second run from restarting anything.
restart_workloads_unless_all_pods_have() {
  local namespace="$1" wanted="$2" pods _pod deleting phase containers stale=0 workload
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] kubectl rollout restart deployments and statefulsets in %s whose pods %s\n' "$namespace" \
      "$([[ "$wanted" == none ]] && echo 'still carry a proxy' || echo "lack ${wanted}")"
    return 0
  fi
  pods="$(pod_containers "$namespace")"
  while IFS='|' read -r _pod deleting phase containers; do
    # Pods of a finished rollout may still be terminating, and Failed/Succeeded pods (Evicted, Completed) never run
    # again: they do not count, or every rerun would restart everything.
    [[ -n "$_pod" && -z "$deleting" ]] || continue
    [[ "$phase" == Running || "$phase" == Pending ]] || continue
    containers=" ${containers} "
    if [[ "$wanted" == none ]]; then
      [[ "$containers" == *" istio-proxy "* || "$containers" == *" linkerd-proxy "* ]] && stale=1
    else
      [[ "$containers" == *" ${wanted} "* ]] || stale=1
    fi
  done <<<"$pods"
  if ((stale == 0)); then
    log_info "every pod in ${namespace} is as wanted (${wanted}); no restart"
    return 0
  fi
  for workload in $(kube get deployments,statefulsets -n "$namespace" -o name 2>/dev/null); do
    run kubectl rollout restart "$workload" -n "$namespace"
  done
}

# ---------------------------------------------------------------------------------------------------------------
# Detection
# ---------------------------------------------------------------------------------------------------------------
istio_crds() { names_matching crd '\.istio\.io$'; }
linkerd_crds() { names_matching crd '\.linkerd\.io$'; }
istio_webhooks() {
  names_matching mutatingwebhookconfigurations '^istio' | sed 's|^|mutatingwebhookconfiguration/|'
  names_matching validatingwebhookconfigurations '^istio' | sed 's|^|validatingwebhookconfiguration/|'
}
linkerd_webhooks() {
  names_matching mutatingwebhookconfigurations '^linkerd' | sed 's|^|mutatingwebhookconfiguration/|'
  names_matching validatingwebhookconfigurations '^linkerd' | sed 's|^|validatingwebhookconfiguration/|'
}

# Cluster-wide RBAC and API registrations left when a control plane is removed without its CLI.
istio_cluster_rbac() {
  names_matching clusterroles '^istio' | sed 's|^|clusterrole/|'
  names_matching clusterrolebindings '^istio' | sed 's|^|clusterrolebinding/|'
}
linkerd_cluster_rbac() {
  names_matching clusterroles '^linkerd-' | sed 's|^|clusterrole/|'
  names_matching clusterrolebindings '^linkerd-' | sed 's|^|clusterrolebinding/|'
  names_matching apiservices '\.linkerd\.io$' | sed 's|^|apiservice/|'
}

istio_present() {
  namespace_exists "$ISTIO_NAMESPACE" || [[ -n "$(istio_crds)" ]] || [[ -n "$(istio_webhooks)" ]]
}
linkerd_present() {
  namespace_exists "$LINKERD_NAMESPACE" || [[ -n "$(linkerd_crds)" ]] || [[ -n "$(linkerd_webhooks)" ]]
}

# namespaces_with_label KEY / namespaces_with_annotation KEY: namespaces that carry it.
namespaces_with_label() { kube get namespaces -l "$1" -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' 2>/dev/null || true; }
namespaces_with_annotation() {
  local escaped="${1//./\\.}"
  kube get namespaces -o jsonpath="{range .items[*]}{.metadata.name}{\"\\t\"}{.metadata.annotations.${escaped}}{\"\\n\"}{end}" 2>/dev/null |
    awk -F '\t' '$2 != "" { print $1 }' || true
}

# delete_custom_resources_in NAMESPACE CRD...: delete every object of those CRDs in NAMESPACE (mesh config).
delete_custom_resources_in() {
  local namespace="$1" crd
  shift
  namespace_exists "$namespace" || return 0
  for crd in "$@"; do
    run kubectl delete "$crd" --all -n "$namespace" --ignore-not-found
  done
}

# delete_objects KIND/NAME...: delete cluster-scoped objects; NotFound is not an error.
delete_objects() {
  local object
  for object in "$@"; do
    [[ -n "$object" ]] && run kubectl delete "$object" --ignore-not-found
  done
}

# delete_namespace NAME: delete and wait; one still terminating after the timeout is reported by verify_removed.
delete_namespace() {
  namespace_exists "$1" || return 0
  run kubectl delete namespace "$1" --ignore-not-found --timeout="$ROLLOUT_TIMEOUT" ||
    log_warn "namespace $1 is still terminating after ${ROLLOUT_TIMEOUT}"
}

# ---------------------------------------------------------------------------------------------------------------
# Istio
# ---------------------------------------------------------------------------------------------------------------
istio_addon_url() { printf '%s/%s.yaml\n' "$ISTIO_ADDONS_BASE_URL" "$1"; }

# preflight_istio: the read-only checks of the Istio install, before anything (such as removing Linkerd) changes
# the cluster.
preflight_istio() {
  ((SKIP_MESH_INSTALL == 0)) || return 0
  log_step "Preflight checks for Istio"
  run istioctl x precheck || die "istioctl x precheck found problems (see above): fix them, then rerun"
}

install_istio_control_plane() {
  log_step "Installing Istio ${ISTIO_VERSION} (demo profile)"
  run istioctl install --set profile=demo -y || die "istioctl install failed (see above): rerun after fixing the cause"
  wait_for_rollouts "$ISTIO_NAMESPACE"
}

install_istio_addons() {
  log_step "Installing the Istio add-ons (${ISTIO_ADDONS}) of Istio ${ISTIO_VERSION}"
  local addon
  for addon in $ISTIO_ADDONS; do
    run_kubectl_url apply "$(istio_addon_url "$addon")" ||
      die "could not apply the ${addon} add-on from $(istio_addon_url "$addon") (see above): check the network and rerun"
  done
  wait_for_rollouts "$ISTIO_NAMESPACE"
}

# remove_istio KEEP_APP(0|1): app (unless kept), mesh config, add-ons, control plane, webhooks, CRDs, labels.
remove_istio() {
  local keep_app="$1" crds ns addon crd label
  crds="$(istio_crds)"
  if ((keep_app == 0)); then
    remove_application
  else
    log_step "Removing the Istio configuration of ${APP_NAMESPACE} (the app stays)"
    # shellcheck disable=SC2086  # one CRD name per word
    delete_custom_resources_in "$APP_NAMESPACE" $crds
  fi

  log_step "Removing the Istio add-ons"
  if namespace_exists "$ISTIO_NAMESPACE"; then
    for addon in $ISTIO_ADDONS; do
      # The add-ons also create cluster-wide RBAC, which deleting the namespace would leave behind.
      run_kubectl_url delete "$(istio_addon_url "$addon")" --ignore-not-found ||
        log_warn "could not delete the ${addon} add-on from $(istio_addon_url "$addon"); its cluster roles may remain"
    done
  fi

  log_step "Removing the Istio control plane"
  if namespace_exists "$ISTIO_NAMESPACE" && command -v istioctl >/dev/null 2>&1; then
    run istioctl uninstall --purge -y
  elif namespace_exists "$ISTIO_NAMESPACE"; then
    log_warn "istioctl not found: removing Istio with kubectl only"
  fi
  delete_namespace "$ISTIO_NAMESPACE"

  log_step "Removing Istio webhooks, cluster roles and CRDs"
  # Leftover webhooks point at a deleted istiod and break every later pod creation or the next install.
  # shellcheck disable=SC2046
  delete_objects $(istio_webhooks) $(istio_cluster_rbac)
  for label in istio-injection istio.io/rev; do
    for ns in $(namespaces_with_label "$label"); do
      run kubectl label namespace "$ns" "${label}-"
    done
  done
  for crd in $(istio_crds); do
    delete_objects "crd/${crd}"
  done
}

istio_leftovers() {
  namespace_exists "$ISTIO_NAMESPACE" && printf 'namespace/%s\n' "$ISTIO_NAMESPACE"
  istio_crds | sed 's|^|crd/|'
  istio_webhooks
  istio_cluster_rbac
  namespaces_with_label istio-injection | sed 's|^|label istio-injection on namespace/|'
  namespaces_with_label istio.io/rev | sed 's|^|label istio.io/rev on namespace/|'
  return 0
}

# ---------------------------------------------------------------------------------------------------------------
# Linkerd
# ---------------------------------------------------------------------------------------------------------------
# version_at_least A B: true when semantic version A >= B (both like v1.2.1).
version_at_least() {
  [[ "$(printf '%s\n%s\n' "${1#v}" "${2#v}" | sort -t. -k1,1n -k2,2n -k3,3n | head -n 1)" == "${2#v}" ]]
}

# check_gateway_api (read-only, part of the preflight): fine when the Gateway API CRDs are absent or of a version
# Linkerd supports; stop when another version is installed. The CRDs are cluster-wide and someone else's: never
# replace them here, and never suggest a downgrade (v1.5's safe-upgrades admission policy refuses one, and other
# users of the cluster may need the newer fields). Sets GATEWAY_API_INSTALLED to the supported version found, or "".
check_gateway_api() {
  local installed
  GATEWAY_API_INSTALLED=""
  crd_exists "$GATEWAY_API_CRD_PROBE" || return 0
  installed="$(kube get crd "$GATEWAY_API_CRD_PROBE" -o jsonpath='{.metadata.annotations.gateway\.networking\.k8s\.io/bundle-version}' 2>/dev/null || true)"
  if [[ -n "$installed" ]] && version_at_least "$installed" "$GATEWAY_API_COMPATIBLE_MIN" &&
    version_at_least "$GATEWAY_API_COMPATIBLE_MAX" "$installed"; then
    GATEWAY_API_INSTALLED="$installed"
    return 0
  fi
  if [[ -n "$installed" ]] && version_at_least "$installed" "$GATEWAY_API_COMPATIBLE_MAX"; then
    die "Gateway API ${installed} is installed, newer than Linkerd ${LINKERD_VERSION} supports (${GATEWAY_API_COMPATIBLE_MIN}..${GATEWAY_API_COMPATIBLE_MAX}): use a Linkerd release that supports it, or another cluster; do not downgrade CRDs others rely on"
  fi
  die "Gateway API ${installed:-of unknown version} is installed; Linkerd ${LINKERD_VERSION} supports ${GATEWAY_API_COMPATIBLE_MIN}..${GATEWAY_API_COMPATIBLE_MAX}: whoever manages the cluster's Gateway API can upgrade it (see docs/deploy.md, Gateway API), or use another cluster"
}

# ensure_gateway_api: install the Gateway API standard CRDs unless check_gateway_api found a compatible version, and
# mark the ones installed here so uninstall-linkerd.sh removes only those.
ensure_gateway_api() {
  log_step "Gateway API CRDs (${GATEWAY_API_VERSION})"
  check_gateway_api
  if [[ -n "$GATEWAY_API_INSTALLED" ]]; then
    log_info "Gateway API ${GATEWAY_API_INSTALLED} already installed and supported by Linkerd; kept"
    return 0
  fi
  run_kubectl_url apply "${GATEWAY_API_BASE_URL}/${GATEWAY_API_VERSION}/standard-install.yaml" ||
    die "could not apply the Gateway API CRDs (see above): check the network and rerun"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] kubectl annotate crd <each *.gateway.networking.k8s.io CRD> %s=deploy-linkerd.sh --overwrite\n' "$INSTALLED_BY_ANNOTATION"
    return 0
  fi
  local crd
  for crd in $(names_matching crd '\.gateway\.networking\.k8s\.io$'); do
    run kubectl annotate crd "$crd" "${INSTALLED_BY_ANNOTATION}=deploy-linkerd.sh" --overwrite
  done
}

# preflight_linkerd WITH_JAEGER: every read-only check of the Linkerd install, before anything (such as removing
# Istio) changes the cluster.
preflight_linkerd() {
  local with_jaeger="$1"
  ((SKIP_MESH_INSTALL == 0)) || return 0
  log_step "Preflight checks for Linkerd"
  ((with_jaeger == 0)) || require_cmd helm "--with-jaeger needs helm: https://helm.sh/docs/intro/install/"
  check_gateway_api
  if ! namespace_exists "$LINKERD_NAMESPACE"; then
    run linkerd check --pre || die "linkerd check --pre found problems (see above): fix them, then rerun"
  fi
}

install_linkerd_control_plane() {
  log_step "Installing Linkerd ${LINKERD_VERSION}"
  if namespace_exists "$LINKERD_NAMESPACE"; then
    linkerd check >/dev/null 2>&1 ||
      die "Linkerd is installed but 'linkerd check' fails: fix it, or remove it with ./uninstall-linkerd.sh --keep-app and deploy again"
    log_info "Linkerd is already installed and healthy; kept (use linkerd upgrade to change it)"
    ((${#LINKERD_INSTALL_FLAGS[@]} == 0)) || enable_linkerd_tracing
    return 0
  fi
  local -a install_flags=()
  if any_node_runs_docker; then
    # proxy-init's iptables rules need root on the Docker runtime (cri-dockerd); not elsewhere.
    log_info "a node runs the Docker runtime: proxyInit.runAsRoot=true"
    install_flags=(--set proxyInit.runAsRoot=true)
  fi
  run_apply_from linkerd install --crds
  run_apply_from linkerd install ${install_flags[@]+"${install_flags[@]}"} ${LINKERD_INSTALL_FLAGS[@]+"${LINKERD_INSTALL_FLAGS[@]}"}
  run linkerd check --wait "$ROLLOUT_TIMEOUT" || die "linkerd check failed (see above): the control plane is not healthy"
}

install_linkerd_viz() {
  log_step "Installing Linkerd viz"
  if namespace_exists "$LINKERD_VIZ_NAMESPACE" && linkerd viz check >/dev/null 2>&1; then
    # Reinstalling would only rotate viz's webhook certificates.
    log_info "Linkerd viz is already installed and healthy; kept"
    return 0
  fi
  run_apply_from linkerd viz install
  run linkerd viz check --wait "$ROLLOUT_TIMEOUT" || die "linkerd viz check failed (see above): viz is not healthy"
}

# remove_linkerd KEEP_APP(0|1): app (unless kept), mesh config, extensions, control plane, webhooks, CRDs,
# namespace annotations, and the Gateway API CRDs only if deploy-linkerd.sh installed them.
remove_linkerd() {
  local keep_app="$1" crds ns crd annotation has_cli=0
  command -v linkerd >/dev/null 2>&1 && has_cli=1
  if ((keep_app == 0)); then
    remove_application
  else
    log_step "Removing the Linkerd configuration of ${APP_NAMESPACE} (the app stays)"
    crds="$(linkerd_crds)"
    crd_exists "$GATEWAY_API_CRD_PROBE" && crds+=$'\n'"${GATEWAY_API_CRD_PROBE}"
    # shellcheck disable=SC2086
    delete_custom_resources_in "$APP_NAMESPACE" $crds
  fi

  log_step "Removing the Linkerd extensions and control plane"
  # The linkerd-jaeger extension of older installs: its `linkerd jaeger uninstall` is gone from the 2.19+ CLI, so
  # kubectl removes it (namespace, then its cluster-wide objects by the extension label).
  if namespace_exists "$LINKERD_JAEGER_NAMESPACE"; then
    delete_namespace "$LINKERD_JAEGER_NAMESPACE"
    run kubectl delete "$LINKERD_EXTENSION_CLUSTER_KINDS" -l linkerd.io/extension=jaeger --ignore-not-found
  fi
  if ((has_cli)); then
    namespace_exists "$LINKERD_VIZ_NAMESPACE" && run_delete_from linkerd viz uninstall
    # --force: without it `linkerd uninstall` refuses while any meshed pod runs outside the linkerd namespace
    # (the kept app, or viz pods still terminating); those pods are restarted without a proxy afterwards.
    namespace_exists "$LINKERD_NAMESPACE" && run_delete_from linkerd uninstall --force
  elif namespace_exists "$LINKERD_NAMESPACE"; then
    log_warn "linkerd CLI not found: removing Linkerd with kubectl only"
  fi
  remove_jaeger_for_linkerd
  delete_namespace "$LINKERD_VIZ_NAMESPACE"
  delete_namespace "$LINKERD_NAMESPACE"

  log_step "Removing Linkerd webhooks, cluster roles, CRDs and namespace annotations"
  # shellcheck disable=SC2046
  delete_objects $(linkerd_webhooks) $(linkerd_cluster_rbac)
  for annotation in linkerd.io/inject config.linkerd.io/default-inbound-policy; do
    for ns in $(namespaces_with_annotation "$annotation"); do
      # Linkerd's own namespaces go with their control plane; only ours keep existing.
      run kubectl annotate namespace "$ns" "${annotation}-"
    done
  done
  for crd in $(linkerd_crds); do
    delete_objects "crd/${crd}"
  done
  for crd in $(names_matching crd '\.gateway\.networking\.k8s\.io$'); do
    if [[ -n "$(kube get crd "$crd" -o jsonpath="{.metadata.annotations.${INSTALLED_BY_ANNOTATION//./\\.}}" 2>/dev/null)" ]]; then
      delete_objects "crd/${crd}"
    fi
  done
}

linkerd_leftovers() {
  for ns in "$LINKERD_NAMESPACE" "$LINKERD_VIZ_NAMESPACE" "$LINKERD_JAEGER_NAMESPACE" "$JAEGER_NAMESPACE"; do
    namespace_exists "$ns" && printf 'namespace/%s\n' "$ns"
  done
  linkerd_crds | sed 's|^|crd/|'
  linkerd_webhooks
  linkerd_cluster_rbac
  namespaces_with_annotation linkerd.io/inject | sed 's|^|annotation linkerd.io/inject on namespace/|'
  namespaces_with_annotation config.linkerd.io/default-inbound-policy |
    sed 's|^|annotation config.linkerd.io/default-inbound-policy on namespace/|'
  return 0
}

# ---------------------------------------------------------------------------------------------------------------
# Application
# ---------------------------------------------------------------------------------------------------------------
# remove_application: monitoring (rendered, so its cluster-wide RBAC goes too) and the app namespace with everything
# in it, including the mesh configuration inside it, whichever mesh it was for. Runs before any CRD is removed, so
# every kind it deletes is still known to the API server.
remove_application() {
  log_step "Removing the application and monitoring"
  if [[ -f "${REPO_ROOT}/${MONITORING_DIR}/kustomization.yaml" ]]; then
    run_delete_from kubectl kustomize "${REPO_ROOT}/${MONITORING_DIR}"
  fi
  delete_namespace "$APP_NAMESPACE"
}

# verify_removed MESH: print what is left of MESH and fail, or confirm that nothing is.
# uninstall_mesh MESH ARGS...: what ./uninstall-istio.sh and ./uninstall-linkerd.sh do, for MESH istio or linkerd:
# parse --keep-app and the common flags, check the cluster, confirm, remove, restart the app if kept, verify.
uninstall_mesh() {
  local mesh="$1" keep_app=0 title
  shift
  title="$(tr '[:lower:]' '[:upper:]' <<<"${mesh:0:1}")${mesh:1}"
  while (($#)); do
    case "$1" in
      --keep-app) keep_app=1 ;;
      *) parse_common_flag "$1" || die "unknown option: $1 (see ./uninstall-${mesh}.sh --help)" ;;
    esac
    shift
  done

  log_step "Checking prerequisites"
  require_cluster
  use_project_tools
  if ! "${mesh}_present"; then
    log_info "${title} is not installed in cluster '${CLUSTER_CONTEXT}'"
  fi
  confirm "Remove ${title}$( ((keep_app)) || echo ' and the shop') from cluster '${CLUSTER_CONTEXT}'?" ||
    die "aborted: nothing was changed"

  "remove_${mesh}" "$keep_app"
  if ((keep_app)); then
    log_step "Restarting the application without the mesh's proxies"
    restart_workloads_unless_all_pods_have "$APP_NAMESPACE" none
    wait_for_rollouts "$APP_NAMESPACE"
  fi
  verify_removed "$mesh"
}

verify_removed() {
  local mesh="$1" leftovers
  log_step "Checking that nothing of ${mesh} is left"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] check for leftover %s namespaces, CRDs, webhooks, labels and annotations\n' "$mesh"
    return 0
  fi
  leftovers="$("${mesh}_leftovers")"
  if [[ -n "$leftovers" ]]; then
    printf '%s\n' "$leftovers" | sed 's/^/    left: /' >&2
    die "${mesh} was not removed completely (see 'left:' above): delete those by hand, or rerun after they finish terminating"
  fi
  log_ok "no ${mesh} namespace, CRD, webhook, cluster role, label or annotation left"
}

# ---------------------------------------------------------------------------------------------------------------
# Deploy flow shared by deploy-istio.sh and deploy-linkerd.sh
# ---------------------------------------------------------------------------------------------------------------
SKIP_MESH_INSTALL=0
SKIP_QUICK_TEST=0

deploy_usage() {
  cat <<'USAGE'
Deploy options:
  --registry HOST:PORT   images come from HOST:PORT/<name>:<tag> (what ./build.sh --registry pushed)
  --skip-mesh-install    the cluster already runs this mesh: only apply the app and its mesh configuration
  --skip-quick-test      do not run ./quick-test.sh at the end
  --timeout DURATION     how long each rollout may take: 300s, 10m, or seconds (default 300s)
USAGE
}

# parse_deploy_flag "$@": consume one deploy option (and its value); sets DEPLOY_SHIFT to how many words it took.
parse_deploy_flag() {
  DEPLOY_SHIFT=1
  case "$1" in
    --registry)
      [[ $# -ge 2 && -n "$2" ]] || die "--registry needs HOST:PORT, e.g. localhost:5001"
      REGISTRY="${2%/}"
      DEPLOY_SHIFT=2
      ;;
    --timeout)
      set_rollout_timeout "${2:-}" --timeout
      DEPLOY_SHIFT=2
      ;;
    --skip-mesh-install) SKIP_MESH_INSTALL=1 ;;
    --skip-quick-test) SKIP_QUICK_TEST=1 ;;
    *) parse_common_flag "$1" ;;
  esac
}

# apply_application MESH_DIR: the mesh overlay (which includes the base layer and turns injection on for the
# namespace) with REGISTRY, then monitoring. Sets APP_WORKLOAD_NAMESPACES to the namespaces to wait for.
apply_application() {
  local mesh_dir="$1" namespaces
  log_step "Applying the application with its ${mesh_dir} configuration${REGISTRY:+ (images from ${REGISTRY})}"
  apply_kustomization "$mesh_dir"
  namespaces="${APPLIED_NAMESPACES}"
  log_step "Applying monitoring (${MONITORING_DIR}/)"
  ensure_namespace "$MONITORING_NAMESPACE"
  ensure_grafana_admin_secret
  apply_kustomization "$MONITORING_DIR"
  namespaces+=$'\n'"${APPLIED_NAMESPACES}"
  APP_WORKLOAD_NAMESPACES="$(printf '%s\n' "$namespaces" | grep . | sort -u || true)"
}

# put_pods_on_mesh PROXY_CONTAINER: restart what still runs without (or with another) proxy, then wait.
put_pods_on_mesh() {
  local proxy="$1" ns
  log_step "Waiting for the application"
  for ns in ${APP_WORKLOAD_NAMESPACES:-$APP_NAMESPACE}; do
    wait_for_rollouts "$ns"
  done
  log_step "Moving every pod of ${APP_NAMESPACE} onto the mesh (${proxy})"
  restart_workloads_unless_all_pods_have "$APP_NAMESPACE" "$proxy"
  wait_for_rollouts "$APP_NAMESPACE"
}

run_quick_test() {
  local mesh="$1"
  if ((SKIP_QUICK_TEST)); then
    log_info "quick test skipped (--skip-quick-test); run it with ./quick-test.sh --mesh ${mesh}"
    return 0
  fi
  log_step "Quick test"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] ./quick-test.sh --mesh %s\n' "$mesh"
    return 0
  fi
  [[ -x "${REPO_ROOT}/quick-test.sh" ]] || die "quick-test.sh is missing: is the checkout complete?"
  "${REPO_ROOT}/quick-test.sh" --mesh "$mesh" ||
    die "the deploy finished but the quick test reports failures (see the table above): ./quick-test.sh --mesh ${mesh} reruns it"
}

# remove_other_mesh NAME PRESENT_FN REMOVE_FN UNINSTALL_SCRIPT: if the other mesh is installed, confirm and remove
# it, keeping the app (its pods move to the new mesh afterwards).
remove_other_mesh() {
  local name="$1" present_fn="$2" remove_fn="$3" uninstall_script="$4"
  log_step "Looking for ${name}"
  if ! "$present_fn"; then
    log_info "${name} is not installed"
    return 0
  fi
  confirm "${name} is installed in cluster '${CLUSTER_CONTEXT}'; only one mesh may run. Remove ${name}?" ||
    die "aborted: ${name} stays installed; remove it with ./${uninstall_script} or rerun with --yes"
  "$remove_fn" 1
}

# ---------------------------------------------------------------------------------------------------------------
# Jaeger for Linkerd. The linkerd-jaeger extension is gone from the 2.19+ CLI; Linkerd's docs install Jaeger
# all-in-one with Helm and point the proxies' OTLP exporter at it.
# ---------------------------------------------------------------------------------------------------------------
JAEGER_NAMESPACE="jaeger-system"
JAEGER_HELM_REPO="${JAEGER_HELM_REPO:-https://jaegertracing.github.io/helm-charts}"
LINKERD_TRACING_FLAGS=(
  --set proxy.tracing.enabled=true
  --set "proxy.tracing.collector.endpoint=jaeger-collector.${JAEGER_NAMESPACE}:4317"
  --set proxy.tracing.collector.meshIdentity.serviceAccountName=jaeger
  --set "proxy.tracing.collector.meshIdentity.namespace=${JAEGER_NAMESPACE}"
)

install_jaeger_for_linkerd() {
  log_step "Installing Jaeger (all-in-one, in-memory) into ${JAEGER_NAMESPACE}"
  run helm repo add jaegertracing "$JAEGER_HELM_REPO" --force-update
  run helm upgrade --install jaeger jaegertracing/jaeger --namespace "$JAEGER_NAMESPACE" --create-namespace --wait \
    --timeout "$ROLLOUT_TIMEOUT" --set allInOne.enabled=true --set storage.type=memory --set agent.enabled=false \
    --set collector.enabled=false --set query.enabled=false --set provisionDataStore.cassandra=false ||
    die "helm could not install Jaeger (see above): check the network, or deploy without --with-jaeger"
}

# enable_linkerd_tracing: point the proxies at Jaeger on an existing control plane (install passes the flags).
enable_linkerd_tracing() {
  run_apply_from linkerd upgrade "${LINKERD_TRACING_FLAGS[@]}"
}

remove_jaeger_for_linkerd() {
  namespace_exists "$JAEGER_NAMESPACE" || return 0
  if command -v helm >/dev/null 2>&1; then
    run helm uninstall jaeger --namespace "$JAEGER_NAMESPACE" --ignore-not-found
  fi
  delete_namespace "$JAEGER_NAMESPACE"
}

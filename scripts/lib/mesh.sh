# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file
# Mesh-specific steps shared by deploy-istio.sh, deploy-linkerd.sh, uninstall-istio.sh and uninstall-linkerd.sh:
# rendering and applying our kustomizations (with the image registry), detecting and removing each mesh, and
# moving the application's pods onto (or off) a mesh. Each idea is defined once here; the root scripts only
# decide the order. Sources common.sh.

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=scripts/lib/ownership.sh
source "$(dirname "${BASH_SOURCE[0]}")/ownership.sh"

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

REGISTRY="${REGISTRY:-}"
LINKERD_INSTALL_FLAGS=()   # extra `linkerd install` flags (tracing with --with-jaeger)

# ---------------------------------------------------------------------------------------------------------------
# Rendering and applying our kustomizations
# ---------------------------------------------------------------------------------------------------------------
# built_tag IMAGE: the unique tag the last ./build.sh gave IMAGE (name:tag as the manifests write it), or nothing.
built_tag() {
  [[ -f "$IMAGE_TAGS_FILE" ]] || return 0
  awk -v image="$1" '$1 == image { print $2; exit }' "$IMAGE_TAGS_FILE"
}

# render_kustomization DIR: print the rendered YAML of DIR (relative to the repo). Every image that
# ./build.sh --list-images names is pointed, through a throw-away overlay, at REGISTRY/<name> (with REGISTRY set) and
# at the unique tag of the last build (IMAGE_TAGS_FILE): the Deployments then change when an image does, so a rebuilt
# image is rolled out, never hidden behind a fixed tag and IfNotPresent. kustomize matches an `images:` name with its
# tag ("payment-service:v2": api/internal/image/image.go, IsImageMatched), which keeps payment's v1 and v2 apart. The
# overlay lives under .tools/ (git-ignored): kustomize needs a relative path to the base.
render_kustomization() {
  local dir="$1" overlay image tag entries=""
  [[ -f "${REPO_ROOT}/${dir}/kustomization.yaml" ]] || die "${dir}/kustomization.yaml is missing: is the checkout complete?"
  while read -r image; do
    [[ -n "$image" ]] || continue
    tag="$(built_tag "$image")"
    [[ -n "$REGISTRY" || -n "$tag" ]] || continue
    entries+="- name: ${image}"$'\n'
    [[ -z "$REGISTRY" ]] || entries+="  newName: ${REGISTRY}/${image%%:*}"$'\n'
    [[ -z "$tag" ]] || entries+="  newTag: ${tag}"$'\n'
  done <<<"$("${REPO_ROOT}/build.sh" --list-images)"
  if [[ -z "$entries" ]]; then
    kubectl kustomize "${REPO_ROOT}/${dir}"
    return
  fi
  mkdir -p "${REPO_ROOT}/.tools"
  overlay="$(mktemp -d "${REPO_ROOT}/.tools/render.XXXXXX")"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../%s\nimages:\n%s' "$dir" "$entries" \
    >"${overlay}/kustomization.yaml"
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

# namespace_docs_in: the names of the Namespace objects of a rendered YAML stream on stdin.
namespace_docs_in() {
  awk '/^---/ { k = "" } /^kind:[ \t]/ { k = $2 } k == "Namespace" && /^  name:[ \t]/ { print $2 }' | tr -d '"'
}

# drop_namespace_doc NAME: the YAML stream on stdin without the Namespace object NAME.
drop_namespace_doc() {
  awk -v name="$1" '
    function flush() { if (doc != "" && !(kind == "Namespace" && ns == name)) printf "---\n%s", doc; doc = ""; kind = ""; ns = "" }
    /^---/ { flush(); next }
    /^kind:[ \t]/ { kind = $2 }
    /^  name:[ \t]/ && ns == "" { ns = $2 }
    { doc = doc $0 "\n" }
    END { flush() }
  '
}

# die_foreign_app_namespace: the app namespace exists and is not the lab's (the shop's objects would mix with others').
die_foreign_app_namespace() {
  die "namespace ${APP_NAMESPACE} exists and is not the lab's (no app.kubernetes.io/part-of=${LAB_NAME}): the shop needs its own namespace; remove or rename that one"
}

# check_no_foreign_objects DIR: a read-only part of the preflight (also under --dry-run, which must stop where the run
# would): stop when the app namespace or an object DIR would apply already exists and is not the lab's (someone
# else's, which kubectl apply would change and uninstall then delete: e.g. a mesh-wide Telemetry/mesh-default in the
# istio-system of an Istio the lab did not install). Other namespaces are handled in apply_kustomization.
check_no_foreign_objects() {
  local dir="$1" rendered foreign
  rendered="$(render_kustomization "$dir")" || die "kubectl kustomize ${dir} failed: fix the manifests (./test.sh checks them)"
  if namespace_docs_in <<<"$rendered" | grep -qxF "$APP_NAMESPACE" && namespace_exists "$APP_NAMESPACE" &&
    ! lab_namespace "$APP_NAMESPACE"; then
    die_foreign_app_namespace
  fi
  foreign="$(yaml_docs DROP Namespace <<<"$rendered" | foreign_objects)"
  [[ -z "$foreign" ]] ||
    die "${dir}/ would change objects that are not the lab's: $(tr '\n' ' ' <<<"$foreign" | sed 's/ $//'): remove or rename them first, or use another cluster"
}

# apply_kustomization DIR: render DIR (with REGISTRY) and apply it. DestinationRules go first, because a
# VirtualService naming a subset its DestinationRule does not define yet answers 503 (docs/deploy.md, troubleshooting). A namespace the
# render declares is created and recorded as the lab's when missing; an existing one that is not the lab's is used
# as it is (not labelled, never deleted by uninstall), except the app's namespace, which must be the lab's.
# Sets APPLIED_NAMESPACES to the namespaces its objects live in.
apply_kustomization() {
  local dir="$1" rendered first_pass ns created=""
  if [[ "$DRY_RUN" == 1 ]]; then
    # Only Istio's configuration has DestinationRules to put first.
    printf '[dry-run] kubectl kustomize %s%s | kubectl apply -f -%s\n' "$dir" "${REGISTRY:+ with images from ${REGISTRY}}" \
      "$([[ "$dir" == "$ISTIO_DIR" ]] && echo '   (DestinationRules first)')"
    APPLIED_NAMESPACES=""
    return 0
  fi
  rendered="$(render_kustomization "$dir")" || die "kubectl kustomize ${dir} failed: fix the manifests (./test.sh checks them)"
  APPLIED_NAMESPACES="$(namespaces_in_yaml <<<"$rendered")"
  for ns in $(namespace_docs_in <<<"$rendered"); do
    if ! namespace_exists "$ns"; then
      created+="${ns} "
    elif ! lab_namespace "$ns"; then
      [[ "$ns" != "$APP_NAMESPACE" ]] || die_foreign_app_namespace
      log_info "namespace ${ns} exists and is not the lab's: used as it is (not labelled, never deleted by uninstall)"
      rendered="$(drop_namespace_doc "$ns" <<<"$rendered")"
    fi
  done
  first_pass="$(yaml_docs KEEP CustomResourceDefinition Namespace DestinationRule <<<"$rendered")"
  if [[ -n "$first_pass" ]]; then
    printf '    + kubectl apply -f - (%s, first its namespaces, CRDs and DestinationRules)\n' "$dir"
    kubectl apply -f - <<<"$first_pass" || die "kubectl apply of ${dir}/ failed (see above): fix the cause and rerun"
  fi
  printf '    + kubectl apply -f - (%s)\n' "$dir"
  kubectl apply -f - <<<"$rendered" || die "kubectl apply of ${dir}/ failed (see above): fix the cause and rerun"
  for ns in $created; do
    mark_created_by_lab namespace "$ns"
  done
}

# ensure_lab_namespace NAME: create NAME as the lab's when missing (an existing one is used as it is).
ensure_lab_namespace() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] kubectl apply -f - (Namespace %s, recorded as the lab'"'"'s, when missing)\n' "$1"
    return 0
  fi
  namespace_exists "$1" && return 0
  printf '    + kubectl apply -f - (Namespace %s)\n' "$1"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$1" | kubectl apply -f - >/dev/null ||
    die "could not create namespace $1 (see above)"
  mark_created_by_lab namespace "$1"
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
  # shellcheck disable=SC2086  # LAB_LABELS: one key=value per word
  run kubectl -n "$MONITORING_NAMESPACE" label secret "$GRAFANA_SECRET" $LAB_LABELS --overwrite >/dev/null
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
# the cluster, under --dry-run too: istioctl's precheck, and that neither the add-ons nor istio/ nor our monitoring
# would overwrite objects that are not the lab's (the add-ons have generic cluster-wide names such as
# ClusterRole/prometheus; istio/ has the mesh-wide Telemetry in istio-system).
preflight_istio() {
  log_step "Preflight checks for Istio"
  if ((SKIP_MESH_INSTALL == 0)); then
    run istioctl x precheck || die "istioctl x precheck found problems (see above): fix them, then rerun"
    fetch_istio_addons
  fi
  check_no_foreign_objects "$ISTIO_DIR"
  check_no_foreign_objects "$MONITORING_DIR"
}

# fetch_istio_addons: the add-ons of the pinned release, downloaded once into ISTIO_ADDONS_DIR and labelled as the
# lab's (through a throw-away kustomization; kubectl kustomize runs offline); stop if any of their objects already
# exists without those labels.
fetch_istio_addons() {
  local addon foreign source
  make_temp_dir ISTIO_ADDONS_DIR
  for addon in $ISTIO_ADDONS; do
    mkdir -p "${ISTIO_ADDONS_DIR}/${addon}"
    source="$(istio_addon_url "$addon")"
    if [[ "$source" =~ ^https?:// ]]; then
      fetch "$source" "${ISTIO_ADDONS_DIR}/${addon}/${addon}.yaml"
    else
      cp "$source" "${ISTIO_ADDONS_DIR}/${addon}/${addon}.yaml" || die "add-on ${addon} not found at ${source}"
    fi
    printf '%s\n' "apiVersion: kustomize.config.k8s.io/v1beta1" "kind: Kustomization" "resources:" "  - ${addon}.yaml" \
      "labels:" "  - pairs:" "      app.kubernetes.io/part-of: ${LAB_NAME}" "      app.kubernetes.io/managed-by: ${LAB_NAME}" \
      "      ${COMPONENT_LABEL_KEY}: istio-addons" "    includeSelectors: false" >"${ISTIO_ADDONS_DIR}/${addon}/kustomization.yaml"
    kubectl kustomize "${ISTIO_ADDONS_DIR}/${addon}" >"${ISTIO_ADDONS_DIR}/${addon}.rendered.yaml" ||
      die "the ${addon} add-on from ${source} does not render (see above)"
    foreign="$(foreign_objects <"${ISTIO_ADDONS_DIR}/${addon}.rendered.yaml")"
    [[ -z "$foreign" ]] ||
      die "the Istio ${addon} add-on would overwrite objects that are not the lab's: $(tr '\n' ' ' <<<"$foreign" | sed 's/ $//'); if an older lab release applied them, delete them (kubectl delete -f ${source}) and rerun; else deploy with --skip-mesh-install and your own add-ons"
  done
}

# install_istio_control_plane: install Istio, unless one that is not the lab's is there already: that one is used as
# it is (someone else's control plane is not this script's to change). A new install is recorded on istio-system.
install_istio_control_plane() {
  local created=0
  log_step "Installing Istio ${ISTIO_VERSION} (demo profile)"
  if namespace_exists "$ISTIO_NAMESPACE" && ! created_by_lab namespace "$ISTIO_NAMESPACE"; then
    log_warn "Istio is installed already, not by the lab (namespace ${ISTIO_NAMESPACE} has no ${CREATED_BY_ANNOTATION}): used as it is; the shop needs the demo profile's ingress gateway and jaeger tracing provider"
    wait_for_rollouts "$ISTIO_NAMESPACE"
    return 0
  fi
  [[ "$DRY_RUN" == 1 ]] || namespace_exists "$ISTIO_NAMESPACE" || created=1
  run istioctl install --set profile=demo -y || die "istioctl install failed (see above): rerun after fixing the cause"
  ((created == 0)) || mark_created_by_lab namespace "$ISTIO_NAMESPACE"
  wait_for_rollouts "$ISTIO_NAMESPACE"
}

install_istio_addons() {
  log_step "Installing the Istio add-ons (${ISTIO_ADDONS}) of Istio ${ISTIO_VERSION}"
  local addon
  for addon in $ISTIO_ADDONS; do
    if [[ "$DRY_RUN" == 1 ]]; then
      printf '[dry-run] kubectl apply -f %s   (labelled as the lab'"'"'s, %s=istio-addons)\n' "$(istio_addon_url "$addon")" "$COMPONENT_LABEL_KEY"
      continue
    fi
    printf '    + kubectl apply -f %s (labelled as the lab'"'"'s)\n' "$(istio_addon_url "$addon")"
    kube apply -f "${ISTIO_ADDONS_DIR}/${addon}.rendered.yaml" >/dev/null ||
      die "could not apply the ${addon} add-on (see above): rerun after fixing the cause"
  done
  wait_for_rollouts "$ISTIO_NAMESPACE"
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

# ensure_gateway_api: install the Gateway API standard CRDs unless check_gateway_api found a supported version, and
# mark the ones installed here (labels and CREATED_BY_ANNOTATION) so uninstall-linkerd.sh removes only those.
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
    printf '[dry-run] kubectl label+annotate crd <each *.gateway.networking.k8s.io CRD> as the lab'"'"'s (%s=%s)\n' \
      "$CREATED_BY_ANNOTATION" "$(lab_script_name)"
    return 0
  fi
  # shellcheck disable=SC2046  # one CRD name per word
  mark_created_by_lab crd $(names_matching crd '\.gateway\.networking\.k8s\.io$')
}

# preflight_linkerd WITH_JAEGER: every read-only check of the Linkerd install, before anything (such as removing
# Istio) changes the cluster.
preflight_linkerd() {
  local with_jaeger="$1"
  log_step "Preflight checks for Linkerd"
  check_no_foreign_objects "$LINKERD_DIR"
  check_no_foreign_objects "$MONITORING_DIR"
  ((SKIP_MESH_INSTALL == 0)) || return 0
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
  [[ "$DRY_RUN" == 1 ]] || mark_created_by_lab namespace "$LINKERD_NAMESPACE"
  run linkerd check --wait "$ROLLOUT_TIMEOUT" || die "linkerd check failed (see above): the control plane is not healthy"
}

install_linkerd_viz() {
  log_step "Installing Linkerd viz"
  if namespace_exists "$LINKERD_VIZ_NAMESPACE" && linkerd viz check >/dev/null 2>&1; then
    # Reinstalling would only rotate viz's webhook certificates.
    log_info "Linkerd viz is already installed and healthy; kept"
    return 0
  fi
  local created=0
  [[ "$DRY_RUN" == 1 ]] || namespace_exists "$LINKERD_VIZ_NAMESPACE" || created=1
  run_apply_from linkerd viz install
  ((created == 0)) || mark_created_by_lab namespace "$LINKERD_VIZ_NAMESPACE"
  run linkerd viz check --wait "$ROLLOUT_TIMEOUT" || die "linkerd viz check failed (see above): viz is not healthy"
}



# ---------------------------------------------------------------------------------------------------------------
# Application
# ---------------------------------------------------------------------------------------------------------------



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
  ensure_lab_namespace "$MONITORING_NAMESPACE"
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

# remove_other_mesh MESH: if the other mesh is installed, confirm and take the app off it: its configuration of the
# app, and its control plane too when the lab installed it and nothing else uses it (uninstall.sh decides and says
# why). The app stays; its pods move to the new mesh afterwards.
remove_other_mesh() {
  local mesh="$1" name
  name="$(tr '[:lower:]' '[:upper:]' <<<"${mesh:0:1}")${mesh:1}"
  log_step "Looking for ${name}"
  if ! "${mesh}_present"; then
    log_info "${name} is not installed"
    return 0
  fi
  confirm "${name} is installed in cluster '${CLUSTER_CONTEXT}'; the shop runs on one mesh. Take it off ${name} (removing ${name} too if only the lab uses it)?" ||
    die "aborted: ${name} stays installed; remove it with ./uninstall-${mesh}.sh or rerun with --yes"
  remove_mesh "$mesh" 1
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

# install_jaeger_for_linkerd: after the control plane (its injector must exist), into a namespace annotated for
# injection: Linkerd exports spans only to a collector inside the mesh (linkerd docs, distributed tracing task: "the
# meshIdentity stanza is mandatory"). A Jaeger that still runs without a proxy is restarted onto the mesh. A
# jaeger-system that is not the lab's (someone followed that same task: release "jaeger" in it) is used as it is:
# `helm upgrade` would reset their release's values to ours, and the restart would cycle their workloads.
install_jaeger_for_linkerd() {
  log_step "Installing Jaeger (all-in-one, in-memory) into ${JAEGER_NAMESPACE}, meshed"
  if namespace_exists "$JAEGER_NAMESPACE" && ! lab_namespace "$JAEGER_NAMESPACE"; then
    log_warn "namespace ${JAEGER_NAMESPACE} is not the lab's: its Jaeger is used as it is (not installed, upgraded or restarted); the proxies send spans to jaeger-collector.${JAEGER_NAMESPACE}:4317, which must run meshed as ServiceAccount jaeger"
    return 0
  fi
  ensure_lab_namespace "$JAEGER_NAMESPACE"
  run kubectl annotate namespace "$JAEGER_NAMESPACE" linkerd.io/inject=enabled --overwrite
  run helm repo add jaegertracing "$JAEGER_HELM_REPO" --force-update
  run helm upgrade --install jaeger jaegertracing/jaeger --namespace "$JAEGER_NAMESPACE" --wait \
    --timeout "$ROLLOUT_TIMEOUT" --set allInOne.enabled=true --set storage.type=memory --set agent.enabled=false \
    --set collector.enabled=false --set query.enabled=false --set provisionDataStore.cassandra=false ||
    die "helm could not install Jaeger (see above): check the network, or deploy without --with-jaeger"
  restart_workloads_unless_all_pods_have "$JAEGER_NAMESPACE" linkerd-proxy
  wait_for_rollouts "$JAEGER_NAMESPACE"
}

# enable_linkerd_tracing: point the proxies at Jaeger on an existing control plane (install passes the flags).
enable_linkerd_tracing() {
  run_apply_from linkerd upgrade ${LINKERD_TRACING_FLAGS[@]+"${LINKERD_TRACING_FLAGS[@]}"}
}

# shellcheck source=scripts/lib/uninstall.sh
source "$(dirname "${BASH_SOURCE[0]}")/uninstall.sh"

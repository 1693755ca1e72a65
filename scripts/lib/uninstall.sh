# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file
# Removing the lab from a cluster it may share with others (./uninstall-istio.sh, ./uninstall-linkerd.sh, and a
# deploy that replaces the other mesh). Deleted: the objects that carry the lab's labels; a namespace only if the
# lab created it; a mesh's control plane, CRDs and webhooks only if the lab installed that mesh and nothing else uses
# it, or when the user asks for the cluster-wide removal by name (--purge-mesh). Everything kept is listed with the
# reason. First a plan (read-only, printed: under --dry-run it is exactly what would go), then the removal, then a
# check that everything planned is gone. Sourced by mesh.sh.

if [[ -n "${_UNINSTALL_SH_LOADED:-}" ]]; then
  return 0
fi
_UNINSTALL_SH_LOADED=1

PURGE_MESH=0

# Own namespaces of a mesh's installation (never "users" of it). jaeger-system is Linkerd's only when the plan
# removes it too (the lab created it: linkerd_own_namespaces); someone else's meshed Jaeger uses Linkerd.
ISTIO_OWN_NAMESPACES="istio-system"
LINKERD_OWN_NAMESPACES="linkerd linkerd-viz linkerd-jaeger"

# ---------------------------------------------------------------------------------------------------------------
# The plan: lines "remove|keep<TAB>what<TAB>why", printed before anything changes.
# ---------------------------------------------------------------------------------------------------------------
PLAN=""
plan() { PLAN+="$1"$'\t'"$2"$'\t'"${3:-}"$'\n'; }

print_plan() {
  log_step "Plan"
  if [[ -z "$PLAN" ]]; then
    log_info "nothing of the lab is in this cluster"
    return 0
  fi
  awk -F '\t' '$1 == "remove" { printf "    remove: %s%s\n", $2, ($3 == "" ? "" : " (" $3 ")") }' <<<"$PLAN"
  awk -F '\t' '$1 == "keep" { printf "    keep:   %s (%s)\n", $2, $3 }' <<<"$PLAN"
}

# ---------------------------------------------------------------------------------------------------------------
# What our manifests create, by namespace and type (rendered offline, so it needs no cluster).
# ---------------------------------------------------------------------------------------------------------------
# rendered_types DIR...: "namespace<TAB>type" of everything the kustomizations create, namespaces left out (a
# namespace goes only as a whole, and only when the lab created it: plan_namespaces).
rendered_types() {
  local dir
  for dir in "$@"; do
    render_kustomization "$dir" || die "kubectl kustomize ${dir} failed: is the checkout complete?"
    printf -- '---\n'
  done | object_types_in | grep -v $'\tnamespace$' || true
}

# app_types MESH_DIR: the types of the app with that mesh and of monitoring, plus what the scripts create there
# themselves (the Grafana admin Secret).
app_types() {
  { rendered_types "$1" "$MONITORING_DIR"; printf '%s\tsecret\n' "$MONITORING_NAMESPACE"; } | sort -u
}

# mesh_only_types MESH_DIR: the types the mesh overlay adds to the base (its configuration, not the app).
mesh_only_types() {
  local base
  base="$(rendered_types "kubernetes")"
  rendered_types "$1" | grep -vxF -f <(printf '%s\n' "$base") || true
}

# ---------------------------------------------------------------------------------------------------------------
# Deciding
# ---------------------------------------------------------------------------------------------------------------
# namespaces_of TYPES_LINES: the namespaces (first field, one word each) of "namespace<TAB>type" lines.
namespaces_of() { awk -F '\t' 'NF { print $1 }' <<<"$1" | sort -u; }

# plan_lab_objects TYPES_LINES: the lab's objects of those types, namespace by namespace (a namespace the lab created
# goes whole: plan_namespaces runs first and lists it in REMOVE_NAMESPACES).
plan_lab_objects() {
  local lines="$1" ns types
  REMOVE_OBJECTS="$lines"
  for ns in $(namespaces_of "$lines"); do
    [[ " ${REMOVE_NAMESPACES:-} " != *" ${ns} "* ]] || continue
    types="$(types_for "$ns" "$lines")"
    if [[ "$ns" == - ]]; then
      plan remove "the lab's cluster-wide ${types}"
    elif namespace_exists "$ns"; then
      plan remove "the lab's ${types} in namespace ${ns}"
    fi
  done
}

# plan_namespaces NAME...: a namespace the lab created goes, whole; any other is kept (its lab objects go).
plan_namespaces() {
  local ns
  for ns in "$@"; do
    namespace_exists "$ns" || continue
    if created_by_lab namespace "$ns"; then
      REMOVE_NAMESPACES+="${ns} "
      plan remove "namespace ${ns}" "created by the lab"
    else
      plan keep "namespace ${ns}" "not created by the lab (no ${CREATED_BY_ANNOTATION} annotation); only the lab's objects in it go"
    fi
  done
}

# The "users" of a mesh decide whether it may go, so a listing that fails (a request timeout on a large cluster, a
# type this user may not list) must not read as "nobody": unlisted WHAT stands in for whoever it may hide, and the
# mesh is kept.
unlisted() { printf '%s (could not be listed: kubectl failed)\n' "$1"; }

# foreign_namespaces_with label|annotation KEY=VALUE "EXCLUDED": namespaces asking for a mesh that are not the
# lab's app namespace nor one of EXCLUDED (the mesh's own). VALUE "*": any value. Non-zero when kubectl fails.
foreign_namespaces_with() {
  local how="$1" key="${2%%=*}" value="${2#*=}" excluded=" ${APP_NAMESPACE} $3 " ns current found
  if [[ "$how" == label ]]; then
    found="$(kube get namespaces -l "$key" -o jsonpath="{range .items[*]}{.metadata.name}{\"\\t\"}{.metadata.labels.$(jsonpath_key "$key")}{\"\\n\"}{end}" 2>/dev/null)" || return 1
  else
    found="$(kube get namespaces -o jsonpath="{range .items[*]}{.metadata.name}{\"\\t\"}{.metadata.annotations.$(jsonpath_key "$key")}{\"\\n\"}{end}" 2>/dev/null)" || return 1
  fi
  while IFS=$'\t' read -r ns current; do
    [[ -n "$ns" && -n "$current" ]] || continue
    [[ "$value" == "*" || "$current" == "$value" ]] || continue
    [[ "$excluded" == *" ${ns} "* ]] || printf '%s\n' "$ns"
  done <<<"$found"
}

# meshed_pods_outside LABEL "EXCLUDED": "namespace/pod" of meshed pods (LABEL set by the injector) outside the
# lab's app namespace and EXCLUDED. Non-zero when kubectl fails.
meshed_pods_outside() {
  local label="$1" excluded=" ${APP_NAMESPACE} $2 " ns pod
  kube get pods -A -l "$label" -o jsonpath='{range .items[*]}{.metadata.namespace}{"\t"}{.metadata.name}{"\n"}{end}' 2>/dev/null |
    while IFS=$'\t' read -r ns pod; do
      if [[ -n "$ns" && "$excluded" != *" ${ns} "* ]]; then printf '%s/%s\n' "$ns" "$pod"; fi
    done
}

# plan_app KEEP_APP MESH_DIR WHAT_THE_OVERLAY_SETS_ON_THE_NAMESPACE: the app's part of the plan. With --keep-app only
# the mesh's types; else the app and monitoring, their namespaces whole when the lab created them. A kept app
# namespace loses what the overlay set on it for the mesh.
plan_app() {
  local keep_app="$1" dir="$2" marks="$3"
  REMOVE_NAMESPACES=""
  if ((keep_app)); then
    plan_lab_objects "$(mesh_only_types "$dir")"
  else
    plan_namespaces "$APP_NAMESPACE" "$MONITORING_NAMESPACE"
    plan_lab_objects "$(app_types "$dir")"
  fi
  app_namespace_kept && plan remove "${marks} of namespace ${APP_NAMESPACE}"
  return 0
}

# decide_control_plane MESH_TITLE OWN_NAMESPACE USERS: sets REMOVE_CONTROL_PLANE (0/1) and plans it.
decide_control_plane() {
  local title="$1" namespace="$2" users="$3" owned=0
  REMOVE_CONTROL_PLANE=0
  created_by_lab namespace "$namespace" && owned=1
  if ((PURGE_MESH)); then
    REMOVE_CONTROL_PLANE=1
    plan remove "${title}'s control plane, webhooks and CRDs, cluster-wide" "--purge-mesh${users:+; still in use by: $(tr '\n' ' ' <<<"$users")}"
  elif ((owned)) && [[ -z "$users" ]]; then
    REMOVE_CONTROL_PLANE=1
    plan remove "${title}'s control plane, webhooks and CRDs" "installed by the lab, used by nothing else"
  elif ((owned)); then
    plan keep "${title}'s control plane and CRDs" "still in use by: $(tr '\n' ' ' <<<"$users" | sed 's/ $//'); --purge-mesh removes them anyway"
  else
    plan keep "${title}'s control plane and CRDs" "not installed by the lab (namespace ${namespace} has no ${CREATED_BY_ANNOTATION}); --purge-mesh removes them anyway"
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# Istio
# ---------------------------------------------------------------------------------------------------------------
ISTIO_ADDON_NAMESPACED_TYPES="deployment.apps,service,configmap,serviceaccount,secret,role.rbac.authorization.k8s.io,rolebinding.rbac.authorization.k8s.io"
ISTIO_ADDON_CLUSTER_TYPES="clusterrole.rbac.authorization.k8s.io,clusterrolebinding.rbac.authorization.k8s.io"
ISTIO_ADDON_SELECTOR="${LAB_SELECTOR},${COMPONENT_LABEL_KEY}=istio-addons"

# istio_users: what else uses Istio: namespaces asking for injection, meshed pods elsewhere, configuration that is
# not the lab's.
istio_users() {
  local crds
  foreign_namespaces_with label istio-injection=enabled "$ISTIO_OWN_NAMESPACES" |
    sed 's|^|namespace/|; s|$| (istio-injection=enabled)|' || unlisted "namespaces with istio-injection"
  foreign_namespaces_with label 'istio.io/rev=*' "$ISTIO_OWN_NAMESPACES" | sed 's|^|namespace/|; s|$| (istio.io/rev)|' ||
    unlisted "namespaces with istio.io/rev"
  meshed_pods_outside security.istio.io/tlsMode "$ISTIO_OWN_NAMESPACES" | sed 's|^|pod/|' || unlisted "meshed pods"
  crds="$(istio_crds)"
  # shellcheck disable=SC2086  # one CRD name per word
  [[ -z "$crds" ]] || foreign_custom_objects "$APP_NAMESPACE $ISTIO_OWN_NAMESPACES" $crds || unlisted "Istio configuration"
}

plan_istio() {
  local keep_app="$1"
  plan_app "$keep_app" "$ISTIO_DIR" "label istio-injection"
  if namespace_exists "$ISTIO_NAMESPACE"; then
    plan remove "the Istio add-ons the lab applied (${ISTIO_ADDONS}), by their ${COMPONENT_LABEL_KEY}=istio-addons label"
  fi
  if istio_present; then
    decide_control_plane Istio "$ISTIO_NAMESPACE" "$(istio_users | sort -u)"
  else
    REMOVE_CONTROL_PLANE=0
  fi
}

remove_istio_planned() {
  local keep_app="$1"
  remove_planned_app_objects "$keep_app" istio-injection label
  log_step "Removing the Istio add-ons the lab applied"
  if namespace_exists "$ISTIO_NAMESPACE"; then
    run kubectl delete "$ISTIO_ADDON_NAMESPACED_TYPES" -n "$ISTIO_NAMESPACE" -l "$ISTIO_ADDON_SELECTOR" --ignore-not-found --wait=false
    run kubectl delete "$ISTIO_ADDON_CLUSTER_TYPES" -l "$ISTIO_ADDON_SELECTOR" --ignore-not-found --wait=false
  fi
  ((REMOVE_CONTROL_PLANE)) || return 0
  log_step "Removing the Istio control plane"
  if namespace_exists "$ISTIO_NAMESPACE" && command -v istioctl >/dev/null 2>&1; then
    run istioctl uninstall --purge -y
  elif namespace_exists "$ISTIO_NAMESPACE"; then
    log_warn "istioctl not found: removing Istio with kubectl only"
  fi
  delete_namespace "$ISTIO_NAMESPACE"
  delete_cluster_wide_of istio
}

istio_leftovers() {
  lab_leftovers
  namespace_exists "$APP_NAMESPACE" && namespaces_with_label istio-injection | grep -qxF "$APP_NAMESPACE" &&
    printf 'label istio-injection on namespace/%s\n' "$APP_NAMESPACE"
  lab_objects_left "$ISTIO_NAMESPACE" "$ISTIO_ADDON_NAMESPACED_TYPES"
  if ((REMOVE_CONTROL_PLANE)); then
    namespace_exists "$ISTIO_NAMESPACE" && printf 'namespace/%s\n' "$ISTIO_NAMESPACE"
    istio_crds | sed 's|^|crd/|'
    istio_webhooks
    istio_cluster_rbac
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------------------------
# Linkerd
# ---------------------------------------------------------------------------------------------------------------
GATEWAY_API_KINDS_PATTERN='\.gateway\.networking\.k8s\.io$'

# linkerd_own_namespaces: LINKERD_OWN_NAMESPACES, and jaeger-system when the plan removes it (REMOVE_JAEGER).
linkerd_own_namespaces() {
  printf '%s%s\n' "$LINKERD_OWN_NAMESPACES" "$( ((${REMOVE_JAEGER:-0})) && printf ' %s' "$JAEGER_NAMESPACE")"
}

linkerd_users() {
  local crds own
  own="$(linkerd_own_namespaces)"
  foreign_namespaces_with annotation linkerd.io/inject=enabled "$own" |
    sed 's|^|namespace/|; s|$| (linkerd.io/inject=enabled)|' || unlisted "namespaces with linkerd.io/inject"
  meshed_pods_outside linkerd.io/control-plane-ns "$own" | sed 's|^|pod/|' || unlisted "meshed pods"
  crds="$(linkerd_crds)"
  # shellcheck disable=SC2086
  [[ -z "$crds" ]] || foreign_custom_objects "$APP_NAMESPACE $own" $crds || unlisted "Linkerd configuration"
}

plan_linkerd() {
  local keep_app="$1" gateway_crds foreign_routes
  plan_app "$keep_app" "$LINKERD_DIR" "annotations linkerd.io/inject and config.linkerd.io/default-inbound-policy"
  REMOVE_JAEGER=0
  if namespace_exists "$JAEGER_NAMESPACE"; then
    if created_by_lab namespace "$JAEGER_NAMESPACE"; then
      REMOVE_JAEGER=1
      plan remove "Jaeger (helm release jaeger, namespace ${JAEGER_NAMESPACE})" "installed by deploy-linkerd.sh --with-jaeger"
    else
      plan keep "namespace ${JAEGER_NAMESPACE}" "not created by the lab"
    fi
  fi
  if linkerd_present; then
    decide_control_plane Linkerd "$LINKERD_NAMESPACE" "$(linkerd_users | sort -u)"
  else
    REMOVE_CONTROL_PLANE=0
  fi
  REMOVE_GATEWAY_API=0
  gateway_crds="$(names_matching crd "$GATEWAY_API_KINDS_PATTERN")"
  [[ -n "$gateway_crds" ]] || return 0
  if ! created_by_lab crd "$GATEWAY_API_CRD_PROBE"; then
    plan keep "the Gateway API CRDs" "not installed by the lab"
    return 0
  fi
  # shellcheck disable=SC2086
  foreign_routes="$({ foreign_custom_objects "$APP_NAMESPACE $(linkerd_own_namespaces)" $gateway_crds ||
    unlisted "Gateway API objects"; } | sort -u)"
  if [[ -n "$foreign_routes" ]]; then
    plan keep "the Gateway API CRDs (installed by the lab)" "in use by: $(tr '\n' ' ' <<<"$foreign_routes" | sed 's/ $//')"
  elif ((REMOVE_CONTROL_PLANE == 0)) && linkerd_present; then
    plan keep "the Gateway API CRDs (installed by the lab)" "Linkerd stays and needs them"
  else
    REMOVE_GATEWAY_API=1
    plan remove "the Gateway API CRDs" "installed by the lab, used by nothing else"
  fi
}

remove_linkerd_planned() {
  local keep_app="$1" crd has_cli=0
  command -v linkerd >/dev/null 2>&1 && has_cli=1
  remove_planned_app_objects "$keep_app" "linkerd.io/inject config.linkerd.io/default-inbound-policy" annotation
  if ((REMOVE_JAEGER)); then
    log_step "Removing Jaeger"
    command -v helm >/dev/null 2>&1 && run helm uninstall jaeger --namespace "$JAEGER_NAMESPACE" --ignore-not-found
    delete_namespace "$JAEGER_NAMESPACE"
  fi
  if ((REMOVE_CONTROL_PLANE)); then
    log_step "Removing the Linkerd extensions and control plane"
    # The linkerd-jaeger extension of older installs: its CLI command is gone from 2.19+, so kubectl removes it.
    if namespace_exists "$LINKERD_JAEGER_NAMESPACE"; then
      delete_namespace "$LINKERD_JAEGER_NAMESPACE"
      run kubectl delete "$LINKERD_EXTENSION_CLUSTER_KINDS" -l linkerd.io/extension=jaeger --ignore-not-found
    fi
    if ((has_cli)); then
      namespace_exists "$LINKERD_VIZ_NAMESPACE" && run_delete_from linkerd viz uninstall
      # --force: without it `linkerd uninstall` refuses while any meshed pod runs outside the linkerd namespace
      # (the kept app, whose pods are restarted without a proxy afterwards, or, under --purge-mesh, others').
      namespace_exists "$LINKERD_NAMESPACE" && run_delete_from linkerd uninstall --force
    elif namespace_exists "$LINKERD_NAMESPACE"; then
      log_warn "linkerd CLI not found: removing Linkerd with kubectl only"
    fi
    delete_namespace "$LINKERD_VIZ_NAMESPACE"
    delete_namespace "$LINKERD_NAMESPACE"
    delete_cluster_wide_of linkerd
  fi
  if ((REMOVE_GATEWAY_API)); then
    log_step "Removing the Gateway API CRDs the lab installed"
    for crd in $(names_matching crd "$GATEWAY_API_KINDS_PATTERN"); do
      created_by_lab crd "$crd" && delete_objects "crd/${crd}"
    done
  fi
  return 0
}

linkerd_leftovers() {
  local annotation
  lab_leftovers
  if namespace_exists "$APP_NAMESPACE"; then
    for annotation in linkerd.io/inject config.linkerd.io/default-inbound-policy; do
      namespaces_with_annotation "$annotation" | grep -qxF "$APP_NAMESPACE" &&
        printf 'annotation %s on namespace/%s\n' "$annotation" "$APP_NAMESPACE"
    done
  fi
  ((REMOVE_JAEGER == 0)) || { namespace_exists "$JAEGER_NAMESPACE" && printf 'namespace/%s\n' "$JAEGER_NAMESPACE"; }
  if ((REMOVE_CONTROL_PLANE)); then
    for ns in "$LINKERD_NAMESPACE" "$LINKERD_VIZ_NAMESPACE" "$LINKERD_JAEGER_NAMESPACE"; do
      namespace_exists "$ns" && printf 'namespace/%s\n' "$ns"
    done
    linkerd_crds | sed 's|^|crd/|'
    linkerd_webhooks
    linkerd_cluster_rbac
  fi
  if ((REMOVE_GATEWAY_API)); then
    names_matching crd "$GATEWAY_API_KINDS_PATTERN" | sed 's|^|crd/|'
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------------------------
# Shared by both meshes
# ---------------------------------------------------------------------------------------------------------------
# remove_planned_app_objects KEEP_APP KEYS label|annotation: the lab's objects (while their CRDs still exist), the
# namespaces the lab created, and with --keep-app the mesh's label or annotations of the app namespace.
remove_planned_app_objects() {
  local keep_app="$1" keys="$2" how="$3" ns key
  log_step "Removing the lab's objects$( ((keep_app)) && echo " of the mesh (the app stays)")"
  for ns in $(namespaces_of "$REMOVE_OBJECTS"); do
    [[ " ${REMOVE_NAMESPACES:-} " == *" ${ns} "* ]] || delete_lab_objects "$ns" "$(types_for "$ns" "$REMOVE_OBJECTS")"
  done
  for ns in ${REMOVE_NAMESPACES:-}; do
    delete_namespace "$ns"
  done
  if app_namespace_kept; then
    for key in $keys; do
      if [[ "$how" == label ]]; then
        run kubectl label namespace "$APP_NAMESPACE" "${key}-"
      else
        run kubectl annotate namespace "$APP_NAMESPACE" "${key}-"
      fi
    done
  fi
}

# delete_cluster_wide_of MESH: what a removed control plane leaves cluster-wide: its webhooks (pointing at a deleted
# control plane, they break every later pod creation or the next install), cluster roles, and CRDs.
delete_cluster_wide_of() {
  local mesh="$1" crd
  # shellcheck disable=SC2046
  delete_objects $("${mesh}_webhooks") $("${mesh}_cluster_rbac")
  for crd in $("${mesh}_crds"); do
    delete_objects "crd/${crd}"
  done
}

# app_namespace_kept: the app namespace stays (--keep-app, or not created by the lab): the mesh's label or annotations
# the overlay set on it go, the namespace does not.
app_namespace_kept() {
  namespace_exists "$APP_NAMESPACE" && [[ " ${REMOVE_NAMESPACES:-} " != *" ${APP_NAMESPACE} "* ]]
}

# lab_leftovers: what of the lab's planned removal is still there.
lab_leftovers() {
  local ns
  for ns in ${REMOVE_NAMESPACES:-}; do
    namespace_exists "$ns" && printf 'namespace/%s\n' "$ns"
  done
  for ns in $(namespaces_of "${REMOVE_OBJECTS:-}"); do
    [[ " ${REMOVE_NAMESPACES:-} " == *" ${ns} "* ]] || lab_objects_left "$ns" "$(types_for "$ns" "$REMOVE_OBJECTS")"
  done
}

# remove_mesh MESH KEEP_APP: plan, print, remove (the deploy's removal of the other mesh: no extra confirmation).
remove_mesh() {
  local mesh="$1" keep_app="$2"
  PLAN=""
  "plan_${mesh}" "$keep_app"
  print_plan
  "remove_${mesh}_planned" "$keep_app"
}

# uninstall_mesh MESH ARGS...: what ./uninstall-istio.sh and ./uninstall-linkerd.sh do: parse the options, check the
# cluster, plan and show, confirm, remove, restart the app if kept, verify.
uninstall_mesh() {
  local mesh="$1" keep_app=0 title
  shift
  title="$(tr '[:lower:]' '[:upper:]' <<<"${mesh:0:1}")${mesh:1}"
  while (($#)); do
    case "$1" in
      --keep-app) keep_app=1 ;;
      --purge-mesh) PURGE_MESH=1 ;;
      *) parse_common_flag "$1" || die "unknown option: $1 (see ./uninstall-${mesh}.sh --help)" ;;
    esac
    shift
  done

  log_step "Checking prerequisites"
  require_cluster
  use_project_tools
  "${mesh}_present" || log_info "${title} is not installed in cluster '${CLUSTER_CONTEXT}'"
  PLAN=""
  "plan_${mesh}" "$keep_app"
  print_plan
  if [[ -z "$(awk -F '\t' '$1 == "remove"' <<<"$PLAN")" ]]; then
    log_ok "nothing to remove"
    return 0
  fi
  confirm "Remove what the plan lists from cluster '${CLUSTER_CONTEXT}'?" || die "aborted: nothing was changed"
  "remove_${mesh}_planned" "$keep_app"
  if ((keep_app)); then
    log_step "Restarting the application without the mesh's proxies"
    restart_workloads_unless_all_pods_have "$APP_NAMESPACE" none
    wait_for_rollouts "$APP_NAMESPACE"
  fi
  verify_removed "$mesh"
}

verify_removed() {
  local mesh="$1" leftovers
  log_step "Checking that everything planned is gone"
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '[dry-run] check that every object the plan removes is gone\n'
    return 0
  fi
  leftovers="$("${mesh}_leftovers" | grep . || true)"
  if [[ -n "$leftovers" ]]; then
    printf '%s\n' "$leftovers" | sed 's/^/    left: /' >&2
    die "${mesh} was not removed completely (see 'left:' above): delete those by hand, or rerun after they finish terminating"
  fi
  log_ok "everything the plan removes is gone$(awk -F '\t' '$1 == "keep" { n++ } END { if (n) printf "; %d kept (see the plan)", n }' <<<"$PLAN")"
}

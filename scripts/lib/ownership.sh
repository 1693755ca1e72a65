# shellcheck shell=bash
# shellcheck disable=SC2034  # variables here are read by the scripts that source this file
# What in a shared cluster is the lab's. Everything the lab creates carries LAB_LABELS (the manifests set them with
# kustomize `labels:`, the scripts on what they create themselves); a namespace, a CRD or a control plane that the
# scripts created is also marked with CREATED_BY_ANNOTATION. The uninstall scripts delete only what carries the
# labels, and a namespace only when it carries the annotation. Sourced by mesh.sh (after common.sh).

if [[ -n "${_OWNERSHIP_SH_LOADED:-}" ]]; then
  return 0
fi
_OWNERSHIP_SH_LOADED=1

LAB_NAME="service-mesh-lab"
LAB_LABELS="app.kubernetes.io/part-of=${LAB_NAME} app.kubernetes.io/managed-by=${LAB_NAME}"
LAB_SELECTOR="app.kubernetes.io/part-of=${LAB_NAME},app.kubernetes.io/managed-by=${LAB_NAME}"
# The creation record on a namespace / CRD / control plane namespace ("which script created it"). Older releases of
# the lab marked the Gateway API CRDs with LEGACY_CREATED_BY_ANNOTATION; both are read.
CREATED_BY_ANNOTATION="service-mesh-lab.io/created-by"
LEGACY_CREATED_BY_ANNOTATION="service-mesh-lab.io/installed-by"
# Marks the Istio sample add-ons' objects (they have generic names such as ClusterRole/prometheus).
COMPONENT_LABEL_KEY="service-mesh-lab.io/component"

lab_script_name() { basename "$0"; }

# jsonpath_key KEY: KEY escaped for a kubectl jsonpath field name (dots).
jsonpath_key() { printf '%s' "${1//./\\.}"; }

# created_by_lab TYPE NAME: true when the object carries the creation record (cluster-scoped objects only).
created_by_lab() {
  local value
  value="$(kube get "$1" "$2" -o jsonpath="{.metadata.annotations.$(jsonpath_key "$CREATED_BY_ANNOTATION")}{.metadata.annotations.$(jsonpath_key "$LEGACY_CREATED_BY_ANNOTATION")}" 2>/dev/null || true)"
  [[ -n "$value" ]]
}

# labelled_by_lab TYPE NAME: true when a cluster-scoped object carries the lab's part-of label (older lab releases
# set only that one on their namespaces).
labelled_by_lab() {
  [[ "$(kube get "$1" "$2" -o jsonpath="{.metadata.labels.$(jsonpath_key app.kubernetes.io/part-of)}" 2>/dev/null || true)" == "$LAB_NAME" ]]
}

# mark_created_by_lab TYPE NAME...: record that this script created the objects, and label them as the lab's.
mark_created_by_lab() {
  local type="$1" name
  shift
  for name in "$@"; do
    # shellcheck disable=SC2086  # LAB_LABELS: one key=value per word
    run kubectl label "$type" "$name" $LAB_LABELS --overwrite >/dev/null
    run kubectl annotate "$type" "$name" "${CREATED_BY_ANNOTATION}=$(lab_script_name)" --overwrite >/dev/null
  done
}

# lab_namespace NAME: the namespace is the lab's: created by its scripts, or labelled by its manifests (older
# releases of the lab set no other record). What is inside such a namespace is the lab's too.
lab_namespace() { created_by_lab namespace "$1" || labelled_by_lab namespace "$1"; }

# foreign_objects: of the objects in the YAML stream on stdin, those that already exist without the lab's
# managed-by label, outside the lab's namespaces, one "Kind/name (namespace ns)" per line. Applying over them would
# change someone else's objects.
foreign_objects() {
  local kind namespace name owner
  kube get -f - --ignore-not-found --no-headers \
    -o "custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name,OWNER:.metadata.labels.$(jsonpath_key app.kubernetes.io/managed-by)" \
    2>/dev/null | while read -r kind namespace name owner; do
    [[ -n "$kind" && "$owner" != "$LAB_NAME" ]] || continue
    if [[ "$namespace" == "<none>" ]]; then
      printf '%s/%s\n' "$kind" "$name"
    elif ! lab_namespace "$namespace"; then
      printf '%s/%s (namespace %s)\n' "$kind" "$name" "$namespace"
    fi
  done || true
}

# object_types_in: "namespace<TAB>type" of the objects in the YAML stream on stdin, one per kind and namespace ("-"
# for cluster-scoped ones); type is kind.group as kubectl accepts it (deployment.apps, service, httproute.policy.linkerd.io).
object_types_in() {
  awk '
    function flush() {
      if (kind != "") {
        group = api; sub(/\/?[^\/]*$/, "", group)
        printf "%s\t%s%s\n", (ns == "" ? "-" : ns), tolower(kind), (group == "" ? "" : "." group)
      }
      kind = ""; api = ""; ns = ""
    }
    /^---/ { flush(); next }
    /^apiVersion:[ \t]/ { api = $2 }
    /^kind:[ \t]/ { kind = $2 }
    /^  namespace:[ \t]/ { ns = $2 }
    END { flush() }
  ' | tr -d '"' | sort -u
}

# types_for NAMESPACE TYPES_LINES: the comma-joined types of one namespace ("-": cluster-scoped).
types_for() {
  awk -F '\t' -v ns="$1" '$1 == ns { printf "%s%s", sep, $2; sep = "," }' <<<"$2"
}

# delete_lab_objects NAMESPACE|- TYPES: delete the objects of those types that carry the lab's labels, nothing else.
delete_lab_objects() {
  local namespace="$1" types="$2"
  [[ -n "$types" ]] || return 0
  if [[ "$namespace" == - ]]; then
    run kubectl delete "$types" -l "$LAB_SELECTOR" --ignore-not-found --wait=false
  else
    namespace_exists "$namespace" || return 0
    run kubectl delete "$types" -n "$namespace" -l "$LAB_SELECTOR" --ignore-not-found --wait=false
  fi
}

# lab_objects_left NAMESPACE|- TYPES: "type/name" of the lab's objects of those types still there.
lab_objects_left() {
  local namespace="$1" types="$2"
  [[ -n "$types" ]] || return 0
  if [[ "$namespace" == - ]]; then
    kube get "$types" -l "$LAB_SELECTOR" -o name 2>/dev/null || true
  else
    namespace_exists "$namespace" || return 0
    kube get "$types" -n "$namespace" -l "$LAB_SELECTOR" -o name 2>/dev/null | sed "s|\$| (namespace ${namespace})|" || true
  fi
}

# foreign_custom_objects "EXCLUDED_NAMESPACES" CRD...: "kind/name (namespace ns)" of objects of those CRDs that are
# not the lab's, outside the excluded namespaces (the lab's own and the mesh's own): someone else's configuration,
# which deleting the CRDs would delete with them. Non-zero when kubectl fails (it prints what it could list, not
# what it could not: a type this user may not list).
foreign_custom_objects() {
  local excluded=" $1 " types
  shift
  (($#)) || return 0
  types="$(IFS=,; printf '%s' "$*")"
  kube get "$types" -A -l "app.kubernetes.io/managed-by!=${LAB_NAME}" --no-headers \
    -o 'custom-columns=KIND:.kind,NAMESPACE:.metadata.namespace,NAME:.metadata.name' 2>/dev/null |
    awk -v excluded="$excluded" 'index(excluded, " " $2 " ") == 0 { print $1 "/" $3 ($2 != "<none>" ? " (namespace " $2 ")" : "") }'
}

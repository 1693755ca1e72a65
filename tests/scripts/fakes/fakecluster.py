"""Stand-ins for kubectl, istioctl, linkerd, docker, kind and helm, for testing the root scripts without a cluster.

No Kubernetes cluster, Docker engine or mesh CLI can run where ./test.sh runs, so the deploy, uninstall and build
scripts are tested against these. Each stand-in records its call (one JSON line in $FAKE_LOG) and answers like the
real tool would, from a small state file ($FAKE_STATE, JSON): the cluster's objects (namespaces with labels and
annotations, CRDs, webhooks, Deployments and their pods, ...), the local Docker images and what was pushed.
So the tests assert on what the cluster ends up holding, not just on which commands ran.

Deliberately realistic where the scripts could get it wrong:
- applying an object whose kind has no CRD yet fails ("ensure CRDs are installed first"); an object in a missing
  namespace fails; an unknown resource type fails even with --ignore-not-found;
- deleting a namespace deletes what is in it; deleting a CRD deletes its objects;
- pods get a proxy only when the namespace asks for injection AND the mesh's injector webhook exists at the time
  the pod is created; `kubectl rollout restart` recreates them;
- `linkerd install` refuses without its CRDs, `linkerd install --crds` without the Gateway API CRDs, `linkerd check
  --pre` and `linkerd install` on a cluster that already has Linkerd, `linkerd uninstall` without --force while
  meshed pods run outside the linkerd namespace; `linkerd jaeger` is an unknown command (gone from the 2.19+ CLI);
- `istioctl uninstall --purge` leaves the CRDs and the istio-system namespace (the script must remove them).
`kubectl kustomize` / `-k` are rendered by the real kubectl named in $FAKE_REAL_KUBECTL (offline).

Knobs a test sets in the state: "reachable": false (API server down), "context": null (no current context),
"docker_engine": false, "buildx_driver" and "containerd_store" (the current buildx builder), "failing_workloads"
(rollouts that time out; their pods show BackOff events and logs), "stuck" (names whose deletion never completes,
like a finalizer nobody clears), "forbidden" (resource types the user may not list), the Node objects' allocatable
CPU and container runtime.

Run through the shims next to this file: `<tool> ARGS...` -> python fakecluster.py <tool> ARGS...
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path



def pinned(name: str) -> str:
    """A version the lab pins in scripts/lib/common.sh: the stand-ins report what the scripts expect."""
    common = Path(__file__).resolve().parents[3] / "scripts" / "lib" / "common.sh"
    return re.search(rf'^{name}="\$\{{{name}:-([^}}]+)\}}"', common.read_text(), re.M).group(1)


ISTIO_VERSION = pinned("ISTIO_VERSION")
LINKERD_VERSION = pinned("LINKERD_VERSION")
CONNECTION_REFUSED = ("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host "
                      "or port?")


class Fail(Exception):
    """Exit with this message on stderr and this code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------------------------
def default_state() -> dict:
    return {
        "context": "kind-lab",
        "reachable": True,
        "docker_engine": True,
        "kind_clusters": ["lab"],
        "k3d_clusters": ["lab"],
        "objects": [node("lab-control-plane", "4", "containerd://1.7.18")],
        "images": [],
        "pushed": [],
        "kind_loaded": [],
        "failing_workloads": [],
        "helm_repos": [],
    }


def node(name: str, cpu: str, runtime: str, kubelet: str = "v1.33.1") -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu},
                       "nodeInfo": {"containerRuntimeVersion": runtime, "kubeletVersion": kubelet}}}


def load_state() -> dict:
    path = Path(os.environ["FAKE_STATE"])
    if not path.exists():
        return default_state()
    return json.loads(path.read_text())


def save_state(state: dict) -> None:
    path = Path(os.environ["FAKE_STATE"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(path)


def log_call(tool: str, args: list[str], stdin_text: str | None) -> None:
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps({"tool": tool, "args": args, "stdin": stdin_text}) + "\n")


# ---------------------------------------------------------------------------------------------------------------
# Resource types
# ---------------------------------------------------------------------------------------------------------------
# kind: (apiVersion, plural, short names, namespaced)
BUILTIN = {
    "Namespace": ("v1", "namespaces", ["ns", "namespace"], False),
    "Node": ("v1", "nodes", ["no", "node"], False),
    "Pod": ("v1", "pods", ["po", "pod"], True),
    "Service": ("v1", "services", ["svc", "service"], True),
    "ServiceAccount": ("v1", "serviceaccounts", ["sa", "serviceaccount"], True),
    "ConfigMap": ("v1", "configmaps", ["cm", "configmap"], True),
    "Secret": ("v1", "secrets", ["secret"], True),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", ["pvc", "persistentvolumeclaim"], True),
    "Event": ("v1", "events", ["ev", "event"], True),
    "Deployment": ("apps/v1", "deployments", ["deploy", "deployment"], True),
    "StatefulSet": ("apps/v1", "statefulsets", ["sts", "statefulset"], True),
    "DaemonSet": ("apps/v1", "daemonsets", ["ds", "daemonset"], True),
    "ReplicaSet": ("apps/v1", "replicasets", ["rs", "replicaset"], True),
    "Job": ("batch/v1", "jobs", ["job"], True),
    "CronJob": ("batch/v1", "cronjobs", ["cj", "cronjob"], True),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1", "customresourcedefinitions",
                                 ["crd", "crds", "customresourcedefinition"], False),
    "MutatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations",
                                     ["mutatingwebhookconfiguration"], False),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations",
                                       ["validatingwebhookconfiguration"], False),
    "ClusterRole": ("rbac.authorization.k8s.io/v1", "clusterroles", ["clusterrole"], False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io/v1", "clusterrolebindings", ["clusterrolebinding"], False),
    "Role": ("rbac.authorization.k8s.io/v1", "roles", ["role"], True),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings", ["rolebinding"], True),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies", ["netpol", "networkpolicy"], True),
    "Ingress": ("networking.k8s.io/v1", "ingresses", ["ing", "ingress"], True),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", ["pdb", "poddisruptionbudget"], True),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", ["hpa"], True),
    "APIService": ("apiregistration.k8s.io/v1", "apiservices", ["apiservice"], False),
    "PriorityClass": ("scheduling.k8s.io/v1", "priorityclasses", ["pc", "priorityclass"], False),
    "ValidatingAdmissionPolicy": ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies",
                                  ["validatingadmissionpolicy"], False),
    "ValidatingAdmissionPolicyBinding": ("admissionregistration.k8s.io/v1", "validatingadmissionpolicybindings",
                                         ["validatingadmissionpolicybinding"], False),
}


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


class ResourceType:
    def __init__(self, kind: str, group: str, plural: str, namespaced: bool):
        self.kind, self.group, self.plural, self.namespaced = kind, group, plural, namespaced

    def name_prefix(self) -> str:
        """What `kubectl get -o name` prints before the slash."""
        return self.kind.lower() + (f".{self.group}" if self.group else "")


def custom_types(state: dict) -> list[tuple[ResourceType, list[str]]]:
    found = []
    for crd in objects_of(state, "CustomResourceDefinition"):
        names = crd["spec"]["names"]
        rtype = ResourceType(names["kind"], crd["spec"]["group"], names["plural"],
                             crd["spec"].get("scope", "Namespaced") == "Namespaced")
        aliases = [names["plural"], names.get("singular", names["kind"].lower()), *names.get("shortNames", [])]
        found.append((rtype, aliases))
    return found


def resolve_type(state: dict, word: str) -> ResourceType:
    """A type as typed on the command line: deploy, deployments.apps, virtualservices.networking.istio.io ..."""
    word = word.lower()
    for kind, (api_version, plural, shorts, namespaced) in BUILTIN.items():
        group = group_of(api_version)
        aliases = {plural, kind.lower(), *shorts}
        if word in aliases or (group and any(word == f"{a}.{group}" for a in aliases)):
            return ResourceType(kind, group, plural, namespaced)
    for rtype, aliases in custom_types(state):
        if word in aliases or any(word == f"{a}.{rtype.group}" for a in aliases):
            return rtype
    raise Fail(f'error: the server doesn\'t have a resource type "{word}"')


def type_of_document(state: dict, doc: dict) -> ResourceType:
    kind, api_version = doc.get("kind"), doc.get("apiVersion", "")
    if kind in BUILTIN and group_of(BUILTIN[kind][0]) == group_of(api_version):
        _, plural, _, namespaced = BUILTIN[kind]
        return ResourceType(kind, group_of(api_version), plural, namespaced)
    for rtype, _ in custom_types(state):
        if rtype.kind == kind and rtype.group == group_of(api_version):
            return rtype
    name = doc.get("metadata", {}).get("name")
    raise Fail(f'error: resource mapping not found for name: "{name}" namespace: '
               f'"{doc.get("metadata", {}).get("namespace", "")}" from "-": no matches for kind "{kind}" in version '
               f'"{api_version}"\nensure CRDs are installed first')


def objects_of(state: dict, kind: str, namespace: str | None = None) -> list[dict]:
    return [o for o in state["objects"] if o["kind"] == kind
            and (namespace is None or o["metadata"].get("namespace") == namespace)]


def find(state: dict, kind: str, name: str, namespace: str | None, group: str | None = None) -> dict | None:
    """The object of that kind (and API group, when given: HTTPRoute is both Gateway API's and Linkerd's)."""
    for obj in state["objects"]:
        if (obj["kind"] == kind and obj["metadata"]["name"] == name and obj["metadata"].get("namespace") == namespace
                and (group is None or group_of(obj.get("apiVersion", "")) == group)):
            return obj
    return None


def remove(state: dict, obj: dict) -> None:
    if obj["metadata"]["name"] in state.get("stuck", []):
        return  # a finalizer nobody clears: deletion is accepted and never completes
    state["objects"] = [o for o in state["objects"] if o is not obj]
    kind, name = obj["kind"], obj["metadata"]["name"]
    if kind == "Namespace":
        state["objects"] = [o for o in state["objects"] if o["metadata"].get("namespace") != name]
    elif kind == "CustomResourceDefinition":
        group, crd_kind = obj["spec"]["group"], obj["spec"]["names"]["kind"]
        state["objects"] = [o for o in state["objects"]
                            if not (o["kind"] == crd_kind and group_of(o.get("apiVersion", "")) == group)]
    elif kind in ("Deployment", "StatefulSet", "DaemonSet"):
        state["objects"] = [o for o in state["objects"] if o.get("_owner") != owner_key(obj)]


def owner_key(obj: dict) -> str:
    return f'{obj["kind"]}/{obj["metadata"].get("namespace")}/{obj["metadata"]["name"]}'


# ---------------------------------------------------------------------------------------------------------------
# Pods and sidecar injection
# ---------------------------------------------------------------------------------------------------------------
def injected_proxy(state: dict, namespace: str, template: dict) -> str | None:
    ns = find(state, "Namespace", namespace, None)
    labels = (ns or {}).get("metadata", {}).get("labels") or {}
    ns_annotations = (ns or {}).get("metadata", {}).get("annotations") or {}
    pod_annotations = template.get("metadata", {}).get("annotations") or {}
    webhooks = {o["metadata"]["name"] for o in objects_of(state, "MutatingWebhookConfiguration")}
    istio_wanted = labels.get("istio-injection") == "enabled" or "istio.io/rev" in labels
    if istio_wanted and pod_annotations.get("sidecar.istio.io/inject") != "false" and "istio-sidecar-injector" in webhooks:
        return "istio"
    linkerd_wanted = pod_annotations.get("linkerd.io/inject", ns_annotations.get("linkerd.io/inject")) == "enabled"
    if linkerd_wanted and "linkerd-proxy-injector-webhook-config" in webhooks:
        return "linkerd"
    return None


def all_kubelets_at_least(state: dict, minor: int) -> bool:
    for node in objects_of(state, "Node"):
        version = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "v1.33.0")
        if int(re.match(r"v?\d+\.(\d+)", version).group(1)) < minor:
            return False
    return True


def create_pods(state: dict, workload: dict) -> None:
    """(Re)create the pods of a workload, as its controller would after a change of the pod template."""
    state["objects"] = [o for o in state["objects"] if o.get("_owner") != owner_key(workload)]
    namespace = workload["metadata"]["namespace"]
    template = workload["spec"].get("template", {})
    proxy = injected_proxy(state, namespace, template)
    containers = [{"name": c["name"], "image": c.get("image", "")} for c in template.get("spec", {}).get("containers", [])]
    init_containers = [{"name": c["name"]} for c in template.get("spec", {}).get("initContainers", [])]
    labels = dict(template.get("metadata", {}).get("labels") or {})
    if proxy == "istio":
        # Istio 1.30 injects a native sidecar (an init container with restartPolicy: Always) only when every node's
        # kubelet is 1.33+ (pkg/kube/inject/webhook.go DetectNativeSidecar); else an ordinary container.
        sidecar = {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{ISTIO_VERSION}"}
        init_containers.insert(0, {"name": "istio-init"})
        if all_kubelets_at_least(state, 33):
            init_containers.append({**sidecar, "restartPolicy": "Always"})
        else:
            containers.append(sidecar)
        labels["security.istio.io/tlsMode"] = "istio"  # what the injection template adds
    elif proxy == "linkerd":
        # Linkerd 2.20 injects its proxy as a native sidecar by default (values.yaml proxy.nativeSidecar: true).
        init_containers.insert(0, {"name": "linkerd-init"})
        init_containers.append({"name": "linkerd-proxy", "image": f"cr.l5d.io/linkerd/proxy:{LINKERD_VERSION}",
                                "restartPolicy": "Always"})
        labels["linkerd.io/control-plane-ns"] = "linkerd"  # what the proxy injector adds
    import hashlib  # imported where needed, like yaml: every call starts a new process
    digest = hashlib.sha256(json.dumps([template, proxy], sort_keys=True).encode()).hexdigest()[:10]
    replicas = workload["spec"].get("replicas", 1)
    for index in range(replicas):
        name = (f'{workload["metadata"]["name"]}-{index}' if workload["kind"] == "StatefulSet"
                else f'{workload["metadata"]["name"]}-{digest}-p{index}')
        state["objects"].append({
            "apiVersion": "v1", "kind": "Pod", "_owner": owner_key(workload),
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "spec": {"containers": containers, "initContainers": init_containers},
            "status": {"phase": "Running"},
        })


# ---------------------------------------------------------------------------------------------------------------
# jsonpath (the subset kubectl users write: range/end, field paths with [*] and [N], quoted literals)
# ---------------------------------------------------------------------------------------------------------------
def split_path(path: str) -> list[str]:
    path = path.strip()
    if path.startswith("@"):
        path = path[1:]
    segments, current, i = [], "", 0
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            current += path[i + 1]
            i += 2
            continue
        if ch == ".":
            if current:
                segments.append(current)
            current = ""
        elif ch == "[":
            if current:
                segments.append(current)
            end = path.index("]", i)
            segments.append(path[i:end + 1])
            current = ""
            i = end
        else:
            current += ch
        i += 1
    if current:
        segments.append(current)
    return segments


def evaluate(path: str, node) -> list:
    values = [node]
    for segment in split_path(path):
        nxt = []
        for value in values:
            if segment == "[*]":
                if isinstance(value, list):
                    nxt.extend(value)
                elif isinstance(value, dict):
                    nxt.extend(value.values())
            elif segment.startswith("["):
                index = int(segment[1:-1])
                if isinstance(value, list) and -len(value) <= index < len(value):
                    nxt.append(value[index])
            elif isinstance(value, dict) and segment in value:
                nxt.append(value[segment])
        values = nxt
    return values


def render_value(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jsonpath(template: str, root) -> str:
    tokens = re.findall(r"\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}|([^{]+)", template)

    def run(index: int, node, out: list[str]) -> int:
        while index < len(tokens):
            expr, literal = tokens[index]
            if literal:
                out.append(literal)
            elif expr.startswith("range "):
                items = evaluate(expr[len("range "):], node)
                body_start = index + 1
                end = body_start
                if not items:
                    end = skip(body_start)
                for item in items:
                    end = run(body_start, item, out)
                index = end
            elif expr == "end":
                return index
            elif expr.startswith('"'):
                out.append(json.loads(expr))
            else:
                out.append(" ".join(render_value(v) for v in evaluate(expr, node)))
            index += 1
        return index

    def skip(index: int) -> int:
        depth = 0
        while index < len(tokens):
            expr = tokens[index][0]
            if expr.startswith("range "):
                depth += 1
            elif expr == "end":
                if depth == 0:
                    return index
                depth -= 1
            index += 1
        return index

    out: list[str] = []
    run(0, root, out)
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------------
# Command line parsing shared by the stand-ins
# ---------------------------------------------------------------------------------------------------------------
VALUE_FLAGS = {"-n", "--namespace", "-o", "--output", "-l", "--selector", "-f", "--filename", "-k", "--kustomize",
               "--field-selector", "--sort-by", "--timeout", "--request-timeout", "--context", "--tail", "-c",
               "--container", "--set", "--name", "-t", "--tag", "--build-arg", "--platform", "--wait-timeout",
               "--values", "--version", "--revision", "--cluster-domain", "--from-literal", "--from-file"}


def parse(args: list[str], value_flags: set[str] = frozenset()) -> tuple[list[str], dict[str, list[str]]]:
    """`value_flags`: a tool's own flags that take a value (linkerd's --wait; helm's --wait is a switch)."""
    positional, flags = [], {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            if "=" in arg and arg.startswith("--"):
                key, value = arg.split("=", 1)
            elif (arg in VALUE_FLAGS or arg in value_flags) and i + 1 < len(args):
                key, value = arg, args[i + 1]
                i += 1
            else:
                key, value = arg, "true"
            flags.setdefault(key, []).append(value)
        else:
            positional.append(arg)
        i += 1
    return positional, flags


def flag(flags: dict, *names: str, default=None):
    for name in names:
        if name in flags:
            return flags[name][-1]
    return default


def bool_flag(flags: dict, *names: str) -> bool:
    value = flag(flags, *names)
    return value is not None and value != "false"


# Go's time.ParseDuration: a number and a unit, repeated ("300s", "1m30s", "1.5h"); "0" alone is allowed. A bare
# "300" is refused ("missing unit"), which is what kubectl (rollout status, delete, wait), linkerd (check --wait) and
# helm (--timeout) answer, through cobra/pflag, for a duration flag.
GO_DURATION = re.compile(r"^[-+]?(?:0|(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+$")


def duration_flag(flags: dict, name: str, tool: str) -> str | None:
    value = flag(flags, name)
    if value is None or GO_DURATION.match(value):
        return value
    reason = (f'time: missing unit in duration "{value}"' if re.match(r"^[-+]?[\d.]+$", value)
              else f'time: invalid duration "{value}"')
    prefix = "error" if tool == "kubectl" else "Error"
    raise Fail(f'{prefix}: invalid argument "{value}" for "{name}" flag: {reason}')


# ---------------------------------------------------------------------------------------------------------------
# kubectl
# ---------------------------------------------------------------------------------------------------------------
def documents_from(source: str, stdin_text: str | None, kustomize: bool = False) -> list[dict]:
    import yaml  # imported where needed: most calls only read the state, and every call starts a new process
    if kustomize:
        text = real_kustomize(source)
    elif source == "-":
        text = stdin_text or ""
    elif re.match(r"https?://", source):
        raise Fail(f"error: the stand-in kubectl cannot fetch {source}: point the *_BASE_URL variables at local files")
    else:
        path = Path(source)
        if not path.exists():
            raise Fail(f'error: the path "{source}" does not exist')
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json")) if path.is_dir() else [path]
        text = "\n---\n".join(p.read_text() for p in files)
    docs = []
    for doc in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        if not doc:
            continue
        if doc.get("kind") == "List":
            docs.extend(doc.get("items") or [])
        else:
            docs.append(doc)
    return docs


def real_kustomize(directory: str) -> str:
    real = os.environ.get("FAKE_REAL_KUBECTL")
    if not real:
        raise Fail("error: the stand-in kubectl renders kustomizations with a real kubectl: set FAKE_REAL_KUBECTL")
    import subprocess
    done = subprocess.run([real, "kustomize", directory], capture_output=True, text=True)
    if done.returncode != 0:
        raise Fail(done.stderr.strip() or "kustomize failed", done.returncode)
    return done.stdout


def require_cluster(state: dict) -> None:
    if not state.get("reachable", True) or not state.get("context"):
        raise Fail(CONNECTION_REFUSED)


def namespace_for(rtype: ResourceType, flags: dict, doc_namespace: str | None = None) -> str | None:
    if not rtype.namespaced:
        return None
    return doc_namespace or flag(flags, "-n", "--namespace", default="default")


def merge_map(old: dict | None, new: dict | None, previously_applied: list[str]) -> dict:
    """kubectl apply's 3-way merge for labels/annotations: keys set by others (kubectl label) survive."""
    result = {k: v for k, v in (old or {}).items() if k not in previously_applied}
    result.update(new or {})
    return result


# Gateway API v1.5+ ships this admission policy in standard-install.yaml (kubernetes-sigs/gateway-api v1.5.1,
# config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml); its two CEL rules, in Python:
SAFE_UPGRADES = "safe-upgrades.gateway.networking.k8s.io"


def safe_upgrades_denial(state: dict, doc: dict, existing: dict | None) -> str | None:
    if doc.get("kind") != "CustomResourceDefinition" or doc.get("spec", {}).get("group") != "gateway.networking.k8s.io":
        return None
    if not find(state, "ValidatingAdmissionPolicy", SAFE_UPGRADES, None):
        return None
    annotations = doc.get("metadata", {}).get("annotations") or {}
    old = ((existing or {}).get("metadata", {}).get("annotations") or {})
    if (existing is not None and annotations.get("gateway.networking.k8s.io/channel") != "standard"
            and old.get("gateway.networking.k8s.io/channel") != "experimental"):
        return ("Installing experimental CRDs on top of standard channel CRDs is prohibited by default. Uninstall "
                f"ValidatingAdmissionPolicy {SAFE_UPGRADES} to install experimental CRDs on top of standard channel CRDs.")
    version = annotations.get("gateway.networking.k8s.io/bundle-version")
    if version is None or re.search(r"v1.[0-4].\d+", version) or re.search("v0", version):
        return ("Installing CRDs with version before v1.5.0 is prohibited by default. Uninstall "
                f"ValidatingAdmissionPolicy {SAFE_UPGRADES} to install older versions.")
    return None


def apply_document(state: dict, doc: dict, flags: dict) -> str:
    rtype = type_of_document(state, doc)
    denial = safe_upgrades_denial(state, doc, find(state, rtype.kind, doc.get("metadata", {}).get("name"), None,
                                                   rtype.group))
    if denial:
        raise Fail(f'The customresourcedefinitions "{doc["metadata"]["name"]}" is invalid: : ValidatingAdmissionPolicy '
                   f"'{SAFE_UPGRADES}' with binding '{SAFE_UPGRADES}' denied request: {denial}")
    meta = doc.setdefault("metadata", {})
    namespace = namespace_for(rtype, flags, meta.get("namespace"))
    if namespace is not None:
        meta["namespace"] = namespace
        if not find(state, "Namespace", namespace, None):
            raise Fail(f'Error from server (NotFound): error when creating "-": namespaces "{namespace}" not found')
    name = meta["name"]
    existing = find(state, rtype.kind, name, namespace, rtype.group)
    label = f"{rtype.name_prefix()}/{name}"
    applied = {"labels": sorted((meta.get("labels") or {}).keys()),
               "annotations": sorted((meta.get("annotations") or {}).keys())}
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]
    if existing is None:
        doc["_applied"] = applied
        state["objects"].append(doc)
        if rtype.kind in ("Deployment", "StatefulSet", "DaemonSet"):
            create_pods(state, doc)
        return f"{label} created"
    before = json.dumps(existing, sort_keys=True)
    previous = existing.get("_applied", {"labels": [], "annotations": []})
    new = dict(doc)
    new["metadata"] = dict(meta)
    new["metadata"]["labels"] = merge_map(existing["metadata"].get("labels"), meta.get("labels"), previous["labels"])
    new["metadata"]["annotations"] = merge_map(existing["metadata"].get("annotations"), meta.get("annotations"),
                                               previous["annotations"])
    for key in ("labels", "annotations"):
        if not new["metadata"][key]:
            del new["metadata"][key]
    new["_applied"] = applied
    keep_restart_marker(existing, new)
    if "status" in existing and "status" not in new:
        new["status"] = existing["status"]
    if before == json.dumps(new, sort_keys=True):
        return f"{label} unchanged"
    template_changed = existing.get("spec", {}).get("template") != new.get("spec", {}).get("template")
    state["objects"] = [new if o is existing else o for o in state["objects"]]
    if rtype.kind in ("Deployment", "StatefulSet", "DaemonSet") and template_changed:
        create_pods(state, new)
    return f"{label} configured"


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def keep_restart_marker(existing: dict, new: dict) -> None:
    """kubectl apply keeps fields it does not manage: the restartedAt annotation `rollout restart` put on the pod
    template survives a later apply (the only such field the scripts create; the real merge is general)."""
    marker = (existing.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}).get(RESTARTED_AT)
    if marker and "template" in new.get("spec", {}):
        new["spec"] = json.loads(json.dumps(new["spec"]))
        metadata = new["spec"]["template"].setdefault("metadata", {})
        metadata.setdefault("annotations", {}).setdefault(RESTARTED_AT, marker)


def matches_selector(obj: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = obj["metadata"].get("labels") or {}
    for term in selector.split(","):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("=", 1)
            if labels.get(key.rstrip("=")) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def public(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def targets(state: dict, positional: list[str], flags: dict) -> list[tuple[ResourceType, list[str]]]:
    """TYPE[,TYPE] [NAME...] or TYPE/NAME... -> [(type, names)] (names empty: all)."""
    if not positional:
        raise Fail("error: you must specify the type of resource")
    if "/" in positional[0]:
        out = []
        for word in positional:
            type_word, name = word.split("/", 1)
            out.append((resolve_type(state, type_word), [name]))
        return out
    types = [resolve_type(state, t) for t in positional[0].split(",")]
    return [(t, positional[1:]) for t in types]


def listed(state: dict, rtype: ResourceType, flags: dict) -> list[dict]:
    all_namespaces = bool_flag(flags, "-A", "--all-namespaces")
    namespace = None if all_namespaces else namespace_for(rtype, flags)
    return [o for o in state["objects"] if o["kind"] == rtype.kind and group_of(o.get("apiVersion", "")) == rtype.group
            and (rtype.namespaced is False or all_namespaces or o["metadata"].get("namespace") == namespace)
            and matches_selector(o, flag(flags, "-l", "--selector"))]


def custom_columns(spec: str, objects: list[dict], headers: bool) -> str:
    columns = [c.split(":", 1) for c in spec.split(",")]
    rows = [[name for name, _ in columns]] if headers else []
    for obj in objects:
        row = []
        for _, path in columns:
            values = evaluate(path.lstrip("{").rstrip("}"), public(obj))
            row.append(" ".join(render_value(v) for v in values) if values else "<none>")
        rows.append(row)
    return "".join("   ".join(row) + "\n" for row in rows)


def kubectl_get_files(state: dict, flags: dict, stdin_text: str | None) -> int:
    """`kubectl get -f FILE`: the objects of the file as they are in the cluster (absent ones: NotFound). Like kubectl
    (pkg/cmd/get/get.go: ContinueOnError, then the found objects are printed and the errors returned), an object
    whose kind the server does not know is an error that does not hide the others."""
    found, missing, unmapped = [], [], []
    for source in flags.get("-f", []):
        for doc in documents_from(source, stdin_text):
            try:
                rtype = type_of_document(state, doc)
            except Fail as failure:
                unmapped.append(str(failure))
                continue
            name = doc["metadata"]["name"]
            obj = find(state, rtype.kind, name, namespace_for(rtype, flags, doc["metadata"].get("namespace")), rtype.group)
            if obj:
                found.append(obj)
            else:
                missing.append(f'Error from server (NotFound): {rtype.plural} "{name}" not found')
    output = flag(flags, "-o", "--output", default="")
    if output.startswith("custom-columns="):
        sys.stdout.write(custom_columns(output[len("custom-columns="):], found, not bool_flag(flags, "--no-headers")))
    elif output == "name":
        for obj in found:
            print(f'{type_of_document(state, obj).name_prefix()}/{obj["metadata"]["name"]}')
    else:
        print(json.dumps({"kind": "List", "items": [public(o) for o in found]}, indent=2))
    errors = unmapped + ([] if bool_flag(flags, "--ignore-not-found") else missing)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def kubectl_get(state: dict, positional: list[str], flags: dict, stdin_text: str | None = None) -> int:
    require_cluster(state)
    if flags.get("-f"):
        return kubectl_get_files(state, flags, stdin_text)
    output = flag(flags, "-o", "--output", default="")
    ignore = bool_flag(flags, "--ignore-not-found")
    found, missing = [], []
    wanted = targets(state, positional, flags)
    if wanted[0][0].kind == "Event":
        return kubectl_events(state, flags)
    single = len(wanted) == 1 and len(wanted[0][1]) == 1
    # A type the user may not list is an error that does not hide the other types (kubectl pkg/cmd/get/get.go:
    # ContinueOnError; what was found is printed, then the errors are returned).
    forbidden = [rtype for rtype, _ in wanted if rtype.plural in state.get("forbidden", [])]
    denied = [f'Error from server (Forbidden): {rtype.plural} is forbidden: User "learner" cannot list resource '
              f'"{rtype.plural}" in API group "{rtype.group}" at the cluster scope' for rtype in forbidden]
    wanted = [(rtype, names) for rtype, names in wanted if rtype not in forbidden]
    if denied and not wanted:
        raise Fail("\n".join(denied))
    for rtype, names in wanted:
        candidates = listed(state, rtype, flags)
        if names:
            for name in names:
                match = [o for o in candidates if o["metadata"]["name"] == name]
                if match:
                    found.append((rtype, match[0]))
                else:
                    missing.append(f'Error from server (NotFound): {rtype.plural}'
                                   f'{"." + rtype.group if rtype.group else ""} "{name}" not found')
        else:
            found.extend((rtype, o) for o in candidates)
    if output == "name":
        for rtype, obj in found:
            print(f'{rtype.name_prefix()}/{obj["metadata"]["name"]}')
    elif output.startswith("jsonpath="):
        root = public(found[0][1]) if single and found else {"kind": "List", "items": [public(o) for _, o in found]}
        if not (single and not found):
            sys.stdout.write(jsonpath(output[len("jsonpath="):], root))
    elif output in ("json", "yaml"):
        root = public(found[0][1]) if single and found else {"kind": "List", "items": [public(o) for _, o in found]}
        print(json.dumps(root, indent=2))
    elif output.startswith("custom-columns="):
        sys.stdout.write(custom_columns(output[len("custom-columns="):], [o for _, o in found],
                                        not bool_flag(flags, "--no-headers")))
    else:
        if found:
            print("NAME")
            for _, obj in found:
                print(obj["metadata"]["name"])
        elif not missing:
            print("No resources found", file=sys.stderr)
    errors = denied + ([] if ignore else missing)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def kubectl_events(state: dict, flags: dict) -> int:
    selector = flag(flags, "--field-selector", default="")
    pod = selector.split("=", 1)[1] if selector.startswith("involvedObject.name=") else ""
    print("LAST SEEN   TYPE      REASON    OBJECT   MESSAGE")
    if pod and failing(state, pod):
        print(f"10s         Warning   BackOff   pod/{pod}   Back-off restarting failed container app")
    return 0


def failing(state: dict, pod_or_workload: str) -> bool:
    return any(pod_or_workload == w or pod_or_workload.startswith(w + "-") for w in state.get("failing_workloads", []))


def kubectl_apply(state: dict, positional: list[str], flags: dict, stdin_text: str | None) -> int:
    require_cluster(state)
    docs = []
    for source in flags.get("-f", []) + flags.get("--filename", []):
        docs.extend(documents_from(source, stdin_text))
    for source in flags.get("-k", []) + flags.get("--kustomize", []):
        docs.extend(documents_from(source, stdin_text, kustomize=True))
    errors = []
    for doc in docs:
        try:
            print(apply_document(state, doc, flags))
        except Fail as failure:
            errors.append(str(failure))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def kubectl_delete(state: dict, positional: list[str], flags: dict, stdin_text: str | None) -> int:
    duration_flag(flags, "--timeout", "kubectl")
    require_cluster(state)
    ignore = bool_flag(flags, "--ignore-not-found")
    errors = []
    sources = [(s, False) for s in flags.get("-f", []) + flags.get("--filename", [])]
    sources += [(s, True) for s in flags.get("-k", []) + flags.get("--kustomize", [])]
    if sources:
        for source, kustomize in sources:
            for doc in documents_from(source, stdin_text, kustomize):
                try:
                    rtype = type_of_document(state, doc)
                except Fail as failure:
                    errors.append(str(failure))
                    continue
                name = doc["metadata"]["name"]
                namespace = namespace_for(rtype, flags, doc["metadata"].get("namespace"))
                obj = find(state, rtype.kind, name, namespace, rtype.group)
                if obj:
                    remove(state, obj)
                    print(f'{rtype.name_prefix()}/{name} deleted')
                elif not ignore:
                    errors.append(f'Error from server (NotFound): {rtype.plural} "{name}" not found')
    else:
        for rtype, names in targets(state, positional, flags):
            candidates = listed(state, rtype, flags)
            if not names and not bool_flag(flags, "--all") and not flag(flags, "-l", "--selector"):
                raise Fail("error: resource(s) were provided, but no name was specified")
            chosen = candidates if not names else []
            for name in names:
                match = [o for o in candidates if o["metadata"]["name"] == name]
                if match:
                    chosen.extend(match)
                elif not ignore:
                    errors.append(f'Error from server (NotFound): {rtype.plural} "{name}" not found')
            for obj in chosen:
                remove(state, obj)
                print(f'{rtype.name_prefix()}/{obj["metadata"]["name"]} deleted')
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


def kubectl_label(state: dict, positional: list[str], flags: dict, field: str) -> int:
    require_cluster(state)
    changes = [p for p in positional[1:] if "=" in p or p.endswith("-")]
    names = [p for p in positional[1:] if p not in changes]
    rtype = resolve_type(state, positional[0].split("/")[0])
    if "/" in positional[0]:
        names = [positional[0].split("/", 1)[1]]
    for name in names:
        obj = find(state, rtype.kind, name, namespace_for(rtype, flags))
        if obj is None:
            raise Fail(f'Error from server (NotFound): {rtype.plural} "{name}" not found')
        values = obj["metadata"].setdefault(field, {})
        for change in changes:
            if change.endswith("-") and "=" not in change:
                key = change[:-1]
                if key in values:
                    del values[key]
                else:
                    print(f'{field[:-1]} "{key}" not found.')
                continue
            key, value = change.split("=", 1)
            if key in values and values[key] != value and not bool_flag(flags, "--overwrite"):
                raise Fail(f"error: '{key}' already has a value ({values[key]}), and --overwrite is false")
            values[key] = value
        if not values:
            del obj["metadata"][field]
        print(f'{rtype.name_prefix()}/{name} {"labeled" if field == "labels" else "annotated"}')
    return 0


def kubectl_rollout(state: dict, positional: list[str], flags: dict) -> int:
    duration_flag(flags, "--timeout", "kubectl")
    require_cluster(state)
    action, rest = positional[0], positional[1:]
    for rtype, names in targets(state, rest, flags):
        workloads = listed(state, rtype, flags)
        chosen = [w for w in workloads if not names or w["metadata"]["name"] in names]
        if names and not chosen:
            raise Fail(f'Error from server (NotFound): {rtype.plural}.apps "{names[0]}" not found')
        if action == "restart" and not chosen:
            raise Fail("error: no objects passed to restart")
        for workload in chosen:
            name = workload["metadata"]["name"]
            if action == "status":
                if failing(state, name):
                    print(f'Waiting for deployment "{name}" rollout to finish: 0 of 1 updated replicas are available...')
                    raise Fail("error: timed out waiting for the condition")
                print(f'{rtype.kind.lower()} "{name}" successfully rolled out')
            elif action == "restart":
                template = workload["spec"].setdefault("template", {})
                annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
                annotations[RESTARTED_AT] = time.strftime("%Y-%m-%dT%H:%M:%S") + f".{time.time_ns()}"
                create_pods(state, workload)
                print(f"{rtype.name_prefix()}/{name} restarted")
            else:
                raise Fail(f"error: the stand-in kubectl does not know rollout {action}")
    return 0


def kubectl_create(state: dict, positional: list[str], flags: dict) -> int:
    """Only `kubectl create secret generic NAME --from-literal=k=v --from-file=k=path` (the deploy scripts' use)."""
    require_cluster(state)
    if positional[:2] != ["secret", "generic"]:
        raise Fail(f'error: the stand-in kubectl does not implement create {" ".join(positional)}')
    name, namespace = positional[2], flag(flags, "-n", "--namespace", default="default")
    if find(state, "Secret", name, namespace):
        raise Fail(f'error: failed to create secret secrets "{name}" already exists')
    data = {}
    for literal in flags.get("--from-literal", []):
        key, value = literal.split("=", 1)
        data[key] = value
    for source in flags.get("--from-file", []):
        key, path = source.split("=", 1)
        data[key] = Path(path).read_text()
    apply_document(state, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                           "type": "Opaque", "stringData": data}, flags)
    print(f"secret/{name} created")
    return 0


def kubectl(args: list[str], stdin_text: str | None) -> int:
    state = load_state()
    positional, flags = parse(args)
    if not positional:
        raise Fail("kubectl controls the Kubernetes cluster manager.")
    verb, rest = positional[0], positional[1:]
    if verb == "config" and rest[:1] == ["current-context"]:
        if not state.get("context"):
            raise Fail("error: current-context is not set")
        print(state["context"])
        return 0
    if verb == "kustomize":
        sys.stdout.write(real_kustomize(rest[0] if rest else "."))
        return 0
    if verb == "version":
        print("Client Version: v1.32.4")
        return 0
    if verb == "get":
        return kubectl_get(state, rest, flags, stdin_text)
    if verb == "logs":
        require_cluster(state)
        print(f"stand-in log of {rest[0] if rest else '?'}: Traceback (most recent call last): ... ConnectionError")
        return 0
    mutating = {
        "create": lambda: kubectl_create(state, rest, flags),
        "apply": lambda: kubectl_apply(state, rest, flags, stdin_text),
        "delete": lambda: kubectl_delete(state, rest, flags, stdin_text),
        "label": lambda: kubectl_label(state, rest, flags, "labels"),
        "annotate": lambda: kubectl_label(state, rest, flags, "annotations"),
        "rollout": lambda: kubectl_rollout(state, rest, flags),
    }
    if verb not in mutating:
        raise Fail(f'error: the stand-in kubectl does not implement "{verb}"')
    try:
        return mutating[verb]()
    finally:
        save_state(state)


# ---------------------------------------------------------------------------------------------------------------
# Generated manifests of the meshes
# ---------------------------------------------------------------------------------------------------------------
def crd(group: str, kind: str, plural: str, scope: str = "Namespaced", annotations: dict | None = None,
        labels: dict | None = None) -> dict:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", "annotations": annotations or {}, "labels": labels or {}},
            "spec": {"group": group, "scope": scope,
                     "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                     "versions": [{"name": "v1", "served": True, "storage": True}]}}


def workload(name: str, namespace: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": name, "image": f"{name}:stand-in"}]}}}}


def cluster_object(kind: str, name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return {"apiVersion": BUILTIN[kind][0], "kind": kind,
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}}}


ISTIO_CRDS = [("networking.istio.io", "VirtualService", "virtualservices"),
              ("networking.istio.io", "DestinationRule", "destinationrules"),
              ("networking.istio.io", "Gateway", "gateways"),
              ("networking.istio.io", "ServiceEntry", "serviceentries"),
              ("networking.istio.io", "Sidecar", "sidecars"),
              ("security.istio.io", "PeerAuthentication", "peerauthentications"),
              ("security.istio.io", "AuthorizationPolicy", "authorizationpolicies"),
              ("security.istio.io", "RequestAuthentication", "requestauthentications"),
              ("telemetry.istio.io", "Telemetry", "telemetries"),
              ("extensions.istio.io", "WasmPlugin", "wasmplugins")]
ISTIO_LABEL = {"operator.istio.io/component": "stand-in"}


def istio_install_objects() -> list[dict]:
    objects = [cluster_object("Namespace", "istio-system")]
    objects += [crd(g, k, p, labels=ISTIO_LABEL) for g, k, p in ISTIO_CRDS]
    objects += [workload(n, "istio-system", ISTIO_LABEL) for n in ("istiod", "istio-ingressgateway", "istio-egressgateway")]
    objects.append({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": ISTIO_LABEL},
                    "spec": {"ports": [{"name": "http2", "port": 80}]}})
    objects.append(cluster_object("MutatingWebhookConfiguration", "istio-sidecar-injector", ISTIO_LABEL))
    objects.append(cluster_object("ValidatingWebhookConfiguration", "istio-validator-istio-system", ISTIO_LABEL))
    objects.append(cluster_object("ValidatingWebhookConfiguration", "istiod-default-validator", ISTIO_LABEL))
    objects.append(cluster_object("ClusterRole", "istiod-clusterrole-istio-system", ISTIO_LABEL))
    return objects


def istioctl(args: list[str], stdin_text: str | None) -> int:
    positional, flags = parse(args)
    if positional[:1] == ["version"]:
        print(f"client version: {os.environ.get('FAKE_ISTIOCTL_VERSION', ISTIO_VERSION)}")
        return 0
    state = load_state()
    require_cluster(state)
    if positional[:2] in (["x", "precheck"], ["experimental", "precheck"]):
        print("✔ No issues found when checking the cluster. Istio is safe to install or upgrade!")
        return 0
    if positional[:1] == ["install"]:
        if not bool_flag(flags, "-y", "--skip-confirmation"):
            raise Fail("istioctl install asks for confirmation without -y")
        for obj in istio_install_objects():
            apply_document(state, obj, {})
        save_state(state)
        print("✔ Istio core installed\n✔ Istiod installed\n✔ Ingress gateways installed\n✔ Installation complete")
        return 0
    if positional[:1] == ["uninstall"]:
        if not bool_flag(flags, "--purge"):
            raise Fail("stand-in istioctl: only uninstall --purge is modelled")
        for obj in list(state["objects"]):
            labels = obj["metadata"].get("labels") or {}
            if "operator.istio.io/component" in labels and obj["kind"] not in ("Namespace", "CustomResourceDefinition"):
                if obj in state["objects"]:
                    remove(state, obj)
        save_state(state)
        print("✔ Uninstall complete")
        return 0
    if positional[:1] == ["analyze"]:
        print(f"✔ No validation issues found when analyzing namespace: {flag(flags, '-n', '--namespace', default='default')}.")
        return 0
    raise Fail(f"stand-in istioctl does not implement {' '.join(args)}")


LINKERD_CREATED_BY = {"linkerd.io/created-by": f"linkerd/cli {LINKERD_VERSION}"}
# Every object of `linkerd install` (and --crds) carries this label; `linkerd uninstall` lists the cluster-scoped
# ones by it (cli/cmd/uninstall.go, pkg/cmd.Uninstall with the ControllerNSLabel selector).
LINKERD_CP_LABEL = {"linkerd.io/control-plane-ns": "linkerd"}
LINKERD_CRDS = [("policy.linkerd.io", "Server", "servers"),
                ("policy.linkerd.io", "ServerAuthorization", "serverauthorizations"),
                ("policy.linkerd.io", "AuthorizationPolicy", "authorizationpolicies"),
                ("policy.linkerd.io", "MeshTLSAuthentication", "meshtlsauthentications"),
                ("policy.linkerd.io", "NetworkAuthentication", "networkauthentications"),
                ("policy.linkerd.io", "HTTPRoute", "httproutes"),
                ("policy.linkerd.io", "EgressNetwork", "egressnetworks"),
                ("linkerd.io", "ServiceProfile", "serviceprofiles"),
                ("workload.linkerd.io", "ExternalWorkload", "externalworkloads")]
VIZ_LABEL = {"linkerd.io/extension": "viz"}


def linkerd_core_objects(set_values: list[str]) -> list[dict]:
    namespace = cluster_object("Namespace", "linkerd", {"linkerd.io/is-control-plane": "true", **LINKERD_CP_LABEL},
                               {**LINKERD_CREATED_BY, "linkerd.io/inject": "disabled"})
    objects = [namespace]
    objects += [workload(n, "linkerd", LINKERD_CP_LABEL) for n in ("linkerd-destination", "linkerd-identity", "linkerd-proxy-injector")]
    objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "linkerd-config", "namespace": "linkerd", "annotations": LINKERD_CREATED_BY},
                    "data": {"values": "\n".join(sorted(set_values))}})
    objects.append(cluster_object("MutatingWebhookConfiguration", "linkerd-proxy-injector-webhook-config",
                                  LINKERD_CP_LABEL, LINKERD_CREATED_BY))
    objects.append(cluster_object("ValidatingWebhookConfiguration", "linkerd-policy-validator-webhook-config",
                                  LINKERD_CP_LABEL, LINKERD_CREATED_BY))
    objects.append(cluster_object("ValidatingWebhookConfiguration", "linkerd-sp-validator-webhook-config",
                                  LINKERD_CP_LABEL, LINKERD_CREATED_BY))
    objects.append(cluster_object("ClusterRole", "linkerd-linkerd-destination", LINKERD_CP_LABEL, LINKERD_CREATED_BY))
    return objects


def linkerd_viz_objects() -> list[dict]:
    objects = [cluster_object("Namespace", "linkerd-viz", VIZ_LABEL, {"linkerd.io/inject": "enabled"})]
    objects += [workload(n, "linkerd-viz", VIZ_LABEL) for n in ("metrics-api", "prometheus", "tap", "tap-injector", "web")]
    objects.append(cluster_object("MutatingWebhookConfiguration", "linkerd-tap-injector-webhook-config", VIZ_LABEL))
    objects.append(cluster_object("APIService", "v1alpha1.tap.linkerd.io", VIZ_LABEL))
    objects.append(cluster_object("ClusterRole", "linkerd-linkerd-viz-tap", VIZ_LABEL))
    return objects


def allow_scrapes_objects(namespace: str) -> list[dict]:
    return [
        {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
         "metadata": {"name": "proxy-admin", "namespace": namespace},
         "spec": {"podSelector": {"matchExpressions": [{"key": "linkerd.io/control-plane-ns", "operator": "Exists"}]},
                  "port": "linkerd-admin", "proxyProtocol": "HTTP/1"}},
        {"apiVersion": "policy.linkerd.io/v1alpha1", "kind": "AuthorizationPolicy",
         "metadata": {"name": "prometheus-scrape", "namespace": namespace},
         "spec": {"targetRef": {"group": "policy.linkerd.io", "kind": "Server", "name": "proxy-admin"},
                  "requiredAuthenticationRefs": []}},
    ]


def print_yaml(objects: list[dict]) -> None:
    import yaml
    print(yaml.safe_dump_all([public(o) for o in objects], sort_keys=False), end="")


def linkerd(args: list[str], stdin_text: str | None) -> int:
    positional, flags = parse(args, {"--wait"})
    duration_flag(flags, "--wait", "linkerd")
    if positional[:1] == ["version"]:
        print(os.environ.get("FAKE_LINKERD_VERSION", LINKERD_VERSION))
        return 0
    state = load_state()
    require_cluster(state)
    has = lambda kind, name, ns=None: find(state, kind, name, ns) is not None  # noqa: E731
    gateway_api = has("CustomResourceDefinition", "httproutes.gateway.networking.k8s.io")
    if positional[:1] == ["check"]:
        if bool_flag(flags, "--pre"):
            if has("Namespace", "linkerd"):
                raise Fail("× control plane namespace does not already exist\n    The \"linkerd\" namespace already exists")
            print("Status check results are √")
            return 0
        if not objects_of(state, "Deployment", "linkerd"):
            raise Fail("× control plane namespace exists\n    The \"linkerd\" namespace does not exist")
        if bool_flag(flags, "--proxy"):
            namespace = flag(flags, "-n", "--namespace")
            unmeshed = [p["metadata"]["name"] for p in objects_of(state, "Pod", namespace)
                        if "linkerd-proxy" not in {c["name"] for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}]
            if unmeshed:
                raise Fail(f"× data plane proxies are ready\n    no linkerd-proxy in: {', '.join(unmeshed)}")
        print("Status check results are √")
        return 0
    if positional[:1] in (["install"], ["upgrade"]):
        if bool_flag(flags, "--crds"):
            if not gateway_api:
                raise Fail("Error: the Gateway API CRDs must be installed before Linkerd: "
                           "kubectl apply -f .../standard-install.yaml")
            print_yaml([crd(g, k, p, annotations=LINKERD_CREATED_BY, labels=LINKERD_CP_LABEL) for g, k, p in LINKERD_CRDS])
            return 0
        if positional[0] == "install":
            if has("Namespace", "linkerd"):
                raise Fail("Linkerd has already been installed on your cluster in the linkerd namespace. Please run "
                           "upgrade if you'd like to update this installation. Otherwise, use the --ignore-cluster flag.")
            if not has("CustomResourceDefinition", "servers.policy.linkerd.io"):
                raise Fail("Linkerd CRDs must be installed first. Run linkerd install with the --crds flag.")
        print_yaml(linkerd_core_objects(flags.get("--set", [])))
        return 0
    if positional[:2] == ["viz", "install"]:
        if not has("Namespace", "linkerd"):
            raise Fail("Error: could not find the linkerd control plane namespace")
        print_yaml(linkerd_viz_objects())
        return 0
    if positional[:2] == ["viz", "check"]:
        if not objects_of(state, "Deployment", "linkerd-viz"):
            raise Fail("× linkerd-viz Namespace exists\n    could not find the linkerd-viz extension")
        print("Status check results are √")
        return 0
    if positional[:2] == ["viz", "allow-scrapes"]:
        print_yaml(allow_scrapes_objects(flag(flags, "-n", "--namespace", default="default")))
        return 0
    if positional[:2] == ["viz", "uninstall"]:
        print_yaml([o for o in state["objects"] if (o["metadata"].get("labels") or {}).get("linkerd.io/extension") == "viz"
                    and not o["metadata"].get("namespace")])
        return 0
    if positional[:1] == ["jaeger"]:
        # The linkerd-jaeger extension left the CLI in 2.19.
        raise Fail('Error: unknown command "jaeger" for "linkerd"\nRun \'linkerd --help\' for usage.')
    if positional[:1] == ["uninstall"]:
        # As linkerd2 cli/cmd/uninstall.go: meshed pods outside the control plane's namespace block it without --force.
        extensions = {n["metadata"]["labels"]["linkerd.io/extension"] for n in objects_of(state, "Namespace")
                      if "linkerd.io/extension" in (n["metadata"].get("labels") or {})}
        extension_namespaces = {n["metadata"]["name"] for n in objects_of(state, "Namespace")
                                if "linkerd.io/extension" in (n["metadata"].get("labels") or {})}
        injected = [p["metadata"]["name"] for p in objects_of(state, "Pod")
                    if "linkerd.io/control-plane-ns" in (p["metadata"].get("labels") or {})
                    and p["metadata"].get("namespace") not in {"linkerd"} | extension_namespaces]
        if not bool_flag(flags, "--force"):
            problems = []
            if extensions:
                problems.append("Please uninstall the following extensions before uninstalling the control-plane:"
                                "\n\t" + "\n\t".join(f"* {e}" for e in sorted(extensions)))
            if injected:
                problems.append("Please uninject the following pods before uninstalling the control-plane:\n\t"
                                + "\n\t".join(f"* {name}" for name in injected))
            if problems:
                raise Fail("\n".join(problems))
        print_yaml([o for o in state["objects"] if "linkerd.io/control-plane-ns" in (o["metadata"].get("labels") or {})
                    and not o["metadata"].get("namespace")])
        return 0
    raise Fail(f"stand-in linkerd does not implement {' '.join(args)}")


# ---------------------------------------------------------------------------------------------------------------
# docker, kind, helm
# ---------------------------------------------------------------------------------------------------------------
def docker(args: list[str], stdin_text: str | None) -> int:
    state = load_state()
    positional, flags = parse(args)
    if positional[:2] == ["buildx", "version"]:
        print("github.com/docker/buildx v0.19.0 stand-in")
        return 0
    if not state.get("docker_engine", True):
        raise Fail("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?")
    if positional[:1] == ["info"]:
        if "--format" in flags:  # only {{json .DriverStatus}} is asked for
            store = "io.containerd.snapshotter.v1" if state.get("containerd_store") else "overlay2"
            print(json.dumps([["driver-type", store]]))
            return 0
        print("Server Version: stand-in")
        return 0
    if positional[:2] == ["buildx", "inspect"]:
        # "buildx_driver": the current builder's driver (docker: the engine's own, multi-platform only with the
        # containerd image store, "containerd_store": true).
        print(f"Name:          default\nDriver:        {state.get('buildx_driver', 'docker-container')}")
        return 0
    build = positional[:1] == ["build"] or positional[:2] == ["buildx", "build"]
    if build:
        dockerfile = flag(flags, "-f")
        context = positional[-1]
        if not dockerfile or not Path(dockerfile).is_file():
            raise Fail(f"ERROR: failed to read dockerfile: open {dockerfile}: no such file or directory")
        if not Path(context).is_dir():
            raise Fail(f"ERROR: unable to prepare context: path {context!r} not found")
        for tag in flags.get("-t", []):
            state["images"].append({"ref": tag, "dockerfile": dockerfile, "context": context,
                                    "build_args": flags.get("--build-arg", []),
                                    "platform": flag(flags, "--platform")})
            if bool_flag(flags, "--push"):
                state["pushed"].append(tag)
        save_state(state)
        return 0
    if positional[:1] == ["version"]:
        # only `docker version --format '{{.Server.Os}}/{{.Server.Arch}}'` is asked for
        print(state.get("docker_platform", "linux/amd64"))
        return 0
    if positional[:1] == ["save"]:
        refs, output = positional[1:], flag(flags, "-o", "--output")
        known = {i["ref"] for i in state["images"]}
        for ref in refs:
            if ref not in known:
                raise Fail(f"Error response from daemon: reference does not exist: {ref}")
        if not output:
            raise Fail("stand-in docker: only docker save -o FILE is modelled")
        Path(output).write_text(json.dumps({"refs": refs, "platform": flag(flags, "--platform")}))
        return 0
    if positional[:1] == ["push"]:
        ref = positional[1]
        if ref not in {i["ref"] for i in state["images"]}:
            raise Fail(f"An image does not exist locally with the tag: {ref}")
        state["pushed"].append(ref)
        save_state(state)
        return 0
    raise Fail(f"stand-in docker does not implement {' '.join(args)}")


def kind(args: list[str], stdin_text: str | None) -> int:
    state = load_state()
    positional, flags = parse(args)
    if positional[:2] == ["get", "clusters"]:
        print("\n".join(state.get("kind_clusters", [])))
        return 0
    if positional[:2] == ["load", "docker-image"]:
        name = flag(flags, "--name", default="kind")
        for ref in positional[2:]:
            if ref not in {i["ref"] for i in state["images"]}:
                raise Fail(f"ERROR: image: \"{ref}\" not present locally")
            if state.get("containerd_store"):
                # kubernetes-sigs/kind#3795: with Docker's containerd image store, the `docker save` archive names
                # blobs the node's `ctr images import --all-platforms` cannot find.
                raise Fail(f'ERROR: failed to load image: command "docker exec --privileged -i {name}-control-plane ctr '
                           '--namespace=k8s.io images import --all-platforms --digests --snapshotter=overlayfs -" failed '
                           "with error: exit status 1\nCommand Output: ctr: content digest sha256:4e2a...: not found")
            state["kind_loaded"].append({"cluster": name, "ref": ref})
        save_state(state)
        return 0
    if positional[:2] == ["load", "image-archive"]:
        name = flag(flags, "--name", default="kind")
        archive = json.loads(Path(positional[2]).read_text())
        for ref in archive["refs"]:
            state["kind_loaded"].append({"cluster": name, "ref": ref, "archive": True, "platform": archive["platform"]})
        save_state(state)
        return 0
    raise Fail(f"stand-in kind does not implement {' '.join(args)}")


def helm(args: list[str], stdin_text: str | None) -> int:
    state = load_state()
    positional, flags = parse(args)
    duration_flag(flags, "--timeout", "helm")
    if positional[:2] == ["repo", "add"]:
        state["helm_repos"] = sorted(set(state.get("helm_repos", [])) | {positional[2]})
        save_state(state)
        return 0
    require_cluster(state)
    namespace = flag(flags, "-n", "--namespace", default="default")
    if positional[:1] == ["upgrade"] and bool_flag(flags, "--install"):
        if not find(state, "Namespace", namespace, None):
            if not bool_flag(flags, "--create-namespace"):
                raise Fail(f'Error: create: failed to create: namespaces "{namespace}" not found')
            apply_document(state, cluster_object("Namespace", namespace), {})
        apply_document(state, workload(positional[1], namespace, {"app.kubernetes.io/managed-by": "Helm"}), {})
        save_state(state)
        return 0
    if positional[:1] == ["uninstall"]:
        obj = find(state, "Deployment", positional[1], namespace)
        if obj:
            remove(state, obj)
            save_state(state)
        return 0
    raise Fail(f"stand-in helm does not implement {' '.join(args)}")


def k3d(args: list[str], stdin_text: str | None) -> int:
    """`k3d cluster list --no-headers` and `k3d image import IMAGE... -c NAME` (k3d docs, usage/commands)."""
    state = load_state()
    positional, flags = parse(args, {"-c", "--cluster"})
    if positional[:2] == ["cluster", "list"]:
        for name in state.get("k3d_clusters", []):
            print(f"{name}   1/1       0/0      true")
        return 0
    if positional[:2] == ["image", "import"]:
        name = flag(flags, "-c", "--cluster", default="k3s-default")
        if name not in state.get("k3d_clusters", []):
            raise Fail(f"FATA[0000] failed to get cluster {name}: No nodes found for given cluster")
        for ref in positional[2:]:
            if ref not in {i["ref"] for i in state["images"]}:
                raise Fail(f"ERRO[0000] failed to save image {ref}: reference does not exist")
            state.setdefault("k3d_imported", []).append({"cluster": name, "ref": ref})
        save_state(state)
        return 0
    raise Fail(f"stand-in k3d does not implement {' '.join(args)}")


TOOLS = {"kubectl": kubectl, "istioctl": istioctl, "linkerd": linkerd, "docker": docker, "kind": kind, "helm": helm,
         "k3d": k3d}


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    stdin_text = sys.stdin.read() if "-" in args else None
    log_call(tool, args, stdin_text)
    try:
        return TOOLS[tool](args, stdin_text)
    except Fail as failure:
        print(str(failure), file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())

"""Cross-reference checks: every name one manifest uses must exist in another, with matching labels and ports."""
from __future__ import annotations

import re
from pathlib import Path

from . import identities, kustomize
from .model import Document, PodTemplate, Problem, Tree, as_dict, as_list, dig, label_selector_matches, matches

CLUSTER_DOMAIN = "svc.cluster.local"
BUILTIN_CLUSTER_ROLES = {"view", "edit", "admin", "cluster-admin"}
# ConfigMaps the cluster writes into every namespace: the API server's CA (Kubernetes' root-ca-cert-publisher,
# which projected ServiceAccount token volumes use) and istiod's root certificate.
BUILTIN_CONFIGMAPS = {"kube-root-ca.crt", "istio-ca-root-cert"}
# `kubectl ... create secret generic <name>`, the name written out or in a shell variable ("$NAME", ${NAME}).
SCRIPT_SECRET = re.compile(r"create\s+secret\s+(?:generic|tls|docker-registry)\s+\"?(?:\$\{?(\w+)\}?|([a-z0-9][-a-z0-9.]*))")
SHELL_ASSIGNMENT = re.compile(r"^\s*(?:readonly\s+|declare\s+(?:-\w+\s+)*|export\s+)?(\w+)=[\"']?([a-z0-9][-a-z0-9.]*)[\"']?\s*(?:#.*)?$", re.M)


def check(tree: Tree) -> list[Problem]:
    problems: list[Problem] = []
    for fn in (service_selectors, container_references, probe_ports, rbac_subjects, istio_hosts_and_subsets,
               istio_mesh_hosts, istio_gateways, istio_workload_selectors, istio_principals, linkerd_identities, linkerd_policy_targets,
               route_references, flagger_targets):
        problems.extend(fn(tree))
    return problems


# -- helpers ---------------------------------------------------------------------------------------------------------
def pods_selected(tree: Tree, selector: dict, namespace: str | None) -> list[PodTemplate]:
    return [p for p in tree.pod_templates(namespace) if matches(selector, p.labels)]


def container_port(container: dict, port) -> bool:
    """Does the container declare this port (a number, or the name of one of its ports)?"""
    for declared in as_list(container.get("ports")):
        if isinstance(port, int) and declared.get("containerPort") == port:
            return True
        if isinstance(port, str) and (declared.get("name") == port or str(declared.get("containerPort")) == port):
            return True
    return False


def pod_declares_port(pod: PodTemplate, port) -> bool:
    return any(container_port(c, port) for c in pod.containers)


def service_ports(service: Document) -> list[int]:
    return [p.get("port") for p in as_list(service.spec.get("ports")) if isinstance(p, dict)]


def describe_labels(pods: list[PodTemplate], limit: int = 4) -> str:
    described = [f"{p.doc.kind}/{p.doc.name} {p.labels}" for p in pods[:limit]]
    return "; ".join(described + (["..."] if len(pods) > limit else [])) or "none"


def script_secrets(root: Path) -> set[str]:
    """Secrets the deploy scripts create with `kubectl create secret ...` (so no password sits in a file)."""
    texts = []
    for path in sorted(root.glob("*.sh")) + sorted((root / "scripts").rglob("*.sh")):
        try:
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    variables = {name: value for text in texts for name, value in SHELL_ASSIGNMENT.findall(text)}
    names: set[str] = set()
    for text in texts:
        for variable, literal in SCRIPT_SECRET.findall(text):
            value = literal or variables.get(variable)
            if value:
                names.add(value)
    return names


def service_account_exists(tree: Tree, namespace: str | None, name: str) -> bool:
    """In our manifests, or one of the documented upstream identities (an unknown namespace matches any)."""
    return bool(tree.find("ServiceAccount", name, namespace)) or (namespace, name) in identities.EXTERNAL_SERVICE_ACCOUNTS


# -- Services --------------------------------------------------------------------------------------------------------
def service_selectors(tree: Tree) -> list[Problem]:
    problems = []
    for svc in tree.of_kind("Service"):
        selector = as_dict(svc.spec.get("selector"))
        if not selector:
            continue  # headless/ExternalName/hand-made endpoints: nothing to match
        pods = pods_selected(tree, selector, svc.namespace)
        if not pods:
            others = list(tree.pod_templates(svc.namespace))
            problems.append(svc.problem(f"selector {selector} matches no pod template; pod labels here: {describe_labels(others)}"))
            continue
        for port in as_list(svc.spec.get("ports")):
            target = port.get("targetPort", port.get("port"))
            for pod in pods:
                if not pod_declares_port(pod, target):
                    problems.append(svc.problem(
                        f"port {port.get('name') or port.get('port')}: targetPort {target!r} is not a containerPort "
                        f"(number or name) of {pod.doc.kind}/{pod.doc.name} ({pod.doc.path})"))
    return problems


# -- pods: ServiceAccounts, Secrets, ConfigMaps, PVCs ----------------------------------------------------------------
def container_references(tree: Tree) -> list[Problem]:
    problems = []
    generated = {"ConfigMap": kustomize.generated_names(tree, "ConfigMap"), "Secret": kustomize.generated_names(tree, "Secret")}
    from_scripts = script_secrets(tree.root)

    def exists(kind: str, name: str, namespace: str | None) -> bool:
        if tree.find(kind, name, namespace) or name in generated[kind]:
            return True
        if kind == "ConfigMap" and name in BUILTIN_CONFIGMAPS:
            return True
        return kind == "Secret" and name in from_scripts

    def keys_of(kind: str, name: str, namespace: str | None) -> set[str] | None:
        """The data keys of a ConfigMap/Secret written as a manifest; None when unknown (generated, scripted)."""
        docs = tree.find(kind, name, namespace)
        if not docs:
            return None
        keys: set[str] = set()
        for doc in docs:
            for field in ("data", "stringData", "binaryData"):
                keys.update(as_dict(doc.obj.get(field)))
        return keys

    for pod in tree.pod_templates():
        doc, ns = pod.doc, pod.doc.namespace
        if pod.spec.get("serviceAccountName") and not service_account_exists(tree, ns, pod.service_account):
            problems.append(doc.problem(f"serviceAccountName {pod.service_account!r} has no ServiceAccount manifest"))
        refs: list[tuple[str, str, str | None, bool, str]] = []  # kind, name, key, optional, where
        for c in pod.all_containers:
            cname = c.get("name")
            for env in as_list(c.get("env")):
                for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    ref = dig(env, "valueFrom", field)
                    if isinstance(ref, dict):
                        refs.append((kind, ref.get("name"), ref.get("key"), bool(ref.get("optional")), f"container {cname} env {env.get('name')}"))
            for env_from in as_list(c.get("envFrom")):
                for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    ref = env_from.get(field)
                    if isinstance(ref, dict):
                        refs.append((kind, ref.get("name"), None, bool(ref.get("optional")), f"container {cname} envFrom"))
        for volume in as_list(pod.spec.get("volumes")):
            vname = volume.get("name")
            if isinstance(volume.get("secret"), dict):
                refs.append(("Secret", volume["secret"].get("secretName"), None, bool(volume["secret"].get("optional")), f"volume {vname}"))
            if isinstance(volume.get("configMap"), dict):
                refs.append(("ConfigMap", volume["configMap"].get("name"), None, bool(volume["configMap"].get("optional")), f"volume {vname}"))
            for source in as_list(dig(volume, "projected", "sources", default=[])):
                for field, kind in (("secret", "Secret"), ("configMap", "ConfigMap")):
                    if isinstance(source.get(field), dict):
                        refs.append((kind, source[field].get("name"), None, bool(source[field].get("optional")), f"volume {vname}"))
            claim = dig(volume, "persistentVolumeClaim", "claimName")
            templates = [dig(t, "metadata", "name") for t in as_list(doc.spec.get("volumeClaimTemplates"))]
            if claim and not tree.find("PersistentVolumeClaim", claim, ns) and claim not in templates:
                problems.append(doc.problem(f"volume {vname}: PersistentVolumeClaim {claim!r} has no manifest"))
        for secret in as_list(pod.spec.get("imagePullSecrets")):
            refs.append(("Secret", secret.get("name"), None, False, "imagePullSecrets"))
        for kind, name, key, optional, where in refs:
            if optional or not name:
                continue
            if not exists(kind, name, ns):
                hint = " (nor in a kustomize generator or a `kubectl create secret` in the scripts)" if kind == "Secret" else " (nor in a kustomize configMapGenerator)"
                problems.append(doc.problem(f"{where}: {kind} {name!r} has no manifest{hint}"))
            elif key is not None:
                keys = keys_of(kind, name, ns)
                if keys is not None and key not in keys:
                    problems.append(doc.problem(f"{where}: {kind} {name!r} has no key {key!r} (keys: {', '.join(sorted(keys)) or 'none'})"))
    return problems


def probe_ports(tree: Tree) -> list[Problem]:
    problems = []
    for pod in tree.pod_templates():
        for c in pod.containers:
            for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
                probe = as_dict(c.get(probe_name))
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    port = dig(probe, handler, "port")
                    if port is not None and not container_port(c, port):
                        problems.append(pod.doc.problem(
                            f"container {c.get('name')}: {probe_name}.{handler}.port {port!r} is not one of its containerPorts"))
    return problems


def rbac_subjects(tree: Tree) -> list[Problem]:
    problems = []
    for binding in tree.of_kind("RoleBinding", "ClusterRoleBinding"):
        for subject in as_list(binding.obj.get("subjects")):
            if subject.get("kind") == "ServiceAccount":
                ns = subject.get("namespace") or binding.namespace
                if not service_account_exists(tree, ns, subject.get("name", "")):
                    problems.append(binding.problem(f"subject ServiceAccount {ns}/{subject.get('name')} has no manifest"))
        role = as_dict(binding.obj.get("roleRef"))
        kind, name = role.get("kind"), role.get("name", "")
        if kind == "ClusterRole" and (name in BUILTIN_CLUSTER_ROLES or name.startswith("system:")):
            continue
        if kind and not tree.find(kind, name, binding.namespace if kind == "Role" else None):
            problems.append(binding.problem(f"roleRef {kind}/{name} has no manifest"))
    return problems


# -- Istio -----------------------------------------------------------------------------------------------------------
def istio_host(host: str, namespace: str | None) -> tuple[str, str | None]:
    """`payment-service`, `payment-service.e-commerce` and the FQDN all name (payment-service, e-commerce)."""
    host = host.removesuffix("." + CLUSTER_DOMAIN).removesuffix(".svc")
    name, _, ns = host.partition(".")
    return name, (ns or namespace)


def destinations(vs: Document):
    """(route kind, route index, destination entry) for every destination of a VirtualService."""
    for kind in ("http", "tcp", "tls"):
        for i, route in enumerate(as_list(vs.spec.get(kind))):
            for dest in as_list(as_dict(route).get("route")):
                yield kind, i, as_dict(dest)
            mirror = as_dict(as_dict(route).get("mirror"))
            if mirror:
                yield kind, i, {"destination": mirror}


def same_host(rule: Document, name: str, namespace: str | None) -> bool:
    rule_name, rule_ns = istio_host(str(rule.spec.get("host", "")), rule.namespace)
    return rule_name == name and (namespace is None or rule_ns is None or rule_ns == namespace)


def istio_hosts_and_subsets(tree: Tree) -> list[Problem]:
    problems = []
    rules = tree.of_kind("DestinationRule", group="networking.istio.io")
    for vs in tree.of_kind("VirtualService", group="networking.istio.io"):
        for kind, i, dest in destinations(vs):
            d = as_dict(dest.get("destination"))
            host = d.get("host")
            if not isinstance(host, str):
                continue
            name, ns = istio_host(host, vs.namespace)
            services = tree.find("Service", name, ns)
            if not services:
                problems.append(vs.problem(f"{kind}[{i}]: destination host {host!r} is not a Service in our manifests"))
                continue
            port = dig(d, "port", "number")
            if port is not None and not any(port in service_ports(s) for s in services):
                problems.append(vs.problem(f"{kind}[{i}]: destination port {port} is not a port of Service {name} ({service_ports(services[0])})"))
            subset = d.get("subset")
            if subset:
                known = [str(s.get("name")) for r in rules if same_host(r, name, ns) for s in as_list(r.spec.get("subsets"))]
                if subset not in known:
                    problems.append(vs.problem(
                        f"{kind}[{i}]: subset {subset!r} of host {host!r} is in no DestinationRule (subsets there: {', '.join(known) or 'none'})"))
    for dr in rules:
        name, ns = istio_host(str(dr.spec.get("host", "")), dr.namespace)
        services = tree.find("Service", name, ns)
        if not services:
            problems.append(dr.problem(f"host {dr.spec.get('host')!r} is not a Service in our manifests"))
            continue
        selector = as_dict(services[0].spec.get("selector"))
        for subset in as_list(dr.spec.get("subsets")):
            labels = {**selector, **as_dict(subset.get("labels"))}
            if not pods_selected(tree, labels, ns):
                problems.append(dr.problem(
                    f"subset {subset.get('name')!r}: no pod template carries {labels} (Service {name}'s selector plus the subset labels)"))
    return problems


def istio_mesh_hosts(tree: Tree) -> list[Problem]:
    """A mesh VirtualService (no `gateways`, or `mesh` among them) applies to calls to its hosts: a host that is no
    Service of ours matches no call, so its routes, timeouts and retries silently do nothing."""
    problems = []
    for vs in tree.of_kind("VirtualService", group="networking.istio.io"):
        gateways = as_list(vs.spec.get("gateways"))
        if gateways and "mesh" not in gateways:
            continue
        for host in as_list(vs.spec.get("hosts")):
            name, ns = istio_host(str(host), vs.namespace)
            if "*" in str(host) or not tree.find("Service", name, ns):
                problems.append(vs.problem(
                    f"hosts: {host!r} is not a Service in our manifests (a mesh VirtualService must name one: "
                    "`<service>` or `<service>.<namespace>.svc.cluster.local`)"))
    return problems


def istio_gateways(tree: Tree) -> list[Problem]:
    """A VirtualService bound to a Gateway that does not exist is silently ignored by Istio."""
    problems = []
    for vs in tree.of_kind("VirtualService", group="networking.istio.io"):
        for gateway in as_list(vs.spec.get("gateways")):
            if gateway == "mesh":
                continue
            ns, _, name = str(gateway).rpartition("/")
            if not tree.find("Gateway", name, ns or vs.namespace, group="networking.istio.io"):
                problems.append(vs.problem(f"gateway {gateway!r} is not an Istio Gateway in our manifests"))
    return problems


def istio_workload_selectors(tree: Tree) -> list[Problem]:
    """A policy whose selector matches no pod protects nothing, silently."""
    problems = []
    for doc in tree.of_kind("AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry", "Sidecar"):
        if not doc.group.endswith("istio.io"):
            continue
        selector = as_dict(as_dict(doc.spec.get("selector")).get("matchLabels")) or as_dict(
            as_dict(doc.spec.get("workloadSelector")).get("labels"))
        if selector and not pods_selected(tree, selector, doc.namespace):
            problems.append(doc.problem(f"selector {selector} matches no pod template"))
    return problems


def istio_principals(tree: Tree) -> list[Problem]:
    problems = []
    for policy in tree.of_kind("AuthorizationPolicy", group="security.istio.io"):
        for r, rule in enumerate(as_list(policy.spec.get("rules"))):
            for source in as_list(as_dict(rule).get("from")):
                src = as_dict(as_dict(source).get("source"))
                for field in ("principals", "notPrincipals"):
                    for principal in as_list(src.get(field)):
                        parsed = identities.parse_istio_principal(str(principal))
                        if parsed is None:
                            problems.append(policy.problem(f"rules[{r}] {field}: {principal!r} is not of the form cluster.local/ns/<ns>/sa/<serviceaccount>"))
                        elif not service_account_exists(tree, *parsed):
                            problems.append(policy.problem(f"rules[{r}] {field}: {principal!r} names no ServiceAccount in our manifests (ServiceAccount {parsed[1]} in namespace {parsed[0]})"))
    return problems


# -- Linkerd ---------------------------------------------------------------------------------------------------------
def linkerd_identities(tree: Tree) -> list[Problem]:
    problems = []
    for auth in tree.of_kind("MeshTLSAuthentication", group="policy.linkerd.io"):
        for identity in as_list(auth.spec.get("identities")):
            parsed = identities.parse_linkerd_identity(str(identity))
            if parsed is None:
                problems.append(auth.problem(f"identity {identity!r} is not of the form <sa>.<ns>.serviceaccount.identity.linkerd.cluster.local"))
            elif not service_account_exists(tree, *parsed):
                problems.append(auth.problem(f"identity {identity!r} names no ServiceAccount in our manifests"))
        for ref in as_list(auth.spec.get("identityRefs")):
            kind, name = ref.get("kind"), ref.get("name", "")
            ns = ref.get("namespace") or auth.namespace
            if kind == "ServiceAccount" and not service_account_exists(tree, ns, name):
                problems.append(auth.problem(f"identityRefs ServiceAccount {ns}/{name} has no manifest"))
            if kind == "Namespace" and not tree.find("Namespace", name, None):
                problems.append(auth.problem(f"identityRefs Namespace {name} has no manifest"))
    return problems


def server_pods(tree: Tree, server: Document) -> list[PodTemplate]:
    """The pods a Linkerd Server selects, with the labels the proxy injector adds."""
    selector = as_dict(server.spec.get("podSelector"))
    return [p for p in tree.pod_templates(server.namespace)
            if selector and label_selector_matches(selector, {**p.labels, **identities.linkerd_injected_labels(p.doc.namespace, p.doc.name)})]


def linkerd_policy_targets(tree: Tree) -> list[Problem]:
    problems = []
    for server in tree.of_kind("Server", group="policy.linkerd.io"):
        pods = server_pods(tree, server)
        if not pods:
            problems.append(server.problem(f"podSelector {server.spec.get('podSelector')} matches no pod template"))
        port = server.spec.get("port")
        for pod in pods:
            if port is not None and not pod_declares_port(pod, port) and port not in identities.LINKERD_PROXY_PORTS \
                    and port not in identities.LINKERD_PROXY_PORTS.values():
                problems.append(server.problem(f"port {port!r} is not a containerPort of {pod.doc.kind}/{pod.doc.name}"))
    for policy in tree.of_kind("AuthorizationPolicy", group="policy.linkerd.io"):
        target = as_dict(policy.spec.get("targetRef"))
        if target and not linkerd_ref_exists(tree, target, policy.namespace):
            problems.append(policy.problem(f"targetRef {target.get('kind')}/{target.get('name')} has no manifest"))
        for ref in as_list(policy.spec.get("requiredAuthenticationRefs")):
            if ref.get("kind") == "ServiceAccount":
                ns = ref.get("namespace") or policy.namespace
                if not service_account_exists(tree, ns, ref.get("name", "")):
                    problems.append(policy.problem(f"requiredAuthenticationRefs ServiceAccount {ns}/{ref.get('name')} has no manifest"))
            elif not linkerd_ref_exists(tree, ref, policy.namespace):
                problems.append(policy.problem(f"requiredAuthenticationRefs {ref.get('kind')}/{ref.get('name')} has no manifest"))
    return problems


def linkerd_ref_exists(tree: Tree, ref: dict, namespace: str | None) -> bool:
    kind, name = ref.get("kind"), ref.get("name", "")
    ns = ref.get("namespace") or namespace
    if kind == "Namespace":
        return bool(tree.find("Namespace", name, None))
    if kind == "HTTPRoute":
        return bool(tree.find("HTTPRoute", name, ns))
    return bool(tree.find(str(kind), name, ns))


# -- Flagger ---------------------------------------------------------------------------------------------------------
def flagger_targets(tree: Tree) -> list[Problem]:
    problems = []
    for canary in tree.of_kind("Canary", group="flagger.app"):
        for field in ("targetRef", "autoscalerRef"):
            ref = as_dict(canary.spec.get(field))
            if ref and not tree.find(str(ref.get("kind")), str(ref.get("name")), canary.namespace):
                problems.append(canary.problem(f"{field} {ref.get('kind')}/{ref.get('name')} has no manifest"))
        for metric in as_list(as_dict(canary.spec.get("analysis")).get("metrics")):
            ref = as_dict(as_dict(metric).get("templateRef"))
            if ref and not tree.find("MetricTemplate", str(ref.get("name")), ref.get("namespace") or canary.namespace):
                problems.append(canary.problem(f"analysis metric {metric.get('name')!r}: MetricTemplate {ref.get('name')} has no manifest"))
    return problems


# -- HTTPRoutes (Gateway API and policy.linkerd.io) ------------------------------------------------------------------
# What a ref without `group` means (pinned CRDs: Gateway API v1.2.1, Linkerd 2.20): a parentRef defaults to the
# route's own API group (gateway.networking.k8s.io, or policy.linkerd.io for Linkerd's HTTPRoute), a backendRef to
# the core group. A Service parent without `group: core` therefore names a Gateway API "Service" that no controller
# knows, and the route attaches to nothing.
CORE_GROUPS = ("", "core")


def route_references(tree: Tree) -> list[Problem]:
    problems = []
    for route in tree.of_kind("HTTPRoute", "GRPCRoute"):
        for parent in as_list(route.spec.get("parentRefs")):
            group, kind = parent.get("group", route.group), parent.get("kind", "Gateway")
            ns = parent.get("namespace") or route.namespace
            name = parent.get("name", "")
            if kind == "Service" and group in CORE_GROUPS:
                problems.extend(service_port_problems(tree, route, "parentRef", name, ns, parent.get("port"), port_required=False))
            elif kind == "Service":
                problems.append(route.problem(
                    f"parentRef Service/{name} has group {group!r}" + ("" if "group" in parent else " (the default when `group` is left out)")
                    + ": a Service is in the core group, write group: core (or \"\")"))
            elif not tree.find(kind, name, ns, group=group):
                problems.append(route.problem(f"parentRef {kind}/{name} (group {group}) has no manifest"))
        for r, rule in enumerate(as_list(route.spec.get("rules"))):
            for backend in as_list(as_dict(rule).get("backendRefs")):
                group, kind = backend.get("group", ""), backend.get("kind", "Service")
                name = backend.get("name", "")
                if kind == "Service" and group in CORE_GROUPS:
                    problems.extend(service_port_problems(
                        tree, route, f"rules[{r}] backendRef", name,
                        backend.get("namespace") or route.namespace, backend.get("port"), port_required=True))
                elif kind == "Service":
                    problems.append(route.problem(
                        f"rules[{r}] backendRef Service/{name} has group {group!r}: a Service is in the core group, "
                        "write group: core (or \"\")"))
    return problems


def service_port_problems(tree, route, where, name, ns, port, port_required) -> list[Problem]:
    services = tree.find("Service", name, ns)
    if not services:
        return [route.problem(f"{where} Service {name!r} has no manifest")]
    if port is None:
        return [route.problem(f"{where} Service {name!r} needs a port")] if port_required else []
    if not any(port in service_ports(s) for s in services):
        return [route.problem(f"{where} Service {name!r} has no port {port} (ports: {service_ports(services[0])})")]
    return []

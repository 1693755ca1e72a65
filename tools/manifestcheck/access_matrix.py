"""Who may call whom: the matrix read from the Istio policies, from the Linkerd policies and from the README.

A row is (from, to, port): `from` is the app label of the workload running as the calling ServiceAccount, or
`ingress` (Istio's ingress gateway; in Linkerd, unauthenticated network traffic, i.e. a NetworkAuthentication, on
api-gateway's public routes only: anywhere else an any-address NetworkAuthentication is `*` and a problem), or
`*` (anyone: a workload no policy closes). `to` is the app label of the called pods, `port` their container port.
Scraping by Prometheus and kubelet probes are left out: the README lists them apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import identities
from .model import Document, PodTemplate, Problem, Tree, as_dict, as_list, label_selector_matches, matches

README = "README.md"
BEGIN, END = "<!-- access-matrix:begin -->", "<!-- access-matrix:end -->"
# Requests that only reach these paths are scraping or probes, not a caller of the application.
SCRAPE_AND_PROBE_PATHS = {"/metrics", "/health", "/ready", "/live"}  # /live: the Linkerd proxy's own probe
LINKERD_DEFAULT_POLICY = "config.linkerd.io/default-inbound-policy"
# The one workload unauthenticated clients may reach (docs/architecture.md: api-gateway is the public entry). In
# Linkerd a NetworkAuthentication is the `ingress` row only on this app's business routes; anywhere else it opens an
# internal service to whoever can reach the pod.
PUBLIC_ENTRY = "api-gateway"
# Its public surface (docs/architecture.md "api-gateway"): the storefront, its assets and the API. A route that reaches
# anything else (a PathPrefix "/" takes in /admin/faults and /metrics) is not public, whoever it belongs to.
PUBLIC_PATHS = {("Exact", "/"), ("PathPrefix", "/static/"), ("Exact", "/api"), ("PathPrefix", "/api/")}
ANY_ADDRESS = {"0.0.0.0/0", "::/0"}
NETWORK_ONLY = "ingress"  # what linkerd_sources returns for a policy whose only authentication is a network


@dataclass(frozen=True, order=True)
class Row:
    source: str
    target: str
    port: int

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}:{self.port}"


def check(tree: Tree) -> list[Problem]:
    problems: list[Problem] = []
    readme, readme_problem = read_readme(tree.root)
    if readme_problem:
        problems.append(readme_problem)
    istio_rows, istio_problems = istio_matrix(tree)
    linkerd_rows, linkerd_problems = linkerd_matrix(tree)
    problems += istio_problems + linkerd_problems
    scrape_ports = metrics_only_ports(tree)
    istio_rows = None if istio_rows is None else {r for r in istio_rows if (r.target, r.port) not in scrape_ports}
    linkerd_rows = None if linkerd_rows is None else {r for r in linkerd_rows if (r.target, r.port) not in scrape_ports}
    sides = [("istio/", istio_rows), ("linkerd/", linkerd_rows)]
    for label, rows in sides:
        if rows is None:
            continue
        if readme is not None:
            problems += compare(label, rows, README, readme)
    if istio_rows is not None and linkerd_rows is not None:
        problems += compare("linkerd/", linkerd_rows, "istio/", istio_rows)
    return problems


def compare(path: str, rows: set[Row], other_name: str, other: set[Row]) -> list[Problem]:
    out = []
    for row in sorted(other - rows):
        out.append(Problem(path, message=f"access matrix: {row} is in {other_name} but not allowed by the {path} policies"))
    for row in sorted(rows - other):
        out.append(Problem(path, message=f"access matrix: {row} is allowed by the {path} policies but not in {other_name}"))
    return out


# -- README ----------------------------------------------------------------------------------------------------------
def read_readme(root: Path) -> tuple[set[Row] | None, Problem | None]:
    path = root / README
    if not path.is_file():
        return None, Problem(README, message="missing: the access matrix cannot be compared with it")
    text = path.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return None, Problem(README, message=f"has no {BEGIN} ... {END} block with the access matrix")
    return parse_matrix_table(text.split(BEGIN, 1)[1].split(END, 1)[0])


def parse_matrix_table(block: str) -> tuple[set[Row] | None, Problem | None]:
    rows = set()
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("from", "") or set(cells[0]) <= set("-: "):
            continue
        if not cells[2].isdigit():
            return None, Problem(README, message=f"access matrix row {line.strip()!r}: port must be a number")
        rows.add(Row(cells[0].strip("`"), cells[1].strip("`"), int(cells[2])))
    if not rows:
        return None, Problem(README, message="access matrix block has no `| from | to | port |` rows")
    return rows, None


# -- shared ----------------------------------------------------------------------------------------------------------
def metrics_only_ports(tree: Tree) -> set[tuple[str, int]]:
    """(app, port) of ports that only serve metrics: the pod's prometheus.io/port when no Service exposes it
    (loadgen's 9100). Scraping is outside the matrix, so rows to these ports are left out on both sides."""
    out = set()
    for pod in base_pods(tree):
        annotations = pod.doc.pod_template().get("metadata", {}).get("annotations") or {}
        port = resolve_port(pod, str(annotations.get("prometheus.io/port", "")))
        if port is None:
            continue
        exposed = any(
            matches(svc.spec.get("selector") or {}, pod.labels) and any(
                resolve_port(pod, p.get("targetPort", p.get("port"))) == port for p in as_list(svc.spec.get("ports")))
            for svc in tree.of_kind("Service"))
        if not exposed:
            out.add((app_of(pod), port))
    return out


def app_of(pod: PodTemplate) -> str:
    return str(pod.labels.get("app") or pod.doc.name)


def container_ports(pod: PodTemplate) -> dict[str, int]:
    ports = {}
    for c in pod.containers:
        for p in as_list(c.get("ports")):
            if isinstance(p.get("containerPort"), int):
                ports[str(p.get("name") or p["containerPort"])] = p["containerPort"]
    return ports


def resolve_port(pod: PodTemplate, port) -> int | None:
    ports = {**identities.LINKERD_PROXY_PORTS, **container_ports(pod)}
    if isinstance(port, int):
        return port
    if isinstance(port, str):
        return ports.get(port) or (int(port) if port.isdigit() else None)
    return None


def caller_names(tree: Tree, namespace: str | None, sa: str) -> set[str]:
    """What a ServiceAccount is in the matrix: ingress, monitoring, or the app labels of the pods running as it."""
    external = identities.EXTERNAL_SERVICE_ACCOUNTS.get((namespace, sa))
    if external:
        return {external}
    accounts = tree.find("ServiceAccount", sa, namespace)
    if any(a.path.startswith(identities.MONITORING_FOLDER) for a in accounts):
        return {"monitoring"}
    pods = [p for p in tree.pod_templates(namespace) if p.service_account == sa and not p.doc.is_scenario]
    if any(p.doc.path.startswith(identities.MONITORING_FOLDER) for p in pods):
        return {"monitoring"}
    return {app_of(p) for p in pods} or {f"serviceaccount:{sa}"}


def base_pods(tree: Tree) -> list[PodTemplate]:
    """The steady-state application pods: not scenarios, not monitoring."""
    return [p for p in tree.pod_templates() if not p.doc.is_scenario and not p.doc.path.startswith(identities.MONITORING_FOLDER)]


def mesh_docs(tree: Tree, folder: str, kind: str, group: str) -> list[Document]:
    return [d for d in tree.of_kind(kind, group=group, scenarios=False) if d.path.startswith(folder)]


# -- Istio -----------------------------------------------------------------------------------------------------------
def istio_matrix(tree: Tree) -> tuple[set[Row] | None, list[Problem]]:
    policies = mesh_docs(tree, "istio/", "AuthorizationPolicy", "security.istio.io")
    if not policies:
        return None, [Problem("istio/", message="no AuthorizationPolicy outside istio/scenarios/: the access matrix cannot be read")]
    problems: list[Problem] = []
    rows: set[Row] = set()
    pods = base_pods(tree)
    closed: set[str] = set()  # apps some policy closes (allow-nothing or an ALLOW that selects them)
    for policy in policies:
        action = policy.spec.get("action", "ALLOW")
        selected = [p for p in pods if istio_selects(policy, p)]
        if action != "ALLOW":
            problems.append(policy.problem(f"action {action} is not modelled by the access-matrix check; express the matrix with ALLOW policies"))
            continue
        closed |= {app_of(p) for p in selected}
        for r, rule in enumerate(as_list(policy.spec.get("rules"))):
            rule = as_dict(rule)
            sources = istio_sources(tree, policy, rule)
            if sources == {"monitoring"} or only_scrape_paths(as_list(rule.get("to")), "operation"):
                continue
            for pod in selected:
                for port in istio_ports(pod, rule):
                    rows.update(Row(s, app_of(pod), port) for s in sources if s != "monitoring")
    for pod in pods:
        if app_of(pod) not in closed:
            rows.update(Row("*", app_of(pod), port) for port in container_ports(pod).values())
    return rows, problems


def istio_selects(policy: Document, pod: PodTemplate) -> bool:
    if policy.namespace and pod.doc.namespace and policy.namespace != pod.doc.namespace:
        return False
    selector = as_dict(as_dict(policy.spec.get("selector")).get("matchLabels"))
    return not selector or matches(selector, pod.labels)


def istio_sources(tree: Tree, policy: Document, rule: dict) -> set[str]:
    froms = [as_dict(as_dict(f).get("source")) for f in as_list(rule.get("from"))]
    if not froms:
        return {"*"}
    out: set[str] = set()
    for source in froms:
        principals = as_list(source.get("principals"))
        if not principals or set(source) - {"principals"}:
            out.add("*")  # namespaces, ipBlocks, notPrincipals...: wider than one workload
        for principal in principals:
            parsed = identities.parse_istio_principal(str(principal))
            out |= caller_names(tree, *parsed) if parsed else {"*"}
    return out


def istio_ports(pod: PodTemplate, rule: dict) -> set[int]:
    ports: set[int] = set()
    for to in as_list(rule.get("to")):
        for port in as_list(as_dict(as_dict(to).get("operation")).get("ports")):
            if str(port).isdigit():
                ports.add(int(port))
    return ports or set(container_ports(pod).values())


def only_scrape_paths(tos: list, key: str) -> bool:
    paths = [p for to in tos for p in as_list(as_dict(as_dict(to).get(key)).get("paths"))]
    return bool(paths) and all(str(p).rstrip("*") in SCRAPE_AND_PROBE_PATHS for p in paths)


# -- Linkerd ---------------------------------------------------------------------------------------------------------
@dataclass
class ServerPorts:
    server: Document
    targets: list[tuple[str, int]]  # (app, port)


def linkerd_matrix(tree: Tree) -> tuple[set[Row] | None, list[Problem]]:
    servers = mesh_docs(tree, "linkerd/", "Server", "policy.linkerd.io")
    if not servers:
        return None, [Problem("linkerd/", message="no Server outside linkerd/scenarios/: the access matrix cannot be read")]
    problems: list[Problem] = []
    rows: set[Row] = set()
    pods = base_pods(tree)
    by_server: dict[str, ServerPorts] = {}
    for server in servers:
        selector = as_dict(server.spec.get("podSelector"))
        targets = []
        for pod in pods:
            injected = {**pod.labels, **identities.linkerd_injected_labels(pod.doc.namespace, pod.doc.name)}
            if selector and label_selector_matches(selector, injected):
                port = resolve_port(pod, server.spec.get("port"))
                if port is not None:
                    targets.append((app_of(pod), port))
        by_server[server.name] = ServerPorts(server, targets)
        access = server.spec.get("accessPolicy", "deny")
        if access != "deny":
            rows.update(Row("*", app, port) for app, port in targets)  # all-authenticated or all-unauthenticated
    routes = {d.name: d for d in tree.of_kind("HTTPRoute", scenarios=False) if d.path.startswith("linkerd/")}
    scrape_ports = metrics_only_ports(tree)
    for policy in mesh_docs(tree, "linkerd/", "AuthorizationPolicy", "policy.linkerd.io"):
        target = as_dict(policy.spec.get("targetRef"))
        kind, name = target.get("kind"), target.get("name")
        if kind == "Server":
            targeted = [by_server[name]] if name in by_server else []
        elif kind == "HTTPRoute":
            route = routes.get(name)
            if route is None:
                continue  # references.py reports the missing route
            if only_scrape_paths(as_list(route.spec.get("rules")), "matches") or route_only_scrape(route):
                continue
            targeted = [by_server[p.get("name")] for p in as_list(route.spec.get("parentRefs")) if p.get("name") in by_server]
        elif kind == "Namespace":
            targeted = list(by_server.values())
        else:
            problems.append(policy.problem(f"targetRef kind {kind} is not modelled by the access-matrix check"))
            continue
        sources = linkerd_sources(tree, policy)
        if sources == {NETWORK_ONLY}:
            sources, problem = network_sources(tree, policy, kind, routes.get(name) if kind == "HTTPRoute" else None,
                                               targeted, scrape_ports)
            if problem:
                problems.append(problem)
        for server in targeted:
            rows.update(Row(s, app, port) for s in sources if s != "monitoring" for app, port in server.targets)
    covered = {(app, port) for s in by_server.values() for app, port in s.targets}
    if not default_deny(tree):
        for pod in pods:
            rows.update(Row("*", app_of(pod), port) for port in container_ports(pod).values() if (app_of(pod), port) not in covered)
    return rows, problems


def route_only_scrape(route: Document) -> bool:
    """Every rule matches only scrape/probe paths (Gateway API: rules[].matches[].path.value)."""
    values = [as_dict(m.get("path")).get("value") for rule in as_list(route.spec.get("rules"))
              for m in as_list(as_dict(rule).get("matches"))]
    rules_without_match = any(not as_list(as_dict(rule).get("matches")) for rule in as_list(route.spec.get("rules")))
    return bool(values) and not rules_without_match and all(str(v).rstrip("/") in SCRAPE_AND_PROBE_PATHS for v in values)


def linkerd_sources(tree: Tree, policy: Document) -> set[str]:
    mesh: set[str] = set()
    network = False
    for ref in as_list(policy.spec.get("requiredAuthenticationRefs")):
        kind, name = ref.get("kind"), ref.get("name", "")
        ns = ref.get("namespace") or policy.namespace
        if kind == "ServiceAccount":
            mesh |= caller_names(tree, ns, name)
        elif kind == "NetworkAuthentication":
            network = True
        elif kind == "MeshTLSAuthentication":
            for auth in tree.find("MeshTLSAuthentication", name, ns):
                for identity in as_list(auth.spec.get("identities")):
                    parsed = identities.parse_linkerd_identity(str(identity))
                    mesh |= caller_names(tree, *parsed) if parsed and parsed[1] != "*" else {"*"}
                for ident in as_list(auth.spec.get("identityRefs")):
                    if ident.get("kind") == "ServiceAccount":
                        mesh |= caller_names(tree, ident.get("namespace") or auth.namespace, ident.get("name", ""))
                    else:
                        mesh.add("*")
    if mesh:
        return mesh  # a NetworkAuthentication next to it only narrows where the meshed callers may come from
    return {"ingress"} if network else set()


def public_route(route: Document | None) -> bool:
    """Every match of every rule names a path within PUBLIC_PATHS (a rule or match without a path takes in all)."""
    rules = [as_dict(r) for r in as_list(route.spec.get("rules"))] if route is not None else []
    path_matches = [as_dict(m) for r in rules for m in as_list(r.get("matches"))]
    if not rules or any(not as_list(r.get("matches")) for r in rules) or not path_matches:
        return False
    for match in path_matches:
        path = as_dict(match.get("path"))
        kind, value = path.get("type", "PathPrefix"), str(path.get("value", "/"))
        if not any((kind, value) == (pkind, pvalue) or (pkind == "PathPrefix" and value.startswith(pvalue))
                   for pkind, pvalue in PUBLIC_PATHS):
            return False
    return True


def network_sources(tree: Tree, policy: Document, kind: str, route: Document | None, targeted: list[ServerPorts],
                    scrape_ports: set[tuple[str, int]]) -> tuple[set[str], Problem | None]:
    """Who a policy admits whose only authentication is a NetworkAuthentication: `ingress` on the public entry's
    public route; elsewhere `*` when a network is any address (and that is a problem), else `network:<cidrs>`."""
    targets = sorted({t for server in targeted for t in server.targets if t not in scrape_ports})
    if kind == "HTTPRoute" and targets and all(app == PUBLIC_ENTRY for app, _ in targets) and public_route(route):
        return {NETWORK_ONLY}, None
    cidrs = set()
    for ref in as_list(policy.spec.get("requiredAuthenticationRefs")):
        if ref.get("kind") == "NetworkAuthentication":
            for auth in tree.find("NetworkAuthentication", ref.get("name", ""), ref.get("namespace") or policy.namespace):
                cidrs |= {str(as_dict(n).get("cidr")) for n in as_list(auth.spec.get("networks"))}
    if not cidrs & ANY_ADDRESS:
        return {f"network:{','.join(sorted(cidrs))}"}, None
    if not targets:
        return {"*"}, None  # only scraping/probe ports: outside the matrix
    reached = ", ".join(f"{app}:{port}" for app, port in targets)
    return {"*"}, policy.problem(
        f"grants {reached} to a NetworkAuthentication with {', '.join(sorted(cidrs & ANY_ADDRESS))}, i.e. to anyone "
        f"who can reach the pod: only {PUBLIC_ENTRY}'s public paths may be open to unauthenticated clients (the "
        "matrix row `ingress`); authorize the callers' ServiceAccounts with a MeshTLSAuthentication instead")


def default_deny(tree: Tree) -> bool:
    """The e-commerce namespace (or a patch of it) denies what no Server/policy allows."""
    for doc in tree.of_kind("Namespace") + tree.patches:
        if doc.kind == "Namespace" and str((doc.metadata.get("annotations") or {}).get(LINKERD_DEFAULT_POLICY)) == "deny":
            return True
    return False

"""Istio's resources, read from istio/ as they are, translated the way istiod translates them (the front end).

What istiod does is taken from its source (istio/istio, pilot/pkg/networking/core and pilot/pkg/security/authz):
- route/route.go: one Envoy route per `match` entry (named `<route>.<match>`), matched in the order written; a
  destination of weight 0 is dropped when there are others; no `timeout` means no timeout (0s), not Envoy's 15 s.
- route/retry/retry.go: no `retries` gives DefaultPolicy: 2 retries on
  connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes with status 503, other hosts first
  (previous_hosts, 5 host selection attempts); `attempts: 0` gives no retry policy at all; a `retryOn` replaces the
  conditions (numbers in it become retriable status codes) and `perTryTimeout` sets the per-try timeout.
- cluster_traffic_policy.go: connectionPool -> circuit-breaker thresholds (unset: unlimited), outlierDetection ->
  consecutive_5xx / gateway failures enforced at 100%, success-rate ejection off, minHealthPercent -> Envoy's
  healthy panic threshold (0 by default); the default load balancer is LEAST_REQUEST; subsets inherit the
  top-level trafficPolicy, replaced field group by field group by their own.
- security/authz/builder and model: DENY policies in one RBAC filter before the ALLOW ones; an ALLOW policy with no
  rules matches nothing (allow-nothing); once an ALLOW policy selects a workload, a request none matches is denied.
Everything outside the subset below is named in a warning (file, resource, field), never silently dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tools.manifestcheck.model import Document, as_dict, as_list, load_all, matches

from .intent import (AuthzPolicy, AuthzRule, Backend, BackendSet, ConnectionLimits, Ejection, Fault, InboundPort,
                     IngressServer, MeshIntent, Operation, Origin, Peer, RequestMatch, Retry, Route, ServiceTraffic,
                     StringMatch, Warning_)
from .topology import Instance, Topology

ROOT_NAMESPACE = "istio-system"
MESH_GATEWAY = "mesh"
# retry.go DefaultPolicy (Exclude503FromDefaultRetries is off by default).
DEFAULT_RETRY = Retry(attempts=2, per_try_timeout_s=None,
                      retry_on=("connect-failure", "refused-stream", "unavailable", "cancelled",
                                "retriable-status-codes"),
                      retriable_status_codes=(503,))
# Istio's retryOn names are Envoy's router conditions (x-envoy-retry-on and x-envoy-retry-grpc-on).
RETRY_CONDITIONS = {"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
                    "retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
                    "http3-post-connect-failure", "cancelled", "deadline-exceeded", "internal", "resource-exhausted",
                    "unavailable"}
SUPPORTED_KINDS = {"VirtualService", "DestinationRule", "Gateway", "PeerAuthentication", "AuthorizationPolicy"}
MTLS_MODES = {"STRICT", "PERMISSIVE", "DISABLE"}


class MeshConfigError(ValueError):
    """The configuration cannot run as written (the local mesh refuses to start or to apply it)."""


# -- the set of resources, as `kubectl apply -f` / `delete -f` leave it ----------------------------------------------
def overlay_documents(tree_docs: list[Document]) -> dict[tuple, Document]:
    """The steady state: every Istio object under istio/ outside scenarios/."""
    return {key(d): d for d in tree_docs
            if d.path.startswith("istio/") and not d.is_scenario and d.kind != "Kustomization"}


def key(doc: Document) -> tuple:
    return doc.kind, doc.namespace or "e-commerce", doc.name


def file_documents(path: Path, root: Path) -> list[Document]:
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = str(path)
    try:
        objects = load_all(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MeshConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - a YAML error of any kind is the user's to fix
        raise MeshConfigError(f"{rel}: does not parse as YAML: {' '.join(str(exc).split())}") from None
    docs = []
    for index, obj in enumerate(o for o in objects if o is not None):
        if not isinstance(obj, dict) or not obj.get("kind"):
            raise MeshConfigError(f"{rel}: document {index} is not a Kubernetes object")
        meta = as_dict(obj.get("metadata"))
        docs.append(Document(rel, index, obj, meta.get("namespace")))
    return docs


def apply_operations(state: dict[tuple, Document], operations: list[tuple[str, list[Document]]]) -> dict[tuple, Document]:
    state = dict(state)
    for verb, docs in operations:
        for doc in docs:
            if verb == "apply":
                state[key(doc)] = doc
            else:
                state.pop(key(doc), None)
    return state


# -- small readers ---------------------------------------------------------------------------------------------------
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")


def seconds(value, where: str) -> float:
    """A protobuf / Go duration string as Istio accepts it: 3s, 1.5s, 500ms, 1m30s."""
    text = str(value).strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise MeshConfigError(f"{where}: {value!r} is not a duration like 3s or 500ms")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * unit[u] for n, u in parts)


def string_match(raw, where: str) -> StringMatch:
    raw = as_dict(raw)
    kinds = [k for k in ("exact", "prefix", "regex") if k in raw]
    if len(kinds) != 1:
        raise MeshConfigError(f"{where}: a string match needs exactly one of exact, prefix, regex (got {sorted(raw)})")
    return StringMatch(kinds[0], str(raw[kinds[0]]))


def wildcard(value: str) -> StringMatch:
    """Istio's `*` patterns in policies (matcher/string.go): `*` any, `*x` suffix, `x*` prefix, else exact."""
    if value == "*":
        return StringMatch("present")
    if value.startswith("*"):
        return StringMatch("suffix", value[1:])
    if value.endswith("*"):
        return StringMatch("prefix", value[:-1])
    return StringMatch("exact", value)


@dataclass
class Reader:
    """Reads one resource's fields, recording every field it does not support."""

    doc: Document
    intent: MeshIntent

    @property
    def origin(self) -> Origin:
        return Origin(self.doc.path, self.doc.kind, self.doc.name)

    def where(self, field: str) -> str:
        return self.origin.at(field)

    def only(self, node, path: str, supported: set[str], why: str = "outside the local mesh's supported subset") -> dict:
        node = as_dict(node)
        for name in sorted(set(node) - supported):
            self.warn(f"{path}.{name}" if path else name, f"ignored: {why} (docs/local-mesh.md)")
        return node

    def warn(self, field: str, message: str) -> None:
        self.intent.warnings.append(Warning_(self.origin.at(), field, message))


# -- the translation -------------------------------------------------------------------------------------------------
def translate(state: dict[tuple, Document], topology: Topology) -> MeshIntent:
    intent = MeshIntent(mesh="istio")
    docs = sorted(state.values(), key=lambda d: (d.path, d.index))
    for doc in docs:
        if doc.kind not in SUPPORTED_KINDS and doc.group.endswith("istio.io"):
            Reader(doc, intent).warn("", f"kind {doc.kind} is not reproduced by the local mesh (docs/local-mesh.md)")
    rules = {d.spec.get("host"): d for d in docs if d.kind == "DestinationRule"}
    for service in topology.services:
        for port in service.ports:
            intent.backend_sets[(service.name, port.port)] = backend_sets(service.name, port.port, rules.get(service.name),
                                                                          intent)
    services = {s.name for s in topology.services}
    virtual_services = [d for d in docs if d.kind == "VirtualService"]
    for service in topology.services:
        for port in service.ports:
            vs = next((v for v in virtual_services if bound_to(v, MESH_GATEWAY)
                       and service.name in [host_name(h, v) for h in as_list(v.spec.get("hosts"))]), None)
            if port.protocol == "tcp":
                intent.traffic[(service.name, port.port)] = ServiceTraffic(service.name, port.port, "tcp", [])
                continue
            routes = (http_routes(vs, port.port, intent, topology, services) if vs is not None
                      else [default_route(service.name, port.port)])
            intent.traffic[(service.name, port.port)] = ServiceTraffic(service.name, port.port, "http", routes)
    intent.ingress = gateways(docs, virtual_services, intent, topology, services)
    peer_auth = [d for d in docs if d.kind == "PeerAuthentication"]
    authz = [d for d in docs if d.kind == "AuthorizationPolicy"]
    for doc in peer_auth + authz:
        check_selector(doc, intent)
    for instance in topology.instances:
        if instance.container_port is None:
            continue
        mode = mtls_mode(instance, peer_auth, intent)
        deny, allow = policies_for(instance, authz, intent)
        intent.inbound[instance.name] = [InboundPort(instance.container_port, instance.protocol, mode, deny, allow)]
    unique = {str(w): w for w in intent.warnings}  # a policy read once per workload warns once
    intent.warnings = list(unique.values())
    return intent


def bound_to(vs: Document, gateway: str) -> bool:
    names = [str(g) for g in as_list(vs.spec.get("gateways"))] or [MESH_GATEWAY]
    return any(g == gateway or g.endswith("/" + gateway) for g in names)


def host_name(host: str, doc: Document) -> str:
    """The Service a host names: `payment-service`, `payment-service.e-commerce`, or the full name."""
    parts = str(host).split(".")
    if len(parts) > 1 and parts[1] != (doc.namespace or "e-commerce"):
        return ""
    return parts[0]


def default_route(service: str, port: int) -> Route:
    """BuildDefaultHTTPOutboundRoute: a service without a VirtualService, all endpoints, default retries, no timeout."""
    return Route("default", [], [Backend(service, port)], None, DEFAULT_RETRY, None,
                 Origin("(none)", "default", service))


# -- VirtualService --------------------------------------------------------------------------------------------------
def http_routes(vs: Document, listen_port: int, intent: MeshIntent, topology: Topology, services: set[str]) -> list[Route]:
    reader = Reader(vs, intent)
    reader.only(vs.spec, "spec", {"hosts", "gateways", "http"},
                "only http routes are reproduced (tcp, tls, exportTo are not)")
    routes = []
    for i, raw in enumerate(as_list(vs.spec.get("http"))):
        path = f"spec.http[{i}]"
        raw = reader.only(raw, path, {"name", "match", "route", "retries", "timeout", "fault"})
        name = str(raw.get("name") or f"route-{i}")
        matches_ = []
        for m, match in enumerate(as_list(raw.get("match"))):
            match = reader.only(match, f"{path}.match[{m}]", {"name", "uri", "method", "headers", "ignoreUriCase", "port"})
            if "port" in match and int(match["port"]) != listen_port:
                continue
            matches_.append(RequestMatch(
                path=string_match(match["uri"], reader.where(f"{path}.match[{m}].uri")) if "uri" in match else None,
                method=string_match(match["method"], reader.where(f"{path}.match[{m}].method")) if "method" in match else None,
                headers=tuple(sorted((str(h).lower(), string_match(v, reader.where(f"{path}.match[{m}].headers.{h}")))
                                     for h, v in as_dict(match.get("headers")).items())),
                ignore_case=bool(match.get("ignoreUriCase")), name=str(match.get("name", ""))))
        if raw.get("match") and not matches_:
            continue  # every match names another port
        backends = destinations(reader, raw, path, listen_port, intent, topology, services)
        timeout = seconds(raw["timeout"], reader.where(f"{path}.timeout")) if "timeout" in raw else None
        routes.append(Route(name, matches_, backends, timeout or None, retry_policy(reader, raw, path),
                            fault(reader, raw.get("fault"), f"{path}.fault"), reader.origin))
        if not matches_:
            break  # a catch-all: istiod emits nothing after it
    return routes


def destinations(reader: Reader, raw: dict, path: str, listen_port: int, intent: MeshIntent, topology: Topology,
                 services: set[str]) -> list[Backend]:
    out = []
    entries = as_list(raw.get("route"))
    if not entries:
        raise MeshConfigError(f"{reader.where(path)}: a route without destinations (redirects and direct "
                              "responses are not supported locally)")
    for d, entry in enumerate(entries):
        entry = reader.only(entry, f"{path}.route[{d}]", {"destination", "weight"})
        dest = reader.only(entry.get("destination"), f"{path}.route[{d}].destination", {"host", "subset", "port"})
        service = host_name(str(dest.get("host", "")), reader.doc)
        if service not in services:
            raise MeshConfigError(f"{reader.where(f'{path}.route[{d}].destination.host')}: host {dest.get('host')!r} "
                                  f"is not a Service of kubernetes/ ({', '.join(sorted(services))})")
        port = int(as_dict(dest.get("port")).get("number") or 0) or only_port(topology, service) or listen_port
        subset = dest.get("subset")
        if subset is not None:
            defined = [s.subset for s in intent.backend_sets.get((service, port), []) if s.subset]
            if subset not in defined:
                raise MeshConfigError(
                    f"{reader.where(f'{path}.route[{d}].destination.subset')}: subset {subset!r} of host {service} is "
                    f"defined by no DestinationRule (defined: {', '.join(defined) or 'none'}); Istio would answer "
                    "503 for this route. Define the subset, or apply the DestinationRule first")
        out.append(Backend(service, port, subset, int(entry.get("weight", 0 if len(entries) > 1 else 1) or 0)))
    return out


def only_port(topology: Topology, service: str) -> int | None:
    ports = topology.service(service).ports
    return ports[0].port if len(ports) == 1 else None


def retry_policy(reader: Reader, raw: dict, path: str) -> Retry | None:
    if "retries" not in raw:
        return DEFAULT_RETRY
    retries = reader.only(raw["retries"], f"{path}.retries", {"attempts", "perTryTimeout", "retryOn"})
    attempts = int(retries.get("attempts", 0) or 0)
    if attempts <= 0:
        return None  # retry.go: attempts 0 disables retries
    retry_on, codes = DEFAULT_RETRY.retry_on, DEFAULT_RETRY.retriable_status_codes
    if retries.get("retryOn"):
        parts = [p.strip() for p in str(retries["retryOn"]).split(",") if p.strip()]
        codes = tuple(int(p) for p in parts if p.isdigit())
        retry_on = tuple(p for p in parts if not p.isdigit())
        for condition in retry_on:
            if condition not in RETRY_CONDITIONS:
                raise MeshConfigError(f"{reader.where(f'{path}.retries.retryOn')}: {condition!r} is not a retry "
                                      f"condition ({', '.join(sorted(RETRY_CONDITIONS))})")
        if codes and "retriable-status-codes" not in retry_on:
            retry_on += ("retriable-status-codes",)
    per_try = (seconds(retries["perTryTimeout"], reader.where(f"{path}.retries.perTryTimeout"))
               if "perTryTimeout" in retries else None)
    return Retry(attempts, per_try, retry_on, codes)


def percentage(node, default: float = 100.0) -> float:
    node = as_dict(node)
    return float(node.get("value", default)) if node else default


def fault(reader: Reader, raw, path: str) -> Fault | None:
    if raw is None:
        return None
    raw = reader.only(raw, path, {"delay", "abort"})
    delay = reader.only(raw.get("delay"), f"{path}.delay", {"fixedDelay", "percentage", "percent"})
    abort = reader.only(raw.get("abort"), f"{path}.abort", {"httpStatus", "percentage"})
    out = Fault()
    if delay:
        if "fixedDelay" not in delay:
            raise MeshConfigError(f"{reader.where(f'{path}.delay')}: only fixedDelay is supported (as in istiod)")
        pct = percentage(delay.get("percentage"), float(delay.get("percent", 100)))
        out = Fault(seconds(delay["fixedDelay"], reader.where(f"{path}.delay.fixedDelay")), pct)
    if abort:
        if "httpStatus" not in abort:
            raise MeshConfigError(f"{reader.where(f'{path}.abort')}: only httpStatus aborts are supported")
        out = Fault(out.delay_s, out.delay_percent, int(abort["httpStatus"]), percentage(abort.get("percentage")))
    return out if (out.delay_s is not None or out.abort_status is not None) else None


# -- DestinationRule -------------------------------------------------------------------------------------------------
def backend_sets(service: str, port: int, rule: Document | None, intent: MeshIntent) -> list[BackendSet]:
    if rule is None:
        return [BackendSet(service, port)]
    reader = Reader(rule, intent)
    spec = reader.only(rule.spec, "spec", {"host", "trafficPolicy", "subsets"})
    top = traffic_policy(reader, spec.get("trafficPolicy"), "spec.trafficPolicy")
    out = [BackendSet(service, port, None, {}, *top)]
    for s, subset in enumerate(as_list(spec.get("subsets"))):
        subset = reader.only(subset, f"spec.subsets[{s}]", {"name", "labels", "trafficPolicy"})
        own = traffic_policy(reader, subset.get("trafficPolicy"), f"spec.subsets[{s}].trafficPolicy")
        merged = tuple(own_part if subset.get("trafficPolicy", {}).get(field) is not None else top_part
                       for own_part, top_part, field in zip(own, top, ("loadBalancer", "connectionPool",
                                                                        "outlierDetection")))
        out.append(BackendSet(service, port, str(subset["name"]),
                              {str(k): str(v) for k, v in as_dict(subset.get("labels")).items()}, *merged))
    return out


def traffic_policy(reader: Reader, raw, path: str) -> tuple[str, ConnectionLimits, Ejection | None]:
    raw = as_dict(raw)
    if "tls" in raw:
        reader.warn(f"{path}.tls", "ignored: auto-mTLS decides the transport locally (in a cluster a tls block "
                                   "overrides it, and DISABLE breaks STRICT)")
    raw = reader.only({k: v for k, v in raw.items() if k != "tls"}, path,
                      {"loadBalancer", "connectionPool", "outlierDetection"})
    lb = reader.only(raw.get("loadBalancer"), f"{path}.loadBalancer", {"simple"})
    simple = str(lb.get("simple", "LEAST_REQUEST"))
    lb_policy = {"LEAST_CONN": "LEAST_REQUEST", "LEAST_REQUEST": "LEAST_REQUEST", "ROUND_ROBIN": "ROUND_ROBIN",
                 "RANDOM": "RANDOM", "UNSPECIFIED": "LEAST_REQUEST"}.get(simple)
    if lb_policy is None:
        reader.warn(f"{path}.loadBalancer.simple", f"{simple} is not supported locally; LEAST_REQUEST used")
        lb_policy = "LEAST_REQUEST"
    pool = reader.only(raw.get("connectionPool"), f"{path}.connectionPool", {"tcp", "http"})
    tcp = reader.only(pool.get("tcp"), f"{path}.connectionPool.tcp", {"maxConnections", "connectTimeout", "idleTimeout"})
    http = reader.only(pool.get("http"), f"{path}.connectionPool.http",
                       {"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries",
                        "idleTimeout"})

    def positive(node: dict, name: str) -> int | None:
        value = int(node.get(name, 0) or 0)
        return value if value > 0 else None  # cluster_traffic_policy.go: 0 means "unset"

    idle = http.get("idleTimeout", tcp.get("idleTimeout"))
    limits = ConnectionLimits(
        max_connections=positive(tcp, "maxConnections"),
        max_pending_requests=positive(http, "http1MaxPendingRequests"),
        max_requests=positive(http, "http2MaxRequests"), max_retries=positive(http, "maxRetries"),
        max_requests_per_connection=positive(http, "maxRequestsPerConnection"),
        connect_timeout_s=seconds(tcp["connectTimeout"], reader.where(f"{path}.connectionPool.tcp.connectTimeout"))
        if "connectTimeout" in tcp else None,
        idle_timeout_s=seconds(idle, reader.where(f"{path}.connectionPool.http.idleTimeout")) if idle else None)
    outlier = raw.get("outlierDetection")
    ejection = None
    if outlier is not None:
        od = reader.only(outlier, f"{path}.outlierDetection",
                         {"consecutive5xxErrors", "consecutiveGatewayErrors", "interval", "baseEjectionTime",
                          "maxEjectionPercent", "minHealthPercent"})
        ejection = Ejection(
            consecutive_5xx=int(od["consecutive5xxErrors"]) if "consecutive5xxErrors" in od else None,
            consecutive_gateway_errors=int(od["consecutiveGatewayErrors"]) if "consecutiveGatewayErrors" in od else None,
            interval_s=seconds(od["interval"], reader.where(f"{path}.outlierDetection.interval")) if "interval" in od else None,
            base_ejection_s=seconds(od["baseEjectionTime"], reader.where(f"{path}.outlierDetection.baseEjectionTime"))
            if "baseEjectionTime" in od else None,
            max_ejection_percent=int(od["maxEjectionPercent"]) if int(od.get("maxEjectionPercent", 0) or 0) > 0 else None,
            min_health_percent=int(od.get("minHealthPercent", 0) or 0))
    return lb_policy, limits, ejection


# -- Gateway ---------------------------------------------------------------------------------------------------------
def gateways(docs: list[Document], virtual_services: list[Document], intent: MeshIntent, topology: Topology,
             services: set[str]) -> list[IngressServer]:
    out = []
    for gw in (d for d in docs if d.kind == "Gateway"):
        reader = Reader(gw, intent)
        spec = reader.only(gw.spec, "spec", {"selector", "servers"})
        if not matches(as_dict(spec.get("selector")), topology.ingress.labels):
            reader.warn("spec.selector", f"selects no local gateway (the ingress has labels {topology.ingress.labels})")
            continue
        for s, server in enumerate(as_list(spec.get("servers"))):
            server = reader.only(server, f"spec.servers[{s}]", {"port", "hosts", "name"})
            port = as_dict(server.get("port"))
            protocol = str(port.get("protocol", "HTTP")).upper()
            if protocol not in ("HTTP", "HTTP2"):
                reader.warn(f"spec.servers[{s}].port.protocol", f"{protocol} servers are not reproduced locally")
                continue
            bound = [v for v in virtual_services if bound_to(v, gw.name)]
            routes = [r for v in bound for r in http_routes(v, int(port.get("number", 80)), intent, topology, services)]
            out.append(IngressServer(f"{gw.name}-{port.get('number')}", int(port.get("number", 80)), "http", routes,
                                     reader.origin))
    return out


# -- PeerAuthentication ----------------------------------------------------------------------------------------------
def check_selector(doc: Document, intent: MeshIntent) -> None:
    Reader(doc, intent).only(doc.spec.get("selector"), "spec.selector", {"matchLabels"})


def selects(doc: Document, instance: Instance) -> bool | None:
    """True/False for a workload selector; None when the resource has none (namespace- or mesh-wide)."""
    labels = as_dict(as_dict(doc.spec.get("selector")).get("matchLabels"))
    if not labels:
        return None
    return (doc.namespace or "e-commerce") == instance.namespace and matches(labels, instance.labels)


def mtls_mode(instance: Instance, docs: list[Document], intent: MeshIntent) -> str:
    """Workload selector beats namespace beats mesh-wide (the root namespace); port-level beats the workload's."""
    mode, rank = "PERMISSIVE", -1  # Istio's default
    for doc in docs:
        reader = Reader(doc, intent)
        spec = reader.only(doc.spec, "spec", {"selector", "mtls", "portLevelMtls"})
        selected = selects(doc, instance)
        ns = doc.namespace or "e-commerce"
        level = 2 if selected else (1 if selected is None and ns == instance.namespace else
                                    0 if selected is None and ns == ROOT_NAMESPACE else -1)
        if level < 0 or level < rank:
            continue
        own = str(as_dict(spec.get("mtls")).get("mode", "UNSET")).upper()
        port_mode = as_dict(as_dict(spec.get("portLevelMtls")).get(instance.container_port) or
                            as_dict(spec.get("portLevelMtls")).get(str(instance.container_port))).get("mode")
        if port_mode and level == 2:
            own = str(port_mode).upper()
        if own in MTLS_MODES:
            mode, rank = own, level
        elif own != "UNSET":
            reader.warn("spec.mtls.mode", f"{own} is not STRICT, PERMISSIVE or DISABLE")
    return mode


# -- AuthorizationPolicy ---------------------------------------------------------------------------------------------
def policies_for(instance: Instance, docs: list[Document], intent: MeshIntent) -> tuple[list[AuthzPolicy], list[AuthzPolicy] | None]:
    deny: list[AuthzPolicy] = []
    allow: list[AuthzPolicy] | None = None
    for doc in docs:
        ns = doc.namespace or "e-commerce"
        selected = selects(doc, instance)
        if selected is False or (selected is None and ns not in (instance.namespace, ROOT_NAMESPACE)):
            continue
        policy = authz_policy(doc, instance, intent)
        if policy is None:
            continue
        if policy.action == "DENY":
            deny.append(policy)
        else:
            allow = (allow or []) + [policy]
    return deny, allow


def authz_policy(doc: Document, instance: Instance, intent: MeshIntent) -> AuthzPolicy | None:
    reader = Reader(doc, intent)
    spec = reader.only(doc.spec, "spec", {"selector", "action", "rules"})
    action = str(spec.get("action", "ALLOW")).upper()
    if action not in ("ALLOW", "DENY"):
        reader.warn("spec.action", f"{action} policies are not reproduced locally; this policy is skipped")
        return None
    rules = []
    for r, raw in enumerate(as_list(spec.get("rules"))):
        path = f"spec.rules[{r}]"
        raw = as_dict(raw)
        unsupported = sorted(set(raw) - {"from", "to"})
        peers, operations, ok = [], [], True
        for name in unsupported:
            reader.warn(f"{path}.{name}", "not reproduced locally: " + (
                "this ALLOW rule is dropped (a smaller allow, as istiod does with a rule it cannot translate)"
                if action == "ALLOW" else "the condition is left out (a wider deny)"))
            ok = action != "ALLOW"
        for f, entry in enumerate(as_list(raw.get("from"))):
            source = as_dict(as_dict(entry).get("source"))
            extra = sorted(set(source) - {"principals", "notPrincipals", "namespaces", "notNamespaces"})
            for name in extra:
                reader.warn(f"{path}.from[{f}].source.{name}", "not reproduced locally (no IPs or JWTs here)")
                ok = ok and action != "ALLOW"
            peers.append(Peer(
                principals=tuple(wildcard("spiffe://" + p if p != "*" else p) for p in as_list(source.get("principals"))),
                not_principals=tuple(wildcard("spiffe://" + p if p != "*" else p) for p in as_list(source.get("notPrincipals"))),
                namespaces=tuple(wildcard(n) for n in as_list(source.get("namespaces"))),
                not_namespaces=tuple(wildcard(n) for n in as_list(source.get("notNamespaces")))))
        for t, entry in enumerate(as_list(raw.get("to"))):
            operation = as_dict(as_dict(entry).get("operation"))
            extra = sorted(set(operation) - {"methods", "notMethods", "paths", "notPaths", "ports", "notPorts"})
            for name in extra:
                reader.warn(f"{path}.to[{t}].operation.{name}", "not reproduced locally")
                ok = ok and action != "ALLOW"
            operations.append(Operation(
                methods=tuple(str(m) for m in as_list(operation.get("methods"))),
                not_methods=tuple(str(m) for m in as_list(operation.get("notMethods"))),
                paths=tuple(wildcard(str(p)) for p in as_list(operation.get("paths"))),
                not_paths=tuple(wildcard(str(p)) for p in as_list(operation.get("notPaths"))),
                ports=tuple(int(p) for p in as_list(operation.get("ports"))),
                not_ports=tuple(int(p) for p in as_list(operation.get("notPorts")))))
        if not ok:
            continue
        if instance.protocol == "tcp" and any(o.http_only for o in operations):
            # builder: an HTTP-only field makes an ALLOW rule unusable on a TCP port (it never matches)
            if action == "ALLOW":
                continue
            operations = [Operation(ports=o.ports, not_ports=o.not_ports) for o in operations]
        rules.append(AuthzRule(tuple(peers), tuple(operations)))
    ns = doc.namespace or "e-commerce"
    return AuthzPolicy(f"ns[{ns}]-policy[{doc.name}]", action, rules, reader.origin)

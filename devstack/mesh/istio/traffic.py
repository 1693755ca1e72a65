"""VirtualService, DestinationRule and Gateway -> routes and backend sets, as istiod's route/route.go,
route/retry/retry.go and cluster_traffic_policy.go translate them."""
from __future__ import annotations

from tools.manifestcheck.model import Document, as_dict, as_list, matches

from ..intent import (Backend, BackendSet, ConnectionLimits, Ejection, Fault, IngressServer, MeshIntent, Origin,
                      RequestMatch, Retry, Route)
from ..topology import Topology
from .common import MeshConfigError, Reader, seconds, string_match

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

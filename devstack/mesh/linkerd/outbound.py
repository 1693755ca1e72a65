"""Outbound: what a client's proxy does with calls to a Service, from HTTPRoutes whose parent is that Service
and from the Service's own annotations (retries, timeouts, failure accrual), the way Linkerd's policy controller
builds an OutboundPolicy and linkerd2-proxy applies it.

Sources (linkerd2 version-2.20 unless said):
- policy-controller/k8s/index/src/outbound/index/http.rs: convert_route, parse_http_retry (retry.linkerd.io/http:
  5xx, gateway-error, a code or a range; limit 1 unless given; timeout = per try), the route's
  timeout.linkerd.io/request before the rule's `timeouts.request`; convert_backend: a Service backend needs a port.
- policy-controller/grpc/src/outbound/http.rs: a rule without retry or timeouts inherits the parent Service's
  annotations; the backends of a rule form a RandomAvailable distribution; convert_retry: at most 64 KiB of a
  request body is kept for retries (max_request_bytes), backoff 25 ms to 250 ms.
- policy-controller/k8s/index/src/outbound/index.rs parse_accrual_config: failure accrual comes from the parent
  Service alone (mode consecutive: max-failures 7, min-penalty 1s, max-penalty 1m, jitter 0.5 by default) and
  applies to the endpoints of every backend of its routes.
- linkerd2-proxy linkerd/distribute/src/service/random.rs (RandomAvailableSelection): a backend whose balancer
  is not ready (every endpoint's breaker open) is skipped for that request, so its weight goes to the others.
- linkerd2-proxy linkerd/app/outbound/src/http/logical/policy/route/retry.rs: responses whose status is listed
  are retried, and so is a try cut by retry.linkerd.io/timeout; linkerd/http/retry/src/replay.rs: a body over
  max_request_bytes is sent once, never replayed.
"""
from __future__ import annotations

from tools.manifestcheck.model import Document, as_dict, as_list

from ..intent import (AVAILABLE, Backend, BackendSet, ConnectionLimits, Ejection, MeshIntent, Origin, Retry, Route,
                      ServiceTraffic)
from ..manifests import NAMESPACE, MeshConfigError, Reader
from ..topology import Topology
from .common import WHOLE, ranked, ratio, request_matches, seconds, whole

RETRY_BODY_LIMIT = 64 * 1024  # convert_retry: max_request_bytes
# linkerd2-proxy's HTTP/1 connection pools, inbound and outbound, close an idle connection after 3 s
# (linkerd/app/src/env.rs DEFAULT_*_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT): well below the apps' keep-alive.
POOL = ConnectionLimits(idle_timeout_s=3.0)
# Ports opaque to Linkerd unless a Service says otherwise (charts/linkerd-control-plane values.yaml opaquePorts).
DEFAULT_OPAQUE_PORTS = {25, 587, 3306, 4444, 5432, 6379, 9300, 11211}
ACCRUAL = "balancer.linkerd.io/failure-accrual"
TIMEOUT_ANNOTATIONS = {"timeout.linkerd.io/request", "timeout.linkerd.io/response", "timeout.linkerd.io/idle"}
ANNOTATIONS = {  # what this front end reads; other linkerd.io annotations of a Service or route are named
    "retry.linkerd.io/http", "retry.linkerd.io/limit", "retry.linkerd.io/timeout", "timeout.linkerd.io/request",
    "timeout.linkerd.io/idle", ACCRUAL, "balancer.linkerd.io/failure-accrual-consecutive-max-failures",
    "balancer.linkerd.io/failure-accrual-consecutive-min-penalty",
    "balancer.linkerd.io/failure-accrual-consecutive-max-penalty",
    "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio", "config.linkerd.io/opaque-ports",
}
NOT_REPRODUCED = {
    "timeout.linkerd.io/response": "a timeout per backend response is not reproduced (request and idle are)",
    "retry.linkerd.io/grpc": "gRPC retries are not reproduced (no gRPC here)",
}


def annotations(doc: Document) -> dict[str, str]:
    return {str(k): str(v) for k, v in as_dict(doc.metadata.get("annotations")).items()}


def check_annotations(reader: Reader, notes: dict[str, str]) -> None:
    for name in sorted(notes):
        if name in NOT_REPRODUCED:
            reader.warn(f"metadata.annotations.{name}", f"ignored: {NOT_REPRODUCED[name]} (docs/local-mesh.md)")
        elif ("linkerd.io/" in name) and name not in ANNOTATIONS:
            reader.warn(f"metadata.annotations.{name}", "ignored: not reproduced by the local mesh (docs/local-mesh.md)")


def opaque_ports(reader: Reader, service: Document) -> set[int]:
    text = annotations(service).get("config.linkerd.io/opaque-ports")
    if text is None:
        return set(DEFAULT_OPAQUE_PORTS)
    where = reader.where("metadata.annotations.config.linkerd.io/opaque-ports")
    ports: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        ports.update(range(whole(low, where, 1, 65535), whole(high or low, where, 1, 65535) + 1))
    return ports


def opaque_port(raw: dict, port: int, opaque: set[int]) -> bool:
    """A port's appProtocol wins over the opaque-ports list (outbound/index.rs: "appProtocol set on service port,
    ignoring opaque port setting"); core/src/outbound.rs AppProtocol: `http` and `kubernetes.io/h2c` are HTTP,
    every other value (`tcp`, `linkerd.io/opaque`, `grpc`, ...) is opaque."""
    app = str(raw.get("appProtocol") or "").lower()
    return app not in ("http", "kubernetes.io/h2c") if app else port in opaque


# -- retries, timeouts, failure accrual -----------------------------------------------------------------------------
def status_codes(reader: Reader, text: str, where: str) -> tuple[int, ...]:
    codes: set[int] = set()
    # parse_http_retry splits on "," alone: " 503" (a space after the comma) is invalid, and Linkerd drops the route
    for part in text.split(","):
        if part.lower() == "5xx":
            codes.update(range(500, 600))
        elif part.lower() == "gateway-error":
            codes.update(range(502, 505))
        else:
            low, dash, high = part.partition("-")
            bounds = (low, high) if dash else (low, low)
            first, last = (int(b) if WHOLE.fullmatch(b) else 0 for b in bounds)
            if not (100 <= first <= last < 600):
                raise MeshConfigError(f"{reader.where(where)}: invalid retry condition {part!r} (5xx, gateway-error, "
                                      "a status code or a range like 500-504, comma-separated without spaces)")
            codes.update(range(first, last + 1))
    return tuple(sorted(codes))


def retry_of(reader: Reader, notes: dict[str, str]) -> Retry | None:
    """parse_http_retry and convert_retry; None when no retry annotation is set."""
    where = "metadata.annotations."
    limit = whole(notes.get("retry.linkerd.io/limit", "0"), reader.where(where + "retry.linkerd.io/limit"), 0, 65535,
                  trim=False)  # parse::<u16>() on the value as it is
    timeout = seconds(notes["retry.linkerd.io/timeout"], reader.where(where + "retry.linkerd.io/timeout")) \
        if "retry.linkerd.io/timeout" in notes else 0.0
    codes = status_codes(reader, notes["retry.linkerd.io/http"], where + "retry.linkerd.io/http") \
        if "retry.linkerd.io/http" in notes else None
    if not limit and not timeout and codes is None:
        return None
    # A try cut by the retry timeout is retried by the proxy; Envoy retries a per-try timeout only with `reset`.
    conditions = ("retriable-status-codes",) + (("reset",) if timeout else ())
    return Retry(attempts=limit or 1, per_try_timeout_s=timeout or None, retry_on=conditions,
                 retriable_status_codes=codes or (), other_hosts=False, max_body_bytes=RETRY_BODY_LIMIT)


def timeouts_of(reader: Reader, notes: dict[str, str]) -> tuple[float | None, float | None]:
    """(request, idle) from timeout.linkerd.io/*; 0 means none."""
    def one(name: str) -> float | None:
        if name not in notes:
            return None
        return seconds(notes[name], reader.where(f"metadata.annotations.{name}")) or None
    return one("timeout.linkerd.io/request"), one("timeout.linkerd.io/idle")


def accrual_of(reader: Reader, notes: dict[str, str]) -> Ejection | None:
    mode = notes.get(ACCRUAL)
    if mode is None:
        return None
    where = "metadata.annotations.balancer.linkerd.io/failure-accrual"
    if mode != "consecutive":
        reader.warn(where, f"mode {mode!r} is not reproduced (only consecutive is): no failure accrual here")
        return None

    def get(suffix: str, default: str) -> str:
        return notes.get(f"{ACCRUAL}-consecutive-{suffix}", default)

    max_failures = whole(get("max-failures", "7"), reader.where(where + "-consecutive-max-failures"))
    low = seconds(get("min-penalty", "1s"), reader.where(where + "-consecutive-min-penalty"))
    high = seconds(get("max-penalty", "1m"), reader.where(where + "-consecutive-max-penalty"))
    jitter = ratio(get("jitter-ratio", "0.5"), reader.where(where + "-consecutive-jitter-ratio"))
    if low > high or high <= 0 or not 0 <= jitter <= 100:
        raise MeshConfigError(f"{reader.where(where)}: min-penalty must not exceed max-penalty, max-penalty must "
                              "not be zero and the jitter ratio must be 0 to 100 (Linkerd ignores this accrual)")
    # Each endpoint trips on its own (no cap on how many), the pool never ignores health, and the sweep that lets
    # an endpoint back in runs every second so the penalty is kept to within a second.
    return Ejection(consecutive_5xx=max_failures, interval_s=1.0, base_ejection_s=low, max_ejection_s=high,
                    ejection_jitter_s=min(low * jitter, high - low), max_ejection_percent=100, min_health_percent=0)


# -- routes ---------------------------------------------------------------------------------------------------------
def parents_of(route: Document, service: str, port: int) -> bool:
    for ref in as_list(route.spec.get("parentRefs")):
        ref = as_dict(ref)
        if (str(ref.get("kind", "")) == "Service" and str(ref.get("group", "core")) in ("core", "")
                and str(ref.get("name")) == service and ref.get("namespace", route.namespace or NAMESPACE) == NAMESPACE
                and int(ref.get("port") or port) == port):
            return True
    return False


def backend_refs(reader: Reader, rule: dict, where: str, services: dict[str, Document], parent: str,
                 port: int) -> list[Backend]:
    refs = as_list(rule.get("backendRefs"))
    if not refs:  # FirstAvailable over the parent itself
        return [Backend(parent, port)]
    out = []
    for b, ref in enumerate(refs):
        at = f"{where}.backendRefs[{b}]"
        ref = reader.only(ref, at, {"group", "kind", "name", "namespace", "port", "weight"})
        if str(ref.get("kind", "Service")) != "Service" or str(ref.get("group", "")) not in ("", "core"):
            raise MeshConfigError(f"{reader.where(at)}: backend {ref.get('group')}/{ref.get('kind')} is not a "
                                  "Service (Linkerd answers 500 for it)")
        name = str(ref.get("name", ""))
        if name not in services:
            raise MeshConfigError(f"{reader.where(at)}: Service {name!r} is defined neither in kubernetes/ nor in an "
                                  "applied file (Linkerd answers 500 'Service not found' for its share); apply it first")
        if not ref.get("port"):
            raise MeshConfigError(f"{reader.where(at)}: a Service backend needs a port (Linkerd answers 500 for it)")
        weight = whole(ref.get("weight", 1), reader.where(f"{at}.weight"), 0, 1000000)
        if weight > 0:
            out.append(Backend(name, whole(ref["port"], reader.where(f"{at}.port"), 1, 65535), None, weight))
    if not out:
        raise MeshConfigError(f"{reader.where(where)}: every backend has weight 0, so no request can be routed")
    return out


def rule_routes(route: Document, order: int, intent: MeshIntent, services: dict[str, Document], parent: Document,
                port: int) -> list[tuple[tuple, int, Route]]:
    reader = Reader(route, intent)
    reader.only(route.spec, "spec", {"parentRefs", "rules"}, "hostnames are not reproduced (every client names "
                                                            "the Service itself here)")
    notes = annotations(route)
    check_annotations(reader, notes)
    parent_reader = Reader(parent, intent)
    parent_notes = annotations(parent)
    retry = retry_of(reader, notes)
    request, idle = timeouts_of(reader, notes)
    out = []
    for r, rule in enumerate(as_list(route.spec.get("rules"))):
        where = f"spec.rules[{r}]"
        rule = reader.only(rule, where, {"matches", "backendRefs", "timeouts"})
        own_timeouts = reader.only(rule.get("timeouts"), f"{where}.timeouts", {"request"})
        rule_request = request
        if "timeout.linkerd.io/request" not in notes and own_timeouts.get("request") is not None:
            rule_request = seconds(own_timeouts["request"], reader.where(f"{where}.timeouts.request")) or None
        rule_idle = idle
        # Any timeout annotation of the route (even one not reproduced here, or 0) keeps the Service's away
        # (convert_outbound_route: only timeouts == Default take the Service's).
        if rule_request is None and rule_idle is None and not TIMEOUT_ANNOTATIONS & set(notes):
            rule_request, rule_idle = timeouts_of(parent_reader, parent_notes)  # the Service's defaults
        rule_retry = retry if retry is not None else retry_of(parent_reader, parent_notes)
        backends = backend_refs(reader, rule, where, services, parent.name, port)
        name = route.name if len(as_list(route.spec.get("rules"))) == 1 else f"{route.name}.rule{r}"
        for rank, match in request_matches(reader, rule, where):
            out.append((rank, order, Route(name, [match], backends, rule_request, rule_retry, None, reader.origin,
                                           idle_timeout_s=rule_idle)))
    return out


def default_route(parent: Document, port: int, intent: MeshIntent) -> Route:
    """default_outbound_service_route: no HTTPRoute for the parent, every request to it, its own annotations."""
    reader = Reader(parent, intent)
    notes = annotations(parent)
    request, idle = timeouts_of(reader, notes)
    return Route("default", [], [Backend(parent.name, port)], request, retry_of(reader, notes), None,
                 Origin(parent.path, "Service", parent.name), idle_timeout_s=idle)


def runs_here(entries: list[tuple[tuple, int, Route]], parent: str, topology: Topology) -> None:
    """A route of a Service the workloads call may send only to Services whose pods run here: the Deployments of
    kubernetes/ and of the mesh's scenarios/ (an applied file's own Deployment is not started)."""
    known = {s.name for s in topology.services}
    if parent not in known:
        return  # no local workload calls it, so nothing is built for it
    for _, _, route in entries:
        for backend in route.backends:
            if backend.service not in known:
                raise MeshConfigError(f"{route.origin.at('spec.rules')}: backend Service {backend.service!r} has no "
                                      "workload on the local mesh, which runs the Deployments of kubernetes/ and "
                                      "linkerd/scenarios/ only (in a cluster Linkerd would send to its pods)")


def service_traffic(services: dict[str, Document], routes: list[Document], topology: Topology,
                    intent: MeshIntent) -> None:
    for name, doc in services.items():
        reader = Reader(doc, intent)
        check_annotations(reader, annotations(doc))
        opaque = opaque_ports(reader, doc)
        for raw in as_list(doc.spec.get("ports")):
            port = int(as_dict(raw)["port"])
            intent.backend_sets[(name, port)] = [BackendSet(name, port, limits=POOL,
                                                            ejection=accrual_of(reader, annotations(doc)))]
            if opaque_port(as_dict(raw), port, opaque):
                intent.traffic[(name, port)] = ServiceTraffic(name, port, "tcp", [], AVAILABLE)
                continue
            attached = [(r, order) for order, r in enumerate(routes) if parents_of(r, name, port)]
            entries = [entry for r, order in attached for entry in rule_routes(r, order, intent, services, doc, port)]
            runs_here(entries, name, topology)
            traffic = ranked(entries) if entries else [default_route(doc, port, intent)]
            intent.traffic[(name, port)] = ServiceTraffic(name, port, "http", traffic, AVAILABLE)

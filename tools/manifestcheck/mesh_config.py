"""Mesh settings that the CRDs accept as free strings but the installed meshes read one way only.

Istio: the ingress Gateway's selector and the tracing provider must be the ones the demo profile installs.
Linkerd: the retry/timeout/failure-accrual annotations (plain metadata, so no schema sees a typo) must be keys and
values Linkerd 2.20's policy controller parses, on a Service it reads them from (failure accrual: the parent a client
calls, never a mere backendRef); a Server must not speak HTTP/2 to our HTTP/1 apps; the kubelet's probes must stay
authorized under `default-inbound-policy: deny`; annotations the 2.20 proxy ignores (native sidecars) are refused; a
deny-by-default namespace has the `prometheus-scrape` policy `linkerd check --proxy` looks for. Flagger: a Gateway API
Canary carries the timeout of the routes it replaces.
"""
from __future__ import annotations

import re

from .access_matrix import resolve_port
from .model import Document, PodTemplate, Problem, Tree, as_dict, as_list, dig
from .references import server_pods
from .routes import LINKERD_REQUEST_TIMEOUT, service_parents

# `istioctl install --set profile=demo` installs the ingress gateway with the pod label `istio: ingressgateway`
# and defines the extension provider `jaeger` (docs/upstream-facts.md, with the upstream files). Anything else
# selects no gateway / no tracer, silently. The one place for both expectations:
ISTIO_INGRESS_SELECTOR = {"istio": "ingressgateway"}
ISTIO_TRACING_PROVIDERS = {"jaeger"}

# Linkerd 2.20 (linkerd.io/2-edge reference: retries, timeouts, circuit-breaking; policy-controller
# k8s/index/src/outbound: parse_http_retry, parse_grpc_retry, parse_timeouts, parse_accrual_config, parse_duration).
# Durations are a whole number plus ms|s|m|h|d ("0" alone is allowed); no fractions.
DURATION = re.compile(r"^(?:0|\d+(?:ms|s|m|h|d))$")
HTTP_RETRY_CONDITION = re.compile(r"^(?:5xx|gateway-error|[1-5]\d\d(?:-[1-5]\d\d)?)$", re.I)
GRPC_RETRY_CONDITIONS = {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
LINKERD_ANNOTATION_PREFIXES = ("retry.linkerd.io/", "timeout.linkerd.io/", "balancer.linkerd.io/failure-accrual")
ROUTE_KINDS = {"Service", "HTTPRoute", "GRPCRoute"}  # where Linkerd reads retry/timeout annotations


def is_duration(value: str) -> bool:
    return bool(DURATION.match(value))


def is_int(value: str, low: int, high: int) -> bool:
    return value.isdigit() and low <= int(value) <= high


def is_ratio(value: str) -> bool:
    try:
        return 0.0 <= float(value) <= 100.0
    except ValueError:
        return False


# key -> (kinds it is read on, value test, what the value must look like)
LINKERD_ANNOTATIONS = {
    "retry.linkerd.io/http": ({"Service", "HTTPRoute"},
                              lambda v: all(HTTP_RETRY_CONDITION.match(c) for c in v.split(",")),
                              "comma-separated 5xx, gateway-error, a status code or a range like 500-504"),
    "retry.linkerd.io/grpc": ({"Service", "GRPCRoute"},
                              lambda v: all(c.lower() in GRPC_RETRY_CONDITIONS for c in v.split(",")),
                              f"comma-separated {', '.join(sorted(GRPC_RETRY_CONDITIONS))}"),
    "retry.linkerd.io/limit": (ROUTE_KINDS, lambda v: is_int(v, 0, 65535), "an integer (retries per request)"),
    "retry.linkerd.io/timeout": (ROUTE_KINDS, is_duration, "a duration like 500ms or 3s"),
    "timeout.linkerd.io/request": (ROUTE_KINDS, is_duration, "a duration like 500ms or 3s"),
    "timeout.linkerd.io/response": (ROUTE_KINDS, is_duration, "a duration like 500ms or 3s"),
    "timeout.linkerd.io/idle": (ROUTE_KINDS, is_duration, "a duration like 500ms or 3s"),
    "balancer.linkerd.io/failure-accrual": ({"Service"}, lambda v: v == "consecutive", "consecutive"),
    "balancer.linkerd.io/failure-accrual-consecutive-max-failures": ({"Service"}, lambda v: is_int(v, 0, 2**32 - 1), "an integer"),
    "balancer.linkerd.io/failure-accrual-consecutive-min-penalty": ({"Service"}, is_duration, "a duration like 1s"),
    "balancer.linkerd.io/failure-accrual-consecutive-max-penalty": ({"Service"}, is_duration, "a duration like 1m"),
    "balancer.linkerd.io/failure-accrual-consecutive-jitter-ratio": ({"Service"}, is_ratio, "a number from 0 to 100"),
}
# Our apps are gunicorn HTTP/1.1 servers: a Server that declares HTTP/2 or gRPC makes the proxy speak HTTP/2 to them
# (what broke the seed's probes; docs/upstream-facts.md). Leave proxyProtocol unset, HTTP/1, or opaque for Redis.
HTTP2_PROTOCOLS = {"HTTP/2", "gRPC"}
# Linkerd 2.20 injects its proxy as a native sidecar (charts/linkerd-control-plane/values.yaml proxy.nativeSidecar:
# true); the proxy template then adds no preStop, so this annotation does nothing (charts/partials/_proxy.tpl).
IGNORED_WITH_NATIVE_SIDECARS = {"config.alpha.linkerd.io/proxy-wait-before-exit-seconds"}
# linkerd viz's healthcheck (viz/pkg/healthcheck/healthcheck.go, checkPromAuthorized) looks for this name.
PROMETHEUS_SCRAPE_POLICY = "prometheus-scrape"
ACCRUAL = "balancer.linkerd.io/failure-accrual"


def check(tree: Tree) -> list[Problem]:
    problems: list[Problem] = []
    for gateway in tree.of_kind("Gateway", group="networking.istio.io"):
        selector = as_dict(gateway.spec.get("selector"))
        if selector != ISTIO_INGRESS_SELECTOR:
            problems.append(gateway.problem(
                f"selector {selector} is not {ISTIO_INGRESS_SELECTOR}, the ingress gateway of Istio's demo profile: "
                "no gateway pod would serve it"))
    for telemetry in tree.of_kind("Telemetry", group="telemetry.istio.io"):
        for t, tracing in enumerate(as_list(telemetry.spec.get("tracing"))):
            for provider in as_list(as_dict(tracing).get("providers")):
                name = as_dict(provider).get("name")
                if name not in ISTIO_TRACING_PROVIDERS:
                    problems.append(telemetry.problem(
                        f"tracing[{t}] provider {name!r} is not one the demo profile defines "
                        f"({', '.join(sorted(ISTIO_TRACING_PROVIDERS))}): no span would be sent"))
    for doc in tree.docs + tree.patches:  # kustomize patches add annotations too (linkerd/patches/failure-accrual.yaml)
        problems.extend(linkerd_annotations(doc))
        template = doc.pod_template()
        if template is not None:
            pod_meta = as_dict(template.get("metadata"))
            problems.extend(linkerd_annotations(doc, as_dict(pod_meta.get("annotations")), "pod template "))
    problems.extend(accrual_on_backends_only(tree))
    problems.extend(native_sidecar_annotations(tree))
    problems.extend(prometheus_scrape_policy(tree))
    problems.extend(flagger_timeouts(tree))
    for server in tree.of_kind("Server", group="policy.linkerd.io"):
        protocol = server.spec.get("proxyProtocol")
        if protocol in HTTP2_PROTOCOLS and server_pods(tree, server):
            problems.append(server.problem(
                f"proxyProtocol {protocol} in front of our HTTP/1 apps (gunicorn): the proxy would speak HTTP/2 to "
                "them and break probes and calls; leave it unset or HTTP/1"))
        problems.extend(linkerd_probes_authorized(tree, server))
    return problems


def probe_paths(pod: PodTemplate, port: int) -> list[str]:
    """The paths of the pod's httpGet probes on `port` (named ports resolved, as Linkerd's policy controller does)."""
    paths = []
    for container in pod.containers:
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = as_dict(dig(container, probe_name, "httpGet"))
            if probe and resolve_port(pod, probe.get("port")) == port:
                paths.append(str(probe.get("path", "/")).split("?", 1)[0])
    return paths


def route_match(route: Document, path: str) -> tuple[int, int] | None:
    """How specifically an HTTPRoute matches GET `path` (Exact beats the longest PathPrefix), None if it does not."""
    best = None
    for rule in as_list(route.spec.get("rules")):
        for match in as_list(as_dict(rule).get("matches")) or [{}]:
            match = as_dict(match)
            if match.get("method") not in (None, "GET"):
                continue
            kind, value = dig(match, "path", "type", default="PathPrefix"), str(dig(match, "path", "value", default="/"))
            if kind == "Exact":
                hit = (2, len(value)) if value == path else None
            else:  # PathPrefix matches whole segments: /admin takes /admin and /admin/x, not /administrator
                prefix = value.rstrip("/")
                hit = (1, len(value)) if path == prefix or path.startswith(prefix + "/") else None
            if hit and (best is None or hit > best):
                best = hit
    return best


def linkerd_probes_authorized(tree: Tree, server: Document) -> list[Problem]:
    """Linkerd authorizes a pod's probes by itself only on a port with no Server, or with a Server without routes
    (linkerd.io features/server-policy, "Default authorizations"). Once routes are attached, the route that wins for
    each probe path must be authorized for a NetworkAuthentication, or the kubelet gets 403 and restarts the pod."""
    routes = [r for r in tree.of_kind("HTTPRoute") if r.namespace == server.namespace and any(
        as_dict(p).get("kind") == "Server" and as_dict(p).get("name") == server.name
        for p in as_list(r.spec.get("parentRefs")))]
    if not routes:
        return []
    policies = [p for p in tree.of_kind("AuthorizationPolicy", group="policy.linkerd.io") if p.namespace == server.namespace]
    problems = []
    for pod in server_pods(tree, server):
        port = resolve_port(pod, server.spec.get("port"))
        for path in probe_paths(pod, port) if port is not None else []:
            scored = [(route_match(r, path), r.name) for r in routes]
            winner = max((item for item in scored if item[0]), default=None)
            open_to_kubelet = winner is not None and any(
                dig(p.spec, "targetRef", "kind") == "HTTPRoute" and dig(p.spec, "targetRef", "name") == winner[1]
                and any(as_dict(ref).get("kind") == "NetworkAuthentication"
                        for ref in as_list(p.spec.get("requiredAuthenticationRefs")))
                for p in policies)
            if not open_to_kubelet:
                problems.append(server.problem(
                    f"{pod.doc.kind}/{pod.doc.name} is probed at {path} on port {port}, which this Server selects and "
                    "routes; no route there is authorized for a NetworkAuthentication, so the kubelet's probes are "
                    "denied. Add a probe route with such a policy, or probe a port no Server selects"))
    return problems


def linkerd_annotations(doc: Document, annotations: dict | None = None, where: str = "") -> list[Problem]:
    annotations = (doc.metadata.get("annotations") or {}) if annotations is None else annotations
    problems = []
    for key, value in as_dict(annotations).items():
        if not str(key).startswith(LINKERD_ANNOTATION_PREFIXES):
            continue
        known = LINKERD_ANNOTATIONS.get(key)
        if known is None:
            problems.append(doc.problem(
                f"{where}annotation {key} is not one Linkerd 2.20 reads (known: {', '.join(sorted(LINKERD_ANNOTATIONS))}); "
                "a misspelled annotation is ignored without a word"))
            continue
        kinds, valid, form = known
        if where or doc.kind not in kinds:
            problems.append(doc.problem(f"{where}annotation {key} is read only on {', '.join(sorted(kinds))}, not here"))
        elif doc.kind != "Service" and not service_parents(doc):
            problems.append(doc.problem(f"annotation {key} is read only on routes whose parent is a Service (outbound "
                                        "routes); this one is attached to a Server, so it is ignored"))
        elif not valid(str(value).strip()):
            problems.append(doc.problem(f"annotation {key}: {value!r} is not {form}"))
    accrual = as_dict(annotations)
    if not where and accrual.get("balancer.linkerd.io/failure-accrual") == "consecutive":
        problems.extend(penalty_order(doc, accrual))
    return problems


def seconds(duration: str) -> float | None:
    m = re.match(r"^(\d+)(ms|s|m|h|d)?$", duration.strip())
    if not m:
        return None
    return int(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 0}[m[2]]


def penalty_order(doc: Document, annotations: dict) -> list[Problem]:
    """Linkerd rejects the whole failure-accrual config when min-penalty > max-penalty or max-penalty is 0."""
    prefix = "balancer.linkerd.io/failure-accrual-consecutive-"
    low = seconds(str(annotations.get(prefix + "min-penalty", "1s")))
    high = seconds(str(annotations.get(prefix + "max-penalty", "1m")))
    if low is None or high is None:
        return []  # the value check above reports it
    if high == 0 or low > high:
        return [doc.problem(f"failure accrual: min-penalty {low:g}s must be at most max-penalty {high:g}s, and "
                            "max-penalty above 0 (Linkerd drops the whole circuit breaker otherwise)")]
    return []


def service_roles(tree: Tree) -> tuple[set[str], set[str]]:
    """(Services some HTTPRoute attaches to, Services only named as backendRefs of a route with another parent)."""
    parents, backends = set(), set()
    for route in tree.of_kind("HTTPRoute", "GRPCRoute", scenarios=False):
        mine = {as_dict(p).get("name") for p in service_parents(route)}
        parents |= mine
        for rule in as_list(route.spec.get("rules")):
            for ref in as_list(as_dict(rule).get("backendRefs")):
                name = as_dict(ref).get("name")
                if as_dict(ref).get("kind", "Service") == "Service" and name not in mine:
                    backends.add(name)
    return parents, backends - parents


def accrual_on_backends_only(tree: Tree) -> list[Problem]:
    """The policy controller takes failure accrual from the parent Service's annotations (policy-controller outbound
    index: the accrual goes with the parent's protocol config); on a Service that is only a backendRef it does nothing."""
    _, backends_only = service_roles(tree)
    return [doc.problem(f"{ACCRUAL} on a Service that is only a backendRef of another Service's routes: Linkerd reads "
                        "failure accrual from the parent Service the client calls, so this does nothing; put it on the parent")
            for doc in tree.docs + tree.patches
            if doc.kind == "Service" and doc.name in backends_only and ACCRUAL in as_dict(doc.metadata.get("annotations"))]


def native_sidecar_annotations(tree: Tree) -> list[Problem]:
    problems = []
    for doc in tree.docs + tree.patches:
        template = doc.pod_template()
        found = dict(as_dict(doc.metadata.get("annotations")))
        if template is not None:
            found.update(as_dict(dig(template, "metadata", "annotations", default={})))
        for key in sorted(IGNORED_WITH_NATIVE_SIDECARS & set(found)):
            problems.append(doc.problem(f"annotation {key} is ignored by Linkerd 2.20, which injects its proxy as a "
                                        "native sidecar (stopped only after the app has exited); remove it"))
    return problems


def deny_namespaces(tree: Tree) -> set[str]:
    return {d.name for d in tree.docs + tree.patches if d.kind == "Namespace"
            and as_dict(d.metadata.get("annotations")).get("config.linkerd.io/default-inbound-policy") == "deny"}


def prometheus_scrape_policy(tree: Tree) -> list[Problem]:
    policies = {(d.namespace, d.name) for d in tree.of_kind("AuthorizationPolicy", group="policy.linkerd.io",
                                                            scenarios=False)}
    return [Problem("linkerd/", message=f"namespace {ns} denies by default but has no AuthorizationPolicy named "
                                        f"{PROMETHEUS_SCRAPE_POLICY}: `linkerd check --proxy` looks for that name and "
                                        "warns on every pod otherwise; name the scrape policy so")
            for ns in sorted(deny_namespaces(tree)) if (ns, PROMETHEUS_SCRAPE_POLICY) not in policies]


def flagger_timeouts(tree: Tree) -> list[Problem]:
    """Flagger's Gateway API router writes the HTTPRoute itself, replacing ours, and sets rules[].timeouts only from
    spec.service.timeout (flagger v1.44.0 pkg/router/gateway_api.go, makeHTTPRouteTimeouts)."""
    problems = []
    for canary in tree.of_kind("Canary", group="flagger.app"):
        service = as_dict(canary.spec.get("service"))
        if not service.get("gatewayRefs"):
            continue
        replaced = {as_dict(r.metadata.get("annotations")).get(LINKERD_REQUEST_TIMEOUT)
                    for r in tree.of_kind("HTTPRoute", scenarios=False)
                    if any(as_dict(p).get("name") == service.get("name") for p in service_parents(r))} - {None}
        timeout = service.get("timeout")
        if timeout is None:
            problems.append(canary.problem(
                "spec.service.timeout is not set: the HTTPRoute Flagger generates replaces ours and carries a timeout "
                f"only from there, so the Service's {', '.join(sorted(replaced)) or 'request'} timeout would be lost"))
        elif replaced and str(timeout) not in replaced:
            problems.append(canary.problem(
                f"spec.service.timeout {timeout!r} differs from the {LINKERD_REQUEST_TIMEOUT} of the routes it "
                f"replaces ({', '.join(sorted(replaced))})"))
    return problems

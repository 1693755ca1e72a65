"""The mesh-neutral intent: what a mesh's configuration asks of the proxies, with no Istio or Linkerd names left.

A front end (istio/, linkerd/) reads a mesh's resources and fills this model; the Envoy back end (envoy.py) turns
it, with the topology, into each proxy's configuration. Ports here are the cluster's container ports (what a
policy or a route names); the back end maps them onto the local listeners. Where the two meshes mean different
things by the same words (a weighted split, a denial), the model names both behaviours and each front end picks.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Origin:
    """Where a piece of intent came from: reported in warnings and refusals as `file kind/name field`."""

    path: str
    kind: str
    name: str

    def at(self, where: str = "") -> str:
        return f"{self.path} {self.kind}/{self.name}" + (f" {where}" if where else "")


@dataclass(frozen=True)
class StringMatch:
    kind: str  # exact | prefix | suffix | regex | present | path_prefix (whole segments: /a matches /a, /a/b, not /ab)
    value: str = ""


@dataclass(frozen=True)
class RequestMatch:
    """All of its conditions must hold; a route with no RequestMatch takes every request."""

    path: StringMatch | None = None
    method: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()
    query: tuple[tuple[str, StringMatch], ...] = ()
    ignore_case: bool = False
    name: str = ""  # the Envoy route is called <route>.<name> when the match has one


@dataclass(frozen=True)
class Backend:
    """One weighted destination: a service port, optionally narrowed to a named subset of its endpoints."""

    service: str
    port: int
    subset: str | None = None
    weight: int = 1


@dataclass(frozen=True)
class Retry:
    attempts: int  # retries after the first try
    per_try_timeout_s: float | None
    retry_on: tuple[str, ...]  # Envoy retry conditions
    retriable_status_codes: tuple[int, ...] = ()
    other_hosts: bool = True  # prefer endpoints not tried yet
    max_body_bytes: int | None = None  # a request with a larger body is never retried (Linkerd's 64 KiB rule)


@dataclass(frozen=True)
class Fault:
    delay_s: float | None = None
    delay_percent: float = 0.0
    abort_status: int | None = None
    abort_percent: float = 0.0


@dataclass
class Route:
    name: str
    matches: list[RequestMatch]  # any of them (empty: every request)
    backends: list[Backend]
    timeout_s: float | None  # None: no request timeout
    retry: Retry | None  # None: never retried
    fault: Fault | None
    origin: Origin
    idle_timeout_s: float | None = None  # a stream idle this long is reset (None: the proxy's default)


@dataclass(frozen=True)
class ConnectionLimits:
    """Circuit-breaker thresholds of a client's pool towards one backend set (None: the proxy's unlimited default)."""

    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None
    max_retries: int | None = None
    max_requests_per_connection: int | None = None
    connect_timeout_s: float | None = None
    idle_timeout_s: float | None = None


@dataclass(frozen=True)
class Ejection:
    """Passive health checking: endpoints that fail in a row leave the pool for a while."""

    consecutive_5xx: int | None = None
    consecutive_gateway_errors: int | None = None
    interval_s: float | None = None
    base_ejection_s: float | None = None
    max_ejection_s: float | None = None  # each repeated ejection lasts longer, up to this (None: the proxy's cap)
    ejection_jitter_s: float | None = None  # up to this much is added at random to an ejection
    max_ejection_percent: int | None = None
    min_health_percent: int = 0  # below this share of healthy endpoints the pool ignores health (Envoy's panic)


@dataclass
class BackendSet:
    """The endpoints of a service port a client balances over (one Envoy cluster)."""

    service: str
    port: int
    subset: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # on top of the service's selector
    lb_policy: str = "LEAST_REQUEST"
    limits: ConnectionLimits = ConnectionLimits()
    ejection: Ejection | None = None


# How a route's weighted backends share its requests when one of them has no endpoint left to take them:
WEIGHTED = "weighted"  # each keeps its share and fails it fast (Istio: one Envoy cluster per destination)
AVAILABLE = "available"  # its share goes to the backends that can take it (Linkerd: RandomAvailable over balancers)


@dataclass
class ServiceTraffic:
    """What a client's proxy does with calls to one service port (tcp: no routes, the whole port goes to it)."""

    service: str
    port: int
    protocol: str  # http | tcp
    routes: list[Route]
    distribution: str = WEIGHTED  # with AVAILABLE the backends are balanced under the parent's BackendSet

@dataclass(frozen=True)
class Peer:
    """Who is calling: one `from` entry. Empty tuples mean any; principals are full SPIFFE ids or patterns."""

    principals: tuple[StringMatch, ...] = ()
    not_principals: tuple[StringMatch, ...] = ()
    namespaces: tuple[StringMatch, ...] = ()
    not_namespaces: tuple[StringMatch, ...] = ()
    ip_blocks: tuple[str, ...] = ()  # CIDRs of the client's address (any: empty)
    authenticated: bool = False  # a mesh identity is required, whichever it is


@dataclass(frozen=True)
class Operation:
    """What is asked: one `to` entry (ports are container ports)."""

    methods: tuple[str, ...] = ()
    not_methods: tuple[str, ...] = ()
    paths: tuple[StringMatch, ...] = ()
    not_paths: tuple[StringMatch, ...] = ()
    ports: tuple[int, ...] = ()
    not_ports: tuple[int, ...] = ()

    @property
    def http_only(self) -> bool:
        return bool(self.methods or self.not_methods or self.paths or self.not_paths)


@dataclass(frozen=True)
class AuthzRule:
    peers: tuple[Peer, ...] = ()  # any of them (empty: anyone)
    operations: tuple[Operation, ...] = ()  # any of them (empty: anything)


@dataclass
class AuthzPolicy:
    name: str  # e.g. ns[e-commerce]-policy[payment-service]
    action: str  # ALLOW | DENY
    rules: list[AuthzRule]  # no rule: matches nothing
    origin: Origin


@dataclass
class InboundRoute:
    """A class of requests to a port with policies of its own (Linkerd's Server routes): a request that matches
    one is allowed when one of `allow` matches it (none: refused); one that matches no route is not found."""

    name: str
    matches: list[RequestMatch]  # in precedence order, the front end's job
    allow: list[AuthzPolicy]
    origin: Origin


@dataclass
class InboundPort:
    """How one workload port accepts calls: the transport it requires and who may call."""

    port: int
    protocol: str  # http | tcp
    mtls: str  # STRICT | PERMISSIVE | DISABLE
    deny: list[AuthzPolicy] = field(default_factory=list)  # evaluated first
    allow: list[AuthzPolicy] | None = None  # None: no ALLOW policy selects this workload (everything allowed)
    routes: list[InboundRoute] | None = None  # http only: per-route policies replace `allow` (None: one for all)


@dataclass
class IngressServer:
    """An edge listener: the routes bound to it and where they go (tcp: the first route's backend takes every
    connection, as a LoadBalancer Service or a port-forward would)."""

    name: str
    port: int  # the server's port in the cluster (e.g. 80)
    protocol: str  # http | tcp
    routes: list[Route]
    origin: Origin


@dataclass
class Warning_:
    """A field outside the supported subset: reported, never silently ignored."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}{' ' + self.field if self.field else ''}: {self.message}"


@dataclass
class MeshIntent:
    mesh: str
    traffic: dict[tuple[str, int], ServiceTraffic] = field(default_factory=dict)
    inbound: dict[str, list[InboundPort]] = field(default_factory=dict)  # instance name -> its ports
    backend_sets: dict[tuple[str, int], list[BackendSet]] = field(default_factory=dict)  # per service port
    ingress: list[IngressServer] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    deployed: set[str] | None = None  # the instances that run (None: every instance of the topology)

    def runs(self, instance: str) -> bool:
        return self.deployed is None or instance in self.deployed

"""The mesh-neutral intent: what a mesh's configuration asks of the proxies, with no Istio or Linkerd names left.

A front end (istio.py today; a Linkerd one can sit beside it) reads a mesh's resources and fills this model; the
Envoy back end (envoy.py) turns it, with the topology, into each proxy's configuration. Ports here are the
cluster's container ports (what a policy or a route names); the back end maps them onto the local listeners.
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
    kind: str  # exact | prefix | suffix | regex | present
    value: str = ""


@dataclass(frozen=True)
class RequestMatch:
    """All of its conditions must hold; a route with no RequestMatch takes every request."""

    path: StringMatch | None = None
    method: StringMatch | None = None
    headers: tuple[tuple[str, StringMatch], ...] = ()
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


@dataclass
class ServiceTraffic:
    """What a client's proxy does with calls to one service port (tcp: no routes, the whole port goes to it)."""

    service: str
    port: int
    protocol: str  # http | tcp
    routes: list[Route]


@dataclass(frozen=True)
class Peer:
    """Who is calling: one `from` entry. Empty tuples mean any; principals are full SPIFFE ids or patterns."""

    principals: tuple[StringMatch, ...] = ()
    not_principals: tuple[StringMatch, ...] = ()
    namespaces: tuple[StringMatch, ...] = ()
    not_namespaces: tuple[StringMatch, ...] = ()


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
class InboundPort:
    """How one workload port accepts calls: the transport it requires and who may call."""

    port: int
    protocol: str  # http | tcp
    mtls: str  # STRICT | PERMISSIVE | DISABLE
    deny: list[AuthzPolicy] = field(default_factory=list)  # evaluated first
    allow: list[AuthzPolicy] | None = None  # None: no ALLOW policy selects this workload (everything allowed)


@dataclass
class IngressServer:
    """An edge listener: the routes bound to it and where they go."""

    name: str
    port: int  # the server's port in the cluster (e.g. 80)
    protocol: str
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

"""The Envoy back end: the intent and the topology become each proxy's listeners, routes and clusters.

The shapes follow what istiod sends a sidecar (names included, so `/config_dump` and `/stats` read like a
cluster's): outbound clusters `outbound|<port>|<subset>|<host>`, inbound clusters `inbound|<port>||`, auto-mTLS
through `transport_socket_matches` on the endpoints' `tlsMode: istio`, the client checking the server's SPIFFE id
and the server accepting any certificate of the trust domain, RBAC filters named `istio.authorization.deny` and
`istio.authorization.allow` in that order. Where the local mesh must differ it says so:
- Envoy's own RBAC matches the peer certificate (`authenticated.principal_name`); istiod's proxies compare a
  filter-state key that only Istio's Envoy build sets, with the same value.
- no xDS server: every proxy reads LDS and CDS from files (one RDS file per route table), replaced by an atomic
  rename, which Envoy watches (config.core.v3.PathConfigSource).
- listeners bind loopback ports of their own (no iptables capture), one outbound listener per neighbour.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tools.manifestcheck.model import matches

from .ca import Identity, TRUST_DOMAIN, spiffe_id
from .envoy_policy import (T, address, cluster_name, duration, inbound_cluster_name, outlier_detection, rbac_filters,
                           route_config, route_config_name, typed)
from .intent import Backend, BackendSet, ConnectionLimits, InboundPort, IngressServer, MeshIntent
from .topology import Instance, Topology, fqdn

MAX = 4294967295  # istiod's default circuit-breaker thresholds: no limit (cluster_traffic_policy.go)
DEFAULT_CONNECT_TIMEOUT_S = 10.0  # MeshConfig.connectTimeout default
TLS_MATCH = {"tlsMode": "istio"}
ACCESS_LOG_FIELDS = {
    "start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%", "response_flags": "%RESPONSE_FLAGS%",
    "response_code_details": "%RESPONSE_CODE_DETAILS%", "route_name": "%ROUTE_NAME%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%", "upstream_host": "%UPSTREAM_HOST%",
    "attempts": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%", "duration_ms": "%DURATION%",
    "request_id": "%REQ(X-REQUEST-ID)%", "peer_identity": "%DOWNSTREAM_PEER_URI_SAN%", "x_user": "%REQ(X-USER)%",
}


@dataclass
class ProxyFiles:
    """Everything one Envoy reads: the bootstrap, and the resources its files deliver."""

    name: str
    folder: Path
    bootstrap: dict
    listeners: list[dict] = field(default_factory=list)
    clusters: list[dict] = field(default_factory=list)
    routes: dict[str, dict] = field(default_factory=dict)  # route config name -> RouteConfiguration

    @property
    def lds_path(self) -> Path:
        return self.folder / "lds.json"

    @property
    def cds_path(self) -> Path:
        return self.folder / "cds.json"

    def rds_path(self, name: str) -> Path:
        return self.folder / f"rds-{hashlib.sha1(name.encode()).hexdigest()[:10]}.json"

    def static_bootstrap(self) -> dict:
        """The same resources inline (routes included), for `envoy --mode validate`."""
        listeners = json.loads(json.dumps(self.listeners))
        for listener in listeners:
            for chain in listener.get("filter_chains", []):
                for f in chain.get("filters", []):
                    hcm = f.get("typed_config", {})
                    rds = hcm.pop("rds", None)
                    if rds:
                        hcm["route_config"] = self.routes[rds["route_config_name"]]
        boot = {k: v for k, v in self.bootstrap.items() if k != "dynamic_resources"}
        boot["static_resources"] = {"listeners": listeners, "clusters": self.clusters}
        return boot


class Builder:
    def __init__(self, topology: Topology, intent: MeshIntent, identities: dict[tuple[str, str], Identity],
                 root_cert: Path, proxies_dir: Path, logs_dir: Path):
        self.topology = topology
        self.intent = intent
        self.identities = identities
        self.root_cert = str(root_cert)
        self.proxies_dir = proxies_dir
        self.logs_dir = logs_dir

    # -- per proxy -------------------------------------------------------------------------------------------------
    def build(self, instance: Instance) -> ProxyFiles:
        files = ProxyFiles(instance.name, self.proxies_dir / instance.name, {})
        files.bootstrap = self.bootstrap(instance, files)
        identity = self.identity_of(instance)
        needed: dict[str, BackendSet] = {}
        if instance is self.topology.ingress:
            for server in self.intent.ingress:
                files.listeners.append(self.ingress_listener(instance, server, files))
                files.routes[f"http.{server.port}"] = route_config(f"http.{server.port}", "*", server.routes)
                for route in server.routes:
                    needed.update(self.backend_sets_of(route.backends))
        for port in self.intent.inbound.get(instance.name, []):
            files.listeners.append(self.inbound_listener(instance, port, identity))
            files.clusters.append(self.inbound_cluster(instance, port))
        for outbound in instance.outbound:
            traffic = self.intent.traffic[(outbound.service, outbound.port)]
            if traffic.protocol == "tcp":
                files.listeners.append(self.outbound_tcp_listener(instance, outbound))
                needed.update(self.backend_sets_of([Backend(outbound.service, outbound.port)]))
                continue
            name = route_config_name(outbound.service, outbound.port)
            files.listeners.append(self.outbound_http_listener(instance, outbound, name, files))
            files.routes[name] = route_config(name, f"{fqdn(outbound.service)}:{outbound.port}", traffic.routes)
            for route in traffic.routes:
                needed.update(self.backend_sets_of(route.backends))
        files.clusters += [self.outbound_cluster(bs, identity) for _, bs in sorted(needed.items())]
        return files

    def identity_of(self, instance: Instance) -> Identity:
        return self.identities[(instance.namespace, instance.service_account)]

    def bootstrap(self, instance: Instance, files: ProxyFiles) -> dict:
        kind = "router" if instance is self.topology.ingress else "sidecar"
        source = {"path_config_source": {"path": "{}"}, "resource_api_version": "V3"}
        lds, cds = json.loads(json.dumps(source)), json.loads(json.dumps(source))
        lds["path_config_source"]["path"] = str(files.lds_path)
        cds["path_config_source"]["path"] = str(files.cds_path)
        return {
            # istiod's node id: <type>~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local
            "node": {"id": f"{kind}~127.0.0.1~{instance.name}.{instance.namespace}~{instance.namespace}.svc.cluster.local",
                     "cluster": f"{instance.app}.{instance.namespace}"},
            "admin": {"address": address(instance.admin_port)},
            "dynamic_resources": {"lds_config": lds, "cds_config": cds},
        }

    def access_log(self, instance: Instance, direction: str) -> list[dict]:
        fields = {"proxy": instance.name, "direction": direction, **ACCESS_LOG_FIELDS}
        return [{"name": "envoy.access_loggers.file", "typed_config": typed(
            "envoy.extensions.access_loggers.file.v3.FileAccessLog",
            path=str(self.logs_dir / f"{instance.name}.access.log"), log_format={"json_format": fields})}]

    # -- TLS -------------------------------------------------------------------------------------------------------
    def certificate(self, identity: Identity) -> dict:
        return {"certificate_chain": {"filename": str(identity.cert)}, "private_key": {"filename": str(identity.key)}}

    def downstream_tls(self, identity: Identity) -> dict:
        return {"name": "envoy.transport_sockets.tls", "typed_config": typed(
            "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", require_client_certificate=True,
            common_tls_context={
                "tls_certificates": [self.certificate(identity)],
                # Any workload of the trust domain may connect; authorization decides what it may do.
                "validation_context": {"trusted_ca": {"filename": self.root_cert}, "match_typed_subject_alt_names": [
                    {"san_type": "URI", "matcher": {"prefix": f"spiffe://{TRUST_DOMAIN}/"}}]}})}

    def upstream_tls(self, identity: Identity, bs: BackendSet, accounts: list[tuple[str, str]]) -> dict:
        return {"name": "envoy.transport_sockets.tls", "typed_config": typed(
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            # cluster_tls.go: SNI outbound_.<port>_.<subset>_.<host>, the server's SPIFFE ids checked
            sni=f"outbound_.{bs.port}_.{bs.subset or ''}_.{fqdn(bs.service)}",
            common_tls_context={"tls_certificates": [self.certificate(identity)], "validation_context": {
                "trusted_ca": {"filename": self.root_cert},
                "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": spiffe_id(ns, sa)}}
                                                  for ns, sa in accounts]}})}

    # -- listeners -------------------------------------------------------------------------------------------------
    def inbound_listener(self, instance: Instance, port: InboundPort, identity: Identity) -> dict:
        if port.protocol == "http":
            filters = [self.inbound_hcm(instance, port)]
        else:
            filters = [*rbac_filters(instance, port, http=False), {
                "name": "envoy.filters.network.tcp_proxy", "typed_config": typed(
                    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", stat_prefix=f"inbound_{port.port}",
                    cluster=inbound_cluster_name(port.port), access_log=self.access_log(instance, "inbound"))}]
        tls_chain = {"filter_chain_match": {"transport_protocol": "tls"}, "filters": filters,
                     "transport_socket": self.downstream_tls(identity)}
        plain_chain = {"filters": json.loads(json.dumps(filters))}
        listener = {"name": f"inbound|{port.port}", "address": address(instance.inbound_port),
                    "traffic_direction": "INBOUND"}
        if port.mtls == "STRICT":
            listener["filter_chains"] = [{k: v for k, v in tls_chain.items() if k != "filter_chain_match"}]
        elif port.mtls == "DISABLE":
            listener["filter_chains"] = [plain_chain]
        else:  # PERMISSIVE: the TLS inspector tells mTLS clients from plaintext ones
            plain_chain["filter_chain_match"] = {"transport_protocol": "raw_buffer"}
            listener["listener_filters"] = [{"name": "envoy.filters.listener.tls_inspector", "typed_config": typed(
                "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector")}]
            listener["filter_chains"] = [tls_chain, plain_chain]
        return listener

    def inbound_hcm(self, instance: Instance, port: InboundPort) -> dict:
        cluster = inbound_cluster_name(port.port)
        route = {"name": "default", "match": {"prefix": "/"},
                 # route.go BuildDefaultHTTPInboundRoute: no timeout on the inbound side
                 "route": {"cluster": cluster, "timeout": "0s"}}
        return {"name": "envoy.filters.network.http_connection_manager", "typed_config": typed(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix=f"inbound_0.0.0.0_{port.port}",
            route_config={"name": cluster, "validate_clusters": False, "virtual_hosts": [
                {"name": f"inbound|http|{port.port}", "domains": ["*"], "routes": [route]}]},
            http_filters=[*rbac_filters(instance, port, http=True), router()],
            access_log=self.access_log(instance, "inbound"),
            # The app can see who called it, as behind an Istio sidecar.
            forward_client_cert_details="APPEND_FORWARD", set_current_client_cert_details={"uri": True},
            normalize_path=True)}

    def outbound_http_listener(self, instance: Instance, outbound, name: str, files: ProxyFiles) -> dict:
        return {"name": f"outbound|{outbound.service}|{outbound.port}", "address": address(outbound.listen_port),
                "traffic_direction": "OUTBOUND", "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager", "typed_config": typed(
                        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        stat_prefix=f"outbound_{outbound.service}_{outbound.port}",
                        rds={"route_config_name": name, "config_source": {
                            "path_config_source": {"path": str(files.rds_path(name))}, "resource_api_version": "V3"}},
                        http_filters=[fault_filter(), router()],
                        access_log=self.access_log(instance, "outbound"))}]}]}

    def outbound_tcp_listener(self, instance: Instance, outbound) -> dict:
        return {"name": f"outbound|{outbound.service}|{outbound.port}", "address": address(outbound.listen_port),
                "traffic_direction": "OUTBOUND", "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.tcp_proxy", "typed_config": typed(
                        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        stat_prefix=f"outbound_{outbound.service}_{outbound.port}",
                        cluster=cluster_name("outbound", outbound.service, outbound.port),
                        access_log=self.access_log(instance, "outbound"))}]}]}

    def ingress_listener(self, instance: Instance, server: IngressServer, files: ProxyFiles) -> dict:
        name = f"http.{server.port}"
        return {"name": f"0.0.0.0_{server.port}", "address": address(instance.inbound_port, "0.0.0.0"),
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager", "typed_config": typed(
                        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        stat_prefix=f"outbound_0.0.0.0_{server.port}", use_remote_address=True,
                        rds={"route_config_name": name, "config_source": {
                            "path_config_source": {"path": str(files.rds_path(name))}, "resource_api_version": "V3"}},
                        http_filters=[fault_filter(), router()],
                        access_log=self.access_log(instance, "ingress"))}]}]}

    # -- clusters --------------------------------------------------------------------------------------------------
    def backend_sets_of(self, backends: list[Backend]) -> dict[str, BackendSet]:
        """The clusters routes point at, plus the service's subset-free cluster (istiod always sends that one)."""
        out = {}
        for backend in backends:
            sets = self.intent.backend_sets[(backend.service, backend.port)]
            for bs in sets:
                if bs.subset in (None, backend.subset):
                    out[cluster_name("outbound", bs.service, bs.port, bs.subset)] = bs
        return out

    def outbound_cluster(self, bs: BackendSet, identity: Identity) -> dict:
        name = cluster_name("outbound", bs.service, bs.port, bs.subset)
        service_port = self.topology.service(bs.service).port(bs.port)
        endpoints = self.topology.endpoints(bs.service, bs.port, bs.labels)
        lb_endpoints = []
        for endpoint in endpoints:
            entry: dict = {"endpoint": {"address": address(endpoint.inbound_port)}}
            mode = next((p.mtls for p in self.intent.inbound.get(endpoint.name, []) if p.port == endpoint.container_port),
                        "PERMISSIVE")
            if mode != "DISABLE":  # auto-mTLS: TLS to every sidecar whose inbound accepts it
                entry["metadata"] = {"filter_metadata": {"envoy.transport_socket_match": dict(TLS_MATCH)}}
            lb_endpoints.append(entry)
        accounts = sorted({(e.namespace, e.service_account) for e in endpoints})
        cluster = {
            "name": name, "type": "STATIC", "lb_policy": bs.lb_policy,
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": lb_endpoints}]},
            **connection_pool(bs.limits, service_port is not None and service_port.protocol == "http"),
            "transport_socket_matches": [
                {"name": "tlsMode-istio", "match": dict(TLS_MATCH),
                 "transport_socket": self.upstream_tls(identity, bs, accounts)},
                {"name": "tlsMode-disabled", "match": {}, "transport_socket": raw_buffer()}],
        }
        if bs.ejection is not None:
            cluster["outlier_detection"] = outlier_detection(bs.ejection)
            # istiod sets the panic threshold from minHealthPercent even when it is 0 (Envoy's default is 50)
            cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": float(bs.ejection.min_health_percent)}}
        return cluster

    def inbound_cluster(self, instance: Instance, port: InboundPort) -> dict:
        """The sidecar's cluster to its own app. cluster.go buildInboundCluster: the connection pool of the
        service's DestinationRule (its top-level policy, no subset's) applies here too ("circuit breakers need to be
        set on the receiver end"): limits, connect timeout, and the idle timeout that must stay below the app's
        keep-alive."""
        name = inbound_cluster_name(port.port)
        return {"name": name, "type": "STATIC",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                    {"endpoint": {"address": address(instance.app_port)}}]}]},
                **connection_pool(self.inbound_limits(instance, port), port.protocol == "http")}

    def inbound_limits(self, instance: Instance, port: InboundPort) -> ConnectionLimits:
        """The connection pool of the first Service (in kubernetes/ order; istiod, too, takes one of them) that
        sends to this workload port: targetPort by number, or by name on a port numbered like the container's."""
        for service in self.topology.services:
            if not matches(service.selector, instance.labels):
                continue
            for service_port in service.ports:
                if service_port.target in (port.port, str(port.port)) or service_port.port == port.port:
                    top = next((bs for bs in self.intent.backend_sets.get((service.name, service_port.port), [])
                                if bs.subset is None), None)
                    return top.limits if top is not None else ConnectionLimits()
        return ConnectionLimits()

    def write_all(self) -> dict[str, ProxyFiles]:
        return {p.name: self.build(p) for p in self.topology.proxies}


def connection_pool(limits: ConnectionLimits, http: bool) -> dict:
    """cluster_traffic_policy.go applyConnectionPool: circuit-breaker thresholds (unset: unlimited), the connect
    timeout (unset: MeshConfig.connectTimeout), and on HTTP clusters idle timeout and requests per connection."""
    pool: dict = {
        "connect_timeout": duration(limits.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S),
        "circuit_breakers": {"thresholds": [{
            "max_connections": limits.max_connections or MAX, "max_pending_requests": limits.max_pending_requests or MAX,
            "max_requests": limits.max_requests or MAX, "max_retries": limits.max_retries or MAX,
            "track_remaining": True}]},
    }
    if http:
        options: dict = {"explicit_http_config": {"http_protocol_options": {}}}
        common = {}
        if limits.idle_timeout_s:
            common["idle_timeout"] = duration(limits.idle_timeout_s)
        if limits.max_requests_per_connection:
            common["max_requests_per_connection"] = limits.max_requests_per_connection
        if common:
            options["common_http_protocol_options"] = common
        pool["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", **options)}
    return pool


def router() -> dict:
    return {"name": "envoy.filters.http.router", "typed_config": typed("envoy.extensions.filters.http.router.v3.Router")}


def fault_filter() -> dict:
    """Present on every outbound chain with no faults of its own; a route's typed_per_filter_config switches it on."""
    return {"name": "envoy.filters.http.fault", "typed_config": typed("envoy.extensions.filters.http.fault.v3.HTTPFault")}


def raw_buffer() -> dict:
    return {"name": "envoy.transport_sockets.raw_buffer", "typed_config": typed(
        "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer")}


# -- files -----------------------------------------------------------------------------------------------------------
def discovery_response(resources: list[dict], kind: str) -> tuple[dict, str]:
    body = [{"@type": T + kind, **r} for r in resources]
    version = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:12]
    return {"version_info": version, "resources": body}, version


def write_atomic(path: Path, data: dict) -> None:
    """Envoy reloads a watched file when a file is moved onto it; never edit one in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


CDS = "envoy.config.cluster.v3.Cluster"
LDS = "envoy.config.listener.v3.Listener"
RDS = "envoy.config.route.v3.RouteConfiguration"

"""Inbound: who may call each workload port, from Server, HTTPRoute (parent: a Server), AuthorizationPolicy,
MeshTLSAuthentication, NetworkAuthentication and config.linkerd.io/default-inbound-policy, the way Linkerd's
policy controller builds an InboundServer and linkerd2-proxy enforces it.

Sources (linkerd2 version-2.20 unless said):
- policy-controller/k8s/index/src/inbound/index.rs: a port no Server selects gets the default policy of the pod
  (its annotation, else the namespace's, else the cluster's all-unauthenticated) and default routes: one for
  every request plus, where the pod has HTTP probes on that port, a GET route for their paths open to the probe
  networks. A Server with routes gets only its routes; policies that target the Server (or the namespace) apply
  to every route of it, policies that target a route to that route alone (policy_client_authz: the
  MeshTLSAuthentication or ServiceAccount names who, the NetworkAuthentication from where; either alone, or
  both, which must then both hold). defaults.rs default_authzs for the default policies.
- meshtls_authentication.rs, identity_match.rs: identities `*`, `*.suffix` or exact; identityRefs ServiceAccount
  or Namespace.
- linkerd2-proxy linkerd/proxy/server-policy/src/http.rs: a route's authorizations are its own and the Server's;
  linkerd/app/inbound/src/policy/http.rs: no route matched is 404 "no route found for request", no authorization
  matched is 403 "unauthorized request on route" (errors/respond.rs: an empty body and the l5d-proxy-error header);
  policy/tcp.rs: an opaque port checks the connection and refuses it.
- linkerd.io 2-edge features/server-policy: "Any traffic that is known to be HTTP ... that is denied by policy
  will result in the proxy returning an HTTP 403. All other traffic will be denied at the TCP level".
Locally every workload's address is 127.0.0.1. Linkerd always lets a pod's own localhost in (server-policy lib.rs,
the `localhost` authorization); here that would let everyone in, so that authorization is left out.
"""
from __future__ import annotations

from tools.manifestcheck.model import Document, as_dict, as_list, dig

from ..intent import AuthzPolicy, AuthzRule, InboundPort, InboundRoute, MeshIntent, Origin, Peer, RequestMatch, StringMatch
from ..manifests import NAMESPACE, MeshConfigError, Reader
from ..topology import Instance
from .common import ALL_NETWORKS, CLUSTER_NETWORKS, identity, identity_match, namespace_identities, ranked, request_matches
from .outbound import DEFAULT_OPAQUE_PORTS

DEFAULT_POLICY_ANNOTATION = "config.linkerd.io/default-inbound-policy"
CLUSTER_DEFAULT_POLICY = "all-unauthenticated"  # values.yaml proxy.defaultInboundPolicy
PROBE_NETWORKS = ALL_NETWORKS  # values.yaml policyController.probeNetworks
DEFAULT_POLICIES = {  # name -> (authenticated only, cluster networks only); deny: no authorization
    "all-unauthenticated": (False, False), "all-authenticated": (True, False), "audit": (False, False),
    "cluster-unauthenticated": (False, True), "cluster-authenticated": (True, True), "deny": None,
}
HTTP_PROTOCOLS = {"HTTP/1", "HTTP/2", "gRPC"}


def authz(name: str, peer: Peer) -> AuthzPolicy:
    return AuthzPolicy(name, "ALLOW", [AuthzRule(peers=(peer,))], Origin("(default)", "default", name))


def default_authz(policy: str) -> list[AuthzPolicy]:
    shape = DEFAULT_POLICIES[policy]
    if shape is None:
        return []
    authenticated, cluster = shape
    return [authz(policy, Peer(authenticated=authenticated, ip_blocks=CLUSTER_NETWORKS if cluster else ALL_NETWORKS))]


def selects(server: Document, instance: Instance) -> bool:
    selector = as_dict(server.spec.get("podSelector"))
    labels = instance.labels
    if any(labels.get(str(k)) != str(v) for k, v in as_dict(selector.get("matchLabels")).items()):
        return False
    for expression in as_list(selector.get("matchExpressions")):
        expression = as_dict(expression)
        key, operator = str(expression.get("key")), str(expression.get("operator"))
        values = [str(v) for v in as_list(expression.get("values"))]
        if not {"In": lambda: labels.get(key) in values, "NotIn": lambda: labels.get(key) not in values,
                "Exists": lambda: key in labels, "DoesNotExist": lambda: key not in labels}.get(operator, lambda: False)():
            return False
    return (server.namespace or NAMESPACE) == instance.namespace


class Inbound:
    """The inbound policy of every workload port, from one state of the objects."""

    def __init__(self, docs: list[Document], intent: MeshIntent):
        self.intent = intent
        self.servers = [d for d in docs if d.kind == "Server"]
        self.routes = [d for d in docs if d.kind == "HTTPRoute" and self.server_parent(d)]
        self.policies = [d for d in docs if d.kind == "AuthorizationPolicy"]
        self.meshtls = {d.name: d for d in docs if d.kind == "MeshTLSAuthentication"}
        self.networks = {d.name: d for d in docs if d.kind == "NetworkAuthentication"}
        self.deployments = {d.name: d for d in docs if d.kind == "Deployment"}
        self.namespace = next((d for d in docs if d.kind == "Namespace" and d.name == NAMESPACE), None)
        self.used: set[str] = set()

    @staticmethod
    def server_parent(route: Document) -> list[str]:
        return [str(r.get("name")) for r in (as_dict(x) for x in as_list(route.spec.get("parentRefs")))
                if r.get("kind") == "Server" and r.get("group") == "policy.linkerd.io"]

    # -- the pieces --------------------------------------------------------------------------------------------
    def pod_spec(self, instance: Instance, *keys: str):
        deployment = self.deployments.get(instance.deployment)
        return dig(deployment.obj if deployment else {}, "spec", "template", *keys, default=None)

    def containers(self, instance: Instance) -> list[dict]:
        return [as_dict(c) for c in as_list(self.pod_spec(instance, "spec", "containers"))]

    def default_policy(self, instance: Instance) -> str:
        pod = as_dict(self.pod_spec(instance, "metadata", "annotations"))
        ns = as_dict(self.namespace.metadata.get("annotations")) if self.namespace else {}
        policy = str(pod.get(DEFAULT_POLICY_ANNOTATION) or ns.get(DEFAULT_POLICY_ANNOTATION) or CLUSTER_DEFAULT_POLICY)
        if policy not in DEFAULT_POLICIES:
            doc = self.namespace or self.deployments[instance.deployment]
            Reader(doc, self.intent).warn(f"metadata.annotations.{DEFAULT_POLICY_ANNOTATION}",
                                          f"{policy!r} is not a default policy ({', '.join(DEFAULT_POLICIES)}); deny used")
            return "deny"
        return policy

    def container_port(self, instance: Instance) -> tuple[str, int]:
        """(name, number) of the instance's served port, from its Deployment."""
        for container in self.containers(instance):
            for port in as_list(container.get("ports")):
                port = as_dict(port)
                if port.get("containerPort") == instance.container_port:
                    return str(port.get("name", "")), int(port["containerPort"])
        return "", int(instance.container_port or 0)

    def probe_paths(self, instance: Instance, port: tuple[str, int]) -> list[str]:
        paths = []
        for container in self.containers(instance):
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                get = as_dict(dig(container, probe, "httpGet", default={}))
                if get and get.get("port") in port:
                    paths.append(str(get.get("path", "/")))
        return sorted(set(paths))

    def client_authz(self, policy: Document) -> AuthzPolicy | None:
        """policy_client_authz: None (and a warning) for a policy Linkerd would ignore as illegal."""
        reader = Reader(policy, self.intent)
        spec = reader.only(policy.spec, "spec", {"targetRef", "requiredAuthenticationRefs"})
        principals: list[StringMatch] | None = None
        networks: list[str] | None = None
        for i, ref in enumerate(as_list(spec.get("requiredAuthenticationRefs"))):
            ref = as_dict(ref)
            kind, name = str(ref.get("kind")), str(ref.get("name"))
            namespace = str(ref.get("namespace") or policy.namespace or NAMESPACE)
            if kind in ("MeshTLSAuthentication", "ServiceAccount") and principals is not None:
                reader.warn(f"spec.requiredAuthenticationRefs[{i}]", "a policy may name one identity source only; "
                                                                     "Linkerd ignores this policy")
                return None
            if kind == "MeshTLSAuthentication":
                doc = self.meshtls.get(name)
                if doc is None:
                    reader.warn(f"spec.requiredAuthenticationRefs[{i}]", f"no MeshTLSAuthentication {name}: Linkerd "
                                                                         "ignores this policy")
                    return None
                principals = self.identities(doc)
                if principals is None:
                    reader.warn(f"spec.requiredAuthenticationRefs[{i}]", f"MeshTLSAuthentication {name} is invalid: "
                                                                         "Linkerd ignores this policy")
                    return None
            elif kind == "ServiceAccount":
                principals = [StringMatch("exact", identity(namespace, name))]
            elif kind == "NetworkAuthentication":
                doc = self.networks.get(name)
                if doc is None or networks is not None:
                    reader.warn(f"spec.requiredAuthenticationRefs[{i}]", f"no (or a second) NetworkAuthentication "
                                                                         f"{name}: Linkerd ignores this policy")
                    return None
                networks = self.cidrs(doc)
            else:
                reader.warn(f"spec.requiredAuthenticationRefs[{i}].kind", f"{kind} is not an authentication; "
                                                                          "Linkerd ignores this policy")
                return None
        # `*` (IdentityMatch::Suffix of nothing) takes every meshed client, whatever else the list names
        anyone = principals is not None and any(p.kind == "present" for p in principals)
        peer = Peer(ip_blocks=tuple(networks) if networks is not None else ALL_NETWORKS,
                    authenticated=principals is not None,
                    principals=() if anyone else tuple(principals or ()))
        return AuthzPolicy(policy.name, "ALLOW", [AuthzRule(peers=(peer,))], reader.origin)

    def identities(self, doc: Document) -> list[StringMatch] | None:
        """meshtls_authentication.rs try_from_resource; None (and a warning) where Linkerd refuses the resource:
        a ref of another kind, or no identity at all. A ServiceAccount ref is one exact identity, `*` included."""
        reader = Reader(doc, self.intent)
        spec = reader.only(doc.spec, "spec", {"identities", "identityRefs"})
        out = [identity_match(str(i)) for i in as_list(spec.get("identities"))]
        for i, ref in enumerate(as_dict(r) for r in as_list(spec.get("identityRefs"))):
            namespace = str(ref.get("namespace") or doc.namespace or NAMESPACE)
            if ref.get("kind") == "ServiceAccount":
                out.append(StringMatch("exact", identity(namespace, str(ref.get("name")))))
            elif ref.get("kind") == "Namespace":
                out.append(identity_match(namespace_identities(str(ref.get("name")))))
            else:
                reader.warn(f"spec.identityRefs[{i}].kind", f"{ref.get('kind')} is neither ServiceAccount nor "
                                                            "Namespace: Linkerd ignores this MeshTLSAuthentication")
                return None
        if not out:
            reader.warn("spec", "no identities configured: Linkerd ignores this MeshTLSAuthentication")
            return None
        return out

    def cidrs(self, doc: Document) -> list[str]:
        reader = Reader(doc, self.intent)
        spec = reader.only(doc.spec, "spec", {"networks"})
        out = []
        for i, network in enumerate(as_list(spec.get("networks"))):
            network = reader.only(network, f"spec.networks[{i}]", {"cidr"}, "`except` is not reproduced")
            out.append(str(network.get("cidr")))
        return out

    def targeting(self, kind: str, name: str) -> list[AuthzPolicy]:
        out = []
        for policy in self.policies:
            target = as_dict(policy.spec.get("targetRef"))
            if target.get("kind") == kind and (kind == "Namespace" or target.get("name") == name):
                found = self.client_authz(policy)
                if found is not None:
                    out.append(found)
        return out

    # -- one port ----------------------------------------------------------------------------------------------
    def port(self, instance: Instance) -> InboundPort:
        port = self.container_port(instance)
        servers = [s for s in self.servers if selects(s, instance) and s.spec.get("port") in port]
        if len(servers) > 1:
            Reader(servers[1], self.intent).warn("spec.port", f"{servers[0].name} selects the same port of "
                                                              f"{instance.name}; only the first is used")
        if not servers:
            policy = self.default_policy(instance)
            allowed = default_authz(policy)
            if instance.protocol == "tcp" or port[1] in DEFAULT_OPAQUE_PORTS:
                return InboundPort(port[1], "tcp", "PERMISSIVE", allow=allowed)
            return InboundPort(port[1], "http", "PERMISSIVE", routes=self.default_routes(instance, port, allowed,
                                                                                         f"default:{policy}"))
        server = servers[0]
        self.used.add(server.name)
        reader = Reader(server, self.intent)
        spec = reader.only(server.spec, "spec", {"podSelector", "port", "proxyProtocol", "accessPolicy"})
        allowed = self.targeting("Server", server.name) + self.targeting("Namespace", "")
        if spec.get("accessPolicy"):
            access = str(spec["accessPolicy"])
            if access not in DEFAULT_POLICIES:  # the admission webhook refuses it: "Invalid 'accessPolicy' field"
                raise MeshConfigError(f"{reader.where('spec.accessPolicy')}: {access!r} is not one of "
                                      f"{', '.join(DEFAULT_POLICIES)}")
            allowed += default_authz(access)
        protocol = str(spec.get("proxyProtocol", "unknown"))
        if protocol in ("opaque", "TLS") or (protocol == "unknown" and instance.protocol == "tcp"):
            return InboundPort(port[1], "tcp", "PERMISSIVE", allow=allowed)
        if protocol not in HTTP_PROTOCOLS | {"unknown"}:
            reader.warn("spec.proxyProtocol", f"{protocol} is not a proxy protocol; HTTP used")
        attached = [r for r in self.routes if server.name in self.server_parent(r)]
        if not attached:
            return InboundPort(port[1], "http", "PERMISSIVE", routes=self.default_routes(instance, port, allowed,
                                                                                         server.name))
        entries = []
        for order, route in enumerate(attached):
            route_reader = Reader(route, self.intent)
            route_reader.only(route.spec, "spec", {"parentRefs", "rules"})
            own = self.targeting("HTTPRoute", route.name) + allowed
            rules = as_list(route.spec.get("rules"))
            for r, rule in enumerate(rules):
                rule = route_reader.only(rule, f"spec.rules[{r}]", {"matches"}, "filters are not reproduced")
                name = route.name if len(rules) == 1 else f"{route.name}.rule{r}"
                for rank, match in request_matches(route_reader, rule, f"spec.rules[{r}]"):
                    entries.append((rank, order, InboundRoute(f"{name}.{match.name}" if match.name else name, [match],
                                                              own, route_reader.origin)))
        return InboundPort(port[1], "http", "PERMISSIVE", routes=ranked(entries))

    def default_routes(self, instance: Instance, port: tuple[str, int], allowed: list[AuthzPolicy],
                       origin: str) -> list[InboundRoute]:
        """default_inbound_http_routes: the probe route (more specific) before the one for every request."""
        routes = []
        paths = self.probe_paths(instance, port)
        if paths:
            probe = authz("probe", Peer(ip_blocks=PROBE_NETWORKS))
            routes.append(InboundRoute("probe", [RequestMatch(path=StringMatch("exact", p), method=StringMatch("exact", "GET"))
                                                 for p in paths], [probe], Origin("(default)", "default", "probe")))
        routes.append(InboundRoute("default", [RequestMatch()], allowed, Origin("(default)", origin, "default")))
        return routes

    def report_unused(self) -> None:
        for server in self.servers:
            if server.name not in self.used:
                Reader(server, self.intent).warn("spec.port", f"selects no port a local sidecar listens on "
                                                 f"({server.spec.get('port')}): a workload gets an inbound listener for "
                                                 "the ports its Services target, and the proxy's own admin port "
                                                 "(linkerd-admin) is each Envoy's admin here")

"""The workloads of kubernetes/ laid out on this machine: one instance per replica, each with its own ports.

Read from the Deployments and Services as they are (labels, ServiceAccount, container ports, environment,
replicas), so the local mesh has the cluster's shape. What differs is written here once, the port plan of
docs/local-mesh.md (every port + the offset):
- a sidecar's inbound listener is where its service listens without the mesh: the container port (catalog :5001,
  cart :5002, payment :5003, notification :5004, redis :6379); payment-ledger :6380, as ./run-local.sh gives it.
  Further replicas of a port move 10 up (catalog's second pod :5011, payment v2 :5013, payment v1's second pod
  :5023). The ingress has :5000, so api-gateway's sidecar is on :5010.
- the app's admin port (ADMIN_PORT, 8090 in the cluster) is its sidecar's inbound + 100, the scheme of
  ./run-local.sh without the mesh (catalog :5101, payment v2 :5113): reached directly, like a port-forward, and
  by no listener of any proxy. loadgen's metrics (its only port) are on :5190.
- the app's business port, behind its sidecar, is the sidecar's inbound + 500 (catalog :5501, redis :6879).
- outbound listeners 5200 + 10 n + k, Envoy admin 5900 + n (n: the instance's number, the ingress is 0).
  Every port stays below 7000 + the offset, so the documented offsets keep them clear of Linux's ephemeral range
  (32768 and up), where outgoing connections take their local ports.
- each app calls its neighbours through its own sidecar's outbound listeners (no iptables here): the `*_URL`
  settings of the Deployment are pointed at them, one loopback port per neighbour; PORT, ADMIN_PORT and
  METRICS_PORT are pointed at the local ports.
- payment-service-v1 runs 2 replicas (1 in the manifests), so a subset has two endpoints and a sick one can be
  ejected while the other serves.
"""
from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.manifestcheck.model import Tree, as_dict, as_list, dig, matches

from ..stack import ADMIN_PORT_OFFSET, LEDGER_DEFAULT_PORT

NAMESPACE = "e-commerce"
CLUSTER_DOMAIN = "svc.cluster.local"
INGRESS_PORT = 5000  # the public entry, where ./run-local.sh without a mesh has the gateway
APP_PORT_SHIFT = 500  # the app behind its sidecar; clear of the admin ports (+ ADMIN_PORT_OFFSET, 100)
REPLICA_PORT_STEP = 10
OUTBOUND_BASE = 5200  # sidecar n's outbound listeners: OUTBOUND_BASE + 10 n + k
ADMIN_BASE = 5900  # Envoy admin: the ingress on ADMIN_BASE, sidecar n on ADMIN_BASE + n
METRICS_PORT = 5190  # loadgen's metrics (METRICS_PORT), among the apps' admin ports
ADMIN_CONTAINER_PORT = "admin"  # the name of the container port the probes, /metrics and /admin/faults are on
# Where a sidecar listens when the container port is another workload's already: as without the mesh.
BASE_PORTS = {"payment-ledger": LEDGER_DEFAULT_PORT}
LOCAL_REPLICAS = {"payment-service-v1": 2}
# The ingress gateway of Istio's demo profile: its namespace, ServiceAccount and pod label.
INGRESS = {"name": "istio-ingressgateway", "namespace": "istio-system",
           "service_account": "istio-ingressgateway-service-account", "labels": {"istio": "ingressgateway"}}


class TopologyError(ValueError):
    """The manifests describe something this layout cannot run; the message says what."""


def fqdn(service: str, namespace: str = NAMESPACE) -> str:
    return f"{service}.{namespace}.{CLUSTER_DOMAIN}"


@dataclass
class ServicePort:
    name: str
    port: int
    target: int  # the container port it sends to
    protocol: str  # http | tcp


@dataclass
class Service:
    name: str
    namespace: str
    selector: dict[str, str]
    ports: list[ServicePort]

    def port(self, number: int) -> ServicePort | None:
        return next((p for p in self.ports if p.port == number), None)


@dataclass
class Outbound:
    """A neighbour an app calls, and the local listener of its sidecar that stands for it."""

    service: str
    port: int
    protocol: str
    listen_port: int
    variable: str  # the app setting that names it, e.g. CATALOG_URL


@dataclass
class Instance:
    name: str  # like a pod name: payment-service-v1-2
    deployment: str
    namespace: str
    labels: dict[str, str]
    service_account: str
    container_port: int | None  # the port the cluster's Services target (None: nothing calls it)
    protocol: str
    inbound_port: int | None  # the sidecar's inbound listener
    app_port: int | None  # where the app listens, on loopback
    admin_port: int  # the sidecar's Envoy admin
    env: dict[str, str] = field(default_factory=dict)  # the container's environment, pointed at the local ports
    outbound: list[Outbound] = field(default_factory=list)
    image: str = ""
    admin_container_port: int | None = None  # the container port named `admin` (8090): in no Service
    # The app's own admin port (ADMIN_PORT: probes, /metrics, /admin/faults; loadgen: its METRICS_PORT), reached
    # directly like a port-forward and never through a proxy; None when the container has none (Redis).
    app_admin_port: int | None = None

    @property
    def app(self) -> str:
        return self.labels.get("app", self.deployment)

    @property
    def version(self) -> str:
        return self.labels.get("version", "")


@dataclass
class Topology:
    namespace: str
    port_offset: int
    services: list[Service]
    instances: list[Instance]  # the meshed workloads, ingress excluded
    ingress: Instance

    def service(self, name: str) -> Service:
        found = next((s for s in self.services if s.name == name), None)
        if found is None:
            raise TopologyError(f"no Service {name} in kubernetes/")
        return found

    def endpoints(self, service: str, port: int, labels: dict[str, str] | None = None) -> list[Instance]:
        """The instances a service port (narrowed by subset labels) sends to, in a stable order."""
        svc = self.service(service)
        wanted = {**svc.selector, **(labels or {})}
        return [i for i in self.instances if matches(wanted, i.labels) and i.inbound_port is not None]

    @property
    def proxies(self) -> list[Instance]:
        return [self.ingress, *self.instances]

    def instance(self, name: str) -> Instance:
        found = next((i for i in self.proxies if i.name == name), None)
        if found is None:
            raise TopologyError(f"no instance {name}")
        return found

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Topology":
        def instance(raw: dict) -> Instance:
            return Instance(**{**raw, "outbound": [Outbound(**o) for o in raw["outbound"]]})
        return cls(data["namespace"], data["port_offset"],
                   [Service(**{**s, "ports": [ServicePort(**p) for p in s["ports"]]}) for s in data["services"]],
                   [instance(i) for i in data["instances"]], instance(data["ingress"]))


def port_protocol(port: dict) -> str:
    """Istio's rule: appProtocol, else the port name's prefix (http, http-*, tcp-*)."""
    name, app_protocol = str(port.get("name", "")), str(port.get("appProtocol", "")).lower()
    if app_protocol in ("http", "http2", "grpc") or name == "http" or name.startswith(("http-", "http2", "grpc")):
        return "http"
    return "tcp"


def load_services(tree: Tree) -> list[Service]:
    services = []
    for doc in tree.of_kind("Service"):
        if not doc.path.startswith("kubernetes/"):
            continue
        ports = []
        for port in as_list(doc.spec.get("ports")):
            port = as_dict(port)
            ports.append(ServicePort(str(port.get("name", "")), int(port["port"]), port.get("targetPort", port["port"]),
                                     port_protocol(port)))
        services.append(Service(doc.name, doc.namespace or NAMESPACE, dict(as_dict(doc.spec.get("selector"))), ports))
    return services


def config_maps(tree: Tree) -> dict[str, dict[str, str]]:
    return {d.name: {str(k): str(v) for k, v in as_dict(d.obj.get("data")).items()}
            for d in tree.of_kind("ConfigMap") if d.path.startswith("kubernetes/")}


def container_env(container: dict, maps: dict[str, dict[str, str]], pod_name: str) -> dict[str, str]:
    """The environment the container would see: envFrom ConfigMaps, then env values; the pod name from the
    downward API. Secrets are left out (the local Redis has no password)."""
    env: dict[str, str] = {}
    for source in as_list(container.get("envFrom")):
        name = dig(source, "configMapRef", "name")
        env.update(maps.get(name, {}))
    for var in as_list(container.get("env")):
        var = as_dict(var)
        if "value" in var:
            env[str(var["name"])] = str(var["value"])
        elif dig(var, "valueFrom", "fieldRef", "fieldPath") == "metadata.name":
            env[str(var["name"])] = pod_name
    return env


def url_target(value: str) -> tuple[str, int, str] | None:
    """(service, port, scheme) of an http://svc:port or redis://svc:port/0 setting that names a Service."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "redis") or not parts.hostname or not parts.port:
        return None
    return parts.hostname.split(".")[0], parts.port, parts.scheme


def build(tree: Tree, port_offset: int = 0) -> Topology:
    services = load_services(tree)
    by_name = {s.name: s for s in services}
    maps = config_maps(tree)
    instances: list[Instance] = []
    deployments = [d for d in tree.of_kind("Deployment") if d.path.startswith("kubernetes/")]
    for deployment in deployments:
        template = deployment.pod_template() or {}
        labels = {str(k): str(v) for k, v in as_dict(dig(template, "metadata", "labels", default={})).items()}
        spec = as_dict(template.get("spec"))
        container = as_dict(as_list(spec.get("containers"))[0])
        replicas = LOCAL_REPLICAS.get(deployment.name, int(deployment.spec.get("replicas", 1)))
        ports = [as_dict(p) for p in as_list(container.get("ports"))]
        admin = next((p for p in ports if p.get("name") == ADMIN_CONTAINER_PORT), None)
        served = [p for p in ports if any(matches(s.selector, labels) and any(
            sp.target in (p.get("name"), p.get("containerPort")) for sp in s.ports) for s in services)]
        for ordinal in range(1, replicas + 1):
            name = f"{deployment.name}-{ordinal}"
            port = served[0] if served else None
            protocol = "http"
            if port is not None:
                svc = next(s for s in services if matches(s.selector, labels))
                protocol = next((sp.protocol for sp in svc.ports if sp.target in (port.get("name"), port.get("containerPort"))), "http")
            instances.append(Instance(
                name=name, deployment=deployment.name, namespace=deployment.namespace or NAMESPACE, labels=labels,
                service_account=str(spec.get("serviceAccountName") or "default"),
                container_port=int(port["containerPort"]) if port else None, protocol=protocol,
                inbound_port=None, app_port=None, admin_port=0,
                env=container_env(container, maps, name), image=str(container.get("image", "")),
                admin_container_port=int(admin["containerPort"]) if admin else None))
    assign_ports(instances, port_offset)
    ingress = Instance(name=INGRESS["name"], deployment=INGRESS["name"], namespace=INGRESS["namespace"],
                       labels=dict(INGRESS["labels"]), service_account=INGRESS["service_account"],
                       container_port=None, protocol="http", inbound_port=INGRESS_PORT + port_offset, app_port=None,
                       admin_port=ADMIN_BASE + port_offset)
    for n, instance in enumerate(instances, start=1):
        instance.admin_port = ADMIN_BASE + n + port_offset
        instance.outbound = outbound_listeners(instance, by_name, OUTBOUND_BASE + 10 * n + port_offset)
    return Topology(NAMESPACE, port_offset, services, instances, ingress)


def assign_ports(instances: list[Instance], offset: int) -> None:
    """Replicas of one port take turns in ordinal order (v1-1, v2-1, v1-2), 10 apart; the app and its admin port
    follow its sidecar's inbound port. The environment is pointed at them."""
    ranks: dict[int, int] = {}
    ordered = sorted((i for i in instances if i.container_port), key=lambda i: (int(i.name.rsplit("-", 1)[1]),
                                                                                 instances.index(i)))
    for instance in ordered:
        base = BASE_PORTS.get(instance.app, instance.container_port)
        rank = ranks.get(base, 1 if base == INGRESS_PORT else 0)
        ranks[base] = rank + 1
        instance.inbound_port = base + REPLICA_PORT_STEP * rank + offset
        instance.app_port = instance.inbound_port + APP_PORT_SHIFT
        if instance.admin_container_port is not None:
            instance.app_admin_port = instance.inbound_port + ADMIN_PORT_OFFSET
        for variable, port in (("PORT", instance.app_port), ("ADMIN_PORT", instance.app_admin_port)):
            if variable in instance.env and port is not None:
                instance.env[variable] = str(port)
    for instance in instances:
        if instance.container_port is None and "METRICS_PORT" in instance.env:  # loadgen: nothing calls it
            instance.app_admin_port = METRICS_PORT + offset
            instance.env["METRICS_PORT"] = str(instance.app_admin_port)


def outbound_listeners(instance: Instance, services: dict[str, Service], first_port: int) -> list[Outbound]:
    """One listener per neighbour the app's settings name; the settings are rewritten to point at them."""
    out: list[Outbound] = []
    for variable, value in sorted(instance.env.items()):
        target = url_target(value)
        if target is None or target[0] not in services:
            continue
        name, port, scheme = target
        svc_port = services[name].port(port)
        if svc_port is None:
            raise TopologyError(f"{instance.deployment}: {variable}={value} names port {port}, which Service {name} "
                                "does not have")
        listen = first_port + len(out)
        out.append(Outbound(name, port, svc_port.protocol, listen, variable))
        parts = urllib.parse.urlsplit(value)
        instance.env[variable] = parts._replace(netloc=f"127.0.0.1:{listen}").geturl()
    if len(out) > 10:
        raise TopologyError(f"{instance.deployment} calls {len(out)} services; the layout has room for 10")
    return out


def local_ports(instance: Instance) -> list[int]:
    """Every port this instance's processes listen on (sidecar and app)."""
    return [port for port in (instance.inbound_port, instance.app_port, instance.app_admin_port, instance.admin_port,
                              *(o.listen_port for o in instance.outbound)) if port]


def load(root: Path, port_offset: int = 0) -> tuple[Tree, Topology]:
    tree = Tree.load(root)
    return tree, build(tree, port_offset)

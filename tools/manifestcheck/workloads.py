"""Cheap consistency checks of the pods: listen ports, the admin port, service URLs, environment names, writable
/tmp, Redis AOF.

Each catches a mistake no schema sees: a PORT that differs from the port the Service sends to, probes on the business
port (where a delay fault starves them) or an admin port a Service exposes, a URL naming a Service that does not
exist, a misspelled variable the app silently ignores, a read-only root file system without the /tmp the apps write
to, a Redis that loses every cart on restart.
"""
from __future__ import annotations

import re
from pathlib import Path

from . import images
from .model import PodTemplate, Problem, Tree, as_dict, as_list, dig, matches
from .references import istio_host, service_ports

ARCHITECTURE = "docs/architecture.md"
# Listen-port variable -> the name of the container port it must equal (docs/architecture.md: app ports are named
# `http`, their admin ports `admin`; loadgen's metrics listener `http-metrics`).
LISTEN_PORTS = {"PORT": "http", "METRICS_PORT": "http-metrics", "ADMIN_PORT": "admin"}
ADMIN_PORT_NAME = "admin"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
URL_ENV = re.compile(r"_URL$")
URL_VALUE = re.compile(r"^(?P<scheme>http|redis)://(?P<host>[a-z0-9][-a-z0-9.]*):(?P<port>\d+)(?P<path>/.*)?$")
WRITABLE_TMP = "/tmp"
REDIS_IMAGE = "redis"
CORE_FOLDER = "kubernetes/"


def check(tree: Tree) -> list[Problem]:
    built, problem = images.list_built_images(tree.root)
    if problem:
        return [Problem(problem.path, message=f"cannot tell our app containers apart: {problem.message}")]
    ours = {images.split_image(i)[0] for i in built or ()}
    known_env, doc_problem = documented_env(tree.root)
    problems = [doc_problem] if doc_problem else []
    for pod in tree.pod_templates():
        for container in pod.containers:
            image = images.split_image(str(container.get("image", "")))[0]
            if image in ours:
                problems += listen_ports(tree, pod, container)
                problems += admin_port(tree, pod, container)
                problems += service_urls(tree, pod, container)
                if known_env:
                    problems += env_names(tree, pod, container, known_env)
            if image in ours or pod.doc.path.startswith(CORE_FOLDER):
                problems += writable_tmp(pod, container)
            if image == REDIS_IMAGE:
                problems += redis_durability(pod, container)
    return problems


def documented_env(root: Path) -> tuple[set[str], Problem | None]:
    """Variable names of every `| variable | ... |` table in docs/architecture.md (the services' and loadgen's)."""
    path = root / ARCHITECTURE
    if not path.is_file():
        return set(), Problem(ARCHITECTURE, message="missing: the environment variable names cannot be checked")
    names: set[str] = set()
    in_table = False
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else []
        if not cells:
            in_table = False
        elif cells[0] == "variable":
            in_table = True
        elif in_table:
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))
    if not names:
        return set(), Problem(ARCHITECTURE, message="has no `| variable | ... |` table: the environment variable names cannot be checked")
    return names, None


def literal_env(container: dict) -> dict[str, str]:
    return {str(e.get("name")): str(e["value"]) for e in as_list(container.get("env")) if isinstance(e, dict) and "value" in e}


def named_port(container: dict, name: str) -> int | None:
    return next((p.get("containerPort") for p in as_list(container.get("ports")) if as_dict(p).get("name") == name), None)


def resolve(container: dict, port) -> int | None:
    if isinstance(port, int):
        return port
    return named_port(container, str(port)) or (int(port) if str(port).isdigit() else None)


def listen_ports(tree: Tree, pod: PodTemplate, container: dict) -> list[Problem]:
    """PORT = the container port named http = prometheus.io/port = what the Services' `http` ports send to."""
    problems = []
    name = container.get("name")
    env = literal_env(container)
    listen = None
    for variable, port_name in LISTEN_PORTS.items():
        declared = named_port(container, port_name)
        value = env.get(variable)
        if declared is None and value is None:
            continue
        if declared is None:
            problems.append(pod.doc.problem(f"container {name}: {variable}={value} but no container port is named {port_name!r}"))
        elif value is None:
            problems.append(pod.doc.problem(f"container {name}: port {port_name!r} is {declared} but {variable} is not set (the app would listen on its default)"))
        elif value != str(declared):
            problems.append(pod.doc.problem(f"container {name}: {variable}={value} but the container port named {port_name!r} is {declared}"))
        listen = listen or declared
    annotation = dig(pod.doc.pod_template(), "metadata", "annotations", "prometheus.io/port")
    if annotation is not None and listen is not None and str(annotation) != str(listen):
        problems.append(pod.doc.problem(f"container {name}: prometheus.io/port {annotation} is not its listen port {listen}"))
    http = named_port(container, LISTEN_PORTS["PORT"])
    if http is not None:
        for svc, port in service_ports_of(tree, pod):
            target = resolve(container, port.get("targetPort", port.get("port")))
            if port.get("name") == "http" and target != http:
                written = port.get("targetPort", port.get("port"))
                resolved = "" if written == target else f" (= {target})"
                problems.append(svc.problem(
                    f"port http: targetPort {written!r}{resolved} but container {name} of "
                    f"{pod.doc.kind}/{pod.doc.name} listens on {http} (PORT, port http)"))
    return problems


def admin_port(tree: Tree, pod: PodTemplate, container: dict) -> list[Problem]:
    """A shopkit service (it has PORT) serves its probes on its admin port, and no Service exposes that port: the
    admin port is reached by the kubelet and by kubectl port-forward only (docs/architecture.md, "Endpoints")."""
    if "PORT" not in literal_env(container):
        return []
    name = container.get("name")
    admin = named_port(container, ADMIN_PORT_NAME)
    if admin is None:
        return [pod.doc.problem(f"container {name}: no container port named {ADMIN_PORT_NAME!r} (and ADMIN_PORT): "
                                "its probes would share the business port with requests a delay fault holds up")]
    problems = []
    for probe_name in PROBES:
        probe = as_dict(container.get(probe_name))
        if "httpGet" in probe and resolve(container, dig(probe, "httpGet", "port")) != admin:
            problems.append(pod.doc.problem(
                f"container {name}: {probe_name} on port {dig(probe, 'httpGet', 'port')!r}, not the admin port "
                f"{admin} ({ADMIN_PORT_NAME!r}): on the business port, requests held up by a delay fault starve it"))
    for svc, port in service_ports_of(tree, pod):
        if resolve(container, port.get("targetPort", port.get("port"))) == admin:
            problems.append(svc.problem(
                f"port {port.get('name')!r} sends to the admin port {admin} of {pod.doc.kind}/{pod.doc.name}: "
                "/admin/faults must not be reachable through a Service (use kubectl port-forward)"))
    return problems


def service_ports_of(tree: Tree, pod: PodTemplate):
    """(Service, port) for every port of every Service in the pod's namespace that selects the pod."""
    for svc in tree.of_kind("Service"):
        if svc.namespace and pod.doc.namespace and svc.namespace != pod.doc.namespace:
            continue
        if matches(as_dict(svc.spec.get("selector")), pod.labels):
            for port in as_list(svc.spec.get("ports")):
                yield svc, as_dict(port)


def service_urls(tree: Tree, pod: PodTemplate, container: dict) -> list[Problem]:
    """Every *_URL is scheme://<Service>:<one of its ports>: a typo would only show as connection errors."""
    problems = []
    for variable, value in literal_env(container).items():
        if not URL_ENV.search(variable):
            continue
        where = f"container {container.get('name')} env {variable}={value}"
        m = URL_VALUE.match(value)
        if not m:
            problems.append(pod.doc.problem(f"{where}: not of the form http://<service>:<port> (redis://<service>:<port>/<db>)"))
            continue
        name, ns = istio_host(m["host"], pod.doc.namespace)
        services = tree.find("Service", name, ns)
        if not services:
            problems.append(pod.doc.problem(f"{where}: {m['host']!r} is not a Service in our manifests"))
        elif not any(int(m["port"]) in service_ports(s) for s in services):
            problems.append(pod.doc.problem(f"{where}: Service {name} has no port {m['port']} (ports: {service_ports(services[0])})"))
    return problems


def env_names(tree: Tree, pod: PodTemplate, container: dict, known: set[str]) -> list[Problem]:
    """Our code reads only the documented variables: any other name (a typo) would be ignored without a word."""
    names = [(str(e.get("name")), "env") for e in as_list(container.get("env")) if isinstance(e, dict)]
    for source in as_list(container.get("envFrom")):
        ref = as_dict(as_dict(source).get("configMapRef"))
        for cm in tree.find("ConfigMap", str(ref.get("name")), pod.doc.namespace) if ref else []:
            prefix = str(as_dict(source).get("prefix", ""))
            names += [(prefix + key, f"envFrom ConfigMap {cm.name}") for key in as_dict(cm.obj.get("data"))]
    return [pod.doc.problem(f"container {container.get('name')} {where}: {name} is not a variable of {ARCHITECTURE} "
                            "(Environment tables); a misspelled name is silently ignored")
            for name, where in names if name not in known]


def writable_tmp(pod: PodTemplate, container: dict) -> list[Problem]:
    if dig(container, "securityContext", "readOnlyRootFilesystem") is not True:
        return []
    mounts = {str(as_dict(m).get("mountPath", "")).rstrip("/") for m in as_list(container.get("volumeMounts"))}
    if WRITABLE_TMP in mounts:
        return []
    return [pod.doc.problem(f"container {container.get('name')}: readOnlyRootFilesystem: true but no volume is mounted "
                            f"at {WRITABLE_TMP} (gunicorn, Python's tempfile and the metrics of the workers write there)")]


def redis_durability(pod: PodTemplate, container: dict) -> list[Problem]:
    words = " ".join(str(a) for a in as_list(container.get("command")) + as_list(container.get("args"))).split()
    if any(a == "--appendonly" and b == "yes" for a, b in zip(words, words[1:])):
        return []
    return [pod.doc.problem(f"container {container.get('name')}: Redis runs without `--appendonly yes`, so a restart "
                            "loses the carts and orders written since the last snapshot")]

"""Looking at a running local mesh from outside, with the standard library only (quick-test runs it too).

The inventory says where everything is; `call_as` is what a meshed pod's sidecar does on its behalf (mTLS with
that identity's certificate, straight to a workload's inbound listener); `stats` reads an Envoy's counters and
`requests_served` an app's own, on its admin port.
"""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Answer:
    status: int | None  # None: no HTTP answer (refused, reset, TLS handshake failed)
    body: bytes
    error: str = ""
    peer_ids: tuple[str, ...] = ()  # the names of the server's certificate: URI SANs (Istio), DNS SANs (Linkerd)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names


class Inventory:
    def __init__(self, data: dict, path: Path | None = None):
        self.data = data
        self.path = path

    @classmethod
    def load(cls, path: str | Path) -> "Inventory":
        """OSError when the file cannot be read, ValueError when it is not JSON or not an inventory."""
        path = Path(path)
        data = json.loads(path.read_text())
        if not (isinstance(data, dict) and isinstance(data.get("ingress"), dict) and "url" in data["ingress"]
                and isinstance(data.get("workloads"), list)):
            raise ValueError("no ingress.url or workloads in it")
        return cls(data, path)

    @property
    def gateway_url(self) -> str:
        return self.data["ingress"]["url"]

    def workloads(self, service: str | None = None, version: str | None = None) -> list[dict]:
        return [w for w in self.data["workloads"] if (service is None or w["service"] == service)
                and (version is None or w["version"] == version)]

    def workload(self, instance: str) -> dict:
        for entry in [self.data["ingress"], *self.data["workloads"]]:
            if entry["instance"] == instance:
                return entry
        raise KeyError(instance)

    def identity(self, account: str) -> dict:
        """`namespace/account`, e.g. e-commerce/default."""
        return self.data["identities"][account]

    def outbound(self, instance: str, service: str) -> str:
        listener = next(o["listener"] for o in self.workload(instance)["outbound"] if o["service"] == service)
        return f"http://{listener}"

    @property
    def root_certificate(self) -> str:
        return self.data["ca"]["root_certificate"]


def client_context(inventory: Inventory, account: str) -> ssl.SSLContext:
    """What `account`'s sidecar presents: its certificate (with Linkerd's issuer), trusting the local CA's root."""
    identity = inventory.identity(account)
    context = ssl.create_default_context(cafile=inventory.root_certificate)
    context.check_hostname = False  # the mesh checks identities (SANs), not host names
    context.load_cert_chain(identity["certificate"], identity["key"])
    return context


def peer_names(sock) -> tuple[str, ...]:
    return tuple(value for kind, value in sock.getpeercert().get("subjectAltName", ()) if kind in ("URI", "DNS"))


def call_as(inventory: Inventory, account: str | None, instance: str, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None, timeout: float = 5.0) -> Answer:
    """A request to a workload's inbound listener with the certificate of `account`, or plaintext when None."""
    host, port = inventory.workload(instance)["sidecar_inbound"].split(":")
    if account is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(host, int(port), context=client_context(inventory, account), timeout=timeout)
    peer_ids: tuple[str, ...] = ()
    try:
        conn.connect()
        if account is not None:
            peer_ids = peer_names(conn.sock)
        conn.request(method, path, body=body or None, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        return Answer(response.status, response.read(), peer_ids=peer_ids,
                      headers={k.lower(): v for k, v in response.getheaders()})
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Answer(None, b"", f"{type(exc).__name__}: {exc}", peer_ids)
    finally:
        conn.close()


def tcp_exchange(inventory: Inventory, account: str | None, instance: str, data: bytes = b"PING\r\n",
                 timeout: float = 5.0) -> bytes:
    """Bytes sent to a workload's inbound listener over TCP (mTLS as `account`, or plaintext when None) and the
    first answer; b"" when the connection is closed or reset without one (the network RBAC filter's refusal)."""
    host, port = inventory.workload(instance)["sidecar_inbound"].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as raw:
            if account is None:
                raw.sendall(data)
                return raw.recv(64)
            with client_context(inventory, account).wrap_socket(raw) as tls:
                tls.sendall(data)
                return tls.recv(64)
    except (ConnectionError, ssl.SSLError):
        return b""


def text(url: str, timeout: float = 5.0) -> str:
    """A whole text page (metrics, stats); empty when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.read().decode(errors="replace")
    except (OSError, http.client.HTTPException):
        return ""


def requests_served(inventory: Inventory, service: str, method: str, route: str) -> float:
    """What a service's instances counted themselves (http_requests_total for one method and route template),
    from each app's /metrics on its admin port: straight to the app, past its sidecar."""
    wanted = (f'method="{method}"', f'route="{route}"')
    total = 0.0
    for entry in inventory.workloads(service):
        for line in text(entry["app_admin"] + "/metrics").splitlines():
            if line.startswith("http_requests_total{") and all(label in line for label in wanted):
                total += float(line.rpartition(" ")[2])
    return total


def stats(admin_url: str, pattern: str = "") -> dict[str, float]:
    """Envoy's counters and gauges from /stats whose names contain `pattern`."""
    out = {}
    text_ = text(admin_url.rstrip("/") + "/stats")
    for line in text_.splitlines():
        name, sep, value = line.partition(": ")
        if sep and pattern in name:
            try:
                out[name] = float(value)
            except ValueError:
                continue  # text readouts and histograms
    return out


def ejected_hosts(admin_url: str, cluster: str | None = None) -> set[str]:
    """The endpoints (host:port) of one cluster (None: of any) that outlier detection holds out now (Envoy's
    /clusters)."""
    out = set()
    for line in text(admin_url.rstrip("/") + "/clusters").splitlines():
        name, _, rest = line.partition("::")
        host, _, detail = rest.partition("::")
        if cluster in (None, name) and detail.startswith("health_flags::") and "failed_outlier_check" in detail:
            out.add(host)
    return out


def stat(admin_url: str, name: str) -> float:
    return stats(admin_url, name).get(name, 0.0)


def cluster_stat(admin_url: str, cluster: str, counter: str) -> float:
    return stat(admin_url, f"cluster.{cluster}.{counter}")


def access_log(path: str | Path) -> list[dict]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    return [json.loads(line) for line in lines if line.startswith("{")]


def wait_for_log(path: str | Path, wanted, timeout_s: float = 10.0) -> list[dict]:
    """Access log lines for which `wanted(entry)` holds; Envoy writes its log files in batches, seconds apart."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [e for e in access_log(path) if wanted(e)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def port_open(address: str) -> bool:
    host, port = address.split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False

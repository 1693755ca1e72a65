"""How the quick test reaches the shop and the Prometheus servers in a cluster, and closes everything it opened.

A `kubectl port-forward` to api-gateway enters the gateway pod's network namespace and bypasses its sidecar
(linkerd/linkerd2#2352: "port-forward traffic skips the proxy"): the ingress, the edge route and the gateway's
authorization would never be exercised. So the way in is, per mesh:
- Istio: the ingress gateway, at its external address when it answers, else through a port-forward to
  svc/istio-ingressgateway (its Envoy then routes by istio/gateway.yaml and is checked by the gateway's policy);
- Linkerd (no ingress of its own): a throwaway *meshed* relay pod in the app namespace, made from the loadgen image
  the cluster already has, that forwards a port-forwarded port to api-gateway:5000 through its own proxy, with
  mTLS and the gateway's inbound policy (the public routes, open to any client: linkerd/authorization.yaml);
- no mesh: svc/api-gateway directly.
"""
from __future__ import annotations

import queue
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field

from .client import http
from .kube import Kube, first_line
from .results import progress
from .settings import GATEWAY_PORT, PORT_FORWARD_WAIT_S, RELAY_POD_LABEL, RELAY_PORT

# The relay: one small asyncio program, run with the image's own python (stdlib only). Each accepted connection is
# piped both ways to the gateway Service; its outbound connection is what the pod's proxy intercepts.
RELAY_PROGRAM = f"""
import asyncio
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
async def handle(client_reader, client_writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("api-gateway", {GATEWAY_PORT})
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer),
                         return_exceptions=True)
async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", {RELAY_PORT})
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""
FORWARDING = re.compile(r"^Forwarding from 127\.0\.0\.1:(\d+) ")


class AccessError(Exception):
    """The shop cannot be reached at all: the run stops with this one line."""


@dataclass
class Way:
    url: str
    description: str  # shown in the table: how the gateway was reached
    through_mesh: bool  # False: the requests bypass the gateway's proxy (no ingress, no policy exercised)


@dataclass
class Access:
    kube: Kube
    mesh: str | None
    forwards: list[subprocess.Popen] = field(default_factory=list)
    relay_pod: str | None = None

    # -- port-forwards ------------------------------------------------------------------------------------------
    def forward(self, namespace: str, target: str, remote_port: int | str) -> str | None:
        """`kubectl port-forward` on a local port kubectl picks (":PORT": no race for a free port); the URL, or None."""
        command = [self.kube.kubectl, "-n", namespace, "port-forward", "--address", "127.0.0.1", target, f":{remote_port}"]
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except FileNotFoundError:
            return None
        self.forwards.append(process)
        lines: queue.Queue[str] = queue.Queue()

        def read() -> None:  # keeps draining, so kubectl never blocks on a full pipe
            for line in process.stdout:  # type: ignore[union-attr]
                lines.put(line)

        threading.Thread(target=read, daemon=True).start()
        deadline, seen = time.monotonic() + PORT_FORWARD_WAIT_S, []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                if process.poll() is not None:
                    break
                continue
            seen.append(line)
            match = FORWARDING.match(line)
            if match:
                return f"http://127.0.0.1:{match.group(1)}"
        progress(f"kubectl port-forward -n {namespace} {target} did not start: {first_line(''.join(seen))}")
        return None

    def service_port(self, namespace: str, name: str, port_name: str | None = None) -> int | None:
        listing = self.kube.read_in(namespace, "get", "service", name, "-o", "json")
        if listing.returncode != 0:
            return None
        import json
        ports = json.loads(listing.stdout).get("spec", {}).get("ports", [])
        chosen = [p for p in ports if port_name is None or p.get("name") == port_name] or ports
        return int(chosen[0]["port"]) if chosen else None

    def forward_service(self, namespace: str, name: str, port_name: str | None = None) -> str | None:
        port = self.service_port(namespace, name, port_name)
        return self.forward(namespace, f"svc/{name}", port) if port else None

    # -- the gateway ------------------------------------------------------------------------------------------
    def gateway(self) -> Way:
        if self.mesh == "istio":
            way = self.istio_ingress()
        elif self.mesh == "linkerd":
            way = self.linkerd_relay()
        else:
            way = None
        if way is None:
            url = self.forward_service(self.kube.namespace, "api-gateway")
            if url is None:
                raise AccessError(f"could not port-forward svc/api-gateway in {self.kube.namespace}: check "
                                  f"'kubectl get pods -n {self.kube.namespace}'")
            way = Way(url, f"port-forward svc/api-gateway on {url[7:]} (enters the pod: bypasses its proxy)", False)
        return way

    def istio_ingress(self) -> Way | None:
        listing = self.kube.read_in("istio-system", "get", "service", "istio-ingressgateway", "-o", "json")
        if listing.returncode != 0:
            progress("no istio-ingressgateway Service in istio-system: the gateway is reached directly")
            return None
        import json
        service = json.loads(listing.stdout)
        ports = {p.get("name"): p.get("port") for p in service.get("spec", {}).get("ports", [])}
        port = ports.get("http2") or 80
        for ingress in service.get("status", {}).get("loadBalancer", {}).get("ingress") or []:
            address = ingress.get("ip") or ingress.get("hostname")
            if address and http("GET", f"http://{address}:{port}/health", timeout=3).ok:
                return Way(f"http://{address}:{port}", f"istio ingress {address}:{port}", True)
        url = self.forward("istio-system", "svc/istio-ingressgateway", port)
        if url is None:
            return None
        return Way(url, f"istio ingress through port-forward svc/istio-ingressgateway on {url[7:]}", True)

    def linkerd_relay(self) -> Way | None:
        image = self.kube.read("get", "deployment", "loadgen", "-o",
                               "jsonpath={.spec.template.spec.containers[0].image}").stdout.strip()
        if not image:
            progress("no loadgen Deployment to take a relay image from: the gateway is reached directly")
            return None
        pod = f"{RELAY_POD_LABEL}-{secrets.token_hex(3)}"
        self.kube.change("delete", "pod", "-l", f"app={RELAY_POD_LABEL}", "--ignore-not-found", "--wait=false")
        created = self.kube.change("run", pod, f"--image={image}", "--restart=Never", f"--labels=app={RELAY_POD_LABEL}",
                                   "--command", "--", "python3", "-c", RELAY_PROGRAM)
        if created.returncode != 0:
            progress(f"could not start the relay pod: {first_line(created.stderr)}")
            return None
        self.relay_pod = pod
        waited = self.kube.change("wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=90s", timeout=100)
        if waited.returncode != 0:
            progress(f"relay pod {pod} not ready within 90 s: {first_line(waited.stderr)}")
            return None
        url = self.forward(self.kube.namespace, f"pod/{pod}", RELAY_PORT)
        if url is None:
            return None
        return Way(url, f"meshed relay pod {pod} through port-forward on {url[7:]}", True)

    # -- Prometheus ---------------------------------------------------------------------------------------------
    def prometheus(self, given: str | None) -> tuple[str | None, str | None]:
        """(our Prometheus, the mesh's): monitoring/ or the app namespace, and istio-system / linkerd-viz."""
        mesh_namespace = {"istio": "istio-system", "linkerd": "linkerd-viz"}.get(self.mesh or "")
        mesh_url = self.forward_service(mesh_namespace, "prometheus") if mesh_namespace else None
        app_url = given
        for candidate in ("monitoring", self.kube.namespace):
            if app_url:
                break
            app_url = self.forward_service(candidate, "prometheus")
        # Istio's add-on Prometheus also scrapes annotated pods; Linkerd viz's never scrapes app /metrics.
        if not app_url and self.mesh == "istio":
            app_url = mesh_url
        return app_url, mesh_url

    # -- closing ------------------------------------------------------------------------------------------------
    def close(self) -> None:
        if self.relay_pod:
            self.kube.change("delete", "pod", self.relay_pod, "--ignore-not-found", "--wait=false")
            self.relay_pod = None
        for process in self.forwards:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self.forwards:
            progress(f"closed {len(self.forwards)} port-forward(s)")
        self.forwards.clear()

    def __enter__(self) -> "Access":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

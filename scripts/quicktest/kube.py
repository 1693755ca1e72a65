"""Cluster-only checks through kubectl: pods ready (with their proxy), and authorization probed from a throwaway pod."""
from __future__ import annotations

import json
import secrets
import subprocess
from typing import Any

from .results import FAIL, PASS, SKIP, Check, progress
from .settings import CLUSTER_WORKLOADS, CURL_POD_LABEL, MESH_PROXY_CONTAINERS


class Kube:
    def __init__(self, kubectl: str, namespace: str, dry_run: bool = False):
        self.kubectl = kubectl
        self.namespace = namespace
        self.dry_run = dry_run

    def read(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A read-only kubectl call in the app namespace."""
        return self.read_in(self.namespace, *args, timeout=timeout)

    def read_in(self, namespace: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A read-only kubectl call in another namespace."""
        return _command([self.kubectl, "--request-timeout=15s", "-n", namespace, *args], timeout)

    def change(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """Every kubectl call that changes the cluster goes through here, so --dry-run only prints it."""
        command = [self.kubectl, "-n", self.namespace, *args]
        if self.dry_run:
            print(f"[dry-run] {' '.join(command)}")
            return subprocess.CompletedProcess(command, 0, "", "")
        progress("+ " + " ".join(command))
        return _command(command, timeout)


def _command(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "",
                                           f"{' '.join(command[:3])}... timed out after {timeout:g} s")


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def check_pods(kube: Kube, mesh: str | None) -> list[Check]:
    listing = kube.read("get", "pods", "-o", "json")
    if listing.returncode != 0:
        return [Check("pods ready", FAIL, f"kubectl get pods -n {kube.namespace}: {first_line(listing.stderr)}")]
    pods = [p for p in json.loads(listing.stdout).get("items", []) if not p["metadata"].get("deletionTimestamp")]
    checks = []
    proxy = MESH_PROXY_CONTAINERS.get(mesh or "")
    for app, version in CLUSTER_WORKLOADS:
        name = f"pods {app}" + (f" {version}" if version else "")
        mine = [p for p in pods if p["metadata"].get("labels", {}).get("app") == app
                and (version is None or p["metadata"].get("labels", {}).get("version") == version)]
        ready = [p for p in mine if _pod_ready(p)]
        restarts = sum(c.get("restartCount", 0) for p in mine for c in p.get("status", {}).get("containerStatuses", []))
        figures: dict[str, Any] = {"ready": len(ready), "pods": len(mine), "restarts": restarts}
        if not mine:
            checks.append(Check(name, FAIL, f"no pod with label app={app}" + (f",version={version}" if version else "")
                                + f" in namespace {kube.namespace}", figures))
            continue
        if len(ready) < len(mine):
            waiting = [_pod_problem(p) for p in mine if not _pod_ready(p)]
            checks.append(Check(name, FAIL, f"{len(ready)}/{len(mine)} ready: {'; '.join(waiting)}", figures))
            continue
        text = f"{len(ready)}/{len(mine)} ready, {restarts} restarts"
        if proxy:
            without = [p["metadata"]["name"] for p in mine if proxy not in _container_names(p)]
            figures["proxy"] = proxy
            if without:
                checks.append(Check(name, FAIL, f"{text}, but no {proxy} in {', '.join(without)}: restart the "
                                                f"Deployment after enabling injection", figures))
                continue
            text += f", {proxy} injected"
        checks.append(Check(name, PASS, text, figures))
    return checks


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_problem(pod: dict[str, Any]) -> str:
    for status in pod.get("status", {}).get("containerStatuses", []):
        waiting = status.get("state", {}).get("waiting")
        if waiting:
            return f"{pod['metadata']['name']} {waiting.get('reason', 'waiting')}"
    return f"{pod['metadata']['name']} {pod.get('status', {}).get('phase', 'not ready')}"


def _container_names(pod: dict[str, Any]) -> set[str]:
    spec = pod.get("spec", {})
    return {c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])}


# A denial comes from payment's own proxy: Istio answers a meshed caller HTTP 403 (RBAC: access denied) and resets a
# plaintext connection under STRICT mTLS; Linkerd's proxy answers 403 to a caller its policy does not allow (meshed or
# not) or closes the connection. curl's exits for a connection that was closed or reset:
CURL_REFUSED = {52: "empty reply", 56: "connection reset"}
# ... and those that prove nothing about a policy: a slow or absent payment is not a denial.
CURL_INCONCLUSIVE = {7: "connection refused (is payment-service running?)", 28: "no answer within 5 s"}
# The second probe runs outside the mesh: injection disabled for this one pod, whichever mesh it is
# (Istio: label sidecar.istio.io/inject=false; Linkerd: annotation linkerd.io/inject=disabled).
UNMESHED_LABEL = "sidecar.istio.io/inject=false"
UNMESHED_ANNOTATION = "linkerd.io/inject=disabled"


def judge_authorization_probe(curl_exit: int, http_status: str) -> tuple[str, str]:
    """(outcome, text) of a throwaway pod's POST to payment: outcome "refused", "allowed" or "inconclusive"."""
    if curl_exit == 0 and http_status == "403":
        return "refused", "HTTP 403"
    if curl_exit in CURL_REFUSED:
        return "refused", CURL_REFUSED[curl_exit]
    if curl_exit == 0:
        return "allowed", f"HTTP {http_status}"
    if curl_exit in CURL_INCONCLUSIVE:
        return "inconclusive", CURL_INCONCLUSIVE[curl_exit]
    if curl_exit == 6:
        return "inconclusive", "could not resolve payment-service (cluster DNS?)"
    return "inconclusive", f"curl failed (exit {curl_exit})"


def start_probe_pod(kube: Kube, image: str, meshed: bool) -> tuple[str, str]:
    """(pod name, error): a curl pod that sleeps until it is used, meshed or with injection disabled."""
    pod = f"{CURL_POD_LABEL}-{'meshed' if meshed else 'plain'}-{secrets.token_hex(3)}"
    labels = f"app={CURL_POD_LABEL}" + ("" if meshed else f",{UNMESHED_LABEL}")
    extra = [] if meshed else [f"--annotations={UNMESHED_ANNOTATION}"]
    created = kube.change("run", pod, f"--image={image}", "--restart=Never", f"--labels={labels}", *extra,
                          "--command", "--", "sleep", "300")
    return pod, "" if created.returncode == 0 else first_line(created.stderr)


def probe_payment(kube: Kube, pod: str) -> tuple[str, str, dict[str, Any]]:
    """POST an invalid body to payment from the pod: if a policy wrongly lets it through, payment answers 400 and
    charges nothing."""
    probe = kube.read("exec", pod, "-c", pod, "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                      "-m", "5", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
                      "http://payment-service:5003/payments", timeout=30)
    code = probe.stdout.strip()[-3:]
    outcome, text = judge_authorization_probe(probe.returncode, code)
    if outcome == "inconclusive":
        detail = first_line(probe.stderr) or first_line(probe.stdout)
        text += f" ({detail})" if detail else ""
    return outcome, text, {"pod": pod, "curl_exit": probe.returncode, "http_status": code}


def check_authorization(kube: Kube, mesh: str | None, image: str, gateway_check: Check) -> Check:
    """Payment must refuse a meshed pod that is not the cart (identity) and a plaintext one (mTLS / default deny)."""
    name = "authorization"
    if mesh is None:
        return Check(name, SKIP, "no mesh policy locally: any process on this machine may call payment")
    # Leftovers of a run that was killed before it could clean up (safe to rerun).
    kube.change("delete", "pod", "-l", f"app={CURL_POD_LABEL}", "--ignore-not-found", "--wait=false")
    pods: dict[str, str] = {}
    try:
        for kind, meshed in (("meshed", True), ("plaintext", False)):
            pod, error = start_probe_pod(kube, image, meshed)
            if error:
                return Check(name, SKIP, f"could not start a throwaway curl pod: {error}")
            pods[kind] = pod
        for kind, pod in pods.items():
            waited = kube.change("wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=90s", timeout=100)
            if waited.returncode != 0:
                return Check(name, SKIP, f"throwaway pod {pod} ({image}) not ready within 90 s: "
                                         f"{first_line(waited.stderr)} (is the image pullable?)")
        results = {kind: probe_payment(kube, pod) for kind, pod in pods.items()}
    finally:
        for pod in pods.values():
            kube.change("delete", "pod", pod, "--ignore-not-found", "--wait=false")
    figures: dict[str, Any] = {kind: result[2] for kind, result in results.items()}
    figures["gateway"] = gateway_check.status
    said = {kind: f"{kind} pod {result[2]['pod']}: {result[1]}" for kind, result in results.items()}
    allowed = [said[k] for k, r in results.items() if r[0] == "allowed"]
    if allowed:
        what = {"meshed": "a caller that is not the cart", "plaintext": "a plaintext (unmeshed) caller"}
        whom = " and ".join(what[k] for k, r in results.items() if r[0] == "allowed")
        return Check(name, FAIL, f"payment answered {whom} ({'; '.join(allowed)}): the {mesh} authorization policy "
                                 f"(or {'STRICT mTLS' if mesh == 'istio' else 'the deny default'}) does not protect "
                                 "payment", figures)
    unclear = [said[k] for k, r in results.items() if r[0] == "inconclusive"]
    if unclear:
        return Check(name, SKIP, f"inconclusive: no answer from payment ({'; '.join(unclear)})", figures)
    if gateway_check.status != PASS:
        return Check(name, FAIL, f"payment refused both probes ({'; '.join(said.values())}), but the gateway is not "
                                 f"reachable: {gateway_check.reason}", figures)
    return Check(name, PASS, f"payment refused a meshed pod that is not the cart ({results['meshed'][1]}) and a "
                             f"plaintext one ({results['plaintext'][1]}); gateway reachable; pods deleted", figures)

"""The connections between each app and its sidecar: who closes an idle connection first, and who stops first.

- Idle timeouts: gunicorn closes a keep-alive connection after `keepalive` seconds; Envoy keeps its upstream ones for
  1 h by default (Envoy docs, faq/configuration/timeouts: "The default idle timeout ... is 1 hour"). If the app
  closes first, the next request on that connection gets Envoy's 503 "upstream connect error or disconnect/reset
  before headers". Every DestinationRule must therefore set `connectionPool.http.idleTimeout` below the apps'
  keep-alive (Istio applies it to the server side's inbound cluster too: pilot/pkg/networking/core/
  cluster_builder.go). Linkerd's proxy needs nothing: its HTTP/1 pools close idle connections after 3 s
  (linkerd2-proxy linkerd/app/src/env.rs, DEFAULT_*_HTTP1_CONNECTION_POOL_IDLE_TIMEOUT).
- Shutdown: where istio-proxy is an ordinary container (kubelets before 1.33, Istio's DetectNativeSidecar), it exits
  terminationDrainDuration (default 5 s) after the pod's SIGTERM, while the app is still in its preStop sleep and
  graceful stop. The Istio overlay must give it at least preStop + gunicorn's graceful_timeout for every app pod
  (one with a preStop sleep: our gunicorn services).
The apps' numbers are read from services/shopkit/shopkit/gunicorn_conf.py (never imported).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .mesh_config import seconds
from .model import Document, Problem, Tree, as_dict, as_list, dig

GUNICORN_CONF = "services/shopkit/shopkit/gunicorn_conf.py"
ISTIO_PROXY_CONFIG = "proxy.istio.io/config"
DEFAULT_DRAIN_S = 5.0  # Istio's meshConfig.defaultConfig.terminationDrainDuration (pkg/config/mesh/mesh.go)


def gunicorn_setting(root: Path, name: str) -> float | None:
    path = root / GUNICORN_CONF
    if not path.is_file():
        return None
    match = re.search(rf"^{name}\s*=\s*(\d+(?:\.\d+)?)\s*(?:#.*)?$", path.read_text(encoding="utf-8"), re.M)
    return float(match.group(1)) if match else None


def check(tree: Tree) -> list[Problem]:
    keepalive = gunicorn_setting(tree.root, "keepalive")
    graceful = gunicorn_setting(tree.root, "graceful_timeout")
    if keepalive is None or graceful is None:
        return [Problem(GUNICORN_CONF, message="no `keepalive = N` and `graceful_timeout = N` found: the idle-timeout and "
                                               "shutdown checks need the apps' numbers")]
    problems = []
    for rule in tree.of_kind("DestinationRule", group="networking.istio.io"):
        problems.extend(idle_timeouts(rule, keepalive))
    problems.extend(istio_drain(tree, graceful))
    return problems


def traffic_policies(rule: Document) -> list[tuple[str, dict]]:
    """(where, trafficPolicy) of the rule itself and of its subsets and port-level settings."""
    found = [("trafficPolicy", as_dict(rule.spec.get("trafficPolicy")))]
    for s, subset in enumerate(as_list(rule.spec.get("subsets"))):
        if as_dict(subset).get("trafficPolicy") is not None:
            found.append((f"subsets[{s}].trafficPolicy", as_dict(as_dict(subset).get("trafficPolicy"))))
    for where, policy in list(found):
        for p, port in enumerate(as_list(policy.get("portLevelSettings"))):
            found.append((f"{where}.portLevelSettings[{p}]", as_dict(port)))
    return found


def idle_timeouts(rule: Document, keepalive: float) -> list[Problem]:
    problems = []
    for where, policy in traffic_policies(rule):
        value = dig(policy, "connectionPool", "http", "idleTimeout")
        if value is None:
            if where == "trafficPolicy":
                problems.append(rule.problem(
                    f"{where}.connectionPool.http.idleTimeout is not set: Envoy keeps idle upstream connections 1h, "
                    f"the apps close theirs after {keepalive:g}s, and a request on a connection the app just closed "
                    f"gets a 503 (upstream connect error or disconnect/reset before headers); set it below {keepalive:g}s"))
            continue
        idle = seconds(str(value))
        if idle is None or idle <= 0 or idle >= keepalive:
            problems.append(rule.problem(
                f"{where}.connectionPool.http.idleTimeout {value!r} must be a duration above 0 and below the apps' "
                f"keep-alive ({keepalive:g}s, {GUNICORN_CONF}), so the proxy closes an idle connection first"))
    return problems


def prestop_sleep_s(pod: dict) -> float:
    longest = 0.0
    for container in as_list(as_dict(pod.get("spec")).get("containers")):
        command = as_list(dig(container, "lifecycle", "preStop", "exec", "command", default=[]))
        if len(command) == 2 and str(command[0]).endswith("sleep") and str(command[1]).isdigit():
            longest = max(longest, float(command[1]))
    return longest


def istio_drain(tree: Tree, graceful: float) -> list[Problem]:
    """The drain set by the Istio overlay's Deployment patch against every Deployment of the base."""
    patches = [p for p in tree.patches if p.path.startswith("istio/") and p.kind == "Deployment"]
    drain, source = DEFAULT_DRAIN_S, None
    for patch in patches:
        raw = dig(patch.obj, "spec", "template", "metadata", "annotations", ISTIO_PROXY_CONFIG)
        if raw is None:
            continue
        try:
            value = as_dict(json.loads(raw)).get("terminationDrainDuration")
        except (TypeError, ValueError):
            return [patch.problem(f"{ISTIO_PROXY_CONFIG} is not JSON: {raw!r}")]
        parsed = seconds(str(value)) if value is not None else None
        if parsed is None:
            return [patch.problem(f"{ISTIO_PROXY_CONFIG} has no terminationDrainDuration like \"25s\": {raw!r}")]
        drain, source = parsed, patch
    problems = []
    for doc in tree.of_kind("Deployment", scenarios=False):
        if not doc.path.startswith("kubernetes/"):
            continue
        pod = as_dict(doc.pod_template())
        sleep = prestop_sleep_s(pod)
        if not sleep:
            continue  # not one of the gunicorn apps (redis, loadgen)
        needed = sleep + graceful
        where = f"{source.path}" if source else "no patch under istio/ (Istio's default)"
        if drain < needed:
            problems.append(doc.problem(
                f"istio-proxy drains {drain:g}s ({where}) but the app may still be serving for {needed:g}s (preStop "
                f"sleep + gunicorn graceful_timeout): on kubelets before 1.33 (no native sidecar) the proxy would cut "
                f"requests in flight; set {ISTIO_PROXY_CONFIG} terminationDrainDuration to at least {needed:g}s"))
    return problems

"""Which checks run in which mode, in what order, and what --dry-run would do."""
from __future__ import annotations

import argparse
import time
import urllib.parse
from typing import Callable

from .canary import check_canary
from .client import Shop
from .kube import Kube, check_authorization, check_pods
from .observe import Prometheus, check_mtls, check_prometheus_targets, cluster_target_matchers, local_target_matchers
from .results import FAIL, PASS, SKIP, Check, guarded, progress
from .settings import LOCAL_SERVICE_PORTS, MTLS_WINDOW_MARGIN_S, PROMETHEUS_SETTLE_S
from .shop_checks import check_cart, check_catalog, check_checkout, check_get_success, check_service_health


def parse_service_urls(text: str) -> dict[str, str]:
    urls = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, url = part.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise argparse.ArgumentTypeError(f"bad --service-urls entry '{part}': use name=http://host:port")
        urls[name.strip()] = url.strip()
    return urls


def default_service_urls(gateway_url: str) -> dict[str, str]:
    """The local ports of docs/architecture.md, on the gateway's host, when the gateway is on its own port 5000."""
    parts = urllib.parse.urlsplit(gateway_url)
    if parts.port != LOCAL_SERVICE_PORTS["api-gateway"]:
        return {"api-gateway": gateway_url}
    return {name: f"{parts.scheme}://{parts.hostname}:{port}" for name, port in LOCAL_SERVICE_PORTS.items()}


def run_checks(args: argparse.Namespace) -> list[Check]:
    if args.local_mesh:
        return run_local_mesh(args)
    mesh = args.mesh if args.mode == "cluster" and args.mesh != "none" else None
    shop = Shop(args.url)
    kube = Kube(args.kubectl, args.namespace)
    checks: list[Check] = []

    progress("health")
    if args.mode == "local":
        given = args.service_urls or default_service_urls(args.url)
        # The gateway is always the --url one, and comes first.
        service_urls = {"api-gateway": args.url, **{k: v for k, v in given.items() if k != "api-gateway"}}
        checks.extend(check_service_health(name, url) for name, url in service_urls.items())
        gateway = checks[0]
        if gateway.status == FAIL and "connection refused" in gateway.reason:
            gateway.reason += " (is the stack running? ./run-local.sh)"
        if len(service_urls) == 1:
            checks.append(Check("health other services", SKIP,
                                "not probed directly: the gateway is not on port 5000, pass --service-urls "
                                "name=url,... (they are exercised through the gateway below)"))
    else:
        service_urls = {}
        pods = guarded("pods ready", lambda: check_pods(kube, mesh))
        checks.extend(pods if isinstance(pods, list) else [pods])
        gateway = check_service_health("api-gateway", args.url)
        gateway.name = "gateway reachable"
        gateway.reason = gateway.reason.replace(f" at {args.url}", f" through {args.access}")
        gateway.figures["access"] = args.access
        gateway.figures["through_mesh"] = args.through_mesh
        if mesh and not args.through_mesh and gateway.status == PASS:
            gateway.reason += "; NOT through the mesh: the ingress, the edge route and the gateway's authorization "\
                              "were not exercised"
        checks.append(gateway)

    versions_seen: list[str] = []

    def checkout() -> Check:
        check, versions = check_checkout(shop)
        versions_seen.extend(versions)
        return check

    steps: list[tuple[str, Callable[[], Check]]] = [
        ("catalog via gateway", lambda: check_catalog(shop)),
        ("cart add/read/remove", lambda: check_cart(shop)),
        ("checkout (idempotent retry)", checkout),
        ("canary split 95/5", lambda: check_canary(shop, args.samples, mesh, versions_seen)),
        ("GET success with faults", lambda: check_get_success(shop, args.samples, mesh)),
    ]
    for name, step in steps:
        if gateway.status != PASS:
            checks.append(Check(name, SKIP, f"gateway not reachable at {args.url} (see above)"))
            continue
        progress(name)
        checks.append(guarded(name, step))

    progress("authorization, mTLS, Prometheus")
    checks.append(guarded("authorization", lambda: check_authorization(kube, mesh, args.curl_image, gateway)))
    mesh_prometheus_url = args.mesh_prometheus_url or args.prometheus_url
    mesh_prometheus = Prometheus(mesh_prometheus_url) if mesh_prometheus_url else None
    tools = {"istioctl": args.istioctl, "linkerd": args.linkerd}
    window_s = int(time.monotonic() - args.started + MTLS_WINDOW_MARGIN_S)
    checks.append(guarded("mTLS", lambda: check_mtls(kube, mesh, mesh_prometheus, tools, window_s)))
    app_prometheus = Prometheus(args.prometheus_url) if args.prometheus_url else None
    if args.mode == "local":
        matchers, settle_s = local_target_matchers(service_urls), 0.0
        why_none = "no Prometheus given: pass --prometheus-url http://host:port to check its targets"
    else:
        matchers, settle_s = cluster_target_matchers(), PROMETHEUS_SETTLE_S
        why_none = ("no Prometheus Service found (monitoring/, e-commerce/ or the mesh's): apply monitoring/ or pass "
                    "--prometheus-url")
    checks.append(guarded("Prometheus targets",
                          lambda: check_prometheus_targets(app_prometheus, matchers, why_none, settle_s)))
    args.retries = dict(shop.retries)
    args.total_retries = sum(shop.retries.values())
    return checks


def run_local_mesh(args: argparse.Namespace) -> list[Check]:
    """./run-local.sh --mesh istio: every mesh check for real, through the local Envoy sidecars."""
    from .local_mesh import gateway_reachable, probe, run_local_mesh_checks

    try:
        inventory = probe.Inventory.load(args.local_mesh)
    except (OSError, ValueError) as err:
        args.retries, args.total_retries = {}, 0
        return [Check("local mesh", FAIL, f"cannot read the inventory {args.local_mesh} ({err}): start the mesh with "
                                          "./run-local.sh --mesh istio")]
    args.url, args.access = inventory.gateway_url, f"the ingress Envoy of the local mesh ({args.local_mesh})"
    if not gateway_reachable(inventory):
        args.retries, args.total_retries = {}, 0
        return [Check("local mesh", FAIL, f"the ingress at {inventory.gateway_url} does not answer: is "
                                          "./run-local.sh --mesh istio running?")]
    checks, shop = run_local_mesh_checks(inventory, args.samples)
    args.retries = dict(shop.retries)
    args.total_retries = sum(shop.retries.values())
    return checks


def print_plan(args: argparse.Namespace) -> None:
    """--dry-run: what a run would do; nothing is sent."""
    mesh = args.mesh if args.mode == "cluster" and args.mesh != "none" else None
    print(f"[dry-run] quick-test in {args.mode} mode against {args.url}" + (f" ({mesh})" if mesh else ""))
    print("[dry-run] would create test users qt-* with carts and orders through the gateway "
          f"({args.samples} GETs" + (f", {args.samples} checkouts" if mesh else "") + ")")
    if mesh:
        kube = Kube(args.kubectl, args.namespace, dry_run=True)
        if mesh == "linkerd":
            print("[dry-run] would reach the gateway through a meshed relay pod (loadgen's image) and a port-forward")
            kube.change("run", "quicktest-relay-XXXXXX", "--image=<loadgen's image>", "--restart=Never", "--command",
                        "--", "python3", "-c", "<relay to api-gateway:5000>")
        else:
            print("[dry-run] would reach the gateway through the istio ingress (its address, or a port-forward to "
                  "svc/istio-ingressgateway)")
        for kind in ("meshed", "plain"):
            kube.change("run", f"quicktest-curl-{kind}-XXXXXX", f"--image={args.curl_image}", "--restart=Never",
                        "--command", "--", "sleep", "300")
            kube.change("delete", "pod", f"quicktest-curl-{kind}-XXXXXX", "--ignore-not-found", "--wait=false")


"""python -m devstack: what ./run-local.sh runs once the virtualenv is ready."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from .stack import ROOT, Stack, StackError, port_offset_problem


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./run-local.sh", description=(
        "Run Redis and every service of the shop on this machine, with the same gunicorn entry points as the "
        "images. Ctrl-C stops everything."))
    parser.add_argument("--no-faults", action="store_true",
                        help="turn every injected fault off (FAULTS_ENABLED=false); switch them back at runtime "
                             "with PUT /admin/faults")
    parser.add_argument("--payment-version", choices=("v1", "v2"), default="v1",
                        help="which payment version the cart calls (no mesh here to split traffic); default v1")
    parser.add_argument("--load", action="store_true", help="also start the load generator (services/loadgen)")
    parser.add_argument("--port-offset", type=int, default=0, metavar="N",
                        help="add N to every port (5000+N for the gateway, 6379+N for Redis, ...)")
    parser.add_argument("--data-dir", default=str(ROOT / ".local"),
                        help="where the two Redis servers keep their append-only files and where the logs go "
                             "(default .local/)")
    mesh = parser.add_argument_group(
        "local mesh", "every instance behind its own real Envoy sidecar, configured from kubernetes/ and istio/ or "
        "linkerd/; under linkerd, Envoy enforces Linkerd's intents, not linkerd2-proxy (docs/local-mesh.md)")
    mesh.add_argument("--mesh", choices=("istio", "linkerd"), help="run the shop on the local mesh of this mesh")
    mesh.add_argument("--scenario", metavar="FILE", help="with --mesh: apply this file (e.g. istio/scenarios/"
                      "canary-50-50.yaml) on top of the mesh's folder at start")
    changes = mesh.add_mutually_exclusive_group()
    changes.add_argument("--apply", metavar="FILE", help="to a running local mesh: kubectl apply -f FILE")
    changes.add_argument("--delete", metavar="FILE", help="to a running local mesh: kubectl delete -f FILE")
    changes.add_argument("--reset", action="store_true", help="to a running local mesh: back to its mesh's folder "
                         "as it is")
    args = parser.parse_args(argv)
    if port_offset_problem(args.port_offset):
        parser.error(port_offset_problem(args.port_offset))
    if (args.scenario or args.apply or args.delete or args.reset) and not args.mesh:
        parser.error("--scenario, --apply, --delete and --reset need --mesh istio or --mesh linkerd")
    if args.mesh and args.payment_version != "v1":
        parser.error("--payment-version is for the stack without a mesh; under --mesh the routes split payment "
                     "(apply istio/scenarios/canary-100-v2.yaml for v2 only)")
    return args


def local(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


def print_urls(stack: Stack, args: argparse.Namespace) -> None:
    gateway = local(stack.urls["api-gateway"])
    print(f"\nReady. Faults {'OFF' if args.no_faults else 'ON (seed defaults)'}; cart -> payment {args.payment_version}.")
    print(f"  {'service':<15} {'business port':<24} admin port (/admin/faults, /health, /ready, /metrics)")
    for name, url in stack.urls.items():
        print(f"  {name:<15} {local(url):<24} {local(stack.admin_urls[name])}")
    for name, url in (("redis", stack.redis_url), ("payment-ledger", stack.ledger_url)):
        print(f"  {name:<15} {local(url)} (append-only file in {stack.data_dir / name})")
    if args.load:
        print(f"  {'loadgen':<15} http://localhost:{stack.ports['loadgen']}/metrics")
    catalog = local(stack.admin_urls["catalog"])
    payment = local(stack.admin_urls[f"payment-{args.payment_version}"])
    print(f"""
Storefront: {gateway}/

Try:
  curl {gateway}/api/products
  curl -X POST {gateway}/api/cart/user123/add -H 'Content-Type: application/json' -d '{{"product_id": "1", "quantity": 2}}'
  curl {gateway}/api/cart/user123
  curl -i -X POST {gateway}/api/cart/user123/checkout -H 'Idempotency-Key: my-first-order'
  curl -X PUT {payment}/admin/faults -d '{{"decline_rate": 1}}'   # every payment declines
  curl -X DELETE {payment}/admin/faults                          # back to the defaults
  curl -X PUT {catalog}/admin/faults -d '{{"sick": true}}'         # catalog fails every request
  tail -f {stack.logs_dir}/*.log

Ctrl-C stops everything.""", flush=True)


def change_running_mesh(args: argparse.Namespace) -> int:
    from .mesh.runtime import apply_to_running

    verb, path = ("apply", args.apply) if args.apply else ("delete", args.delete) if args.delete else ("reset", "")
    try:
        applied = apply_to_running(args.data_dir, verb, path, mesh=args.mesh)
    except StackError as exc:
        print(f"run-local: {exc}", file=sys.stderr)
        return 1
    for warning in applied.warnings:
        print(f"warning: {warning}")
    what = {"apply": f"applied {path}", "delete": f"deleted the objects of {path}",
            "reset": f"back to {args.mesh}/"}[verb]
    for name in applied.started or []:
        print(f"started {name} (its Deployment is in {path})")
    for name in applied.stopped or []:
        print(f"stopped {name} (its Deployment is gone)")
    if applied.changed:
        print(f"{what}: taken by {', '.join(applied.changed)} within {applied.delivery_s:.2f} s")
    else:
        print(f"{what}: no proxy's configuration changed")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.apply or args.delete or args.reset:
        return change_running_mesh(args)
    if args.mesh:
        from .mesh.cli import run_mesh

        return run_mesh(args)
    stack = Stack(args.data_dir, ports="default", port_offset=args.port_offset, faults_enabled=not args.no_faults,
                  payment_version=args.payment_version, load=args.load)
    stopping = stop_on_signals()
    print("Starting Redis, payment's ledger and the services (logs in %s) ..." % stack.logs_dir, flush=True)
    try:
        stack.start()
    except StackError as exc:
        print(f"run-local: {exc}", file=sys.stderr)
        return 1
    print_urls(stack, args)
    return supervise(stack, stopping)


def stop_on_signals() -> threading.Event:
    stopping = threading.Event()
    # SIGHUP too: closing the terminal must not leave Redis and the services running (they have sessions of their own).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopping.set())
    return stopping


def supervise(stack: Stack, stopping: threading.Event) -> int:
    """Until Ctrl-C: a process that dies stops everything, with the log to read."""
    while not stopping.wait(0.5):
        for name, process in list(stack.processes.items()):
            if process.poll() is not None:
                print(f"run-local: {name} exited with code {process.returncode}; see {stack.logs_dir}/{name}.log",
                      file=sys.stderr)
                stack.stop()
                return 1
    print("\nStopping ...", flush=True)
    stack.stop()
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

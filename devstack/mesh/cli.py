"""./run-local.sh --mesh istio: start the local mesh, print the inventory and what to try, stop on Ctrl-C."""
from __future__ import annotations

import argparse
import sys

from ..__main__ import stop_on_signals, supervise
from ..stack import StackError
from .runtime import MeshStack


def inventory_table(inventory: dict) -> str:
    rows = [("instance", "version", "identity (SPIFFE)", "sidecar", "app", "app admin", "envoy admin")]
    for entry in [inventory["ingress"], *inventory["workloads"]]:
        rows.append((entry["instance"], entry["version"] or "-", entry["spiffe_id"].removeprefix("spiffe://"),
                     entry["sidecar_inbound"] or "-", entry["app"] or "-", entry["app_admin"] or "-",
                     entry["envoy_admin"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def run_mesh(args: argparse.Namespace) -> int:
    try:
        stack = MeshStack(args.data_dir, port_offset=args.port_offset, faults_enabled=not args.no_faults,
                          load=args.load, scenario=args.scenario)
    except StackError as exc:
        print(f"run-local: {exc}", file=sys.stderr)
        return 1
    stopping = stop_on_signals()
    print(f"Starting the local mesh (Envoy sidecars configured from kubernetes/ and istio/; logs in "
          f"{stack.logs_dir}) ...", flush=True)
    try:
        stack.start()
    except StackError as exc:
        print(f"run-local: {exc}", file=sys.stderr)
        return 1
    inventory = stack.write_inventory()
    for warning in inventory["warnings"]:
        print(f"warning: {warning}")
    gateway = inventory["ingress"]["url"]
    cart = next(w for w in inventory["workloads"] if w["service"] == "cart-service")
    payment = next(w for w in inventory["workloads"] if w["service"] == "payment-service")
    catalog = next(w for w in inventory["workloads"] if w["service"] == "catalog-service")
    to_payment = next(o["listener"] for o in cart["outbound"] if o["service"] == "payment-service")
    scenario = f"; scenario {args.scenario}" if args.scenario else ""
    print(f"""
Ready: the shop on the local mesh. Faults {'OFF' if args.no_faults else 'ON (seed defaults)'}{scenario}.
Inventory (also in {stack.layout.inventory_path}):
{inventory_table(inventory)}
  CA root: {inventory['ca']['root_certificate']}

Storefront: {gateway}/  (the ingress Envoy; plaintext to a sidecar is refused: STRICT mTLS)

Try:
  curl -i {gateway}/api/products                      # server: envoy, x-envoy-upstream-service-time
  for i in $(seq 40); do curl -s -o /dev/null -D - http://{to_payment}/health | grep -i x-service-version; done | sort | uniq -c
                                                      # through cart's sidecar: payment split 95/5
  ./run-local.sh --mesh istio --apply istio/scenarios/canary-50-50.yaml    # taken while running
  ./run-local.sh --mesh istio --reset                                      # back to istio/ as it is
  curl -X PUT {catalog['app_admin']}/admin/faults -d '{{"sick": true}}'    # its admin port, like a port-forward
  curl -s {payment['envoy_admin']}/stats | grep outlier_detection           # Envoy's admin
  tail -f {cart['access_log']}    # one JSON line per request, response_flags
  (docs/local-mesh.md walks through every scenario)

Ctrl-C stops everything.""", flush=True)
    return supervise(stack, stopping)

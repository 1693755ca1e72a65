"""python3 scripts/quicktest: the command line behind ./quick-test.sh."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from . import __doc__ as PACKAGE_DOC
from .access import Access, AccessError
from .canary import canary_samples_needed
from .kube import Kube
from .results import FAIL, PASS, SKIP, fmt_counter, render_table
from .runner import parse_service_urls, print_plan, run_checks
from .settings import CURL_IMAGE, DEFAULT_URL, NAMESPACE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quicktest", description=PACKAGE_DOC.split("\n\n")[0])
    parser.add_argument("--mode", choices=["local", "cluster"], default="local")
    parser.add_argument("--url", default=None,
                        help=f"gateway base URL (local default {DEFAULT_URL}; in a cluster: found, see access.py)")
    parser.add_argument("--service-urls", type=parse_service_urls, default=None,
                        help="local mode: name=url,... of the services to probe directly")
    parser.add_argument("--mesh", choices=["istio", "linkerd", "none"], default="none")
    parser.add_argument("--local-mesh", metavar="INVENTORY", default=None,
                        help="the local mesh (./run-local.sh --mesh istio) described by this inventory.json")
    parser.add_argument("--access", default="given URL", help="how the gateway is reached (shown in the table)")
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("-n", "--samples", type=int, default=canary_samples_needed(),
                        help=f"calls for the rate checks (default {canary_samples_needed()})")
    parser.add_argument("--prometheus-url", default=None, help="Prometheus that scrapes the app")
    parser.add_argument("--mesh-prometheus-url", default=None, help="Prometheus with the mesh's metrics")
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    parser.add_argument("--istioctl", default="istioctl")
    parser.add_argument("--linkerd", default="linkerd")
    parser.add_argument("--curl-image", default=CURL_IMAGE)
    parser.add_argument("--compare", action="store_true",
                        help="start each local mesh in turn (istio, then linkerd), run the same checks, print one table")
    parser.add_argument("--port-offset", type=int, default=0, help="--compare: the local meshes' port offset")
    parser.add_argument("--compare-data-dir", default=None, help="--compare: where the meshes keep logs (.local/compare)")
    parser.add_argument("--markdown", default=None, metavar="FILE",
                        help="--compare: also write the table as Markdown (between its markers when FILE has them)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.url is None and (args.mode == "local" or args.dry_run):
        args.url = DEFAULT_URL if args.mode == "local" else "http://127.0.0.1:PORT"
    if args.url is not None and not args.url.startswith(("http://", "https://")):
        parser.error(f"--url {args.url} is not an http(s) URL")
    args.through_mesh = args.url is None  # a given URL is what the user chose; ours is through the mesh when we can
    if args.markdown:
        folder = Path(args.markdown).resolve().parent
        problem = ("it writes the table of --compare: add --compare" if not args.compare else
                   f"no folder {folder}: create it or write the table elsewhere" if not folder.is_dir() else "")
        if problem:
            print(f"error: --markdown {args.markdown}: {problem}", file=sys.stderr)
            return 2
    if args.local_mesh and Path(args.local_mesh).exists():  # missing: the mesh is not running, a FAIL in the table
        from .local_mesh import probe

        try:
            probe.Inventory.load(args.local_mesh)
        except (OSError, ValueError) as err:
            print(f"error: {args.local_mesh} is not a local mesh's inventory ({err}): give the mesh/inventory.json "
                  "that ./run-local.sh --mesh istio|linkerd writes in its --data-dir", file=sys.stderr)
            return 2

    if args.compare:
        from .compare import main as compare

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return compare(args)
    if args.dry_run:
        print_plan(args)
        return 0
    # SIGTERM (bash trap, CI timeout) unwinds like Ctrl-C, so port-forwards close and throwaway pods are deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    args.started = started = time.monotonic()
    mesh = args.mesh if args.mode == "cluster" else "none"
    if args.mode == "cluster":
        with Access(Kube(args.kubectl, args.namespace), None if mesh == "none" else mesh) as access:
            try:
                if args.url is None:
                    way = access.gateway()
                    args.url, args.access, args.through_mesh = way.url, way.description, way.through_mesh
                if args.prometheus_url is None or args.mesh_prometheus_url is None:
                    app_url, mesh_url = access.prometheus(args.prometheus_url)
                    args.prometheus_url = args.prometheus_url or app_url
                    args.mesh_prometheus_url = args.mesh_prometheus_url or mesh_url
            except AccessError as err:
                print(f"error: {err}", file=sys.stderr)
                return 1
            print(f"    gateway: {args.url} ({args.access})", file=sys.stderr)
            print(f"    Prometheus: {args.prometheus_url or 'none found'}"
                  + (f", mesh metrics: {args.mesh_prometheus_url}" if args.mesh_prometheus_url else ""), file=sys.stderr)
            checks = run_checks(args)
    else:
        checks = run_checks(args)
    seconds = round(time.monotonic() - started, 1)
    counts = Counter(c.status for c in checks)
    if args.local_mesh:
        mesh = f"{getattr(args, 'local_mesh_name', 'istio')} (local)"
    if args.json:
        print(json.dumps({
            "mode": args.mode, "url": args.url, "mesh": mesh, "samples": args.samples, "seconds": seconds,
            "ok": counts[FAIL] == 0,
            "summary": {"pass": counts[PASS], "fail": counts[FAIL], "skip": counts[SKIP]},
            "retries": {"total": args.total_retries, "by_purpose": args.retries},
            "checks": [asdict(c) for c in checks],
        }, indent=2))
    else:
        enforced = getattr(args, "enforced_by", "Envoy sidecars configured from istio/")
        where = (f"local mesh ({enforced})" if args.local_mesh else "local stack"
                 if args.mode == "local" else f"cluster namespace {args.namespace}, mesh {mesh}")
        header = f"quick-test: {where}, gateway {args.url} ({args.access}), {args.samples} samples"
        retries = fmt_counter(Counter(args.retries)) or "none"
        footer = (f"{counts[PASS]} PASS, {counts[FAIL]} FAIL, {counts[SKIP]} SKIP in {seconds} s; "
                  f"client retries: {args.total_retries} ({retries})")
        colour = sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")
        print(render_table(checks, header, footer, colour))
    return 1 if counts[FAIL] else 0


if __name__ == "__main__":
    sys.exit(main())

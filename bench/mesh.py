"""What a sidecar hop costs: GET /api/products with no mesh and through both local meshes, at the same fixed rates.

One run measures the stack without a mesh, then the local mesh under Istio's files and under Linkerd's.

For each stack in turn (faults off): hey sends fixed request rates (-q per connection) from a separate process;
the script reads p50/p90/p99 from hey, the CPU time every process of the stack used from /proc/<pid>/stat (so
CPU ms per request of each app and each Envoy), and each Envoy's RSS. Both meshes' columns measure Envoy: under
--mesh linkerd it is Envoy configured with Linkerd's intents, not linkerd2-proxy, so the two differ only by
configuration (routes, a locality-weighted pool, RBAC per route). The projects' own published figures for their
real proxies are printed beside them with their methods. Run with ./bench/mesh.sh.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import positive_int, stop_stacks_on_term  # noqa: E402
from devstack.stack import port_offset_problem  # noqa: E402  (standard library only, like this file)

HZ = os.sysconf("SC_CLK_TCK")
# istio.io/docs/ops/deployment/performance-and-scalability, the newest release that publishes figures (1.24): a
# sidecar with 2 worker threads at 1000 requests/s of 1 KB uses about 0.20 vCPU and 60 MB. The last p90 figure
# stated in the text is 1.10-1.16's: "The Envoy proxy adds 2.65 ms to the 90th percentile latency".
ISTIO_VCPU_PER_1000_RPS = 0.20
ISTIO_SIDECAR_MB = 60
ISTIO_ADDED_P90_MS = 2.65
# linkerd.io/2021/11/29/linkerd-vs-istio-benchmarks-2021 (Buoyant, Kinvolk's service-mesh-benchmark harness; Linkerd
# 2.11.1 default install vs Istio 1.12.0 "minimal"): at 2,000 RPS the median latency added by the mesh was 6 ms
# (Linkerd) and 17 ms (Istio), the largest proxy memory 26.3 MB and 156.2 MB, the largest proxy CPU time 36 ms and
# 67 ms. Latency measured from the client's side by the harness, several 10-minute runs per mesh and rate, on
# bare-metal nodes (24 cores each), the load generator on a node of its own.
LINKERD_ADDED_P50_MS = {"linkerd2-proxy": 6, "Istio's Envoy": 17}
LINKERD_PROXY_MB = {"linkerd2-proxy": 26.3, "Istio's Envoy": 156.2}
# linkerd.io/2025/04/24/linkerd-benchmarks (a Linkerd ambassador's rerun: wrk2 against emojivoto on 3 GKE
# e2-standard-8 nodes, north-south traffic, 100 connections, 5 runs with the 2 worst discarded): at 2000 RPS
# Linkerd's p99 was 163 ms below sidecar Istio's and 11.2 ms below Istio ambient's. It states differences only.
LINKERD_2025_P99_LEAD_MS = {"Istio sidecars": 163, "Istio ambient": 11.2}
TARGET_RSS_MB = 60
# Proxy pairs on the mesh path of GET /api/products: ingress -> gateway's sidecar, gateway's sidecar -> catalog's.
HOPS = 2


@dataclass
class Run:
    rate: int
    requests: int = 0
    non_200: int = 0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_ms: dict[str, float] = field(default_factory=dict)  # component -> CPU ms over the run


def hey(url: str, rate: int, seconds: int) -> tuple[int, int, float, float, float]:
    connections = max(1, rate // 50)
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(connections), "-q", str(rate / connections), url],
                         capture_output=True, text=True, check=True).stdout

    statuses = {int(s): int(n) for s, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", out)}

    def pct(p: int) -> float:
        found = re.search(rf"{p}% in ([\d.]+) secs", out)
        if found is None:  # hey prints no distribution for a run with (almost) no answers
            raise SystemExit(f"bench: hey gave no latency distribution at {rate} req/s for {seconds} s "
                             f"({sum(statuses.values())} answers): use a higher --rates or more --seconds")
        return float(found.group(1)) * 1000

    return sum(statuses.values()), sum(n for s, n in statuses.items() if s != 200), pct(50), pct(90), pct(99)


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        queue += [int(c) for c in children]
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def memory_mb(pid: int) -> tuple[float, float, float]:
    """(RSS, private, PSS) in MB. RSS counts the Envoy binary's code pages, which every Envoy on the machine shares;
    private is this process's own memory; PSS splits the shared pages among the processes that map them."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0, 0.0, 0.0

    def kb(name: str) -> float:
        match = re.search(rf"^{name}:\s+(\d+) kB", rollup, re.M)
        return int(match.group(1)) / 1024 if match else 0.0
    return kb("Rss"), kb("Private_Clean") + kb("Private_Dirty"), kb("Pss")


def component_of(name: str) -> str:
    """payment-service-v1-2.envoy -> payment-service sidecars; catalog-service-2 -> catalog-service app."""
    if name.endswith(".envoy"):
        base = name[:-len(".envoy")]
        return "ingress envoy" if base in ("istio-ingressgateway", "ingress") else re.sub(r"(-v\d)?-\d+$", "", base) + \
            " sidecar(s)"
    return {"catalog": "catalog-service app", "api-gateway": "api-gateway app"}.get(
        name, re.sub(r"(-v\d)?-\d+$", "", name) + " app")


def measure(stack, url: str, rate: int, seconds: int) -> Run:
    def snapshot() -> dict[str, int]:
        totals: dict[str, int] = {}
        for name, process in stack.processes.items():
            ticks = sum(cpu_ticks(p) for p in descendants(process.pid))
            totals[component_of(name)] = totals.get(component_of(name), 0) + ticks
        return totals

    before = snapshot()
    run = Run(rate)
    run.requests, run.non_200, run.p50_ms, run.p90_ms, run.p99_ms = hey(url, rate, seconds)
    after = snapshot()
    run.cpu_ms = {k: (after[k] - before.get(k, 0)) * 1000 / HZ for k in after if after[k] - before.get(k, 0) > 0}
    return run


def bench(stack, url: str, rates: list[int], seconds: int) -> list[Run]:
    hey(url, rates[0], 2)  # warm up: pools, imports, TLS sessions
    return [measure(stack, url, rate, seconds) for rate in rates]


def print_runs(label: str, runs: list[Run]) -> None:
    print(f"\n{label}")
    print(f"  {'rate':>6} {'requests':>9} {'non-200':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}   CPU ms per request")
    for run in runs:
        per_request = ", ".join(f"{k} {v / max(run.requests, 1):.2f}" for k, v in sorted(run.cpu_ms.items())
                                if k not in ("redis app", "payment-ledger app"))  # on no path of the request
        print(f"  {run.rate:>6} {run.requests:>9} {run.non_200:>8} {run.p50_ms:>8.2f} {run.p90_ms:>8.2f} "
              f"{run.p99_ms:>8.2f}   {per_request}")


def memory_of(mesh) -> dict[str, tuple[float, float, float]]:
    return {name[:-len(".envoy")]: memory_mb(p.pid) for name, p in mesh.processes.items() if name.endswith(".envoy")}


def compare_to_published(results: dict[str, list[Run]], memory: dict[str, dict]) -> None:
    print("\nAdded by the mesh, and the projects' published figures beside it:")
    for label in (k for k in results if k != "no mesh"):
        for plain, meshed in zip(results["no mesh"], results[label]):
            added = meshed.p90_ms - plain.p90_ms
            envoy_ms = sum(v for k, v in meshed.cpu_ms.items() if "envoy" in k or "sidecar" in k) / max(meshed.requests, 1)
            # CPU ms per request of one proxy = vCPU that proxy needs per 1000 requests/s.
            print(f"  {label}, {plain.rate} req/s: p50 +{meshed.p50_ms - plain.p50_ms:.2f} ms, p90 +{added:.2f} ms over "
                  f"{HOPS} proxy pairs = {added / HOPS:.2f} ms per hop (Istio's figure: {ISTIO_ADDED_P90_MS} ms); Envoy "
                  f"CPU {envoy_ms:.2f} ms per request for the 3 proxies on the path = {envoy_ms / 3:.2f} vCPU per proxy "
                  f"per 1000 req/s (Istio 1.24: {ISTIO_VCPU_PER_1000_RPS})")
    print("  Linkerd's published comparison (2.11.1 vs Istio 1.12.0, 2,000 RPS): median added "
          + ", ".join(f"{k} {v} ms" for k, v in LINKERD_ADDED_P50_MS.items()) + "; largest proxy memory "
          + ", ".join(f"{k} {v} MB" for k, v in LINKERD_PROXY_MB.items())
          + ". Not comparable with the lines above: that is linkerd2-proxy, which does not run here.")
    print("  Linkerd's 2025 rerun (2000 RPS, p99): linkerd2-proxy "
          + ", ".join(f"{v} ms below {k}" for k, v in LINKERD_2025_P99_LEAD_MS.items()) + ".")
    print("\nTargets:")
    for label, by_proxy in memory.items():
        worst = max((m[0] for m in by_proxy.values()), default=0.0)
        worst_private = max((m[1] for m in by_proxy.values()), default=0.0)
        added_worst = max((m.p90_ms - p.p90_ms) / HOPS for p, m in zip(results["no mesh"], results[label]))
        print(f"  {label}: [{'met' if worst < TARGET_RSS_MB else 'MISSED'}] sidecar RSS < {TARGET_RSS_MB} MB: max "
              f"{worst:.1f} MB, of which at most {worst_private:.1f} MB private (the rest: the binary's code, shared by "
              f"every Envoy); [{'met' if added_worst <= ISTIO_ADDED_P90_MS else 'MISSED'}] added p90 per hop <= "
              f"{ISTIO_ADDED_P90_MS} ms: worst {added_worst:.2f} ms")


def rate_list(text: str) -> list[int]:
    """--rates: a comma-separated list of request rates, each at least 1 request/s."""
    rates = [positive_int(r.strip()) for r in text.split(",") if r.strip()]
    if not rates:
        raise argparse.ArgumentTypeError(f"needs at least one rate, got {text!r}")
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=rate_list, default="100,300",
                        help="fixed request rates, requests/s (default 100,300)")
    parser.add_argument("--seconds", type=positive_int, default=10, help="length of each run (default 10)")
    parser.add_argument("--mesh", default="istio,linkerd",
                        help="the local meshes to measure after the stack without one (default istio,linkerd)")
    parser.add_argument("--port-offset", type=int, default=None, metavar="N",
                        help="the local meshes' --port-offset (default: the first from 10000 with every port free)")
    args = parser.parse_args()
    rates = args.rates
    meshes = [m.strip() for m in args.mesh.split(",") if m.strip()]
    if args.port_offset is not None and port_offset_problem(args.port_offset):
        parser.error(port_offset_problem(args.port_offset))
    stop_stacks_on_term()
    if not shutil.which("hey"):
        print("bench: hey is not installed: sudo apt-get install hey", file=sys.stderr)
        return 1
    from devstack.mesh.runtime import MESHES, MeshStack, free_port_offset  # the virtualenv's: not for --help
    from devstack.stack import Stack

    unknown = [m for m in meshes if m not in MESHES]
    if unknown:
        print(f"bench: unknown mesh {', '.join(unknown)}: choose from {', '.join(MESHES)}", file=sys.stderr)
        return 2
    results: dict[str, list[Run]] = {}
    memory: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        with Stack(Path(folder) / "plain", faults_enabled=False) as plain:
            results["no mesh"] = bench(plain, plain.urls["api-gateway"] + "/api/products", rates, args.seconds)
        offset = free_port_offset() if args.port_offset is None else args.port_offset
        for name in meshes:
            label = f"local mesh, {name}'s files" + (" (Envoy, not linkerd2-proxy)" if name == "linkerd" else "")
            with MeshStack(Path(folder) / name, port_offset=offset, faults_enabled=False,
                           mesh=name) as mesh:
                results[label] = bench(mesh, mesh.gateway_url + "/api/products", rates, args.seconds)
                memory[label] = memory_of(mesh)
    cpus = os.cpu_count()
    print(f"\nGET /api/products, faults off, hey at fixed rates (-q), {args.seconds} s per rate, {cpus} CPUs, "
          f"Envoy --concurrency 1")
    for label, runs in results.items():
        print_runs(label, runs)
    for label, by_proxy in memory.items():
        print(f"\nEnvoy memory after the runs, {label}, MB (RSS / private / PSS):")
        for name, (rss, private, pss) in by_proxy.items():
            print(f"  {name:<24} {rss:6.1f} / {private:5.1f} / {pss:5.1f}")
    compare_to_published(results, memory)
    print("\nMethod differences: Istio measures 1 KB payloads at 1000 req/s on large nodes with 2 worker threads per "
          "proxy, its stats and telemetry filters on, client and server on separate machines; Linkerd's comparison "
          "ran Kinvolk's harness (an HTTP and gRPC microservice app, 10 min per run) on bare-metal nodes, its 2025 rerun wrk2 against emojivoto on GKE. Here: "
          "one 2-core machine shared by hey, Python apps and every Envoy (1 worker thread each), no Istio stats "
          "filter, JSON access logs on, ~3 KB responses, so the figures include CPU contention between the "
          "processes; both mesh columns are Envoy.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Throughput, latency and memory of the local stack, measured with hey (or wrk) from a separate process.

Prints, for the same run: requests/s and p50/p99 of GET /api/products through the gateway and of GET /products on the
catalog directly, then the RSS of every gunicorn process. Faults are off. Run with ./bench/run.sh.
"""
from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devstack.stack import REDIS_SERVERS, Stack  # noqa: E402



def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a rate, a duration, a connection count)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"needs a whole number of at least 1, got {text!r}")
    return value


def stop_stacks_on_term() -> None:
    """SIGTERM (a CI timeout, kill) unwinds like Ctrl-C, so the stacks' context managers stop every process."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


TARGETS = {"gateway_rps_share_of_catalog": 0.5, "gateway_p99_ms": 50.0, "rss_mb_per_worker": 100.0}


def load_with_hey(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["hey", "-z", f"{seconds}s", "-c", str(connections), url], capture_output=True,
                         text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1000
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1000
    statuses = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_200": sum(int(n) for s, n in statuses.items() if s != "200")}


def load_with_wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": ms("50"),
            "p99_ms": ms("99"), "non_200": int(non_2xx.group(1)) if non_2xx else 0}


def rss_by_process(stack: Stack) -> list[tuple[str, int, float]]:
    """(component, pid, RSS MB) for every gunicorn master and worker."""
    rows = []
    for name, process in stack.processes.items():
        if name in REDIS_SERVERS:
            continue
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        for pid in [process.pid, *map(int, children)]:
            status = Path(f"/proc/{pid}/status")
            if status.exists():
                kb = int(re.search(r"VmRSS:\s+(\d+)", status.read_text()).group(1))
                rows.append((name, pid, kb / 1024))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=positive_int, default=10, help="length of each load run (default 10)")
    parser.add_argument("--connections", type=positive_int, default=50, help="concurrent connections (default 50)")
    args = parser.parse_args()
    stop_stacks_on_term()
    tool = "hey" if shutil.which("hey") else "wrk" if shutil.which("wrk") else None
    if tool is None:
        print("bench: neither hey nor wrk is installed: sudo apt-get install hey (or wrk)", file=sys.stderr)
        return 1
    load = load_with_hey if tool == "hey" else load_with_wrk
    with tempfile.TemporaryDirectory() as folder, Stack(folder, faults_enabled=False) as stack:
        for url in (stack.urls["catalog"] + "/products", stack.urls["api-gateway"] + "/api/products"):
            load(url, 2, args.connections)  # warm up: connection pools, imports, CPU caches
        direct = load(stack.urls["catalog"] + "/products", args.seconds, args.connections)
        gateway = load(stack.urls["api-gateway"] + "/api/products", args.seconds, args.connections)
        memory = rss_by_process(stack)
    print(f"\nLoad: {tool}, {args.connections} connections, {args.seconds}s per target, faults off, {Path('/proc/cpuinfo').read_text().count('processor')} CPUs\n")
    print(f"{'target':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'non-200':>10}")
    for label, row in (("GET /products (catalog direct)", direct), ("GET /api/products (via gateway)", gateway)):
        print(f"{label:<34}{row['rps']:>10.0f}{row['p50_ms']:>10.1f}{row['p99_ms']:>10.1f}{row['non_200']:>10}")
    share = gateway["rps"] / direct["rps"]
    print(f"\nMemory (RSS) per gunicorn process:")
    for name, pid, mb in memory:
        print(f"  {name:<14} pid {pid:<8} {mb:6.1f} MB")
    worst = max(mb for _, _, mb in memory)
    print("\nTargets:")
    checks = [
        (f"gateway throughput >= {TARGETS['gateway_rps_share_of_catalog']:.0%} of direct catalog", share >= 0.5,
         f"{share:.0%}"),
        (f"gateway p99 < {TARGETS['gateway_p99_ms']:.0f} ms at {args.connections} connections",
         gateway["p99_ms"] < TARGETS["gateway_p99_ms"], f"{gateway['p99_ms']:.1f} ms"),
        (f"RSS < {TARGETS['rss_mb_per_worker']:.0f} MB per process", worst < TARGETS["rss_mb_per_worker"],
         f"max {worst:.1f} MB"),
    ]
    for text, ok, measured in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}: {measured}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""./quick-test.sh --compare: each local mesh in turn (./run-local.sh --mesh istio, then --mesh linkerd), the same
checks against both, and one table: a row per behaviour, the figures under each mesh, and the files that
configure it. Both meshes run on real Envoy: the Linkerd column is Envoy enforcing Linkerd's intents, not
linkerd2-proxy (docs/local-mesh.md says what that leaves out).

`--markdown FILE` also writes the table as Markdown: between the markers below when FILE has them (that is how
docs/mesh-comparison.md is regenerated), else as the whole file.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .mesh_profile import PROFILES
from .results import FAIL, PASS, Check, progress

ROOT = Path(__file__).resolve().parents[2]
MESHES = ("istio", "linkerd")
BEGIN, END = "<!-- quick-test --compare: begin -->", "<!-- quick-test --compare: end -->"
START_TIMEOUT_S = 600.0  # the first ./run-local.sh also creates .venv (a few minutes on a fresh machine)
STOP_TIMEOUT_S = 90.0


def pct(value) -> str:
    return f"{float(value):.1%}" if value is not None else "?"


def canary(f: dict) -> str:
    return f"v2 {pct(f.get('v2_share'))} of {f.get('calls')} checkouts"


def get_success(f: dict) -> str:
    return f"{pct(f.get('success_rate'))} of {f.get('samples')} GETs; {f.get('envoy_retries', 0):g} catalog reads retried"


def writes(f: dict) -> str:
    return (f"{f.get('retries', 0):g} retries; {f.get('payment_posts', 0):g} POSTs reached payment for "
            f"{f.get('sidecar_requests', 0):g} sent")


def authorization(f: dict) -> str:
    why = f" ({f['proxy_error']})" if f.get("proxy_error") else f" ({f['default_body']})" if f.get("default_body") else ""
    return f"e-commerce/default: {f.get('default_identity')}{why}; cart: {f.get('cart_identity')}"


def plaintext(f: dict) -> str:
    if "plaintext_redis" in f:
        return f"HTTP to payment: {f.get('plaintext')} (identity required); TCP to Redis: {f.get('plaintext_redis')}"
    return f"HTTP to payment: refused ({str(f.get('plaintext')).split(':')[0]})"


def ejection(f: dict) -> str:
    calls = sum((f.get("before_ejection") or {}).values())
    reached = (f.get("after_ejection") or {}).get("500", 0)
    return f"ejected after {calls} calls; it answered {reached} of the next 20"


def sick_v2(f: dict) -> str:
    return (f"{f.get('failed_fast')} of {f.get('calls')} failed fast, {f.get('v1')} went to v1 "
            f"({f.get('other', 0)} of v1's own timeouts)")


def timeouts(f: dict) -> str:
    kept = "cart kept" if f.get("cart_kept") else "cart NOT kept"
    return f"checkout {f.get('status')} after {f.get('seconds')} s, charged {f.get('charged')}, {kept}"


# (behaviour, the check whose figures show it, the files key of mesh_profile, how to say the figures)
ROWS: list[tuple[str, str, str, Callable[[dict], str]]] = [
    ("canary split 95/5", "canary split 95/5", "canary", canary),
    ("GET success under catalog's 5% errors", "GET success with faults", "retries", get_success),
    ("POST never retried", "POST never retried", "writes", writes),
    ("authorization (payment: cart only)", "authorization", "authorization", authorization),
    ("plaintext to a sidecar", "mTLS", "plaintext", plaintext),
    ("sick instance ejected", "circuit breaker (ejection)", "ejection", ejection),
    ("v2's share when v2 is sick", "sick canary's share", "sick_v2", sick_v2),
    ("route timeout (payment 5 s, route 3 s)", "route timeout", "timeouts", timeouts),
]


def cell(results: dict, mesh: str, check_name: str, say: Callable[[dict], str]) -> str:
    check = next((c for c in results.get(mesh, {}).get("checks", []) if c["name"] == check_name), None)
    if check is None:
        return "not run"
    try:
        text = say(check["figures"])
    except (KeyError, TypeError, ValueError):
        text = check["reason"]
    return f"{check['status']}: {text}"


def table_rows(results: dict) -> list[tuple[str, str, str, str]]:
    return [(label, cell(results, "istio", check, say), cell(results, "linkerd", check, say),
             f"Istio: {PROFILES['istio'].files[key]}; Linkerd: {PROFILES['linkerd'].files[key]}")
            for label, check, key, say in ROWS]


def render_text(results: dict) -> str:
    rows = table_rows(results)
    width = max(len(r[0]) for r in rows)
    lines = ["Side by side: the same checks on both local meshes (Envoy under each mesh's files; under Linkerd it is "
             "Envoy enforcing Linkerd's intents, not linkerd2-proxy)", ""]
    for label, istio, linkerd, files in rows:
        lines += [f"{label:<{width}}  istio:   {istio}", f"{'':<{width}}  linkerd: {linkerd}",
                  f"{'':<{width}}  files:   {files}", ""]
    lines.append(summary(results))
    return "\n".join(lines)


def summary(results: dict) -> str:
    parts = []
    for mesh in MESHES:
        checks = results.get(mesh, {}).get("checks", [])
        passed = sum(c["status"] == PASS for c in checks)
        parts.append(f"{mesh}: {passed}/{len(checks)} checks PASS in {results.get(mesh, {}).get('seconds', 0):g} s")
    return "; ".join(parts)


def render_markdown(results: dict, command: str) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = [BEGIN, "", f"Regenerate with `{command}` (it starts each local mesh in turn; about "
                        f"{sum(results.get(m, {}).get('seconds', 0) for m in MESHES) / 60 + 1:.0f} minutes here). "
                        f"{results.get('_when', '')}", "",
             "| behaviour | Istio (local) | Linkerd's intents (local, enforced by Envoy) | configured by |",
             "|---|---|---|---|"]
    lines += [f"| {esc(a)} | {esc(b)} | {esc(c)} | {esc(d)} |" for a, b, c, d in table_rows(results)]
    lines += ["", summary(results) + ".", "", END]
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    if BEGIN in current and END in current:
        head, _, rest = current.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + text.rstrip("\n") + tail
    path.write_text(text)


# -- running each mesh ----------------------------------------------------------------------------------------------
def start_mesh(mesh: str, port_offset: int, data_dir: Path) -> tuple[subprocess.Popen, Path]:
    data_dir.mkdir(parents=True, exist_ok=True)
    inventory = data_dir / "mesh" / "inventory.json"
    inventory.unlink(missing_ok=True)
    log = data_dir / "run-local.out"
    with open(log, "wb") as out:
        process = subprocess.Popen([str(ROOT / "run-local.sh"), "--mesh", mesh, "--port-offset", str(port_offset),
                                    "--data-dir", str(data_dir)], stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"./run-local.sh --mesh {mesh} exited with {process.returncode}: "
                                   + " ".join(log.read_text(errors="replace").splitlines()[-3:]))
            if inventory.exists() and "Ctrl-C stops everything" in log.read_text(errors="replace"):
                return process, inventory
            time.sleep(1)
    except BaseException:  # Ctrl-C or TERM while it starts: it has a session of its own, so nothing else stops it
        stop_mesh(process)
        raise
    stop_mesh(process)
    raise RuntimeError(f"./run-local.sh --mesh {mesh} was not ready within {START_TIMEOUT_S:g} s; see {log}")


def stop_mesh(process: subprocess.Popen) -> None:
    """What Ctrl-C does: run-local stops every process of its stack."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_compare(samples: int, port_offset: int, data_dir: Path) -> dict:
    from .local_mesh import probe, run_local_mesh_checks

    results: dict = {"_when": time.strftime("Measured %Y-%m-%d on this machine.")}
    for mesh in MESHES:
        progress(f"starting the local mesh under {mesh}'s files (./run-local.sh --mesh {mesh} --port-offset "
                 f"{port_offset})")
        started = time.monotonic()
        try:
            process, inventory = start_mesh(mesh, port_offset, data_dir / mesh)
        except RuntimeError as err:
            results[mesh] = {"checks": [asdict(Check("local mesh", FAIL, str(err)))], "seconds": 0}
            continue
        try:
            checks, _ = run_local_mesh_checks(probe.Inventory.load(inventory), samples)
        finally:
            progress(f"stopping the {mesh} mesh")
            stop_mesh(process)
        results[mesh] = {"checks": [asdict(c) for c in checks], "seconds": round(time.monotonic() - started)}
    return results


def main(args) -> int:
    data_dir = Path(args.compare_data_dir or ROOT / ".local" / "compare")
    if args.dry_run:
        for mesh in MESHES:
            print(f"[dry-run] would start ./run-local.sh --mesh {mesh} --port-offset {args.port_offset} --data-dir "
                  f"{data_dir / mesh}, run the local mesh checks ({args.samples} samples), then stop it (Ctrl-C)")
        if args.markdown:
            print(f"[dry-run] would write the table to {args.markdown}")
        return 0
    results = run_compare(args.samples, args.port_offset, data_dir)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(render_text(results))
    if args.markdown:
        command = "./quick-test.sh --compare --markdown " + str(args.markdown)
        write_markdown(Path(args.markdown), render_markdown(results, command))
    failed = any(c["status"] == FAIL for mesh in MESHES for c in results.get(mesh, {}).get("checks", []))
    return 1 if failed else 0

"""Hardening policy: checkov's Kubernetes checks, with a written reason for every check we skip.

checkov runs from its own virtualenv (see requirements-checkov.txt for why); `--install-checkov` creates it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from .model import Document, Problem, Tree

HERE = Path(__file__).resolve().parent
SKIPS_FILE = HERE / "checkov-skips.yaml"
REQUIREMENTS = HERE / "requirements-checkov.txt"
DEFAULT_VENV = ".venv-checkov"
CHECKOV_ENV = "CHECKOV"


@dataclass
class Skip:
    check_id: str
    reason: str
    resources: set[str] | None  # kind/name; None = everywhere


def default_checkov(root: Path) -> Path:
    if os.environ.get(CHECKOV_ENV):
        return Path(os.environ[CHECKOV_ENV])
    return root / DEFAULT_VENV / "bin" / "checkov"


def install_hint() -> str:
    return (f"create it with `.venv/bin/python -m tools.manifestcheck --install-checkov` (a virtualenv {DEFAULT_VENV}/ "
            f"with {REQUIREMENTS.relative_to(HERE.parent.parent)}), or set {CHECKOV_ENV}=/path/to/checkov")


def install(root: Path) -> int:
    """Create <root>/.venv-checkov with the pinned checkov; a no-op when it is already there."""
    venv = root / DEFAULT_VENV
    checkov = venv / "bin" / "checkov"
    pinned = REQUIREMENTS.read_text().split("checkov==", 1)[1].split()[0]
    if checkov.exists():
        version = subprocess.run([str(checkov), "--version"], capture_output=True, text=True).stdout.strip()
        if version == pinned:
            print(f"checkov {version} already in {venv}")
            return 0
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "pip"), "install", "-qq", "--disable-pip-version-check", "-r", str(REQUIREMENTS)]]
    for step in steps:
        if subprocess.run(step).returncode != 0:
            print(f"failed: {' '.join(step)}", file=sys.stderr)
            return 1
    print(f"checkov {pinned} installed in {venv}")
    return 0


def load_skips(path: Path | None = None) -> tuple[list[Skip], list[Problem]]:
    path = path or SKIPS_FILE
    rel = f"tools/manifestcheck/{path.name}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        return [], [Problem(rel, message=f"cannot read the checkov skip list: {exc}")]
    skips, problems = [], []
    for i, entry in enumerate(data.get("skips") or []):
        entry = entry if isinstance(entry, dict) else {}
        check_id, reason = str(entry.get("id", "")), str(entry.get("reason") or "").strip()
        if not check_id or len(reason) < 20:
            problems.append(Problem(rel, i, check_id or "?", "every skipped check needs an id and a written reason"))
            continue
        resources = entry.get("resources")
        skips.append(Skip(check_id, reason, set(map(str, resources)) if resources else None))
    return skips, problems


def matching_skip(skips: list[Skip], check_id: str, kind_name: str) -> Skip | None:
    for skip in skips:
        if skip.check_id == check_id and (skip.resources is None or kind_name in skip.resources):
            return skip
    return None


def check(tree: Tree, checkov: Path) -> list[Problem]:
    skips, problems = load_skips()
    if not checkov.exists():
        return problems + [Problem(str(checkov), message=f"checkov not found, so the hardening policy was not checked; {install_hint()}")]
    files = sorted({d.path for d in tree.docs if d.kind != "Kustomization"})
    if not files:
        return problems
    try:
        result = subprocess.run(
            [str(checkov), "--framework", "kubernetes", "--output", "json", "--quiet", "--compact", "--skip-download",
             "--file", *files],
            cwd=tree.root, capture_output=True, text=True, timeout=300,
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return problems + [Problem(str(checkov), message=f"checkov could not run: {exc}")]
    try:
        report = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        detail = " ".join((result.stderr or result.stdout).split())[-300:]
        return problems + [Problem(str(checkov), message=f"checkov printed no JSON report (exit {result.returncode}): {detail}")]
    reports = report if isinstance(report, list) else [report]
    used: set[tuple[str, str | None]] = set()
    for rep in reports:
        for failed in (rep.get("results") or {}).get("failed_checks", []):
            kind, _, rest = str(failed.get("resource", "")).partition(".")
            _ns, _, rest = rest.partition(".")
            name = rest.split(".")[0] if kind == "Pod" else rest
            skip = matching_skip(skips, failed["check_id"], f"{kind}/{name}")
            if skip:
                used.add((skip.check_id, f"{kind}/{name}" if skip.resources else None))
                continue
            message = (f"checkov {failed['check_id']}: {failed.get('check_name', '')} (fix it, or add a reasoned "
                       f"skip to tools/manifestcheck/{SKIPS_FILE.name})")
            doc = locate(tree, failed, kind, name)
            problems.append(doc.problem(message) if doc else
                            Problem(str(failed.get("file_path", "?")).lstrip("/"), None, f"{kind}/{name}", message))
    for skip in skips:  # a skip nothing needs any more hides the next regression: remove it
        stale = [r for r in sorted(skip.resources or [None]) if (skip.check_id, r) not in used]
        if stale:
            where = f" for {', '.join(stale)}" if skip.resources else ""
            problems.append(Problem(f"tools/manifestcheck/{SKIPS_FILE.name}", None, skip.check_id,
                                    f"skipped{where}, but checkov no longer reports it there: remove the skip"))
    return problems


def locate(tree: Tree, failed: dict, kind: str, name: str) -> Document | None:
    path = str(failed.get("file_path", "")).lstrip("/")
    pod_kinds = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet") if kind == "Pod" else (kind,)
    for doc in tree.docs:
        if doc.path == path and doc.kind in pod_kinds and doc.name == name:
            return doc
    return None

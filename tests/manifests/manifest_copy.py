"""A throw-away copy of the real tree that a test breaks in one place, and the helpers to break and check it."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import yaml

import pytest

from tools.manifestcheck import CHECKS, Options, crd_pins, run
from tools.manifestcheck.model import MANIFEST_DIRS

REPO_ROOT = Path(__file__).resolve().parents[2]

# What the checks read besides the manifests: the README's matrix, build.sh (and the library it sources), the metric
# names of the services and the architecture doc.
SUPPORT_FILES = ("README.md", "build.sh", "scripts", "docs", "services")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "node_modules", "static")


def crds_folder() -> Path:
    """The verified folder of the pinned CRDs ($CRDS_DIR, else the cache). Tests that need it carry
    @pytest.mark.crds, which skips them (one line each, saying how to get the CRDs) when there are none; a folder
    that is there but wrong fails them."""
    try:
        return crd_pins.verified_folder(REPO_ROOT, None)
    except crd_pins.CrdsUnavailable as exc:
        pytest.fail(f"this test needs the pinned CRDs but is not marked @pytest.mark.crds: {exc}")
    except crd_pins.CrdsInvalid as exc:
        pytest.fail(str(exc))


class ManifestCopy:
    """A copy of the repository's checked files under tmp_path; edit one document, run the checker on it."""

    def __init__(self, root: Path):
        self.root = root

    def docs(self, rel: str) -> list:
        return [d for d in yaml.safe_load_all((self.root / rel).read_text()) if d is not None]

    def write_docs(self, rel: str, docs: list) -> None:
        (self.root / rel).write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def find(self, kind: str, where: Callable[[dict], bool] = lambda d: True, folder: str = "",
             scenarios: bool = False) -> tuple[str, int, dict]:
        """(file, index, document) of the first document of that kind the predicate accepts."""
        for path in sorted(self.root.rglob("*.yaml")):
            rel = path.relative_to(self.root).as_posix()
            if not rel.startswith(MANIFEST_DIRS) or not rel.startswith(folder) or (not scenarios and "/scenarios/" in rel):
                continue
            try:
                docs = self.docs(rel)
            except yaml.YAMLError:
                continue
            for i, doc in enumerate(docs):
                if isinstance(doc, dict) and doc.get("kind") == kind and where(doc):
                    return rel, i, doc
        raise LookupError(f"no {kind} in {folder or 'the tree'} matches")

    def edit(self, kind: str, change: Callable[[dict], None], where: Callable[[dict], bool] = lambda d: True,
             folder: str = "") -> tuple[str, dict]:
        """Apply `change` to the first matching document (after unsharing YAML anchors) and save the file."""
        rel, index, _ = self.find(kind, where, folder)
        docs = self.docs(rel)
        docs[index] = json.loads(json.dumps(docs[index], default=str))  # a JSON round trip unshares YAML anchors
        change(docs[index])
        self.write_docs(rel, docs)
        return rel, docs[index]

    def check(self, *checks: str, crds: Path | None = None, render: bool = False) -> list[str]:
        """Problem lines of the selected checks (all but checkov by default); the CRD check needs the pinned CRDs."""
        selected = list(checks) or _all_but_hardening()
        folder = crds or (crds_folder() if "crd" in selected else None)
        result = run(Options(root=self.root, crds=str(folder) if folder else None, checks=selected, render=render))
        assert result.crds_problem is None, result.crds_problem
        return [str(p) for p in result.problems]

    def cli(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "tools.manifestcheck", "--root", str(self.root), *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=120)


def _all_but_hardening() -> list[str]:
    return [c for c in CHECKS if c != "hardening"]


def copy_tree(root: Path) -> ManifestCopy:
    root.mkdir()
    for name in MANIFEST_DIRS + SUPPORT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=IGNORE)
        elif source.is_file():
            shutil.copy2(source, root / name)
    return ManifestCopy(root)


def matching(problems: list[str], *fragments: str) -> list[str]:
    """The problem lines that contain every fragment."""
    return [p for p in problems if all(f in p for f in fragments)]

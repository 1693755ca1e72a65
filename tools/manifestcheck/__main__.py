"""python -m tools.manifestcheck [options]: one line per problem on stdout, exit 1 on any, 2 on bad usage."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import CHECKS, Options, hardening, run
from .crd_schemas import CRDS_ENV, DEFAULT_CRDS_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.manifestcheck",
        description="Check the manifests under kubernetes/, istio/, linkerd/ and monitoring/ offline and strictly. "
        "Prints `file:doc-index kind/name: problem` per problem (doc-index counts a file's documents from 0) and "
        "exits 1 when there is any.",
        epilog="checks:\n" + "\n".join(f"  {name:<10} {text}" for name, text in CHECKS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--crds", metavar="DIR",
                        help=f"folder of the pinned CRDs (default: ${CRDS_ENV}, else {DEFAULT_CRDS_DIR} from the root)")
    parser.add_argument("--checkov", type=Path, metavar="PATH",
                        help=f"checkov executable (default: ${hardening.CHECKOV_ENV}, else <root>/{hardening.DEFAULT_VENV}/bin/checkov)")
    parser.add_argument("--only", metavar="LIST", help="comma-separated checks to run (default: all)")
    parser.add_argument("--skip", metavar="LIST", help="comma-separated checks to leave out")
    parser.add_argument("--no-render", action="store_true", help="do not run `kubectl kustomize` even when kubectl is present")
    parser.add_argument("--install-checkov", action="store_true",
                        help=f"create <root>/{hardening.DEFAULT_VENV} with the pinned checkov and exit (idempotent)")
    return parser.parse_args(argv)


def selected_checks(args: argparse.Namespace) -> list[str]:
    only = [c for c in (args.only or "").split(",") if c] or list(CHECKS)
    skip = [c for c in (args.skip or "").split(",") if c]
    unknown = sorted(set(only + skip) - set(CHECKS))
    if unknown:
        raise SystemExit(f"unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    return [c for c in CHECKS if c in only and c not in skip]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    root = args.root.resolve()
    if not root.is_dir():
        print(f"--root {root} is not a folder", file=sys.stderr)
        return 2
    if args.install_checkov:
        return hardening.install(root)
    try:
        checks = selected_checks(args)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    problems, tree = run(Options(root=root, crds=args.crds, checkov=args.checkov, checks=checks, render=not args.no_render))
    for problem in problems:
        print(problem)
    summary = f"{len(tree.docs)} documents in {len({d.path for d in tree.docs})} files; checks: {', '.join(checks)}"
    if problems:
        print(f"manifestcheck: {len(problems)} problem(s); {summary}", file=sys.stderr)
        return 1
    print(f"manifestcheck: OK; {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

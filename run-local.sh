#!/usr/bin/env bash
# The whole shop on this machine: Redis (AOF) and every service under gunicorn, like the pods but without a cluster.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export REPO_ROOT

main() {
  cd "$REPO_ROOT"
  if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
    # devstack's options need only the standard library: no virtualenv for --help.
    exec "$(python_for_help)" -m devstack --help
  fi
  # shellcheck source=scripts/lib/venv.sh
  source "$REPO_ROOT/scripts/lib/venv.sh"
  ensure_venv
  ensure_redis
  exec "$REPO_ROOT/.venv/bin/python" -m devstack "$@"
}

python_for_help() {
  if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then echo "$REPO_ROOT/.venv/bin/python"; else echo python3; fi
}

main "$@"

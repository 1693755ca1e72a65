"""The images without a Docker engine: hadolint, the hardening rules, and the install step and entry point that the
tests can run for real (the same requirements file, the same shopkit install, the same gunicorn target)."""
import importlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
DOCKERFILES = sorted(SERVICES.glob("*/Dockerfile"))


def test_every_service_has_a_dockerfile():
    names = {p.parent.name for p in DOCKERFILES}
    assert {"api-gateway", "catalog", "cart", "payment", "notification"} <= names


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, *map(str, DOCKERFILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_hardening(dockerfile):
    text = dockerfile.read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert len(bases) == 2, "multi-stage: a builder and a runtime stage"
    for base in bases:
        assert re.match(r"python:\d+\.\d+\.\d+-slim-\w+$", base), f"pinned slim base, got {base}"
    assert re.search(r"^USER 10001", text, re.M), "non-root user"
    runtime = text.split("FROM", 2)[2]
    assert "pip install" not in runtime and "apt-get" not in runtime, "nothing is built in the runtime stage"
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd, "exec-form CMD"
    assert "COPY requirements.txt" in text and "COPY shopkit" in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_copied_sources_exist_and_entry_point_builds_an_app(dockerfile):
    text = dockerfile.read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (SERVICES / source).exists(), f"COPY {source}: missing in the build context services/"
    program = re.search(r'"-m", "([a-z_]+)"\]', text)
    if program:  # a plain program (the load generator): its __main__ must exist
        assert importlib.util.find_spec(f"{program.group(1)}.__main__") is not None
        return
    target = re.search(r'"([a-z_]+)\.app:create_app\(\)"', text).group(1)
    module = importlib.import_module(f"{target}.app")
    app = module.create_app()
    assert app.test_client().get("/health").status_code == 200


def test_shopkit_installs_as_the_image_installs_it(tmp_path):
    """`pip install --no-deps services/shopkit`, as in every builder stage, into a fresh folder."""
    target = tmp_path / "site"
    source = shutil.copytree(SERVICES / "shopkit", tmp_path / "shopkit")  # the build must not litter the tree
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                             "--target", str(target), str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    check = subprocess.run([sys.executable, "-c", "import shopkit.app, shopkit.gunicorn_conf; print(shopkit.__file__)"],
                           cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert str(target) in check.stdout


def test_image_requirements_are_the_pinned_ones():
    lines = [line for line in (SERVICES / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(re.match(r"^[a-z0-9-]+==\d", line) for line in lines), lines
    assert "-r services/requirements.txt" in (ROOT / "requirements-dev.txt").read_text()

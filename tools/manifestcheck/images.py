"""Container images in the manifests are exactly what ./build.sh builds (third-party images aside)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from .model import Problem, Tree, as_dict, as_list

BUILD_SCRIPT = "build.sh"


def list_built_images(root: Path) -> tuple[set[str] | None, Problem | None]:
    script = root / BUILD_SCRIPT
    if not script.is_file():
        return None, Problem(BUILD_SCRIPT, message=(
            "missing: cannot compare the manifests' image names with what it builds "
            "(`./build.sh --list-images` must print one name:tag per line)"))
    try:
        result = subprocess.run(["bash", str(script), "--list-images"], cwd=root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, Problem(BUILD_SCRIPT, message=f"`./build.sh --list-images` could not run: {exc}")
    images = {line.strip() for line in result.stdout.splitlines() if line.strip()}
    if result.returncode != 0 or not images:
        detail = " ".join(result.stderr.split())[:300]
        return None, Problem(BUILD_SCRIPT, message=f"`./build.sh --list-images` failed (exit {result.returncode}): {detail or 'no output'}")
    bad = sorted(i for i in images if ":" not in i or " " in i)
    if bad:
        return None, Problem(BUILD_SCRIPT, message=f"`./build.sh --list-images` printed lines that are not name:tag: {bad}")
    return images, None


def split_image(image: str) -> tuple[str, str]:
    """(repository without registry, tag): `localhost:5001/cart-service:v1` -> (cart-service, v1)."""
    image = image.split("@", 1)[0]
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name.rsplit("/", 1)[-1], tag


def check(tree: Tree) -> list[Problem]:
    built, problem = list_built_images(tree.root)
    if problem:
        return [problem]
    assert built is not None
    built_names = {split_image(i)[0] for i in built}
    used: set[str] = set()
    problems = []
    for pod in tree.pod_templates():
        for c in pod.all_containers:
            image = str(c.get("image", ""))
            name, tag = split_image(image)
            if name in built_names:
                used.add(f"{name}:{tag}")
                if f"{name}:{tag}" not in built:
                    problems.append(pod.doc.problem(
                        f"container {c.get('name')}: image {image!r} is not one ./build.sh builds "
                        f"({', '.join(sorted(i for i in built if i.startswith(name + ':')))})"))
    for image in sorted(built - used):
        problems.append(Problem(BUILD_SCRIPT, message=f"builds {image}, but no manifest runs it"))
    all_images = {split_image(str(c.get("image", "")))[0] for pod in tree.pod_templates() for c in pod.all_containers}
    for kust in tree.kustomizations():
        for entry in as_list(kust.obj.get("images")):
            name = str(as_dict(entry).get("name", ""))
            if name and name.rsplit("/", 1)[-1] not in all_images:
                problems.append(kust.problem(f"images: {name!r} matches no container image, so kustomize would ignore it"))
    return problems

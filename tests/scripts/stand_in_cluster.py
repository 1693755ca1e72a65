"""Runs the root scripts against the stand-in kubectl/istioctl/linkerd/docker/kind/helm of fakes/fakecluster.py.

Every run gets a PATH made only of those stand-ins and the ordinary system tools the scripts use, so no test can
reach a real cluster, Docker engine or mesh CLI, and a test can leave one tool out (a missing prerequisite).
The add-on and Gateway API manifests the scripts would download come from local files (the *_BASE_URL variables).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
import fakecluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).resolve().parent / "fakes"
STAND_INS = ("kubectl", "istioctl", "linkerd", "docker", "kind", "helm", "k3d")
# What the scripts call besides the stand-ins (coreutils, grep, awk, ...); linked one by one so PATH holds nothing
# else (in particular no real kubectl or docker).
SYSTEM_TOOLS = ("bash", "env", "grep", "awk", "sed", "sort", "tr", "head", "cut", "mktemp", "dirname", "basename",
                "uname", "curl", "tar", "gzip", "install", "sha256sum", "shasum", "base64", "cat", "rm", "mkdir", "mv",
                "chmod", "date", "sleep", "wc", "ls", "cp", "tail", "printf", "python3", "find")


def system_tool(name: str) -> str | None:
    """The real program behind NAME. python3 is this interpreter's own binary: the python3 on PATH may be a shim
    (pyenv's, a shell script that needs pyenv on PATH) that cannot run on the scripts' bare PATH."""
    if name == "python3":
        return str(Path(sys.executable).resolve())
    return shutil.which(name)


# The real kubectl renders kustomizations for the stand-in (offline); see fakecluster.real_kustomize.
REAL_KUBECTL = shutil.which("kubectl")

# Calls that change the cluster, the local images or the machine; the rest only read.
MUTATING = {
    "kubectl": {"apply", "delete", "label", "annotate", "create", "patch", "replace", "scale", "set", "edit", "rollout restart"},
    "istioctl": {"install", "uninstall", "upgrade", "manifest apply"},
    "docker": {"build", "push", "tag", "buildx build", "rmi"},
    "kind": {"load"},
    "k3d": {"image import"},
    "helm": {"install", "upgrade", "uninstall", "repo add"},
}


def needs_real_kubectl():
    import pytest
    return pytest.mark.skipif(REAL_KUBECTL is None, reason="the stand-in kubectl renders kustomizations with a real "
                              "kubectl (offline `kubectl kustomize`); none is installed")


class StandInCluster:
    """One stand-in cluster: a state file, a call log and the PATH the scripts run with."""

    def __init__(self, folder: Path, without: tuple[str, ...] = ()):
        self.folder = folder
        self.state_file = folder / "state.json"
        self.log_file = folder / "calls.jsonl"
        self.bin = folder / "bin"
        self.tools_bin = folder / "tools-bin"
        self.image_tags = folder / "image-tags"  # what ./build.sh writes and the deploy scripts read
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in STAND_INS:
            if tool not in without:
                (self.bin / tool).symlink_to(FAKES / "stand-in")
        for tool in SYSTEM_TOOLS:
            found = system_tool(tool)
            if found and not (self.bin / tool).exists():
                (self.bin / tool).symlink_to(found)
        self._write_downloads()

    # -- the files the scripts would otherwise download ---------------------------------------------------------
    def _write_downloads(self) -> None:
        self.addons = self.folder / "addons"
        self.addons.mkdir(exist_ok=True)
        # The objects of Istio's samples/addons (1.30), by their real, generic names: prometheus and kiali come with
        # a ClusterRole and ClusterRoleBinding named just "prometheus" / "kiali".
        for addon in ("prometheus", "grafana", "jaeger", "kiali"):
            docs = [
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": addon, "namespace": "istio-system"}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": addon, "namespace": "istio-system"},
                 "spec": {"ports": [{"name": "http", "port": 9090}]}},
                {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": addon, "namespace": "istio-system"},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": addon}},
                          "template": {"metadata": {"labels": {"app": addon}},
                                       "spec": {"containers": [{"name": addon, "image": f"{addon}:addon"}]}}}},
            ]
            if addon in ("prometheus", "kiali"):
                docs += [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": addon}},
                         {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                          "metadata": {"name": addon}}]
            (self.addons / f"{addon}.yaml").write_text(yaml.safe_dump_all(docs))
        self.gateway_api = self.folder / "gateway-api"
        self.write_gateway_api("v1.2.1")

    def write_gateway_api(self, version: str) -> Path:
        folder = self.gateway_api / version
        folder.mkdir(parents=True, exist_ok=True)
        docs = []
        for kind, plural in (("HTTPRoute", "httproutes"), ("Gateway", "gateways"), ("GatewayClass", "gatewayclasses"),
                             ("GRPCRoute", "grpcroutes"), ("ReferenceGrant", "referencegrants")):
            docs.append({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "metadata": {"name": f"{plural}.gateway.networking.k8s.io",
                                      "annotations": {"gateway.networking.k8s.io/bundle-version": version,
                                                      "gateway.networking.k8s.io/channel": "standard"}},
                         "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                                  "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                                  "versions": [{"name": "v1", "served": True, "storage": True}]}})
        if not re.match(r"v(0|1\.[0-4])\.", version):  # v1.5+ ships its safe-upgrades admission policy
            meta = {"name": fakecluster.SAFE_UPGRADES, "annotations": {"gateway.networking.k8s.io/bundle-version": version,
                                                                       "gateway.networking.k8s.io/channel": "standard"}}
            docs += [{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                      "metadata": meta, "spec": {"failurePolicy": "Fail"}},
                     {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
                      "metadata": meta, "spec": {"policyName": fakecluster.SAFE_UPGRADES, "validationActions": ["Deny"]}}]
        (folder / "standard-install.yaml").write_text(yaml.safe_dump_all(docs))
        return folder / "standard-install.yaml"

    # -- running ------------------------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": str(self.bin),
            "HOME": str(self.folder),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "FAKE_STATE": str(self.state_file),
            "FAKE_LOG": str(self.log_file),
            "FAKE_PYTHON": sys.executable,
            "FAKE_CLUSTER_PY": str(FAKES / "fakecluster.py"),
            "FAKE_REAL_KUBECTL": REAL_KUBECTL or "",
            "ISTIO_ADDONS_BASE_URL": str(self.addons),
            "GATEWAY_API_BASE_URL": str(self.gateway_api),
            "TOOLS_BIN": str(self.tools_bin),
            "IMAGE_TAGS_FILE": str(self.folder / "image-tags"),
            "ROLLOUT_TIMEOUT": "5s",
        }
        env.update(extra)
        return env

    def run(self, script: str, *args: str, stdin: str | None = "", timeout: float = 120,
            **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(ROOT / script), *args], cwd=ROOT, env=self.env(**extra_env), text=True,
                              input=stdin, capture_output=True, timeout=timeout)

    def tool(self, name: str, *args: str, stdin: str | None = "") -> subprocess.CompletedProcess:
        """One stand-in called directly (to prepare a state), logged like any call."""
        return subprocess.run([str(self.bin / name), *args], env=self.env(), text=True, input=stdin,
                              capture_output=True, timeout=30)

    # -- state ----------------------------------------------------------------------------------------------------
    def state(self) -> dict:
        if not self.state_file.exists():
            self.save(fakecluster.default_state())
        return json.loads(self.state_file.read_text())

    def save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=1, sort_keys=True))

    def update(self, **fields) -> None:
        state = self.state()
        state.update(fields)
        self.save(state)

    def add_object(self, obj: dict) -> None:
        state = self.state()
        state["objects"].append(obj)
        self.save(state)

    def objects(self, kind: str, namespace: str | None = ...) -> list[dict]:
        return [o for o in self.state()["objects"] if o["kind"] == kind
                and (namespace is ... or o["metadata"].get("namespace") == namespace)]

    def names(self, kind: str, namespace: str | None = ...) -> set[str]:
        return {o["metadata"]["name"] for o in self.objects(kind, namespace)}

    def namespace(self, name: str) -> dict | None:
        found = [o for o in self.objects("Namespace") if o["metadata"]["name"] == name]
        return found[0] if found else None

    def pods_containers(self, namespace: str) -> dict[str, set[str]]:
        """Containers and init containers (native sidecars are init containers) of each pod."""
        return {p["metadata"]["name"]: {c["name"] for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}
                for p in self.objects("Pod", namespace)}

    # -- call log -------------------------------------------------------------------------------------------------
    def calls(self) -> list[dict]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def clear_calls(self) -> None:
        self.log_file.unlink(missing_ok=True)

    def mutating_calls(self) -> list[dict]:
        out = []
        for call in self.calls():
            words = [a for a in call["args"] if not a.startswith("-")]
            verbs = MUTATING.get(call["tool"], set())
            if (words[:1] and words[0] in verbs) or (" ".join(words[:2]) in verbs):
                out.append(call)
        return out

    def applied_documents(self) -> list[dict]:
        """Every object sent to `kubectl apply`, in order."""
        docs = []
        for call in self.calls():
            if call["tool"] == "kubectl" and call["args"][:1] == ["apply"] and call.get("stdin"):
                docs.extend(d for d in yaml.safe_load_all(call["stdin"]) if d)
        return docs


def state_difference(before: dict, after: dict) -> list[str]:
    """What changed between two snapshots, one line per object or field (empty: identical)."""
    changes = [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in sorted(set(before) | set(after))
               if key != "objects" and before.get(key) != after.get(key)]
    old = {json.dumps(o, sort_keys=True) for o in before.get("objects", [])}
    new = {json.dumps(o, sort_keys=True) for o in after.get("objects", [])}
    changes += [f"- {o}" for o in sorted(old - new)] + [f"+ {o}" for o in sorted(new - old)]
    return changes


def snapshot(cluster: StandInCluster) -> dict:
    return json.loads(json.dumps(cluster.state()))


def run_bash(cluster: StandInCluster, snippet: str, **extra_env: str) -> subprocess.CompletedProcess:
    """A bash snippet with the library sourced, under the stand-in PATH."""
    script = f'set -euo pipefail\nsource "{ROOT}/scripts/lib/common.sh"\n{snippet}\n'
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=cluster.env(**extra_env), text=True,
                          capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def copy_state(source: Path, cluster: StandInCluster) -> None:
    shutil.copy(source, cluster.state_file)


"""checkov's policies with reasoned skips, Kustomization references and YAML parsing."""
from __future__ import annotations

import shutil

import pytest
from tests.manifests.manifest_copy import REPO_ROOT, matching

from tools.manifestcheck import hardening

CHECKOV = hardening.default_checkov(REPO_ROOT)


@pytest.mark.skipif(not CHECKOV.exists(), reason=f"checkov is not installed: {hardening.install_hint()}")
def test_checkov_catches_a_writable_root_filesystem(tree_copy):
    def writable(deployment):
        deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False

    rel, deployment = tree_copy.edit("Deployment", writable, folder="kubernetes/",
                                     where=lambda d: d["metadata"]["name"] == "catalog-service")
    problems = [str(p) for p in hardening.check(tree_copy_tree(tree_copy), CHECKOV)]
    assert matching(problems, rel, "Deployment/catalog-service", "CKV_K8S_22"), problems


def test_missing_checkov_is_reported_with_the_install_command(tree_copy, tmp_path):
    problems = [str(p) for p in hardening.check(tree_copy_tree(tree_copy), tmp_path / "no-checkov")]
    assert matching(problems, "checkov not found", "--install-checkov"), problems


def test_every_skip_in_the_real_list_has_a_reason_and_a_bare_one_fails(tmp_path):
    skips, problems = hardening.load_skips()
    assert skips and not problems
    bare = tmp_path / "skips.yaml"
    bare.write_text("skips:\n  - id: CKV_K8S_22\n")
    _, problems = hardening.load_skips(bare)
    assert problems and "written reason" in problems[0].message


def test_skip_scoped_to_resources_holds_only_for_them():
    skips = [hardening.Skip("CKV_K8S_35", "reason", {"Deployment/redis"})]
    assert hardening.matching_skip(skips, "CKV_K8S_35", "Deployment/redis")
    assert not hardening.matching_skip(skips, "CKV_K8S_35", "Deployment/catalog-service")


@pytest.mark.skipif(not CHECKOV.exists(), reason=f"checkov is not installed: {hardening.install_hint()}")
def test_skip_that_nothing_needs_any_more_is_reported(tree_copy, tmp_path, monkeypatch):
    skips = tmp_path / "skips.yaml"
    skips.write_text(hardening.SKIPS_FILE.read_text() + (
        "  - id: CKV_K8S_20\n    resources: [Deployment/catalog-service]\n"
        "    reason: allowPrivilegeEscalation is set to false everywhere, so this skip is stale\n"))
    monkeypatch.setattr(hardening, "SKIPS_FILE", skips)
    problems = [str(p) for p in hardening.check(tree_copy_tree(tree_copy), CHECKOV)]
    assert problems == [f"tools/manifestcheck/skips.yaml CKV_K8S_20: skipped for Deployment/catalog-service, but "
                        "checkov no longer reports it there: remove the skip"], problems


def test_kustomization_resource_that_does_not_exist_fails(tree_copy):
    rel, _ = tree_copy.edit("Kustomization", lambda d: d["resources"].append("payments.yaml"), folder="kubernetes/")
    problems = tree_copy.check("kustomize")
    assert matching(problems, rel, "resource 'payments.yaml' does not exist"), problems


def test_misspelled_kustomization_field_fails(tree_copy):
    rel, _ = tree_copy.edit("Kustomization", lambda d: d.update(resource=d["resources"]), folder="kubernetes/")
    assert matching(tree_copy.check("kustomize"), rel, "unknown Kustomization field 'resource'")


def test_yaml_that_does_not_parse_fails(tree_copy):
    path = tree_copy.root / "istio" / "broken.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    assert matching(tree_copy.check("parse"), "istio/broken.yaml", "does not parse as YAML")


def tree_copy_tree(tree_copy):
    from tools.manifestcheck.model import Tree

    return Tree.load(tree_copy.root)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed: rendering is skipped without it")
def test_kustomization_that_kubectl_cannot_render_fails(tree_copy):
    (tree_copy.root / "kubernetes" / "ghost-patch.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ghost, namespace: e-commerce}\nspec: {replicas: 2}\n")
    rel, _ = tree_copy.edit("Kustomization", lambda d: d.setdefault("patches", []).append({"path": "ghost-patch.yaml"}),
                            folder="kubernetes/")
    problems = tree_copy.check("kustomize", render=True)
    assert matching(problems, rel, "kubectl kustomize kubernetes/ fails"), problems

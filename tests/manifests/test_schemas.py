"""Strict schema validation: core kinds with kubernetes-validate, custom kinds against the pinned CRDs."""
from __future__ import annotations

import pytest

from tests.manifests.manifest_copy import matching

from tools.manifestcheck import core_schemas
from tools.manifestcheck.crd_schemas import to_json_schema


def is_payment_vs(doc):
    return doc["metadata"]["name"] == "payment-service"


@pytest.mark.crds
def test_misspelled_field_in_a_virtualservice_fails(tree_copy):
    def misspell(vs):
        route = vs["spec"]["http"][0]
        route["timout"] = route.pop("timeout", "3s")

    rel, vs = tree_copy.edit("VirtualService", misspell, folder="istio/")
    problems = tree_copy.check("crd")
    assert matching(problems, rel, f"VirtualService/{vs['metadata']['name']}", "spec.http.0", "'timout' was unexpected"), problems


@pytest.mark.crds
def test_misspelled_field_in_an_httproute_fails(tree_copy):
    def misspell(route):
        backend = route["spec"]["rules"][0]["backendRefs"][0]
        backend["wieght"] = backend.pop("weight", 100)

    rel, route = tree_copy.edit("HTTPRoute", misspell,
                                where=lambda d: d["apiVersion"].startswith("gateway.networking.k8s.io/"), folder="linkerd/")
    problems = tree_copy.check("crd")
    assert matching(problems, rel, f"HTTPRoute/{route['metadata']['name']}", "backendRefs.0", "'wieght' was unexpected"), problems


def test_misspelled_field_in_a_deployment_fails_for_both_kubernetes_versions(tree_copy):
    def misspell(deployment):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["readinesProbe"] = container.pop("readinessProbe")

    rel, deployment = tree_copy.edit("Deployment", misspell, folder="kubernetes/")
    problems = tree_copy.check("core")
    found = matching(problems, rel, f"Deployment/{deployment['metadata']['name']}", "'readinesProbe' was unexpected")
    assert found, problems
    for version in core_schemas.target_versions():
        assert version in found[0]
    assert "1.31" in core_schemas.target_versions()


@pytest.mark.crds
def test_misspelled_metadata_field_of_a_custom_resource_fails(tree_copy):
    rel, _ = tree_copy.edit("DestinationRule", lambda d: d["metadata"].update(lables={"app": "x"}), folder="istio/")
    assert matching(tree_copy.check("crd"), rel, "metadata", "'lables' was unexpected")


@pytest.mark.crds
def test_wrong_type_enum_and_missing_required_field_fail(tree_copy):
    def break_route(route):
        rule = route["spec"]["rules"][0]
        rule["backendRefs"][0]["port"] = "five-thousand"  # PortNumber is an integer
        rule.setdefault("matches", [{}])[0]["path"] = {"type": "Prefix", "value": "/"}  # enum: Exact, PathPrefix, ...
        del route["spec"]["rules"][0]["backendRefs"][0]["name"]

    rel, route = tree_copy.edit("HTTPRoute", break_route,
                                where=lambda d: d["apiVersion"].startswith("gateway.networking.k8s.io/"), folder="linkerd/")
    problems = matching(tree_copy.check("crd"), rel, f"HTTPRoute/{route['metadata']['name']}")
    assert matching(problems, "'five-thousand' is not of type 'integer'"), problems
    assert matching(problems, "'Prefix' is not one of"), problems
    assert matching(problems, "'name' is a required property"), problems


def test_int_or_string_accepts_both_and_nothing_else():
    schema = {"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": True}}}
    converted = to_json_schema(schema)
    assert converted["properties"]["port"]["type"] == ["integer", "string"]
    assert converted["additionalProperties"] is False


def test_preserve_unknown_fields_keeps_an_object_open():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "x-kubernetes-preserve-unknown-fields": True}
    assert "additionalProperties" not in to_json_schema(schema)


@pytest.mark.crds
def test_unknown_kind_and_unserved_version_fail(tree_copy):
    tree_copy.edit("DestinationRule", lambda d: d.update(kind="DestinationRules"), folder="istio/")
    tree_copy.edit("PeerAuthentication", lambda d: d.update(apiVersion="security.istio.io/v2"), folder="istio/")
    problems = tree_copy.check("crd")
    assert matching(problems, "DestinationRules/", "unknown kind 'DestinationRules'"), problems
    assert matching(problems, "PeerAuthentication/", "'security.istio.io/v2' is not served"), problems


def test_unknown_core_kind_fails(tree_copy):
    tree_copy.edit("ConfigMap", lambda d: d.update(kind="ConfigMapp"), folder="kubernetes/")
    assert matching(tree_copy.check("core"), "ConfigMapp/", "unknown kind 'ConfigMapp'")

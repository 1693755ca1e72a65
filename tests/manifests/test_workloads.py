"""Pod consistency: listen ports, service URLs, documented environment names, writable /tmp, Redis durability."""
from __future__ import annotations

from tests.manifests.manifest_copy import matching

from tools.manifestcheck.workloads import documented_env


def named(name):
    return lambda d: d["metadata"]["name"] == name


def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def set_env(deployment, name, value):
    env = container(deployment)["env"]
    entry = next((e for e in env if e["name"] == name), None)
    if entry is None:
        env.append({"name": name, "value": value})
    else:
        entry["value"] = value


def test_port_env_annotation_and_service_target_port_must_agree(tree_copy):
    tree_copy.edit("Deployment", lambda d: set_env(d, "PORT", "5013"), folder="kubernetes/", where=named("payment-service-v2"))
    tree_copy.edit("Deployment", lambda d: d["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "9100"}),
                   folder="kubernetes/", where=named("catalog-service"))
    tree_copy.edit("Service", lambda d: d["spec"]["ports"][0].update(targetPort=5999), folder="kubernetes/",
                   where=named("cart-service"))
    tree_copy.edit("Deployment", lambda d: container(d)["env"].remove(next(e for e in container(d)["env"] if e["name"] == "PORT")),
                   folder="kubernetes/", where=named("notification-service"))
    problems = tree_copy.check("workloads")
    assert matching(problems, "Deployment/payment-service-v2", "PORT=5013 but the container port named 'http' is 5003"), problems
    assert matching(problems, "Deployment/catalog-service", "prometheus.io/port 9100 is not its listen port 5001"), problems
    assert matching(problems, "Service/cart-service", "targetPort 5999 but container cart-service", "listens on 5002"), problems
    assert matching(problems, "Deployment/notification-service", "port 'http' is 5004 but PORT is not set"), problems


def test_url_env_must_name_a_service_and_one_of_its_ports(tree_copy):
    def break_urls(deployment):
        set_env(deployment, "PAYMENT_URL", "http://payment:5003")
        set_env(deployment, "CATALOG_URL", "http://catalog-service:5003")
        set_env(deployment, "REDIS_URL", "redis://redis:6380/0")
        set_env(deployment, "NOTIFICATION_URL", "http://localhost:5004/")

    rel, _ = tree_copy.edit("Deployment", break_urls, folder="kubernetes/", where=named("cart-service"))
    problems = matching(tree_copy.check("workloads"), rel, "Deployment/cart-service")
    assert matching(problems, "PAYMENT_URL=http://payment:5003: 'payment' is not a Service"), problems
    assert matching(problems, "CATALOG_URL=http://catalog-service:5003: Service catalog-service has no port 5003"), problems
    assert matching(problems, "REDIS_URL=redis://redis:6380/0: Service redis has no port 6380"), problems
    assert matching(problems, "NOTIFICATION_URL=http://localhost:5004/: 'localhost' is not a Service"), problems


def test_unknown_environment_names_fail_in_env_and_in_envfrom_configmaps(tree_copy):
    tree_copy.edit("Deployment", lambda d: set_env(d, "UPSTREAM_TIMEOUT", "5"), folder="kubernetes/", where=named("api-gateway"))
    tree_copy.edit("ConfigMap", lambda d: d["data"].update({"FAULT_ERORR_RATE": "0.5"}), folder="kubernetes/",
                   where=named("catalog-service-faults"))
    problems = tree_copy.check("workloads")
    assert matching(problems, "Deployment/api-gateway", "env: UPSTREAM_TIMEOUT is not a variable of docs/architecture.md"), problems
    assert matching(problems, "Deployment/catalog-service", "envFrom ConfigMap catalog-service-faults: FAULT_ERORR_RATE"), problems
    # Redis is not our code: its REDISCLI_AUTH is not in our tables and is not checked.
    assert not matching(problems, "REDISCLI_AUTH"), problems


def test_documented_environment_is_read_from_every_variable_table():
    names, problem = documented_env(__import__("pathlib").Path(__file__).resolve().parents[2])
    assert problem is None
    assert {"PORT", "CATALOG_URL", "FAULT_TIMEOUT_SECONDS", "FAULTS_ENABLED", "LOADGEN_RPS", "METRICS_PORT"} <= names
    assert "TMPDIR" in names and "GET" not in names  # every documented variable, and only variables


def test_read_only_root_without_tmp_volume_fails(tree_copy):
    def drop_tmp(deployment):
        container(deployment)["volumeMounts"] = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] != "/tmp"]

    rel, _ = tree_copy.edit("Deployment", drop_tmp, folder="kubernetes/", where=named("notification-service"))
    assert matching(tree_copy.check("workloads"), rel, "Deployment/notification-service",
                    "readOnlyRootFilesystem: true but no volume is mounted at /tmp")


def test_redis_without_appendonly_fails(tree_copy):
    def no_aof(deployment):
        args = container(deployment)["args"]
        i = args.index("--appendonly")
        args[i + 1] = "no"

    rel, _ = tree_copy.edit("Deployment", no_aof, folder="kubernetes/", where=named("redis"))
    assert matching(tree_copy.check("workloads"), rel, "Deployment/redis", "without `--appendonly yes`")


def test_probes_must_use_the_admin_port(tree_copy):
    def probe_business_port(deployment):
        container(deployment)["livenessProbe"]["httpGet"]["port"] = "http"

    rel, _ = tree_copy.edit("Deployment", probe_business_port, folder="kubernetes/", where=named("catalog-service"))
    assert matching(tree_copy.check("workloads"), rel, "Deployment/catalog-service",
                    "livenessProbe on port 'http', not the admin port 8090")


def test_a_service_must_not_expose_the_admin_port(tree_copy):
    def expose(service):
        service["spec"]["ports"].append({"name": "http-admin", "port": 8090, "targetPort": "admin", "protocol": "TCP"})

    rel, _ = tree_copy.edit("Service", expose, folder="kubernetes/", where=named("cart-service"))
    assert matching(tree_copy.check("workloads"), rel, "Service/cart-service",
                    "port 'http-admin' sends to the admin port 8090", "kubectl port-forward")


def test_admin_port_env_and_container_port_must_agree_and_exist(tree_copy):
    tree_copy.edit("Deployment", lambda d: set_env(d, "ADMIN_PORT", "9000"), folder="kubernetes/",
                   where=named("api-gateway"))

    def drop_admin_port(deployment):
        c = container(deployment)
        c["ports"] = [p for p in c["ports"] if p["name"] != "admin"]
        c["env"] = [e for e in c["env"] if e["name"] != "ADMIN_PORT"]
        for probe in ("livenessProbe", "readinessProbe"):
            c[probe]["httpGet"]["port"] = "http"

    tree_copy.edit("Deployment", drop_admin_port, folder="kubernetes/", where=named("notification-service"))
    problems = tree_copy.check("workloads")
    assert matching(problems, "Deployment/api-gateway", "ADMIN_PORT=9000 but the container port named 'admin' is 8090")
    assert matching(problems, "Deployment/notification-service", "no container port named 'admin'")

"""Names, ports, sample sizes and timeouts of the quick test (names and ports from docs/architecture.md)."""
DEFAULT_URL = "http://localhost:5000"
NAMESPACE = "e-commerce"
LOCAL_SERVICE_PORTS = {
    "api-gateway": 5000,
    "catalog": 5001,
    "cart": 5002,
    "payment-v1": 5003,
    "payment-v2": 5013,
    "notification": 5004,
}
# (pod label app, pod label version or None) of every workload that must be ready in the cluster.
CLUSTER_WORKLOADS = [
    ("api-gateway", None),
    ("catalog-service", None),
    ("cart-service", None),
    ("payment-service", "v1"),
    ("payment-service", "v2"),
    ("notification-service", None),
    ("redis", None),
    ("payment-ledger", None),
]
# Workloads whose /metrics our Prometheus must scrape (pod label app).
SCRAPED_APPS = ["api-gateway", "catalog-service", "cart-service", "payment-service", "notification-service"]
MESH_PROXY_CONTAINERS = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}

CANARY_V2_SHARE = 0.05  # the 95/5 split of both meshes' overlays
CANARY_SIGMAS = 3.0  # tolerance: 3 standard deviations of a binomial over the measured calls
# With mesh retries on GET (3 attempts against catalog's 5% injected errors) about 1 in 8000 requests fails;
# without retries 1 in 20 does. 99% separates the two with room to spare.
MESH_GET_SUCCESS_MIN = 0.99

GET_ATTEMPTS = 4  # a user reloads a failed page a few times
CHECKOUT_ATTEMPTS = 8  # ~20% of attempts fail (declines, timeouts, catalog errors): 8 in a row ~ 1 in 400000
# The checkout check buys in rounds until one purchase met a decline or timeout: with 15% of payments failing,
# 15 rounds of 4 purchases see one with a probability of 99.99%; the rounds stop at the first one.
CONCURRENT_PURCHASES = 4
PAYMENT_FAILURES = {"402", "503", "504", "no-answer"}  # first word of an attempt: declined, unavailable, timed out
CHECKOUT_ROUNDS = 15
CHECKOUT_TIMEOUT_S = 30.0  # above the gateway's CHECKOUT_TIMEOUT_S (25 s) and the meshes' checkout routes (22 s, 27 s)
REQUEST_TIMEOUT_S = 6.0  # above the gateway's UPSTREAM_TIMEOUT_S (5 s)
HEALTH_TIMEOUT_S = 3.0
CONCURRENCY = 8
PROMETHEUS_SETTLE_S = 45.0  # two scrape intervals plus discovery, for a run right after a deploy
CURL_IMAGE = "curlimages/curl:8.11.1"
CURL_POD_LABEL = "quicktest-curl"  # name prefix and app label of the throwaway authorization pods
RELAY_POD_LABEL = "quicktest-relay"  # name prefix and app label of Linkerd's meshed relay pod (access.py)
RELAY_PORT = 8080
GATEWAY_PORT = 5000
PORT_FORWARD_WAIT_S = 20.0
# mTLS is measured over the test window plus this, so the last scrape before the run's start is inside it.
MTLS_WINDOW_MARGIN_S = 60

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

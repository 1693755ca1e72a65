"""The Flask app factory every service starts from.

It wires what is the same everywhere, so a service's own app.py is a short list of routes: version headers on every
response, request and trace ids, one JSON log line per request, Prometheus metrics by route template, fault injection
on business routes, JSON errors, and the operational endpoints.

Each service is two Flask apps sharing one state:
- the business app on PORT: the service's routes, plus /health, /ready and /metrics for callers and Prometheus;
- the admin app on ADMIN_PORT: /health, /ready and /metrics for the kubelet and port-forwards, and /admin/faults.
  /admin/* exists only here (a 404 on the business port), and shopkit.admin_server serves it in a thread of its own
  in every gunicorn worker, so probes answer at once even when every business thread sleeps in a delay fault.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from . import metrics, propagation
from .config import Settings, env_str
from .errors import ApiError
from .faults import COMMON_FIELDS, Faults, FaultStore, defaults_from_env
from .http_client import Upstream
from .logs import configure_logging, get_logger
from .validation import MAX_BODY_BYTES, json_object

# Methods a client may use; anything else is labelled "other" so that made-up methods cannot create metric series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Never faulted, and logged at debug level only: the platform's endpoints (the admin app's are all of that kind).
OPERATIONAL_PATHS = ("/health", "/ready", "/metrics")

ReadinessCheck = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class Service:
    """What a service's routes need besides Flask: its settings, faults and neighbours, and its admin app."""

    settings: Settings
    faults: Faults
    upstreams: dict[str, Upstream]
    admin_app: Flask


def runtime_dir() -> str:
    """The instance's scratch folder (fault settings, notification inbox). gunicorn_conf shares one between workers."""
    folder = os.environ.get("SHOPKIT_RUNTIME_DIR")
    if not folder:
        folder = tempfile.mkdtemp(prefix="shopkit-")
        os.environ["SHOPKIT_RUNTIME_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)  # made here, so removed here
    os.makedirs(folder, exist_ok=True)
    return folder


def service_of(app: Flask) -> Service:
    return app.extensions["shop"]


def create_service_app(
    import_name: str,
    settings: Settings,
    *,
    fault_fields: dict[str, tuple[str, type, float, float]] | None = None,
    fault_seed: dict[str, Any] | None = None,
    readiness: ReadinessCheck | None = None,
    edge: bool = False,
    fault_exempt: tuple[str, ...] = (),
    upstream_read_timeouts: dict[str, float] | None = None,
    static_folder: str | None = None,
) -> Flask:
    """The business app (returned) and its admin app (service_of(app).admin_app). `edge=True` (the gateway) starts
    request ids and traces; `fault_exempt` lists business paths ("/x" exact, "/x/" prefix) the factory never faults."""
    logger = configure_logging(settings.service, settings.version, settings.instance, env_str("LOG_LEVEL", "INFO"))
    fields = fault_fields or COMMON_FIELDS
    store = FaultStore(fields, defaults_from_env(fields, fault_seed or {}), runtime_dir())
    faults = Faults(store, settings.service, settings.version)
    timeouts = upstream_read_timeouts or {}
    upstreams = {
        name: Upstream(name, url, settings.service, settings.version, settings.connect_timeout_s,
                       timeouts.get(name, settings.read_timeout_s))
        for name, url in settings.upstreams.items()
    }

    app = Flask(import_name, static_folder=static_folder)
    admin = Flask(f"{import_name}.admin", static_folder=None)
    exempt = OPERATIONAL_PATHS + fault_exempt
    install_common(app, settings, logger, edge=edge, faults=faults, fault_exempt=exempt)
    install_common(admin, settings, logger, edge=edge, faults=None, fault_exempt=())
    app.extensions["shop"] = admin.extensions["shop"] = Service(settings, faults, upstreams, admin)

    def health():
        return jsonify({"status": "ok", "service": settings.service, "version": settings.version,
                        "instance": settings.instance})

    def ready():
        ok, details = readiness() if readiness else (True, {})
        body = {"status": "ready" if ok else "not ready", "service": settings.service,
                "version": settings.version, "checks": details}
        return jsonify(body), 200 if ok else 503

    def metrics_endpoint():
        payload, content_type = metrics.render()
        return Response(payload, content_type=content_type)

    for target in (app, admin):
        target.add_url_rule("/health", "health", health)
        target.add_url_rule("/ready", "ready", ready)
        target.add_url_rule("/metrics", "metrics", metrics_endpoint)

    @admin.get("/admin/faults")
    def get_faults():
        return jsonify(faults.settings())

    @admin.put("/admin/faults")
    def put_faults():
        current = store.update(json_object(request))
        get_logger().warning("fault settings changed", extra={"faults": current})
        return jsonify(current)

    @admin.delete("/admin/faults")
    def reset_faults():
        current = store.reset()
        get_logger().warning("fault settings reset to the environment's defaults", extra={"faults": current})
        return jsonify(current)

    return app


def install_common(app: Flask, settings: Settings, logger, *, edge: bool, faults: Faults | None,
                   fault_exempt: tuple[str, ...]) -> None:
    """Middleware and error handlers of every app: ids, faults (business apps only), headers, metrics, logs, JSON."""
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    # "/x/" is a prefix, "/x" and "/" itself are exact paths (a prefix "/" would exempt everything).
    exempt_prefixes = tuple(p for p in fault_exempt if p.endswith("/") and p != "/")
    exempt_exact = tuple(p for p in fault_exempt if p not in exempt_prefixes)
    quiet = faults is None  # the admin app: probes, scrapes and port-forwards, logged at debug level

    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        g.fault = None
        forward = propagation.headers_to_forward(request.headers)
        if "x-request-id" not in forward:
            forward["x-request-id"] = propagation.new_request_id()
        if edge and not propagation.trace_id_of(forward):
            forward["traceparent"] = propagation.new_traceparent()
        g.forward_headers = forward
        g.request_id = forward["x-request-id"]
        g.trace_id = propagation.trace_id_of(forward)
        if faults is None or request.url_rule is None:
            return None  # unknown routes answer 404/405 honestly
        if request.path in exempt_exact or request.path.startswith(exempt_prefixes):
            return None
        injected = faults.before_business_request()
        if injected:
            status, body = injected
            g.fault = body["fault"]
            return jsonify(body), status
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Service-Name"] = settings.service
        response.headers["X-Service-Version"] = settings.version
        response.headers["X-Service-Instance"] = settings.instance
        request_id = g.get("request_id", "")
        if request_id:
            response.headers["X-Request-Id"] = request_id
        # A checkout names its attempt on every answer, errors too, so the client can repeat it safely.
        if g.get("idempotency_key") and "Idempotency-Key" not in response.headers:
            response.headers["Idempotency-Key"] = g.idempotency_key
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        status = str(response.status_code)
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.HTTP_REQUESTS.labels(settings.service, settings.version, method, route, status).inc()
        metrics.HTTP_DURATION.labels(settings.service, settings.version, method, route, status).observe(elapsed)
        fields = {
            "method": request.method, "path": request.path, "route": route, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2), "request_id": request_id, "trace_id": g.get("trace_id", ""),
            "remote": request.remote_addr, "pid": os.getpid(),
        }
        if g.get("fault"):
            fields["fault"] = g.fault
        level = 10 if quiet or request.path in OPERATIONAL_PATHS else 20  # probes and scrapes would drown the rest
        logger.log(level, "request", extra=fields)
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            404: f"no such endpoint: {request.method} {request.path}",
            405: f"method {request.method} is not allowed on {request.path}",
            413: f"request body is larger than {MAX_BODY_BYTES} bytes",
        }
        return jsonify({"error": messages.get(exc.code or 500, exc.description)}), exc.code

    @app.errorhandler(Exception)
    def unexpected_error(exc: Exception):
        get_logger().exception("unhandled error", extra={"request_id": g.get("request_id", "")})
        return jsonify({"error": "internal error; see the service log for request id " + g.get("request_id", "")}), 500

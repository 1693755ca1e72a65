"""The Flask app factory every service starts from.

It wires what is the same everywhere, so a service's own app.py is a short list of routes:
version headers on every response, request and trace ids, one JSON log line per request, Prometheus metrics by
route template, fault injection on business routes, JSON errors, and /health, /ready, /metrics, /admin/faults.
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
# Never faulted, and logged at debug level only: the platform's and the operator's endpoints.
OPERATIONAL_PATHS = ("/health", "/ready", "/metrics")
OPERATIONAL_PREFIXES = ("/admin/",)

ReadinessCheck = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class Service:
    """What a service's routes need besides Flask: its settings, faults and neighbours."""

    settings: Settings
    faults: Faults
    upstreams: dict[str, Upstream]


def runtime_dir() -> str:
    """The instance's scratch folder (fault settings). gunicorn_conf shares one between workers."""
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
    """A Flask app with the shared behaviour. `edge=True` (the gateway) starts request ids and traces."""
    app = Flask(import_name, static_folder=static_folder)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
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
    app.extensions["shop"] = Service(settings, faults, upstreams)
    exempt_prefixes = OPERATIONAL_PREFIXES + tuple(p for p in fault_exempt if p.endswith("/"))
    exempt_exact = OPERATIONAL_PATHS + tuple(p for p in fault_exempt if not p.endswith("/"))

    def operational() -> bool:
        return request.path in OPERATIONAL_PATHS or request.path.startswith(OPERATIONAL_PREFIXES)

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
        if request.url_rule is None or request.path in exempt_exact or request.path.startswith(exempt_prefixes):
            return None  # unknown routes answer 404/405 honestly; operational routes are never faulted
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
        level = 10 if operational() else 20  # probes and scrapes at debug level: they would drown the rest
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

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "service": settings.service, "version": settings.version,
                        "instance": settings.instance})

    @app.get("/ready")
    def ready():
        ok, details = readiness() if readiness else (True, {})
        body = {"status": "ready" if ok else "not ready", "service": settings.service,
                "version": settings.version, "checks": details}
        return jsonify(body), 200 if ok else 503

    @app.get("/metrics")
    def metrics_endpoint():
        payload, content_type = metrics.render()
        return Response(payload, content_type=content_type)

    @app.get("/admin/faults")
    def get_faults():
        return jsonify(faults.settings())

    @app.put("/admin/faults")
    def put_faults():
        current = store.update(json_object(request))
        get_logger().warning("fault settings changed", extra={"faults": current})
        return jsonify(current)

    @app.delete("/admin/faults")
    def reset_faults():
        current = store.reset()
        get_logger().warning("fault settings reset to the environment's defaults", extra={"faults": current})
        return jsonify(current)

    return app

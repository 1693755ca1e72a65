"""notification: POST /notifications, GET /notifications/<user_id>."""
from __future__ import annotations

import time
import uuid

from flask import jsonify, request

from shopkit import metrics
from shopkit.app import create_service_app, runtime_dir
from shopkit.config import Settings
from shopkit.errors import BadRequest
from shopkit.validation import allow_only, check_id, json_object, query_int, required_str

from .inbox import PER_USER, Inbox

TYPES = ("order_placed", "payment_declined")


def create_app():
    settings = Settings.from_env("notification", 5004)
    app = create_service_app(__name__, settings)
    inbox = Inbox(runtime_dir())

    @app.post("/notifications")
    def create_notification():
        body = json_object(request)
        allow_only(body, {"user_id", "type", "message", "order_id"})
        user_id = check_id(required_str(body, "user_id", 64), "user_id")
        kind = required_str(body, "type", 40)
        if kind not in TYPES:
            raise BadRequest(f"field 'type' must be one of: {', '.join(TYPES)}", field="type")
        notification = {
            "id": f"ntf_{uuid.uuid4().hex[:16]}",
            "user_id": user_id,
            "type": kind,
            "message": required_str(body, "message", 500),
            "order_id": body.get("order_id") if isinstance(body.get("order_id"), str) else None,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        inbox.add(notification)
        metrics.NOTIFICATIONS.labels(settings.service, settings.version, kind).inc()
        return jsonify(notification), 201

    @app.get("/notifications/<user_id>")
    def list_notifications(user_id: str):
        check_id(user_id, "user_id")
        items = inbox.recent(user_id, query_int(request, "limit", 1, PER_USER, default=PER_USER))
        return jsonify({"user_id": user_id, "notifications": items, "count": len(items)})

    return app

"""gunicorn settings shared by every image and by ./run-local.sh: `gunicorn --config python:shopkit.gunicorn_conf`.

Runs in the gunicorn master before any worker starts, which is what makes the shared folders work: every worker
inherits PROMETHEUS_MULTIPROC_DIR (so /metrics sums all workers) and SHOPKIT_RUNTIME_DIR (so one PUT /admin/faults
reaches all workers). The master also opens the admin port, which each worker serves in a thread of its own
(shopkit.admin_server), and makes gunicorn's own error answers JSON.
"""
import glob
import json
import os
import shutil
import sys
import tempfile

from gunicorn import util

from shopkit.config import admin_port_from_env, env_int

_made_runtime_dir = not os.environ.get("SHOPKIT_RUNTIME_DIR")
if _made_runtime_dir:
    os.environ["SHOPKIT_RUNTIME_DIR"] = tempfile.mkdtemp(prefix=f"shopkit-{os.environ.get('SERVICE_NAME', 'svc')}-")
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(os.environ["SHOPKIT_RUNTIME_DIR"], "metrics")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

_port = env_int("PORT", 5000, 1, 65535)
ADMIN_PORT = admin_port_from_env(_port)
bind = f"0.0.0.0:{_port}"  # all interfaces: the mesh's sidecar connects over the pod IP
worker_class = "gthread"
# Every service is safe with several workers: state that must be shared lives in Redis (cart, payment's ledger) or
# in a file of the runtime folder (fault settings, notification's inbox).
workers = env_int("WEB_CONCURRENCY", 2, 1, 64)
threads = env_int("GUNICORN_THREADS", 4, 1, 256)
# Idle keep-alive connections are closed after 75 s. The proxies in front must close theirs first, or one reuses a
# connection the app is closing and answers 503 "upstream connect error or disconnect/reset before headers": Envoy's
# upstream idle timeout defaults to 1 h, so every DestinationRule sets connectionPool.http.idleTimeout 60s (checked
# by tools/manifestcheck, check "connections"); Linkerd's HTTP/1 pool closes idle connections after 3 s.
keepalive = 75
timeout = 30
graceful_timeout = 20
# gunicorn's defaults, written out because docs/architecture.md promises them: a longer request line is a 414, a
# longer header or more of them a 431, before the app sees the request (as JSON, see write_json_error).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = None  # shopkit logs each request as JSON
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
worker_tmp_dir = os.environ.get("TMPDIR", "/tmp")
# gunicorn 25+ opens a control socket under $HOME by default: one per host would clash, and $HOME is read-only in
# our containers. Nothing here uses gunicornc.
control_socket_disable = True

_admin_listener = None


def write_json_error(sock, status_int, reason, mesg):
    """What gunicorn answers a request it cannot hand to the app (request line or headers too long, not HTTP): the
    same status, as JSON with an `error` string like every other error of ours (gunicorn's own is an HTML page)."""
    body = json.dumps({"error": f"{reason}: {mesg}" if mesg else reason, "status": status_int}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn.workers.base.Worker.handle_error calls util.write_error for every such answer; workers inherit this.
util.write_error = write_json_error


def on_starting(server):
    global _admin_listener
    # A restarted container reuses its emptyDir: stale sample files would resurrect old counters.
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)
    from shopkit.admin_server import open_listener

    try:
        _admin_listener = open_listener(ADMIN_PORT)
    except OSError as exc:
        server.log.error("cannot listen on ADMIN_PORT %s: %s; free the port or set ADMIN_PORT", ADMIN_PORT, exc)
        sys.exit(1)


def post_worker_init(worker):
    """The worker has loaded the app: serve its admin app on the inherited admin socket, in a thread of its own."""
    from shopkit.admin_server import serve_in_thread

    service = getattr(worker.wsgi, "extensions", {}).get("shop")
    if service is not None and _admin_listener is not None:
        serve_in_thread(_admin_listener, service.admin_app)


def on_exit(server):
    if _made_runtime_dir:  # a folder this config made is this config's to remove
        shutil.rmtree(os.environ["SHOPKIT_RUNTIME_DIR"], ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

"""The admin port, served apart from gunicorn's worker threads.

gunicorn's gthread workers answer business requests with a fixed pool of threads; when a delay fault puts all of them
to sleep, a probe on the same port waits in line and the kubelet restarts a pod that is merely slow. So the gunicorn
master opens the admin port once (gunicorn_conf.on_starting) and every worker, after loading the app, serves the admin
app on that shared socket in a thread of its own (gunicorn_conf.post_worker_init): the kernel hands each connection
to one worker, as it does for the business port, and sleeping business threads hold no lock an admin thread needs.

The listener binds 0.0.0.0: the kubelet probes the pod IP, Istio's agent forwards its rewritten probes to the pod IP
too, and kubectl port-forward connects to localhost inside the pod.
"""
from __future__ import annotations

import json
import socket
import threading

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .logs import get_logger

# Admin connections served at once per worker; more wait in the listen queue (probes and scrapes are few).
MAX_CONNECTIONS = 16
LISTEN_BACKLOG = 64
# A connection that sends nothing for this long is closed, so idle keep-alives (or peers that vanished) free their
# slot well within the probes' timeoutSeconds (2 s) instead of holding it for ever.
IDLE_TIMEOUT_S = 1.0


def open_listener(port: int, host: str = "0.0.0.0") -> socket.socket:
    """The admin port's listening socket, made once in the gunicorn master and inherited by every worker."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(LISTEN_BACKLOG)
    listener.set_inheritable(True)
    return listener


class JsonErrorHandler(WSGIRequestHandler):
    """HTTP/1.1; an unparseable request gets a JSON error, like everything else a client sees; the app logs the rest."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # socketserver sets it on the connection: every read and write, not the whole request

    def send_error(self, code, message=None, explain=None):
        body = json.dumps({"error": f"{message or self.responses.get(code, ('',))[0]} (HTTP {code})"}).encode()
        self.close_connection = True
        # The stdlib leaves the status line out while it still takes the request for HTTP/0.9 (a version it could
        # not parse): nobody speaks 0.9 any more, so answer with a status line and headers.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = self.protocol_version
        try:
            self.send_response_only(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client has gone

    def log(self, type, message, *args):
        # shopkit logs each request as JSON; what is left here are the server's own troubles (an idle keep-alive
        # closed after IDLE_TIMEOUT_S is routine: every scrape's connection ends that way).
        if type == "error" and not message.startswith("Request timed out"):
            get_logger().warning("admin port: " + message % args)


class AdminServer(ThreadedWSGIServer):
    """A thread per connection, at most MAX_CONNECTIONS of them."""

    daemon_threads = True

    def __init__(self, listener: socket.socket, app):
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        host, port = listener.getsockname()[:2]
        super().__init__(host, port, app, handler=JsonErrorHandler, fd=listener.fileno())

    def process_request(self, request, client_address):
        self._slots.acquire()
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve_in_thread(listener: socket.socket, app) -> AdminServer:
    """Starts serving `app` on `listener` in a daemon thread of this process (one gunicorn worker)."""
    server = AdminServer(listener, app)
    threading.Thread(target=server.serve_forever, name="admin-port", daemon=True).start()
    return server

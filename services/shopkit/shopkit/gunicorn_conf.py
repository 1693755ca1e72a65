"""gunicorn settings shared by every image and by ./run-local.sh: `gunicorn --config python:shopkit.gunicorn_conf`.

Runs in the gunicorn master before any worker starts, which is what makes the shared folders work: every worker
inherits PROMETHEUS_MULTIPROC_DIR (so /metrics sums all workers) and SHOPKIT_RUNTIME_DIR (so one PUT /admin/faults
reaches all workers).
"""
import glob
import os
import shutil
import tempfile

_made_runtime_dir = not os.environ.get("SHOPKIT_RUNTIME_DIR")
if _made_runtime_dir:
    os.environ["SHOPKIT_RUNTIME_DIR"] = tempfile.mkdtemp(prefix=f"shopkit-{os.environ.get('SERVICE_NAME', 'svc')}-")
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(os.environ["SHOPKIT_RUNTIME_DIR"], "metrics")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"  # all interfaces: the mesh's sidecar connects over the pod IP
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Longer than the sidecars' idle timeouts' worst case of a lab, so the app never closes a connection a proxy is
# about to reuse (that race shows up as sporadic 503 "upstream connect error or disconnect/reset").
keepalive = 75
timeout = 30
graceful_timeout = 20
accesslog = None  # shopkit logs each request as JSON
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
worker_tmp_dir = os.environ.get("TMPDIR", "/tmp")
# gunicorn 25+ opens a control socket under $HOME by default: one per host would clash, and $HOME is read-only in
# our containers. Nothing here uses gunicornc.
control_socket_disable = True


def on_starting(server):
    # A restarted container reuses its emptyDir: stale sample files would resurrect old counters.
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def on_exit(server):
    if _made_runtime_dir:  # a folder this config made is this config's to remove
        shutil.rmtree(os.environ["SHOPKIT_RUNTIME_DIR"], ignore_errors=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)

"""shopkit: the one place for what every service shares.

config        settings from the environment
app           the Flask app factory: the business app and its admin app, version headers, request logs, faults
admin_server  the admin port, served by a thread of its own in every gunicorn worker
http_client   outbound calls with timeouts, connection reuse, header forwarding and outcome metrics
background    calls nobody waits for (notifications): a few threads and a bounded queue per process
storage       Redis clients and their readiness check
propagation   which request and trace headers travel from inbound to outbound calls
metrics       every Prometheus metric the services export
faults        runtime-switchable fault injection
errors        API errors and their JSON answers
validation    checks of ids and JSON bodies
logs          one JSON line per event
gunicorn_conf the gunicorn settings every image and ./run-local.sh use
"""

"""devstack: the whole system on one machine (Redis + every service under gunicorn), for ./run-local.sh and tests."""

"""./run-local.sh for real: starts everything, prints the URLs, stops every process on Ctrl-C; a busy port is a
clear error."""
import os
import signal
import socket
import subprocess
from pathlib import Path

import requests

from devstack.stack import (ADMIN_PORT_OFFSET, COMPONENTS, LEDGER_DEFAULT_PORT, REDIS_DEFAULT_PORT, Stack, StackError,
                            port_is_free)
from tests.support import start_run_local

ROOT = Path(__file__).resolve().parents[2]


def offset_with_free_ports() -> int:
    """An offset under which every default port is free (the developer may be running ./run-local.sh), every port
    below 32768, where Linux's ephemeral ports (the local ports of outgoing connections) begin: one taken there
    between this check and the bind would fail the start."""
    defaults = [c.default_port + extra for c in COMPONENTS for extra in (0, ADMIN_PORT_OFFSET)]
    defaults += [REDIS_DEFAULT_PORT, LEDGER_DEFAULT_PORT]
    for offset in range(20000, 32768 - max(defaults), 137):
        if all(port_is_free(p + offset) for p in defaults):
            return offset
    raise RuntimeError("no free port range")


def test_run_local_starts_serves_and_stops_on_ctrl_c(tmp_path):
    offset = offset_with_free_ports()
    process, output = start_run_local("--no-faults", "--port-offset", str(offset), "--data-dir", str(tmp_path))
    try:
        assert process.poll() is None, "".join(output)
        text = "".join(output)
        assert "Ready. Faults OFF" in text, text
        gateway = f"http://localhost:{5000 + offset}"
        assert gateway in text
        assert requests.get(gateway + "/api/products", timeout=5).status_code == 200
        for component in COMPONENTS:  # every admin port is printed (business port + 100) and answers
            admin = f"http://localhost:{component.default_port + ADMIN_PORT_OFFSET + offset}"
            assert admin in text, (component.name, text)
            assert requests.get(admin + "/ready", timeout=5).status_code == 200
        assert requests.get(gateway + "/admin/faults", timeout=5).status_code == 404
        assert f"redis://localhost:{LEDGER_DEFAULT_PORT + offset}/0" in text  # payment's ledger
        assert (tmp_path / "redis" / "appendonlydir").exists() or list((tmp_path / "redis").glob("*.aof*"))
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=30) == 0
        assert all(port_is_free(c.default_port + offset) and port_is_free(c.default_port + ADMIN_PORT_OFFSET + offset)
                   for c in COMPONENTS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_busy_port_is_a_clear_error(tmp_path):
    stack = Stack(tmp_path, faults_enabled=False)
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("0.0.0.0", stack.ports["cart"]))
    holder.listen()
    try:
        try:
            stack.start()
            raise AssertionError("started despite a busy port")
        except StackError as exc:
            assert f"cart :{stack.ports['cart']}" in str(exc) and "already in use" in str(exc)
    finally:
        holder.close()
        stack.stop()


def test_run_local_help_needs_no_virtualenv():
    result = subprocess.run([str(ROOT / "run-local.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--payment-version" in result.stdout and "--no-faults" in result.stdout


def test_unknown_option_fails_with_usage():
    result = subprocess.run([str(ROOT / "run-local.sh"), "--bogus"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "unrecognized arguments: --bogus" in result.stderr

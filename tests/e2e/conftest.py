from __future__ import annotations

import uuid

import pytest
import requests

from tests.support import FaultSwitch, LoneService


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def user() -> str:
    """A fresh shopper per test, so tests never see each other's carts."""
    return f"u-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def faults(stack):
    switch = FaultSwitch(stack)
    yield switch
    switch.reset()


@pytest.fixture
def lone_service(tmp_path):
    def start(component_name: str, unset: tuple[str, ...] = (), **env: str) -> LoneService:
        return LoneService(component_name, env, tmp_path, unset)
    return start

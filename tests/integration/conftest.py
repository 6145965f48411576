"""Fixtures starting real services (Tansu broker, influxd 1.6.7 + v2 adapter) on 127.0.0.1.

Each test session starts fresh services in a temporary folder and stops them by pid at the end.
Tests using these fixtures are skipped with the reason when a binary is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from services import InfluxD, Tansu, V2Adapter, missing_services  # noqa: E402


def _need(what: str) -> None:
    for reason in missing_services():
        if what in reason.lower():
            pytest.skip(reason)


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    """A fresh in-memory Tansu broker for the session (topics differ per test)."""
    _need("tansu")
    b = Tansu(tmp_path_factory.mktemp("tansu")).start()
    yield b
    b.stop()


@pytest.fixture
def fresh_broker(tmp_path):
    """A broker of the test's own (for tests that restart or kill it)."""
    _need("tansu")
    b = Tansu(tmp_path / "tansu").start()
    yield b
    b.stop()


@pytest.fixture
def influx(tmp_path):
    """A fresh influxd with database ``prodromal`` and a v2 adapter in front: ``(influxd, adapter)``."""
    _need("influxd")
    d = InfluxD(tmp_path / "influx").start()
    d.create_database("prodromal")
    a = V2Adapter(d.url).start()
    yield d, a
    a.stop()
    d.stop()

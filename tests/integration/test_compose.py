"""deploy/compose.yaml: valid YAML with the expected structure (docker cannot run here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.settings import load_settings
from streams.topics import TOPICS

yaml = pytest.importorskip("yaml", reason="PyYAML (dev extra) needed to parse the compose file")
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _defaults(value: str) -> str:
    """${VAR:-default} -> default; ${VAR:?msg} -> a placeholder (what `docker compose config` checks)."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "placeholder", value)


def test_services_and_loopback_ports(compose):
    assert {"kafka", "kafka-init", "influxdb", "grafana", "worker"} <= set(compose["services"])
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_kafka_is_kraft(compose):
    env = compose["services"]["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "KAFKA_ZOOKEEPER_CONNECT" not in env
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_all_topics_created_with_same_partitions(compose):
    script = compose["services"]["kafka-init"]["command"][0]
    assert set(TOPICS) <= set(re.findall(r"[a-z]+\.[a-z]+", script))


def test_influx_initialised_with_bucket_token_and_dbrp(compose):
    env = compose["services"]["influxdb"]["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert "INFLUX_TOKEN" in env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] and env["DOCKER_INFLUXDB_INIT_BUCKET"]
    init = DEPLOY / "influxdb-init"
    assert any("dbrp create" in f.read_text() for f in init.iterdir())


def test_grafana_mounts_provisioning(compose):
    vols = compose["services"]["grafana"]["volumes"]
    for v in vols:
        src = v.split(":")[0]
        if src.startswith("./"):
            assert (DEPLOY / src).is_dir(), f"grafana mounts missing {src}"
    ds = (DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.y*ml")
    needed = set(re.findall(r"\$__env\{(\w+)\}", "".join(p.read_text() for p in ds)))
    assert needed <= set(compose["services"]["grafana"]["environment"])


def test_worker_environment_is_valid_settings(compose, tmp_path):
    w = compose["services"]["worker"]
    env = {k: _defaults(v) for k, v in w["environment"].items()}
    token = tmp_path / "influx_token"
    token.write_text("t0ken\n")
    env["PRODROMAL_INFLUX__TOKEN_FILE"] = str(token)
    s = load_settings(env=env)
    assert s.kafka.bootstrap_servers == ["kafka:9092"]
    assert s.influx.token.get_secret_value() == "t0ken" and s.worker.model is None
    assert "replicas" in w["deploy"] and w["secrets"] == ["influx_token"]
    # Secrets are files or required variables, never literal values in the compose file.
    for name, svc in compose["services"].items():
        for k, v in (svc.get("environment") or {}).items():
            if re.search(r"TOKEN|PASSWORD", k) and not k.endswith("_FILE"):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(v)), f"{name}: {k} must be a required variable"

"""Settings: source priority, secrets from env or file never printed, Tansu knobs as configuration."""

from __future__ import annotations

import pytest

from streams.settings import TANSU_FAUST, SettingsError, load_settings


def test_defaults_are_production_kafka():
    s = load_settings(env={})
    assert s.faust.producer_max_batch_size == 16384
    assert s.faust.broker_session_timeout == 60.0
    assert s.kafka.protocol == "PLAINTEXT"


def test_priority_override_env_toml(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[kafka]\nbroker = "kafka://toml:1"\n[faust]\ntopic_partitions = 3\nstore = "memory://"\n')
    env = {"PRODROMAL_KAFKA__BROKER": "kafka://env:2", "PRODROMAL_CONFIG": str(cfg)}
    s = load_settings(env=env)
    assert s.kafka.broker == "kafka://env:2"  # env beats TOML
    assert s.faust.topic_partitions == 3  # TOML beats defaults
    s = load_settings(env=env, overrides={"kafka.broker": "kafka://cli:3", "faust.topic_partitions": None})
    assert s.kafka.broker == "kafka://cli:3"  # CLI beats env
    assert s.faust.topic_partitions == 3  # None override ignored
    assert s.kafka.bootstrap_servers == ["cli:3"]


def test_tansu_knobs_as_config():
    s = load_settings(env={}, overrides={f"faust.{k}": v for k, v in TANSU_FAUST.items()})
    kw = s.faust.app_kwargs(s.kafka)
    assert kw["producer_max_batch_size"] == 1 and kw["broker_session_timeout"] == 6.0
    assert kw["broker"] == "kafka://127.0.0.1:9092"


def test_secret_from_file_and_never_in_repr(tmp_path):
    f = tmp_path / "pw"
    f.write_text("s3cr3t-password-xyz\n")
    env = {
        "PRODROMAL_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
        "PRODROMAL_KAFKA__SASL_USERNAME": "svc",
        "PRODROMAL_KAFKA__SASL_PASSWORD_FILE": str(f),
        "PRODROMAL_INFLUX__TOKEN": "influx-token-abc",
    }
    s = load_settings(env=env)
    assert s.kafka.sasl_password.get_secret_value() == "s3cr3t-password-xyz"
    assert s.kafka.protocol == "SASL_PLAINTEXT"
    kw = s.kafka.aiokafka_kwargs()
    assert kw["sasl_mechanism"] == "SCRAM-SHA-512" and kw["sasl_plain_password"] == "s3cr3t-password-xyz"
    text = repr(s) + str(s) + str(s.public_dict())
    assert "s3cr3t" not in text and "influx-token-abc" not in text


def test_missing_secret_file_is_clear(tmp_path):
    with pytest.raises(SettingsError, match="influx.token_file"):
        load_settings(env={"PRODROMAL_INFLUX__TOKEN_FILE": str(tmp_path / "nope")})


def test_invalid_value_does_not_echo_secret():
    with pytest.raises(SettingsError) as e:
        load_settings(env={}, overrides={"kafka.sasl_mechanism": "PLAIN", "kafka.sasl_password": "topsecret99"})
    assert "topsecret99" not in str(e.value) and "sasl_username" in str(e.value)
    with pytest.raises(SettingsError, match="sasl_mechanism"):
        load_settings(env={}, overrides={"kafka.sasl_mechanism": "MD5"})


def test_bad_toml_and_unknown_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[kafka\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config=cfg, env={})
    with pytest.raises(SettingsError, match="brokr"):
        load_settings(env={}, overrides={"kafka.brokr": "x"})


def test_dashboard_refuses_public_bind_without_token():
    with pytest.raises(SettingsError, match="loopback"):
        load_settings(env={}, overrides={"dashboard.host": "0.0.0.0"})
    s = load_settings(env={}, overrides={"dashboard.host": "0.0.0.0", "dashboard.token": "t" * 20})
    assert s.dashboard.host == "0.0.0.0"


def test_pseudonymise_is_keyed_and_stable():
    a = load_settings(env={}, overrides={"privacy.pseudonym_key": "k" * 32}).privacy
    b = load_settings(env={}, overrides={"privacy.pseudonym_key": "j" * 32}).privacy
    assert a.pseudonymise("P1") == a.pseudonymise("P1") != b.pseudonymise("P1")
    assert "P1" not in a.pseudonymise("P1")
    assert load_settings(env={}).privacy.pseudonymise("P1") == "P1"

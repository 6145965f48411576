"""No health values and no secrets in logs, stdout or stderr (importers, replay, CLI, InfluxDB sink).

The data carry sentinels that cannot appear by chance: a heart rate of
87.625 bpm (exact in float32) on many minutes and onset/diagnosis dates in
2023. Fake secrets are set as environment variables the way a deployment
sets them. Everything is run with logging at INFO and the captured records,
the redacting handler's output and the CLI output are searched.
"""

from __future__ import annotations

import datetime as dt
import io
import logging

import numpy as np
import pytest

from streams.logging import configure_logging, redact, secrets_from

HR_SENTINEL = "87.625"
ONSET = dt.date(2023, 4, 26)
DIAG = dt.date(2023, 4, 28)
SECRETS = {
    "PRODROMAL_INFLUX__TOKEN": "influx-token-Zq8Kx2",
    "PRODROMAL_KAFKA__SASL_PASSWORD": "kafka-pass-Wm4Rt7",
    "PRODROMAL_PSEUDONYM_KEY": "pseudonym-key-Hy6Pn1-0123456789",
    "PRODROMAL_DASHBOARD__TOKEN": "dash-token-Lq3Vb9",
}
FORBIDDEN = [HR_SENTINEL, ONSET.isoformat(), DIAG.isoformat(), *SECRETS.values()]


@pytest.fixture(autouse=True)
def _restore_root_level():
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def secret_env(monkeypatch):
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    return SECRETS


def _stanford_folder(root, days=50):
    root.mkdir()
    start = dt.datetime(2023, 3, 17)
    for pid in ("AAA1111", "BBB2222"):
        n = days * 1440
        rng = np.random.default_rng(len(pid))
        hr = np.round(60 + rng.normal(0, 2, n), 0)
        hr[::7] = float(HR_SENTINEL)
        with open(root / f"{pid}_hr.csv", "w") as f:
            f.write("user,datetime,heartrate\n")
            for i in range(n):
                f.write(f"{pid},{start + dt.timedelta(minutes=i)},{hr[i]}\n")
        with open(root / f"{pid}_steps.csv", "w") as f:
            f.write("user,datetime,steps\n")
            for i in range(0, n, 3):
                f.write(f"{pid},{start + dt.timedelta(minutes=i)},{(i % 50)}\n")
    (root / "onset_labels_aligned_to_these_files.csv").write_text(
        f"participant_id,symptom_onset_date,diagnosis_date\nAAA1111,{ONSET},{DIAG}\n")
    return root


def _assert_clean(texts: list[str], where: str):
    for t in texts:
        for bad in FORBIDDEN:
            assert bad not in t, f"{bad!r} leaked into {where}: ...{t[max(0, t.find(bad) - 80): t.find(bad) + 40]}..."


def test_import_replay_cli_keep_logs_clean(tmp_path, secret_env, caplog, capfd):
    from typer.testing import CliRunner

    from streams.cli import app

    caplog.set_level(logging.INFO)
    buf = io.StringIO()
    handler = configure_logging("INFO", env=secret_env, stream=buf)
    try:
        src = _stanford_folder(tmp_path / "src")
        runner = CliRunner()
        r1 = runner.invoke(app, ["import", "stanford", str(src), "--out", str(tmp_path / "coh")])
        assert r1.exit_code == 0, r1.output
        r2 = runner.invoke(app, ["replay", str(tmp_path / "coh"), "--out", str(tmp_path / "run"), "--bootstrap", "5"])
        assert r2.exit_code == 0, r2.output
        r3 = runner.invoke(app, ["replay", str(tmp_path / "coh"), "--out", str(tmp_path / "run2"), "--bootstrap", "5",
                                 "--pseudonymize"])
        assert r3.exit_code == 0, r3.output
        # a bad file: the error names file and line, not the values of good rows
        (src / "AAA1111_hr.csv").write_text(f"user,datetime,heartrate\nAAA1111,2023-03-17 00:00:00,{HR_SENTINEL}\nAAA1111,nonsense,61\n")
        r4 = runner.invoke(app, ["import", "stanford", str(src), "--out", str(tmp_path / "coh2")])
        assert r4.exit_code == 2 and "line 3" in r4.output
    finally:
        logging.getLogger().removeHandler(handler)
    # the data did hold the sentinels (the test can fail), the outputs hold them, logs do not
    assert HR_SENTINEL in (src / "AAA1111_hr.csv").read_text()
    assert ONSET.isoformat() in (tmp_path / "run" / "participants.csv").read_text()
    out, err = capfd.readouterr()
    _assert_clean([r1.output, r2.output, r3.output, r4.output], "CLI output")
    _assert_clean([out, err], "process stdout/stderr")
    _assert_clean([r.getMessage() for r in caplog.records], "log records")
    _assert_clean([buf.getvalue()], "log handler output")


def test_influx_sink_failures_log_no_secret(tmp_path, secret_env, caplog):
    from streams.influx import InfluxSink
    from streams.settings import InfluxSettings, SpoolSettings

    caplog.set_level(logging.INFO)
    buf = io.StringIO()
    handler = configure_logging("INFO", env=secret_env, stream=buf)
    try:
        # nothing listens on port 9 of loopback; a URL with credentials in it, and a token
        cfg = InfluxSettings(url="http://admin:url-pass-Qw9Er2@127.0.0.1:9", token=secret_env["PRODROMAL_INFLUX__TOKEN"],
                             max_retries=1, retry_interval_ms=1, timeout_ms=200)
        sink = InfluxSink(cfg, SpoolSettings(dir=tmp_path / "spool"), sleep=lambda s: None)
        sink.write([f"alert,participant=P1 score={HR_SENTINEL} 1600000000"])
        sink.flush()
        sink.close(drain=False)
        assert sink.stats.spooled == 1 and sink.stats.errors >= 1
        logging.getLogger("prodromal.influx").error("late failure with Authorization: Token %s", secret_env["PRODROMAL_INFLUX__TOKEN"])
    finally:
        logging.getLogger().removeHandler(handler)
    assert caplog.records, "the sink logged its failure (so the check below can fail)"
    _assert_clean([buf.getvalue()], "log handler output")
    assert "url-pass-Qw9Er2" not in buf.getvalue()
    # prodromal's own messages never carry the token or a point's values, even before redaction
    own = [r.getMessage() for r in caplog.records if "late failure" not in r.getMessage()]
    for m in own:
        assert SECRETS["PRODROMAL_INFLUX__TOKEN"] not in m and HR_SENTINEL not in m


def test_redact_patterns_and_secret_files(tmp_path):
    f = tmp_path / "pw"
    f.write_text("file-secret-Ab12Cd\n")
    env = {"PRODROMAL_KAFKA__SASL_PASSWORD_FILE": str(f), "PRODROMAL_INFLUX__URL": "http://h:1", "HOME": "/root",
           "PRODROMAL_SHORT_TOKEN": "abc"}
    s = secrets_from(None, env)
    assert s == ["file-secret-Ab12Cd"]  # too-short values are not masked (they would mask ordinary words)
    text = ("sasl file-secret-Ab12Cd; kafka://bob:hunter22@b:9092; token=abc123def; password: 'xyz789';"
            " Authorization: Token tok-999; http://h:1/write")
    r = redact(text, s)
    for bad in ("file-secret-Ab12Cd", "hunter22", "abc123def", "xyz789", "tok-999"):
        assert bad not in r
    assert "kafka://bob:***@b:9092" in r and "http://h:1/write" in r


def test_redacting_handler_masks_tracebacks():
    buf = io.StringIO()
    lg = "prodromal.test_tb"
    configure_logging("INFO", secrets=["tb-secret-Kk77"], stream=buf, logger=lg)
    try:
        raise RuntimeError("failed with tb-secret-Kk77")
    except RuntimeError:
        logging.getLogger(lg).exception("boom")
    assert "RuntimeError" in buf.getvalue() and "tb-secret-Kk77" not in buf.getvalue()
    # calling it again replaces its handler instead of doubling lines
    configure_logging("INFO", stream=buf, logger=lg)
    assert sum(getattr(h, "_prodromal", False) for h in logging.getLogger(lg).handlers) == 1

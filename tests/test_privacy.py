"""Pseudonymisation: keyed, stable, and no raw participant id anywhere in a pseudonymised run folder."""

from __future__ import annotations

import pickle
import re

import pytest

from streams.privacy import (
    ENV_KEY,
    ENV_KEY_FILE,
    PrivacyError,
    Pseudonymizer,
    load_pseudonymizer,
    pseudonym,
)

KEY = "test-key-0123456789abcdef"
OTHER = "other-key-0123456789abcdef"


def test_same_id_same_pseudonym_and_shape():
    p = Pseudonymizer(KEY)
    assert p("P0001") == p("P0001") == Pseudonymizer(KEY.encode())("P0001")
    assert re.fullmatch(r"p[0-9a-f]{20}", p("P0001"))
    assert p("P0001") != p("P0002")
    assert "P0001" not in p("P0001")


def test_different_key_different_pseudonym():
    assert Pseudonymizer(KEY)("P0001") != Pseudonymizer(OTHER)("P0001")


def test_agrees_with_settings_pseudonymise():
    # the workers pseudonymise through the settings object; both paths must give the same names
    from streams.settings import load_settings

    s = load_settings(env={}, overrides={"privacy.pseudonym_key": KEY}).privacy
    assert s.pseudonymise("T003") == Pseudonymizer(KEY)("T003")


def test_key_never_shown_and_not_picklable():
    p = Pseudonymizer(KEY)
    assert KEY not in repr(p) and KEY not in str(p)
    with pytest.raises(TypeError):
        pickle.dumps(p)


def test_short_key_refused_without_echo():
    with pytest.raises(PrivacyError) as e:
        Pseudonymizer("short-secret")
    assert "short-secret" not in str(e.value)


def test_load_from_env_file_settings_and_missing(tmp_path):
    assert load_pseudonymizer(env={}) is None
    with pytest.raises(PrivacyError, match=ENV_KEY):
        load_pseudonymizer(env={}, required=True)
    assert load_pseudonymizer(env={ENV_KEY: KEY})("A") == Pseudonymizer(KEY)("A")
    f = tmp_path / "key"
    f.write_text(KEY + "\n")
    assert load_pseudonymizer(env={ENV_KEY_FILE: str(f)})("A") == Pseudonymizer(KEY)("A")
    # the settings variables work too
    assert load_pseudonymizer(env={"PRODROMAL_PRIVACY__PSEUDONYM_KEY": KEY})("A") == Pseudonymizer(KEY)("A")
    with pytest.raises(PrivacyError, match="cannot read") as e:
        load_pseudonymizer(env={ENV_KEY_FILE: str(tmp_path / "absent")})
    assert KEY not in str(e.value)
    assert pseudonym("A", KEY) == Pseudonymizer(KEY)("A")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, gen):
    return gen.make_cohort(tmp_path_factory.mktemp("priv") / "tiny", participants=4, days=55)


def _all_text(folder) -> str:
    return "\n".join(f.read_text(encoding="utf-8") for f in sorted(folder.iterdir()) if f.is_file())


def test_pseudonymised_replay_has_no_raw_id(tiny, tmp_path):
    from detectors.nightsignal import NightSignal
    from streams.replay import replay

    ids = [f"T{i:03d}" for i in range(4)]
    plain = replay(tiny, NightSignal(), tmp_path / "plain", n_boot=5)
    assert any(i in _all_text(plain.out) for i in ids)  # the check below can fail
    p = Pseudonymizer(KEY)
    res = replay(tiny, NightSignal(), tmp_path / "pseudo", n_boot=5, pseudonym=p)
    names = {f.name for f in res.out.iterdir()}
    assert {"points.lp", "alerts.csv", "scores.csv", "features.csv", "evaluation.json", "participants.csv", "run.json"} <= names
    text = _all_text(res.out)
    for i in ids:
        assert i not in text, f"raw id {i} in the pseudonymised run folder"
        assert p(i) in (res.out / "participants.csv").read_text()
    assert p(ids[0]) in (res.out / "points.lp").read_text()
    # same alerts, only renamed
    a = (plain.out / "alerts.csv").read_text()
    for i in ids:
        a = a.replace(i, p(i))
    assert a == (res.out / "alerts.csv").read_text()


def test_cli_pseudonymize(tiny, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from streams.cli import app

    out = tmp_path / "run"
    monkeypatch.delenv(ENV_KEY, raising=False)
    monkeypatch.delenv(ENV_KEY_FILE, raising=False)
    r = CliRunner().invoke(app, ["replay", str(tiny), "--out", str(out), "--bootstrap", "5", "--pseudonymize"])
    assert r.exit_code == 2 and ENV_KEY in r.output
    monkeypatch.setenv(ENV_KEY, KEY)
    r = CliRunner().invoke(app, ["replay", str(tiny), "--out", str(out), "--bootstrap", "5", "--pseudonymize"])
    assert r.exit_code == 0, r.output
    assert "T000" not in _all_text(out) and Pseudonymizer(KEY)("T000") in _all_text(out)
    assert KEY not in r.output

"""``prodromal report``: self-contained, deterministic HTML with the promised figures and tables."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.evaluation import ParticipantDays
from streams.report import (
    ReportError,
    false_alerts_by_month,
    methods_paragraph,
    render_report,
    roc_band,
    write_report,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from streams.dashboard.demo import demo_run

    return demo_run(tmp_path_factory.mktemp("report_demo"), participants=8, days=70, seed=11)


@pytest.fixture(scope="module")
def text(run):
    return render_report(run)


def test_two_renders_are_byte_identical(run, text, tmp_path):
    a = write_report(run, tmp_path / "a.html")
    assert a.read_bytes() == text.encode("utf-8")


def test_report_is_self_contained_with_every_figure(text):
    imgs = re.findall(r'<img alt="(\w+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert [k for k, _ in imgs] == ["timelines", "roc", "lead", "false_alerts"]
    for _, b64 in imgs:
        png = base64.b64decode(b64)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
        assert b"Software" not in png[:2000] and b"matplotlib" not in png  # no version stamp in the file
    # nothing fetched from elsewhere: no external URL, script or stylesheet
    assert not re.search(r'(src|href)="(https?:)?//', text) and "<script" not in text
    assert "<h2>Subgroups</h2>" in text and "age &lt;30" in text and "sex F" in text and "sex not recorded" in text


def test_methods_paragraph_comes_from_run_json(run):
    r = json.loads((run / "run.json").read_text())
    ev = json.loads((run / "evaluation.json").read_text())
    text = methods_paragraph(r, ev)
    assert "nightsignal detector" in text and "yellow_bpm = 3" in text and "red_bpm = 4" in text
    assert f"{r['participants']} participants" in text and "previous 28 days" in text
    assert f"{ev['labelled']} labelled participants" in text and "[R-10, R+0]" in text
    r2 = dict(r, policy=dict(r["policy"], thresholds=[0.7, 0.9], consecutive=2, budget_per_30d=4),
              pipeline=dict(r["pipeline"], baseline_window_days=42))
    t2 = methods_paragraph(r2, ev)
    assert "thresholds 0.7, 0.9" in t2 and "after 2 consecutive" in t2 and "at most 4 alert days" in t2
    assert "previous 42 days" in t2


def test_subgroup_table_counts_add_up(text):
    table = text.split("<h2>Subgroups</h2>")[1]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td>", table)
    got = {name: (int(n), int(lab)) for name, n, lab in rows}
    total = got.pop("all")
    ages = [v for k, v in got.items() if k.startswith("age ")]
    sexes = [v for k, v in got.items() if k.startswith("sex ")]
    assert sum(n for n, _ in ages) == total[0] == sum(n for n, _ in sexes)
    assert sum(lab for _, lab in ages) == total[1] == sum(lab for _, lab in sexes)


def _pd(pid, scores, ref=None, levels=None, day0=19723):
    s = np.asarray(scores, float)
    return ParticipantDays(pid, np.arange(day0, day0 + s.size), s,
                           np.asarray(levels if levels is not None else np.zeros(s.size), np.int64), np.ones(s.size, bool), ref)


def test_roc_band_perfect_and_uninformative():
    # illness days score 5, healthy days 0 -> AUROC 1 and the curve reaches TPR 1 at FPR 0
    parts = [_pd(f"P{i}", [0.0] * 40 + [5.0] * 22 + [0.0] * 40, ref=19723 + 47) for i in range(6)]
    r = roc_band(parts, n_boot=50)
    assert r["auroc"] == 1.0 and r["tpr"][1] == pytest.approx(1.0) and r["auroc_ci"] == [1.0, 1.0]
    rng = np.random.default_rng(1)
    parts = [_pd(f"P{i}", rng.normal(size=120), ref=19723 + 60) for i in range(10)]
    r = roc_band(parts, n_boot=100)
    assert 0.35 < r["auroc"] < 0.65 and r["band"].shape == (2, 101)
    assert np.all(r["band"][0] <= r["tpr"] + 1e-9) and np.all(r["tpr"] <= r["band"][1] + 1e-9)
    assert roc_band([_pd("H", [1.0, 2.0])], n_boot=10) is None  # no illness days


def test_false_alerts_by_month_excludes_the_illness_span():
    # 2024-01-01 = day 19723; onset on 2024-02-15; alerts every 5th day
    days = 91
    lv = np.zeros(days, int)
    lv[::5] = 1
    p = _pd("P", np.zeros(days), ref=19723 + 45, levels=lv)
    months = dict((m, (fa, mon)) for m, fa, mon in false_alerts_by_month([p]))
    rel = np.arange(days) - 45
    out = (rel < -21) | (rel > 28)
    assert sum(mon for _, mon in months.values()) == int(out.sum())
    assert sum(fa for fa, _ in months.values()) == int((out & (lv > 0)).sum())
    assert months["2024-01"][1] == 24  # Jan 1..24 are before R-21


def test_bad_run_folder(tmp_path):
    with pytest.raises(ReportError, match="run.json missing"):
        render_report(tmp_path)


def test_cli_report(run, tmp_path):
    from streams.cli import app

    out = tmp_path / "r.html"
    res = CliRunner().invoke(app, ["report", str(run), "--out", str(out), "--max-timelines", "3"])
    assert res.exit_code == 0, res.output
    assert out.exists() and "3 of 8 participants shown" in out.read_text()
    res = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a replay run folder" in res.output


def test_recomputed_figures_agree_with_the_replay(run, text):
    """The report rebuilds per-day arrays from the CSV files; its overall row must equal evaluation.json."""
    ev = json.loads((run / "evaluation.json").read_text())
    row = re.search(r"<tr><td>all</td>((?:<td>[^<]*</td>)+)</tr>", text.split("<h2>Subgroups</h2>")[1]).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert int(cells[0]) == ev["participants"] and int(cells[1]) == ev["labelled"]
    assert cells[2] == f"{ev['detected_early']}/{ev['labelled']}"
    assert float(cells[5]) == pytest.approx(ev["false_alert_days_per_month"], abs=0.01)
    assert int(cells[6]) == ev["monitored_days_outside_illness"]

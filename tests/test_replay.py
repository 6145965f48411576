"""End to end: generated cohort -> `prodromal train` -> `prodromal replay` (CLI), the run folder,
and the Kafka worker's path (ParticipantMonitor) giving exactly the replay's alerts."""

from __future__ import annotations

import csv
import json
import pickle
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from detectors.monitor import ParticipantMonitor
from detectors.policy import AlertPolicy
from streams.cli import app
from streams.cohort import Cohort
from streams.registry import make_detector
from streams.replay import participant_blocks, replay

JSON_KEYS = {"participants", "labelled", "detected_early", "early_detection_rate", "median_lead_days",
             "false_alert_days_per_month", "auroc"}
N_PART, N_DAYS = 12, 60


def _invoke(args: list[str]):
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, f"{args}: {r.output}\n{r.exception!r}"
    return r


@pytest.fixture(scope="module")
def runs(small_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    model = root / "models" / "lgbm"
    tr = _invoke(["train", str(small_cohort), "--model", "lightgbm", "--out", str(model), "--folds", "3", "--threads", "1"])
    out = {"train_output": tr.output, "model": model}
    for det in ("lightgbm", "nightsignal"):
        args = ["replay", str(small_cohort), "--detector", det, "--out", str(root / det), "--json", "--bootstrap", "20"]
        if det == "lightgbm":
            args += ["--model", str(model)]
        out[det] = (root / det, _invoke(args).stdout)
    return out


def test_train_prints_grouped_cv_metrics(runs):
    text = runs["train_output"]
    assert re.search(r"trained lightgbm on 12 participants, \d+ days \(\d+ positive\)", text)
    assert re.search(r"participant-grouped 3-fold CV: AUROC 0\.\d{3}", text)
    assert re.search(r"alert thresholds \(yellow, red\): 0\.\d{4}, 0\.\d{4}", text)
    assert (runs["model"] / "artifact.json").is_file()


@pytest.mark.parametrize("det", ["lightgbm", "nightsignal"])
def test_replay_json_output(runs, det):
    _, stdout = runs[det]
    ev = json.loads(stdout)  # stdout is pure JSON (no progress bar mixed in)
    assert JSON_KEYS <= set(ev)
    assert ev["participants"] == N_PART and ev["labelled"] == N_PART // 2  # unlabelled_healthy cohort
    assert 0 <= ev["detected_early"] <= ev["labelled"]
    assert ev["early_detection_rate"] == pytest.approx(ev["detected_early"] / ev["labelled"])
    assert ev["false_alert_days_per_month"] is not None and ev["false_alert_days_per_month"] >= 0
    if det == "nightsignal":
        assert ev["auroc"] is None  # a rule without a continuous score
        assert ev["detected_early"] >= 3  # +7 bpm from R-3 on two nights in a row
    else:
        assert 0.0 <= ev["auroc"] <= 1.0
    assert ev["detector"] == det


_LP = re.compile(
    r'^(?P<m>daily|score|alert|label)(?P<tags>(?:,[^ ,=]+=(?:[^ ,\\]|\\.)+)*) '
    r'(?P<fields>[^ ,=]+=(?:"(?:[^"\\]|\\.)*"|[-+0-9.eE]+i?|true|false)(?:,[^ ,=]+=(?:"(?:[^"\\]|\\.)*"|[-+0-9.eE]+i?|true|false))*) '
    r"(?P<ts>-?\d+)$"
)
TAGS = {"daily": {"cohort", "participant"}, "score": {"cohort", "participant", "model"},
        "alert": {"cohort", "participant", "model", "level"}, "label": {"cohort", "participant"}}


def _read_csv(p: Path) -> list[dict]:
    with open(p, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("det", ["lightgbm", "nightsignal"])
def test_run_folder(runs, det, small_cohort):
    folder, _ = runs[det]
    for name in ("run.json", "points.lp", "alerts.csv", "scores.csv", "features.csv", "evaluation.json", "participants.csv"):
        assert (folder / name).is_file(), name
    run = json.loads((folder / "run.json").read_text())
    assert run["cohort"] == "tiny" and run["participants"] == N_PART
    assert run["participant_days"] == N_PART * N_DAYS
    assert run["detector"]["detector"] == det and run["pipeline"]["version"]
    scores = _read_csv(folder / "scores.csv")
    alerts = _read_csv(folder / "alerts.csv")
    feats = _read_csv(folder / "features.csv")
    assert len(scores) == len(feats) == N_PART * N_DAYS
    assert len(alerts) == run["alerts"] == sum(int(s["level"]) > 0 for s in scores)
    assert {a["level"] for a in alerts} <= {"yellow", "red"}
    assert "rhr_ns_bpm" in feats[0] and "rhr_ns_bpm_z" in feats[0] and "rhr_ns_bpm_base" in feats[0]
    # points.lp: valid line protocol, bounded tags, one daily and one score point per day
    counts = {"daily": 0, "score": 0, "alert": 0, "label": 0}
    day_starts = {int(s["day_start"]) for s in scores}
    lines = (folder / "points.lp").read_text().splitlines()
    assert len(lines) == run["points"]
    for ln in lines:
        m = _LP.match(ln)
        assert m, ln[:200]
        tags = {kv.split("=", 1)[0] for kv in re.split(r"(?<!\\),", m["tags"][1:])} if m["tags"] else set()
        assert tags == TAGS[m["m"]], ln[:200]
        counts[m["m"]] += 1
        if m["m"] != "label":
            assert int(m["ts"]) in day_starts
    assert counts["daily"] == counts["score"] == N_PART * N_DAYS
    assert counts["alert"] == len(alerts) and counts["label"] == N_PART // 2
    ev = json.loads((folder / "evaluation.json").read_text())
    assert JSON_KEYS <= set(ev) and len(ev["per_participant"]) == N_PART
    assert [r["participant_id"] for r in _read_csv(folder / "participants.csv")] == [p.participant_id for p in Cohort(small_cohort).participants]


@pytest.mark.parametrize("det", ["nightsignal", "cusum", "lightgbm"])
def test_participant_monitor_gives_the_same_alerts_as_replay(det, runs, small_cohort, tmp_path):
    """The Kafka worker's path: per-message chunks (6 h), state pickled between messages."""
    model = runs["model"] if det == "lightgbm" else None
    detector = make_detector(det, model)
    policy = AlertPolicy(thresholds=detector.thresholds)
    res = replay(small_cohort, detector, tmp_path / "run", policy=policy, n_boot=0)
    want = [(a["participant_id"], a["date"], a["level"]) for a in _read_csv(res.out / "alerts.csv")]
    want_scores = [(s["participant_id"], s["date"], s["score"], s["level"]) for s in _read_csv(res.out / "scores.csv")]
    cohort = Cohort(small_cohort)
    got, got_scores = [], []
    names = {1: "yellow", 2: "red"}
    for p in cohort.participants:
        det2 = make_detector(det, model)
        pol2 = AlertPolicy(thresholds=det2.thresholds)
        mon = ParticipantMonitor(p.participant_id, det2, pol2, p.utc_offset_s)
        results = []
        for i, block in enumerate(participant_blocks(cohort, p, block_s=6 * 3600)):
            if i % 10 == 9:  # a worker's table stores the monitor between messages
                mon = pickle.loads(pickle.dumps(mon)).bind(det2, pol2)
            results += mon.update_many(block)
        results += mon.flush()
        for r in results:
            d = r.row.date.isoformat()
            s = r.score.score
            got_scores.append((p.participant_id, d, "" if s != s else f"{s:.6g}", str(r.decision.level)))
            if r.decision.level > 0:
                got.append((p.participant_id, d, names[r.decision.level]))
    assert len(got_scores) == N_PART * N_DAYS
    assert got == want
    assert got_scores == want_scores
    if det == "nightsignal":
        assert len(want) > 0


def test_replay_bad_inputs_fail_clearly(small_cohort, tmp_path):
    r = CliRunner().invoke(app, ["replay", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "error: replay:" in r.output and "cohort.json: missing" in r.output
    r = CliRunner().invoke(app, ["replay", str(small_cohort), "--detector", "lightgbm", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs --model" in r.output
    r = CliRunner().invoke(app, ["replay", str(small_cohort), "--detector", "bogus", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "unknown detector 'bogus'" in r.output


def test_policy_options_reach_the_run(small_cohort, runs, tmp_path):
    out = tmp_path / "budget"
    _invoke(["replay", str(small_cohort), "--detector", "lightgbm", "--model", str(runs["model"]), "--out", str(out),
             "--consecutive", "2", "--budget", "1", "--bootstrap", "0"])
    run = json.loads((out / "run.json").read_text())
    assert run["policy"]["consecutive"] == 2 and run["policy"]["budget_per_30d"] == 1
    scores = _read_csv(out / "scores.csv")
    base = _read_csv(runs["lightgbm"][0] / "scores.csv")
    assert [s["score"] for s in scores] == [s["score"] for s in base]  # same model scores
    assert sum(int(s["level"]) > 0 for s in scores) <= sum(int(s["level"]) > 0 for s in base)
    # at most one yellow alert day per participant per 30 days; suppressed days are marked
    for s in scores:
        if s["suppressed"] == "1":
            assert s["level"] == "0" and s["raw_level"] != "0"


def test_train_refuses_a_cohort_without_positive_days(tmp_path, gen):
    # 20 days: participant 0's onset (day 40) lies after the recording, so every day is negative
    c = gen.make_cohort(tmp_path / "healthy", participants=3, days=20, infected_every=99)
    r = CliRunner().invoke(app, ["train", str(c), "--model", "lightgbm", "--out", str(tmp_path / "m")])
    assert r.exit_code == 2 and "error: train:" in r.output and "need both" in r.output

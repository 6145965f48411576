"""EHR facts through Kafka's ehr.context: the worker's fusion scores equal the in-process replay's."""

from __future__ import annotations

import csv
import math

import pytest

from streams.codec import CodecError
from streams.importers.ehr_facts import read_facts
from streams.produce import _stamp, cohort_messages
from streams.registry import make_detector
from streams.replay import replay
from streams.settings import load_settings
from streams.worker import Engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ehr_cohort_and_model(tmp_path_factory):
    from streams.fusion_train import train_fusion
    from streams.simulate import simulate_cohort

    root = tmp_path_factory.mktemp("ehr")
    c = simulate_cohort(root / "c", participants=40, days=60, seed=5, infected_fraction=0.5, ehr_fraction=0.7)
    assert read_facts(c), "the simulated cohort must carry dated EHR facts"
    train_fusion(c, "late", root / "late", folds=3, seed=0, threads=1)
    return c, root / "late"


def _replay_scores(cohort, model, out):
    det = make_detector("late", model)
    det.set_ehr(read_facts(cohort))
    replay(cohort, det, out, n_boot=0, limit=8)
    with open(out / "scores.csv", newline="") as fh:
        return {(r["participant_id"], r["date"]): (float(r["score"]), r["modalities"]) for r in csv.DictReader(fh)}


def test_worker_gets_ehr_facts_from_the_stream_and_scores_like_the_replay(ehr_cohort_and_model, tmp_path):
    cohort, model = ehr_cohort_and_model
    expected = _replay_scores(cohort, model, tmp_path / "run")
    assert any(m == "wearable+ehr" for _, m in expected.values()), "some days must use EHR"
    engine = Engine(load_settings(env={"PRODROMAL_WORKER__DETECTOR": "late", "PRODROMAL_WORKER__MODEL": str(model)}))
    feeds, got = {}, {}

    def feed_of(pid):
        return feeds.setdefault(pid, engine.loads(None, pid))

    msgs = list(cohort_messages(cohort, chunk_s=6 * 3600, limit=8))
    # facts ride in complete context snapshots (ehr.context is compacted); later facts resend the context
    snaps = [m for m in msgs if m.topic == "ehr.context"]
    assert any(b'"ehr_facts":[{' in m.value for m in snaps) and len(snaps) > len({m.key for m in snaps})
    for i, m in enumerate(msgs):
        pid, feed, results = engine.handle(m.topic, m.key, _stamp(m.value), feed_of)
        if i % 50 == 0:  # the facts survive the state's trip through the changelog
            data = engine.dumps(feed)
            engine._cache.clear()
            feeds[pid] = engine.loads(data, pid)
        for r in results:
            got[(r.row.participant_id, r.row.date.isoformat())] = (r.score.score, "+".join(r.score.modalities))
    assert set(got) == set(expected)
    for k, (score, mods) in expected.items():
        assert math.isclose(got[k][0], score, rel_tol=1e-5, abs_tol=1e-6), k
        assert got[k][1] == mods, k


def test_malformed_ehr_fact_is_refused_with_a_reason(ehr_cohort_and_model):
    _, model = ehr_cohort_and_model
    engine = Engine(load_settings(env={"PRODROMAL_WORKER__DETECTOR": "late", "PRODROMAL_WORKER__MODEL": str(model)}))
    feeds = {}

    def feed_of(pid):
        return feeds.setdefault(pid, engine.loads(None, pid))

    bad = [
        (b'{"schema":"prodromal.ehr_fact","v":1,"participant":"P1","time_known":"x","fact":"bmi","value":30}', "time_known"),
        (b'{"schema":"prodromal.ehr_fact","v":1,"participant":"P1","time_known":1.0,"fact":"nonsense","value":1}', "EHR fact"),
    ]
    for value, match in bad:
        with pytest.raises(CodecError, match=match):
            engine.handle("ehr.context", b"P1", value, feed_of)

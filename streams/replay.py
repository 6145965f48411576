"""The in-process driver: replay a recorded cohort through the same operators the workers use.

For each participant the streams are read from the cohort folder and fed,
one block of recorded time (default one day) at a time, all kinds of the
block together, into a :class:`~detectors.pipeline.FeaturePipeline`; closed
days are scored by the detector (stateless models in one batch per
participant) and passed through the alert policy. Only one participant's
samples are in memory at a time, so memory grows with the number of
participants (their small results), not with the days recorded.

Detectors that learn across participants online (``needs_date_order``) get
every participant's day rows in date order, so no participant's score uses
another's future.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.base import LEVEL_NAMES, Detector
from detectors.daily import DAY
from detectors.evaluation import ParticipantDays, evaluate
from detectors.monitor import DayResult
from detectors.pipeline import FEATURE_COLUMNS, DayRow, FeaturePipeline, PipelineParams
from detectors.policy import AlertPolicy
from detectors.records import STREAMS
from streams.cohort import Cohort, Participant
from streams.spool import SpoolWriter, day_lines, label_points, output_values

__all__ = ["replay", "ReplayResult", "participant_blocks", "age_band", "local_day"]


def local_day(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def age_band(age) -> str | None:
    try:
        a = float(age)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(a):
        return None
    return "<30" if a < 30 else "30-44" if a < 45 else "45-59" if a < 60 else "60+"


def raw_operator_factory():
    """The raw PPG/ACC operator, when the signal-processing package is present."""
    try:
        from detectors.ppg.stream import RawOperator  # noqa: PLC0415
    except ImportError:  # pragma: no cover - the package ships with prodromal
        return None
    return RawOperator


def participant_blocks(cohort: Cohort, p: Participant, block_s: float = DAY, stats: dict | None = None) -> Iterator[list]:
    """Yield one participant's samples as blocks of (kind, time, values), in event time."""
    pid = p.participant_id
    streams = []
    for kind in cohort.stream_kinds(pid):
        if kind in STREAMS:
            sd = cohort.read_stream(pid, kind)
            if sd is not None and len(sd):
                streams.append((kind, sd.time, sd.values))
                if stats is not None:
                    stats["samples"] = stats.get("samples", 0) + len(sd)
                    stats["dropped"] = stats.get("dropped", 0) + sd.dropped
    waves = {k: cohort.read_waveform(pid, k) for k in ("ppg", "acc") if k in cohort.stream_kinds(pid)}
    if waves.get("ppg") is not None:
        streams.extend(_derive_from_waveforms(waves, stats))
    if not streams:
        return
    lo = min(float(t[0]) for _, t, _ in streams)
    hi = max(float(t[-1]) for _, t, _ in streams)
    start = math.floor((lo + p.utc_offset_s) / block_s) * block_s - p.utc_offset_s
    b = start
    while b <= hi:
        block = []
        for kind, t, v in streams:
            i, j = np.searchsorted(t, [b, b + block_s])
            if j > i:
                block.append((kind, t[i:j], v[i:j]))
        if block:
            yield block
        b += block_s


def _derive_from_waveforms(waves: dict, stats: dict | None) -> list:
    """Raw PPG/ACC -> derived sample streams with the streaming raw operator."""
    factory = raw_operator_factory()
    if factory is None:
        return []
    op = factory()
    derived: dict[str, list] = {}
    ppg, acc = waves.get("ppg"), waves.get("acc")
    acc_segs = list(acc.segments()) if acc is not None else []
    for i, (t0, seg) in enumerate(ppg.segments()):
        items = []
        if i < len(acc_segs):
            items += op.update("acc", acc_segs[i][0], acc.fs, acc_segs[i][1])
        items += op.update("ppg", t0, ppg.fs, seg)
        for kind, t, v in items:
            derived.setdefault(kind, []).append((np.asarray(t, float), np.asarray(v, float)))
        if stats is not None:
            stats["samples"] = stats.get("samples", 0) + seg.shape[1]
    for kind, t, v in op.flush() if hasattr(op, "flush") else []:
        derived.setdefault(kind, []).append((np.asarray(t, float), np.asarray(v, float)))
    out = []
    for kind, parts in derived.items():
        t = np.concatenate([a for a, _ in parts])
        v = np.concatenate([b for _, b in parts])
        o = np.argsort(t, kind="stable")
        out.append((kind, t[o], v[o]))
    return out


@dataclass
class ReplayResult:
    out: Path
    evaluation: dict
    participants: int
    days: int
    alerts: int
    samples: int
    seconds: float
    run: dict = field(default_factory=dict)


_SCORE_COLS = ["participant_id", "date", "day_start", "score", "raw_level", "level", "level_name", "suppressed",
               "modalities"]


class _Outputs:
    def __init__(self, out: Path, cohort_name: str, model: str, threshold: float | None, pseudonym=None):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.cohort, self.model, self.threshold, self.pseudonym = cohort_name, model, threshold, pseudonym
        self.spool = SpoolWriter(out / "points.lp")
        self._scores = open(out / "scores.csv", "w", newline="", encoding="utf-8")
        self._alerts = open(out / "alerts.csv", "w", newline="", encoding="utf-8")
        self._feats = open(out / "features.csv", "w", newline="", encoding="utf-8")
        self.ws = csv.writer(self._scores)
        self.wa = csv.writer(self._alerts)
        self.wf = csv.writer(self._feats)
        self.ws.writerow(_SCORE_COLS)
        self.wa.writerow(["participant_id", "date", "level", "score", "reasons"])
        self.feat_header = False
        self.alerts = 0

    def write(self, results: list[DayResult]) -> None:
        pts: list[str] = []
        for r in results:
            vals = output_values(r.row)
            pts += day_lines(self.cohort, self.model, r, threshold=self.threshold, pseudonym=self.pseudonym, values=vals)
            pid = self.pseudonym(r.row.participant_id) if self.pseudonym else r.row.participant_id
            d = r.row.date.isoformat()
            self.ws.writerow([pid, d, int(r.row.day_start), _num(r.score.score), r.decision.raw_level,
                              r.decision.level, LEVEL_NAMES[r.decision.level], int(r.decision.suppressed),
                              "+".join(r.score.modalities)])
            if r.decision.level > 0:
                self.alerts += 1
                self.wa.writerow([pid, d, LEVEL_NAMES[r.decision.level], _num(r.score.score), "; ".join(r.score.reasons)])
            if not self.feat_header:
                self.wf.writerow(["participant_id", "date", *FEATURE_COLUMNS])
                self.feat_header = True
            self.wf.writerow([pid, d, *("" if v != v else repr(v) for v in vals)])
        self.spool.write(pts)

    def close(self) -> None:
        self.spool.close()
        for f in (self._scores, self._alerts, self._feats):
            f.close()


def _num(v) -> str:
    if v is None:
        return ""
    v = float(v)
    return "" if not math.isfinite(v) else f"{v:.6g}"


def replay(
    cohort_path: str | Path,
    detector: Detector,
    out: str | Path,
    policy: AlertPolicy | None = None,
    params: PipelineParams | None = None,
    block_s: float = 28 * DAY,
    n_boot: int = 200,
    progress: Callable[[str], None] | None = None,
    pseudonym=None,
    extra_run: dict | None = None,
    limit: int | None = None,
) -> ReplayResult:
    """Replay a cohort folder through features, detector and policy; write a run folder."""
    t_start = _time.perf_counter()
    cohort = Cohort(cohort_path)
    params = params or PipelineParams()
    policy = policy or AlertPolicy(thresholds=detector.thresholds)
    out = Path(out)
    outputs = _Outputs(out, cohort.name, detector.name, float(policy.thresholds[0]) if np.isfinite(policy.thresholds[0]) else None, pseudonym)
    stats: dict = {}
    parts: list[ParticipantDays] = []
    pending: list[tuple[Participant, list[DayRow]]] = []
    n_days = 0
    chosen = cohort.participants if limit is None else cohort.participants[:limit]
    for p in chosen:
        fp = FeaturePipeline(p.participant_id, p.utc_offset_s, params)
        rows: list[DayRow] = []
        for block in participant_blocks(cohort, p, block_s, stats):
            rows += fp.update_many(block)
        rows += fp.flush()
        n_days += len(rows)
        outputs.spool.write(label_points(cohort.name, p, lambda d, p=p: local_day(d) * DAY - p.utc_offset_s, pseudonym))
        if detector.needs_date_order:
            pending.append((p, rows))
        else:
            st, ps = detector.new_state(p.participant_id), policy.new_state()
            scores = detector.score_many([st] * len(rows), rows)
            results = [DayResult(r, s, policy.decide(ps, r.day, s)) for r, s in zip(rows, scores, strict=True)]
            outputs.write(results)
            parts.append(_pdays(p, results))
        if progress:
            progress(p.participant_id)
    if pending:
        parts += _score_in_date_order(detector, policy, pending, outputs, bool(cohort.manifest.get("unlabelled_healthy", False)))
    outputs.close()
    unlabelled_healthy = bool(cohort.manifest.get("unlabelled_healthy", False))
    eval_parts = [q for q in parts if q.reference_day is not None or unlabelled_healthy]
    ev = evaluate(eval_parts, scoring=detector.name not in ("nightsignal",), n_boot=n_boot)
    ev["detector"] = detector.name
    ev["unlabelled_healthy"] = unlabelled_healthy
    ev["per_participant"] = [_per_participant(q) for q in parts]
    if pseudonym:  # evaluation.json leaves the pipeline too
        for d in ev["per_participant"]:
            d["participant_id"] = pseudonym(d["participant_id"])
    seconds = _time.perf_counter() - t_start
    run = {
        "cohort": cohort.name,
        "cohort_path": str(Path(cohort_path).resolve()),
        "cohort_source": cohort.manifest.get("source"),
        "detector": detector.describe(),
        "policy": policy.describe(),
        "pipeline": params.as_dict(),
        "block_s": block_s,
        "participants": len(chosen),
        "participant_days": n_days,
        "samples": stats.get("samples", 0),
        "samples_dropped": stats.get("dropped", 0),
        "alerts": outputs.alerts,
        "points": outputs.spool.points,
        "seconds": round(seconds, 3),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "evaluation_windows": {"illness": [-7, 14], "early": [-10, 0], "lead": [-10, 7], "excluded_for_false_alerts": [-21, 28]},
        **(extra_run or {}),
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, sort_keys=True) + "\n")
    (out / "evaluation.json").write_text(json.dumps(ev, indent=2, sort_keys=True, default=_json_default) + "\n")
    _copy_participants(cohort, out, pseudonym)
    return ReplayResult(out, ev, len(chosen), n_days, outputs.alerts, stats.get("samples", 0), seconds, run)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def _pdays(p: Participant, results: list[DayResult]) -> ParticipantDays:
    ref = p.reference_date
    sub = {"age_band": age_band(p.ehr.get("age")), "sex": p.ehr.get("sex")}
    return ParticipantDays(
        p.participant_id,
        np.array([r.row.day for r in results], dtype=np.int64),
        np.array([r.score.score for r in results], dtype=float),
        np.array([r.decision.level for r in results], dtype=np.int64),
        np.array([r.row.values.get("hr_capture", 0.0) > 0 for r in results], dtype=bool),
        local_day(ref) if ref else None,
        sub,
    )


def _per_participant(q: ParticipantDays) -> dict:
    alerts = q.day[q.level > 0]
    first = None
    if q.reference_day is not None:
        rel = alerts - q.reference_day
        win = rel[(rel >= -10) & (rel <= 7)]
        first = int(win[0]) if win.size else None
    return {"participant_id": q.participant_id, "days": int(q.day.size), "alert_days": int(alerts.size),
            "labelled": q.reference_day is not None, "first_alert_rel_onset": first}


def _score_in_date_order(detector: Detector, policy: AlertPolicy, pending, outputs: _Outputs,
                         unlabelled_healthy: bool = False) -> list[ParticipantDays]:
    states = {p.participant_id: detector.new_state(p.participant_id) for p, _ in pending}
    pstates = {p.participant_id: policy.new_state() for p, _ in pending}
    by_pid = {p.participant_id: p for p, _ in pending}
    allrows = sorted((r for _, rows in pending for r in rows), key=lambda r: (r.day, r.participant_id))
    if hasattr(detector, "set_labels"):
        detector.set_labels({pid: (local_day(p.reference_date) if p.reference_date else None) for pid, p in by_pid.items()},
                            unlabelled_healthy)
    results: dict[str, list[DayResult]] = {pid: [] for pid in by_pid}
    i = 0
    while i < len(allrows):
        j = i
        while j < len(allrows) and allrows[j].day == allrows[i].day:
            j += 1
        day_rows = allrows[i:j]
        scores = detector.score_many([states[r.participant_id] for r in day_rows], day_rows)
        for r, s in zip(day_rows, scores, strict=True):
            results[r.participant_id].append(DayResult(r, s, policy.decide(pstates[r.participant_id], r.day, s)))
        if hasattr(detector, "end_of_day"):
            detector.end_of_day(allrows[i].day)
        i = j
    parts = []
    for pid, res in results.items():
        outputs.write(res)
        parts.append(_pdays(by_pid[pid], res))
    return parts


def _copy_participants(cohort: Cohort, out: Path, pseudonym=None) -> None:
    src = cohort.path / "participants.csv"
    with open(src, newline="", encoding="utf-8") as fi, open(out / "participants.csv", "w", newline="", encoding="utf-8") as fo:
        rd = csv.DictReader(fi)
        wr = csv.DictWriter(fo, fieldnames=rd.fieldnames or [])
        wr.writeheader()
        for row in rd:
            if pseudonym:
                row["participant_id"] = pseudonym(row["participant_id"])
            wr.writerow(row)


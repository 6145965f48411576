"""The spool's line protocol must be byte-identical to influxdb_client's Point serialisation."""

import math
import random
import string

from influxdb_client import Point, WritePrecision

from streams.spool import line_protocol


def _rs(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + ' ,="\\é\n') for _ in range(rng.randint(0, 8)))


def test_line_protocol_matches_point_on_random_points():
    rng = random.Random(0)
    for _ in range(3000):
        m = _rs(rng) or "m"
        tags = {(_rs(rng) or "k"): _rs(rng) for _ in range(rng.randint(0, 3))}
        fields = {}
        for _ in range(rng.randint(0, 5)):
            c = rng.random()
            fields[_rs(rng) or "f"] = (
                rng.choice([1.0, 2.5, math.nan, math.inf, 1e20, -0.0, math.pi]) if c < 0.4
                else rng.randint(-5, 10**12) if c < 0.6
                else (rng.random() < 0.5) if c < 0.7
                else _rs(rng) if c < 0.9
                else None
            )
        p = Point(m)
        for k, v in tags.items():
            p = p.tag(k, v)
        for k, v in fields.items():
            p = p.field(k, v)
        p = p.time(1_700_000_000, WritePrecision.S)
        assert line_protocol(m, tags, fields, 1_700_000_000) == p.to_line_protocol()


def test_line_protocol_drops_non_finite_and_empty():
    assert line_protocol("daily", {"participant": "P1"}, {"a": math.nan}, 0) == ""
    assert line_protocol("daily", {"participant": "P1"}, {"a": 1.0, "b": math.nan}, 5) == "daily,participant=P1 a=1 5"


def test_field_formatter_matches_line_protocol():
    import numpy as np

    from streams.spool import FieldFormatter

    rng = np.random.default_rng(3)
    names = ["rhr_ns_bpm", "a b", "z,=x", "hr_capture", "steps"]
    fmt = FieldFormatter(names)
    for _ in range(500):
        vals = rng.normal(60, 30, len(names)).round(rng.integers(0, 6)).tolist()
        for i in rng.choice(len(names), rng.integers(0, 3), replace=False):
            vals[i] = float(rng.choice([np.nan, np.inf, 0.0, 5.0]))
        expect = line_protocol("daily", {"participant": "P 1"}, dict(zip(names, vals, strict=True)), 7)
        assert fmt.line("daily", {"participant": "P 1"}, vals, 7) == expect

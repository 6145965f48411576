"""Shared helpers of the bad-input fuzz tests (tests/test_fuzz_*.py): mutations, outcome checks, the tally.

Every fuzz example is one kind of bad input fed to one reader. The outcome is
``error`` (the documented error type, with a message naming the file and a
line, row or field), ``dropped`` (read, the bad values dropped and counted) or
``accepted`` (the mutation left a valid file). Anything else (another
exception type, a message without a location) fails the test. The counts go
to ``artifacts/badinput_summary.json`` (one section per reader), which
``bench/badinput.py`` prints.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

from hypothesis import strategies as st

KINDS = ("truncated", "oversized", "wrong_type", "nan_inf", "negative_time", "future_time", "unicode_garbage")
SUMMARY = Path(__file__).resolve().parents[1] / "artifacts" / "badinput_summary.json"
#: A message names where: a line/row/field, or says what is wrong with the whole file.
WHERE = re.compile(r"line \d+|row \d+|field '|larger than|zip|empty file|not a readable|npz|shape|not a folder|"
                   r"header|JSON|bytes", re.IGNORECASE)

NAN_INF = ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-1e999"]
NEGATIVE_TIMES = ["1969-12-31 23:59:00", "1900-01-01 00:00:00", "0001-01-01 00:00:00", "1969-07-20 20:17:40"]
FUTURE_TIMES = ["2100-01-02 00:00:00", "2150-06-01 12:00:00", "9999-12-31 23:59:59", "12000-01-01 00:00:00"]
WRONG_TYPES = ["abc", "True", "[1, 2]", "{}", "0x1F", "12:00", "1,5", "--1", "", " ", "None", "1/2"]

garbage_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40
)  # any code point except surrogates (not encodable in UTF-8)
garbage_bytes = st.binary(min_size=1, max_size=40)


class Tally:
    """Counts of (kind, outcome) for one reader; saved into the shared summary file."""

    def __init__(self, reader: str):
        self.reader = reader
        self.counts: dict[str, Counter] = defaultdict(Counter)

    def add(self, kind: str, outcome: str) -> None:
        assert kind in KINDS, kind
        self.counts[kind][outcome] += 1

    def save(self) -> None:
        SUMMARY.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(SUMMARY.read_text())
        except (OSError, ValueError):
            data = {}
        data[self.reader] = {k: dict(sorted(c.items())) for k, c in sorted(self.counts.items())}
        tmp = SUMMARY.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(SUMMARY)


def check_error(e: BaseException, names: list[str]) -> str:
    """Assert a documented error names the file and a location; returns the outcome 'error'."""
    msg = str(e)
    assert any(n in msg for n in names), f"error does not name the file ({names}): {msg[:300]}"
    assert WHERE.search(msg), f"error does not say where (line/row/field): {msg[:300]}"
    assert len(msg) < 2000, "error message unbounded"
    return "error"


def cut(data: bytes, frac: float) -> bytes:
    """The first ``frac`` of ``data`` (a truncated transfer)."""
    return data[: int(len(data) * frac)]


def insert(text: str, pos_frac: float, piece: str) -> str:
    i = int(len(text) * pos_frac)
    return text[:i] + piece + text[i:]

#: Examples per fuzz test; raise it for a deeper run (PRODROMAL_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_*.py).
FUZZ_EXAMPLES = int(os.environ.get("PRODROMAL_FUZZ_EXAMPLES", "60"))

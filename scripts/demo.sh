#!/usr/bin/env bash
# The main job on embedded defaults, from a fresh clone: set-up, then `qops demo`.
# Usage: scripts/demo.sh [qops demo options, e.g. --keep-running]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
exec .venv/bin/qops demo "$@"

#!/usr/bin/env bash
# The whole test suite from a fresh clone: set-up, lint, type check, import contracts, tests.
# Usage: scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh --dev
QOPS_SYSTEM_DEPS="${QOPS_SYSTEM_DEPS:-prometheus:prometheus chromium:chromium chromedriver:chromium-driver dot:graphviz pg_ctlcluster:postgresql}" bash scripts/system-deps.sh

export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff" && ruff check . && ruff format --check .
echo "== mypy" && mypy qops tasks flows blocks
echo "== import contracts" && lint-imports
echo "== pytest" && pytest "$@"

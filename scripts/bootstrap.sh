#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs qops with its pinned dependencies.
# Idempotent: reinstalls only when pyproject.toml or constraints.txt changed.
# Usage: scripts/bootstrap.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [[ "${1:-}" == "--dev" ]]; then
    extras="[dev]"
fi

python_bin="${QOPS_PYTHON:-}"
if [[ -z "$python_bin" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python_bin="$candidate"
            break
        fi
    done
fi
if [[ -z "$python_bin" ]]; then
    echo "qops needs Python 3.11 (set QOPS_PYTHON to its interpreter)" >&2
    exit 2
fi

if [[ ! -x .venv/bin/python ]]; then
    "$python_bin" -m venv .venv
fi

stamp=".venv/.qops-installed${extras}"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "installing qops${extras} into .venv (first run only; log: .venv/install.log)" >&2
    if ! {
        .venv/bin/python -m pip install --disable-pip-version-check --upgrade "pip>=24" \
            && .venv/bin/python -m pip install --disable-pip-version-check \
                -c constraints.txt -e ".${extras}"
    } >.venv/install.log 2>&1; then
        tail -n 30 .venv/install.log >&2
        echo "installation failed; full log: .venv/install.log" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

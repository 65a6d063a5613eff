#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with hibiki and its test tools.
# Idempotent: a second run only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[test]'
.venv/bin/hibiki --help > /dev/null
echo "hibiki is installed in .venv (activate with: source .venv/bin/activate)"

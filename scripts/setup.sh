#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with hibiki and its test tools.
# Idempotent: a second run only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's Chromium runs the web page's end-to-end test (headless, fake microphone).
if ! command -v chromium > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing Debian's chromium (for the web page test)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
  else
    echo "warning: chromium is missing (apt-get install chromium); the web page test will be skipped" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[test]'
.venv/bin/hibiki --help > /dev/null
echo "hibiki is installed in .venv (activate with: source .venv/bin/activate)"

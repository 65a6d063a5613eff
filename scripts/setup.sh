#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with hibiki and its test tools.
# Idempotent: a second run only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages: chromium runs the web page's end-to-end test (headless, fake microphone);
# espeak-ng speaks the generated evaluation and training corpora; haproxy balances the
# replicas of the multi-machine test (service/deploy/haproxy.cfg).
missing=()
command -v chromium > /dev/null || missing+=(chromium)
command -v espeak-ng > /dev/null || missing+=(espeak-ng)
command -v haproxy > /dev/null || missing+=(haproxy)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing Debian packages: ${missing[*]}..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
  else
    echo "warning: missing ${missing[*]} (apt-get install ${missing[*]}); tests that need them will fail or skip" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e '.[test]'
# Kyutai's Hibiki-Zero inference code, the reference the equivalence tests compare against.
.venv/bin/python -m pip install --quiet --progress-bar off --no-deps hibiki-zero==0.0.4
.venv/bin/hibiki --help > /dev/null
echo "hibiki is installed in .venv (activate with: source .venv/bin/activate)"

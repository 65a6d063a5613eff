#!/usr/bin/env bash
# Wheels of the packages bench/gpu_check.py imports that a bare GPU machine's image lacks (nothing can
# be fetched there), into .whl/ (git-ignored locally): this .venv's versions, for CPython 3.12 x86-64.
# Run here once; bench/gpu_check.sh installs them there.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude || echo /.whl/ >> .git/info/exclude
names=(moshi hibiki-zero sphn soxr fastapi starlette pydantic pydantic-core annotated-types typing-inspection
       uvicorn websockets python-multipart soundfile cffi pycparser datasets dill multiprocess omegaconf
       whisper-normalizer more-itertools opentelemetry-api
       ipython ipython-pygments-lexers matplotlib-inline stack-data asttokens executing pure-eval traitlets decorator)
# (IPython.display, all hibiki-zero takes from IPython, needs none of jedi, prompt-toolkit, pexpect.)
platforms=()
for n in 17 24 27 28 31 34; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
mkdir -p .whl
for name in "${names[@]}"; do
  version=$(.venv/bin/python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p' || true)
  [ -n "$version" ] || { echo "$name is not installed in .venv; skipped" >&2; continue; }
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" --platform manylinux2014_x86_64 --platform any -d .whl "$name==$version" \
    || echo "no wheel for $name==$version" >&2
done
# The device tool carries 64 MiB with the working tree: native extensions lose their debug
# symbols (sphn's wheel is 18 MB with them, under 2 MB without). pip rewrites RECORD on install.
for wheel in .whl/*.whl; do
  if unzip -Z1 "$wheel" | grep '\.so' > /dev/null; then
    tmp=$(mktemp -d)
    unzip -q "$wheel" -d "$tmp"
    find "$tmp" -name '*.so*' -type f -exec strip --strip-unneeded {} +
    rm "$wheel" && (cd "$tmp" && zip -q -r -9 "$OLDPWD/$wheel" .) && rm -rf "$tmp"
  fi
done
zip -q -d .whl/hibiki_zero-*.whl 'hibiki_zero/samples/*'  # its demo recordings (2.4 MB)
du -sh .whl

#!/usr/bin/env bash
# bench/gpu_check.py on a bare GPU machine lent by the device tool: its image holds torch but
# not moshi and the rest, which travel as wheels in .whl/ (made here by bench/gpu_wheels.sh).
# The table (gpu_check.md) and the logs come back in $OUT.
#
#   device run: command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 600
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu-check-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# hibiki's subcommands (serve, eval) are entry points: a dist-info naming them stands in for installing it.
info=/tmp/site/hibiki-0.0.0.dist-info
mkdir -p "$info"
printf 'Metadata-Version: 2.1\nName: hibiki\nVersion: 0.0.0\n' > "$info/METADATA"
python3 - > "$info/entry_points.txt" <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
for group, entries in [("console_scripts", project["scripts"]), *project["entry-points"].items()]:
    print(f"[{group}]", *(f"{name} = {target}" for name, target in entries.items()), sep="\n")
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 bench/gpu_check.py --out /tmp/gpu-check --budget-s 480 2>&1 | tee "$out/gpu_check.log"
cp /tmp/gpu-check/gpu_check.md "$out/" 2>/dev/null
tar czf "$out/logs.tgz" -C /tmp/gpu-check --exclude=zero . 2>/dev/null

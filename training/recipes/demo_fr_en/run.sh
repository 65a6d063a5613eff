#!/usr/bin/env bash
# The demo French->English Hibiki, rebuilt from nothing, then its report card:
#   corpus -> codec -> base checkpoint -> data -> supervised stage -> GRPO -> eval -> REPORT.md
#
#   training/recipes/demo_fr_en/run.sh [OUT]            (default: out/demo)
#
# Every stage resumes where a killed run stopped. Sizes follow the machine (a CUDA GPU: the
# full recipe; a CPU: a smaller one that completes in hours); each is a variable to override:
#   HOURS CODEC_STEPS CODEC_DECODER_STEPS CODEC_BATCH SFT_TEXT_STEPS SFT_STEPS SPREAD_STEPS SFT_BATCH GRPO_STEPS EVAL_LIMIT WORKERS PYTHON
# CODEC_INIT: a codec to start from; with CODEC_STEPS=0 it is used as it is. On a CPU that
# is the default: the codec trained on a GPU and shipped here (codec/README.md), since a CPU
# step costs ~0.8 s and thousands barely move it. On a GPU the codec starts from random weights.
# CODEC_DECODER_STEPS then train its decoder alone on English (decoder_only=true), as was
# done to the shipped codec (codec/README.md); 0 skips it.
set -euo pipefail
cd "$(dirname "$0")/../../.."
RECIPE=training/recipes/demo_fr_en
OUT=${1:-out/demo}
PY=${PYTHON:-.venv/bin/python}
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then GPU=1; else GPU=0; fi
WHERE=$("$PY" -c "import os, torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else f'CPU, {os.cpu_count()} cores')")
pick() { if [ "$GPU" = 1 ]; then echo "$1"; else echo "$2"; fi; }
HOURS=${HOURS:-$(pick 80 24)}  # French speech; ~3 epochs of a corpus is where the demo LM starts to overfit
CODEC_STEPS=${CODEC_STEPS:-$(pick 30000 0)}
CODEC_DECODER_STEPS=${CODEC_DECODER_STEPS:-$(pick 5000 0)}
CODEC_BATCH=${CODEC_BATCH:-$(pick 32 4)}
SFT_TEXT_STEPS=${SFT_TEXT_STEPS:-$(pick 4000 1500)}
SFT_STEPS=${SFT_STEPS:-$(pick 4000 1000)}
SPREAD_STEPS=${SPREAD_STEPS:-1000}
SFT_BATCH=${SFT_BATCH:-$(pick 16 8)}
GRPO_STEPS=${GRPO_STEPS:-$(pick 400 150)}
EVAL_LIMIT=${EVAL_LIMIT:-$(pick 0 100)}  # test utterances evaluated (0: the whole split)
WORKERS=${WORKERS:-$(nproc)}
CODEC_INIT=${CODEC_INIT-$(pick "" "$RECIPE/codec")}
mkdir -p "$OUT"
echo "{\"gpu\": $GPU, \"hours\": $HOURS, \"codec_steps\": $CODEC_STEPS, \"codec_decoder_steps\": $CODEC_DECODER_STEPS, \"codec_batch\": $CODEC_BATCH, \"sft_text_steps\": $SFT_TEXT_STEPS, \"sft_steps\": $SFT_STEPS, \"spread_steps\": $SPREAD_STEPS, \"sft_batch\": $SFT_BATCH, \"grpo_steps\": $GRPO_STEPS, \"eval_limit\": $EVAL_LIMIT, \"workers\": $WORKERS, \"codec_init\": \"${CODEC_INIT:-}\"}" > "$OUT/recipe.json"

# stage NAME COMMAND...: runs a stage unless OUT/stages/NAME.done says it completed, then
# records its wall time there (the report card's table). A stage cut short resumes by itself.
stage() {
  local name=$1 start
  shift
  [ -f "$OUT/stages/$name.done" ] && { echo "== $name: done"; return; }
  echo "== $name: $*"
  start=$(date +%s)
  "$@"
  mkdir -p "$OUT/stages"
  echo "{\"stage\": \"$name\", \"seconds\": $(( $(date +%s) - start )), \"where\": \"$WHERE\"}" > "$OUT/stages/$name.done"
}
# checkpoint DIR [best]: a training stage's checkpoint from DIR/latest.json, or with `best` from
# DIR/best.json (the lowest validation loss) when the stage wrote one
checkpoint() {
  local record="$1/latest.json"
  [ "${2:-}" = best ] && [ -f "$1/best.json" ] && record="$1/best.json"
  "$PY" -c "import json, sys; print(json.load(open(sys.argv[1]))['checkpoint'])" "$record"
}

stage corpus "$PY" -m training.demo.corpus out="$OUT/corpus" hours="$HOURS" workers="$WORKERS"
if [ "$CODEC_STEPS" -gt 0 ]; then
  stage codec "$PY" -m training.demo.codec corpus="$OUT/corpus" out="$OUT/codec" steps="$CODEC_STEPS" batch_size="$CODEC_BATCH" \
    ${CODEC_INIT:+init="$CODEC_INIT"}
else
  stage codec bash -c 'mkdir -p "$2" && cp "$1"/mimi.safetensors "$1"/mimi_config.json "$2"/' - "${CODEC_INIT:?CODEC_STEPS=0 needs CODEC_INIT}" "$OUT/codec"
fi
CODEC="$OUT/codec"
if [ "$CODEC_DECODER_STEPS" -gt 0 ]; then
  stage codec_decoder "$PY" -m training.demo.codec corpus="$OUT/corpus" out="$OUT/codec_decoder" init="$OUT/codec" \
    decoder_only=true 'audio_columns=[target_audio]' steps="$CODEC_DECODER_STEPS" batch_size="$CODEC_BATCH" lr=2e-4
  CODEC="$OUT/codec_decoder"
fi
stage codec_eval "$PY" -m training.demo.codec_eval --codec "$CODEC" --corpus "$OUT/corpus" --limit 40 --out "$OUT/codec/eval.json"  # the codec in use, for the report
stage base "$PY" -m training.demo.base corpus="$OUT/corpus" codec="$CODEC" out="$OUT/base"
for split in train valid test; do
  stage "prepare_$split" "$PY" -m training.prepare "$RECIPE/prepare.yaml" dataset="$OUT/corpus/$split/manifest.jsonl" \
    model="$OUT/base" out="$OUT/data/$split" workers="$WORKERS"
done
# Supervised stage in two phases: text only first (the LM learns to listen without the
# target-audio loss pulling its trunk toward speech synthesis), then text + audio from the
# text phase's best validation checkpoint (on a small corpus the LM overfits after ~3 epochs).
stage sft_text "$PY" -m training.sft "$RECIPE/sft.yaml" data="$OUT/data/train" val_data="$OUT/data/valid" model="$OUT/base" \
  out="$OUT/sft_text" max_steps="$SFT_TEXT_STEPS" batch_size="$SFT_BATCH" loss.audio_weight=0
stage sft "$PY" -m training.sft "$RECIPE/sft.yaml" data="$OUT/data/train" val_data="$OUT/data/valid" model="$(checkpoint "$OUT/sft_text" best)" \
  out="$OUT/sft" max_steps="$SFT_STEPS" batch_size="$SFT_BATCH"
# The constant lag leaves GRPO no earlier timing to prefer (every sample starts 2 s in): a
# third phase on the same corpus prepared with each lag drawn in [1, 2] s spreads the sampled
# starts, and GRPO then rewards the early ones that stay correct.
for split in train valid; do
  stage "prepare_spread_$split" "$PY" -m training.prepare "$RECIPE/prepare.yaml" dataset="$OUT/corpus/$split/manifest.jsonl" \
    model="$OUT/base" out="$OUT/data_spread/$split" workers="$WORKERS" alignment.min_delay_s=1.0 alignment.max_delay_s=2.0
done
stage sft_spread "$PY" -m training.sft "$RECIPE/sft.yaml" data="$OUT/data_spread/train" val_data="$OUT/data_spread/valid" \
  model="$(checkpoint "$OUT/sft")" out="$OUT/sft_spread" max_steps="$SPREAD_STEPS" batch_size="$SFT_BATCH"
SFT=$(checkpoint "$OUT/sft_spread")
stage grpo "$PY" -m training.grpo.train "$RECIPE/grpo.yaml" model="$SFT" data="$OUT/data_spread/train" val_data="$OUT/data_spread/valid" \
  out="$OUT/grpo" max_steps="$GRPO_STEPS"
LIMIT=()
[ "$EVAL_LIMIT" -gt 0 ] && LIMIT=(--limit "$EVAL_LIMIT")
for run in sft:"$SFT" grpo:"$OUT/grpo/best"; do
  stage "eval_${run%%:*}" "$PY" -m hibiki.cli eval --model "${run#*:}" --dataset "$OUT/corpus/test/manifest.jsonl" \
    --greedy "${LIMIT[@]}" --out "$OUT/eval/${run%%:*}"
done
"$PY" -m training.demo.report_card "$OUT"

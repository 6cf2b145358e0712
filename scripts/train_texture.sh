#!/usr/bin/env bash
# The texture recipe, end to end, judged and resumable: run it again after any
# interruption and it continues where it stopped; each step whose output exists is
# skipped (docs/training.md, "The texture recipe's fourth start").
#   render the three training trees (scenes versions 4, 5 and 6) and the validation
#   tree, each by the commit that first rendered it; list the annotated validation
#   frames; train training/configs/default_synth_texture.yaml (read after
#   default_synth.yaml: from scratch, 6000 steps; fit --resume once a checkpoint
#   exists); export its best.ckpt (the lowest SILog on the generated validation frames)
#   with the card facts the bundled model carries; then the recipe's judgement:
#   the rule (both models on the 189 sound validation frames, as rendered and with the
#   probe's pattern: the candidate replaces models/mtdepth_default.onnx only if both its
#   mean AbsRel and its mean SILog are lower), the real frames once whatever the rule
#   says (REAL=DIR), and the texture probe. It copies nothing into models/.
# The sharpness recipe is the same chain with RECIPE=training/configs/default_synth_sharp.yaml
# RUN_DIR=runs/default_synth_sharp (the texture recipe plus a random detail gain per class).
# About 110 minutes on two quiet CPU cores (trees 38, training 74), 160 on slower ones
# (2026-12-02: trees 55): start it at a session's first step.
# Environment: PYTHON (default python), RUN_DIR (default runs/default_synth_texture),
# RECIPE (default training/configs/default_synth_texture.yaml, read after CONFIG),
# CONFIG (default training/configs/default_synth.yaml), WORKERS (default 2), NICE
# (default 19), SEED (default: the recipe's seed_everything, 0), DATA_ONLY=1 (stop after
# the data), MINUTES=N (stop training after N minutes, as on a lent GPU machine: the
# checkpoints stay, the next run resumes), OUT
# (default RUN_DIR/mtdepth_default.onnx: the exported model), REPORTS (default
# RUN_DIR/reports), REAL (folders of real KITTI frames, space-separated,
# docs/training.md "Real KITTI frames"; unset: not scored), RECORD (with REAL: the source
# text --record writes into the exported model's card).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
CONFIG=${CONFIG:-training/configs/default_synth.yaml}
RECIPE=${RECIPE:-training/configs/default_synth_texture.yaml}
RUN_DIR=${RUN_DIR:-runs/default_synth_texture}
WORKERS=${WORKERS:-2}
NICE=${NICE:-19}
VAL_TREE=data/synth_kitti_v2_val
[[ $PYTHON == */* ]] && PYTHON=$(realpath -s "$PYTHON")  # it also runs from other folders
source scripts/training_steps.sh  # run, synth_at, validation_lists, fit, judge

# Each tree by the generator that first rendered it (synth_at), at the network's input
# size (KITTI's camera scaled to 640 x 193): a quarter of the pixels of 1242 x 375, and
# training resizes to 192 x 640 anyway. 38 minutes on two quiet cores for the four.
SIZE=(--width 640 --height 193 --format kitti --workers "$WORKERS" --resume)
synth_at '1589a8f^' "$VAL_TREE" --frames 240 --frames-per-drive 12 --seed 1016 "${SIZE[@]}"
synth_at c80369d data/synth_kitti_v7 --frames 4000 --frames-per-drive 20 --seed 20 "${SIZE[@]}"
synth_at 70a5d0c data/synth_kitti_v8 --frames 4000 --frames-per-drive 20 --seed 21 "${SIZE[@]}"
synth_at 28bc182 data/synth_kitti_v9 --frames 4000 --frames-per-drive 20 --seed 22 "${SIZE[@]}"
validation_lists "$VAL_TREE"  # the 190 validation frames and the 189 of the rules

[ "${DATA_ONLY:-0}" = 1 ] && exit 0
# One run from scratch, 6000 steps (74 minutes on two quiet CPU cores); it resumes
# from its own last.ckpt, and a finished run returns at once.
# a second seed of the same recipe: SEED=1 RUN_DIR=runs/default_synth_texture_seed1
seed=()
[ -n "${SEED:-}" ] && seed=(--seed_everything "$SEED")
fit "$RUN_DIR" --config "$CONFIG" --config "$RECIPE" "${seed[@]}"
# Export, the rule, the real frames once (REAL, RECORD) and both probes (training_steps.sh).
judge "$RUN_DIR" "${OUT:-$RUN_DIR/mtdepth_default.onnx}" "${REPORTS:-$RUN_DIR/reports}" "$VAL_TREE"

#!/usr/bin/env bash
# The bundled default model, end to end and resumable: run it again after any
# interruption and it continues where it stopped (docs/training.md).
#   generate the training tree and a separate validation tree (synth --resume),
#   list every annotated validation frame, train stage one, stage two and stage three on
#   the scenes-version-4 tree (fit --resume once a checkpoint exists), then export stage
#   three's best.ckpt (the lowest SILog on the generated validation frames) with the card
#   facts the bundled model carries.
# Environment: PYTHON (default python), RUN_DIR (stage one, default runs/default_synth),
# STAGE2_DIR (default runs/default_synth_stage2), STAGE3_DIR (default runs/default_synth_v7),
# CONFIG (default training/configs/default_synth.yaml), WORKERS (default 2), NICE (default 19),
# DATA_ONLY=1 (stop after the data), MINUTES=N (stop training after N minutes, as on a lent
# GPU machine: the checkpoints stay, the next run resumes), OUT (default
# runs/default_synth_v7/mtdepth_default.onnx: the exported model).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
CONFIG=${CONFIG:-training/configs/default_synth.yaml}
RUN_DIR=${RUN_DIR:-runs/default_synth}
WORKERS=${WORKERS:-2}
NICE=${NICE:-19}
TRAIN_TREE=data/synth_kitti_v2
VAL_TREE=data/synth_kitti_v2_val
STAGE3_TREE=data/synth_kitti_v7
[[ $PYTHON == */* ]] && PYTHON=$(realpath -s "$PYTHON")  # it also runs from other folders
source scripts/training_steps.sh  # run, synth_at, validation_lists, fit

# Each tree by the generator that rendered it for the bundled model (synth_at).
SCENES_1='1589a8f^'  # stage one's and the validation tree (crowns could still reach the road)
SCENES_4=c80369d     # the version-4 streets of stage three

# Rendered at the network's input size (KITTI's camera scaled to 640 x 193): a quarter of
# the pixels of 1242 x 375, and training resizes to 192 x 640 anyway.
SIZE=(--width 640 --height 193)
synth_at "$SCENES_1" "$TRAIN_TREE" --format kitti --frames 2000 \
    --frames-per-drive 20 --seed 16 "${SIZE[@]}" --workers "$WORKERS" --resume
synth_at "$SCENES_1" "$VAL_TREE" --format kitti --frames 240 \
    --frames-per-drive 12 --seed 1016 "${SIZE[@]}" --workers "$WORKERS" --resume
synth_at "$SCENES_4" "$STAGE3_TREE" --format kitti --frames 4000 \
    --frames-per-drive 20 --seed 20 "${SIZE[@]}" --workers "$WORKERS" --resume
validation_lists "$VAL_TREE"  # the 190 validation frames and the 189 of the rules

[ "${DATA_ONLY:-0}" = 1 ] && exit 0
# Three stages: stage one from scratch (4000 steps), stage two from stage one's chosen
# checkpoint with the learning rate restarted (training/configs/default_synth_stage2.yaml),
# stage three from stage two's on the version-4 streets (default_synth_v7.yaml, 3000 steps).
# Each resumes from its own last.ckpt; a finished stage returns at once (fit).
STAGE2_DIR=${STAGE2_DIR:-runs/default_synth_stage2}
fit "$RUN_DIR" --config "$CONFIG"
fit "$STAGE2_DIR" --config "$CONFIG" --config training/configs/default_synth_stage2.yaml \
    --model.init_from "$RUN_DIR/checkpoints/best.ckpt"
STAGE3_DIR=${STAGE3_DIR:-runs/default_synth_v7}
fit "$STAGE3_DIR" --config "$CONFIG" --config training/configs/default_synth_stage2.yaml \
    --config training/configs/default_synth_v7.yaml \
    --model.init_from "$STAGE2_DIR/checkpoints/best.ckpt"
# The card facts the checkpoint does not hold: depth is valid from the coding's near end to
# the simulated LiDAR's farthest return (2-120 m), and the input was resized from KITTI's
# 1242 x 375 frames (rendered at 640 x 193, the same aspect).
run "$PYTHON" -m training export "$STAGE3_DIR/checkpoints/best.ckpt" \
    --out "${OUT:-$STAGE3_DIR/mtdepth_default.onnx}" --valid-range 2 120 --frame-size 1242 375

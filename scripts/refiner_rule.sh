#!/usr/bin/env bash
# The refiner's work, each step skipped where its output exists (docs/training.md, "The
# refiner without the row fallback" and the sections after it):
#
#   scripts/refiner_rule.sh trees
#       render the six generated trees the refiner's rules read (data/synth_kitti_v2_val,
#       _v2_val2, _v2_val3, _v10_val, _v11_val, _v12_val: 240 frames of 12 a street, each
#       by the generator that first rendered it) and the four the refiners learn from
#       (WORK/labels_train, labels_s1, labels_s7, labels_s8: 3000 frames of scenes 9 and
#       1000 of each of scenes 1, 7 and 8). About 3 minutes and 25 minutes on 2 cores.
#
#   scripts/refiner_rule.sh chain NAME BASE.onnx
#       the bundled model's two grafts on BASE (a network trained afresh: a stage, a larger
#       encoder), as the bundled model got them: the layout probe (prepare on
#       WORK/labels_train with BASE's segmentation, train 2000 steps seed 0, graft at mix
#       0.5) and then the refiner (prepare --with-depth on the four training trees with the
#       grafted model, train 2000 steps seed 0, graft at mix 0.5), into WORK/chain/NAME; the
#       candidate is WORK/chain/NAME/mtdepth_default.onnx, for judge. About 45 minutes on 2
#       cores; run it again after an interruption: each file is written under a temporary
#       name and kept only when whole, and the two trainings resume from their last save.
#
#   scripts/refiner_rule.sh judge NAME CANDIDATE.onnx [BASELINE.onnx]
#       the rule: CANDIDATE and BASELINE (default models/mtdepth_default.onnx) on the five
#       rule trees and _v2_val (the 189), each as rendered and with the texture probe's
#       pattern (real-check --textured), CANDIDATE winning a tree only with both means,
#       AbsRel and SILog, lower (python -m training rule); then, once, whatever the trees
#       say, the real frames (REAL="DIR ...", folders of real KITTI frames kept outside the
#       project, docs/training.md "Real KITTI frames"), paired frame by frame
#       (compare-frames). Reports in WORK/rule/NAME_TREE and WORK/real/NAME, BASELINE's
#       under BASE_NAME (default: "base_" and the start of its sha256, so that a report
#       of another model is never read as its): each model is scored once, and a NAME
#       already scored is not scored again.
#
# WORK (default ../scratch, beside the checkout) holds everything; PYTHON (default
# .venv/bin/python of this checkout) and NICE (default 5) as in scripts/training_steps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$PWD/.venv/bin/python}
NICE=${NICE:-5}
WORK=${WORK:-../scratch}
# shellcheck source=scripts/training_steps.sh
source scripts/training_steps.sh

RULE_TREES=(v2_val2 v10_val v11_val v12_val v2_val3 v2_val)

trees() {
    local size=(--width 640 --height 193 --format kitti --workers 2 --resume)
    local validation=(--frames 240 --frames-per-drive 12 "${size[@]}")
    synth_at '1589a8f^' data/synth_kitti_v2_val "${validation[@]}" --seed 1016
    validation_lists data/synth_kitti_v2_val
    local tree name commit seed
    for tree in v2_val2:1589a8f^:2016 v2_val3:1589a8f^:6016 v10_val:1e2e6d8:1016 \
                v11_val:6b0849e:1016 v12_val:eb766cf:1016; do
        IFS=: read -r name commit seed <<< "$tree"
        synth_at "$commit" "data/synth_kitti_$name" "${validation[@]}" --seed "$seed"
        rule_tree_lists "data/synth_kitti_$name"
    done
    local training=(--frames-per-drive 20 "${size[@]}")
    mkdir -p "$WORK"
    run "$PYTHON" -m training synth --out "$WORK/labels_train" --frames 3000 --seed 7301 \
        "${training[@]}"
    local relative
    relative=$(realpath --relative-to="$PWD" "$WORK")
    for tree in s1:1589a8f^:7401 s7:1e2e6d8:7402 s8:6b0849e:7403; do
        IFS=: read -r name commit seed <<< "$tree"
        synth_at "$commit" "$relative/labels_$name" --frames 1000 --seed "$seed" \
            "${training[@]}"
    done
}

scored() {  # scored NAME MODEL TREE: real-check --textured on TREE's sound frames, once
    local out=$WORK/rule/$1_$3 tree=data/synth_kitti_$3
    [ -f "$out/summary.json" ] || run "$PYTHON" -m training real-check --kitti "$tree" \
        --split "$tree/splits/sound_files.txt" --textured --out "$out" --model "$2" > /dev/null
}

judge() {
    local name=$1 candidate=$2 baseline=${3:-models/mtdepth_default.onnx} tree
    local base_name=${BASE_NAME:-base_$(sha256sum "$baseline" | cut -c1-12)}
    for tree in "${RULE_TREES[@]}"; do
        scored "$name" "$candidate" "$tree"
        scored "$base_name" "$baseline" "$tree"
        echo "== $tree: $name against $base_name"
        "$PYTHON" -m training rule "$WORK/rule/${name}_$tree" "$WORK/rule/${base_name}_$tree" \
            --json "$WORK/rule/verdict_${name}_$tree.json" | tail -3
    done
    if [ -z "${REAL:-}" ]; then
        echo 'REAL unset: the real frames not read (REAL="DIR ...")' >&2
        return 0
    fi
    local -a real
    read -r -a real <<< "$REAL"
    local who model
    for who in "$name:$candidate" "$base_name:$baseline"; do
        IFS=: read -r who model <<< "$who"
        [ -f "$WORK/real/$who/summary.json" ] || run "$PYTHON" -m training real-check \
            --frames "${real[@]}" --out "$WORK/real/$who" --model "$model" > /dev/null
    done
    echo "== real: $base_name -> $name"
    "$PYTHON" -m training compare-frames "$WORK/real/$base_name" "$WORK/real/$name"
}

made() {  # made OUT COMMAND...: COMMAND --out a temporary name, renamed OUT when it ends well
    local out=$1
    shift
    [ -f "$out" ] && return 0
    local part="${out%.*}.part.${out##*.}"
    rm -f "$part"
    run "$@" --out "$part"
    mv "$part" "$out"
}

chain() {
    local name=$1 base=$2 out=$WORK/chain/$1 tree
    [ -f "$base" ] || { echo "chain: no model $base" >&2; exit 2; }
    mkdir -p "$out"
    local probe=("$PYTHON" -m training layout-probe)
    made "$out/probe.npz" "${probe[@]}" prepare --tree "$WORK/labels_train" --model "$base"
    run "${probe[@]}" train "$out/probe.npz" --out "$out/probe.pt" --steps 2000 --seed 0 --resume
    made "$out/layout.onnx" "${probe[@]}" graft "$out/probe.pt" --mix 0.5 --model "$base"
    local data=()
    for tree in train s1 s7 s8; do  # trees' four: WORK/labels_TREE
        made "$out/labels_$tree.npz" "${probe[@]}" prepare --tree "$WORK/labels_$tree" \
            --model "$out/layout.onnx" --with-depth
        data+=("$out/labels_$tree.npz")
    done
    run "${probe[@]}" train "${data[@]}" --out "$out/refiner.pt" --steps 2000 --seed 0 --resume
    made "$out/mtdepth_default.onnx" "${probe[@]}" graft "$out/refiner.pt" --mix 0.5 \
        --model "$out/layout.onnx"
    echo "chain $name: $out/mtdepth_default.onnx"
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

case "${1:-}" in
    trees) [ $# -eq 1 ] || usage; trees ;;
    chain) [ $# -eq 3 ] || usage; shift; chain "$@" ;;
    judge) [ $# -ge 3 ] && [ $# -le 4 ] || usage; shift; judge "$@" ;;
    *) usage ;;
esac

#!/usr/bin/env bash
# The cues stage (training/configs/default_synth_cues_stage.yaml, or RECIPE: a stage from
# a bundled model, default_synth_cues_stage2.yaml on the same streets,
# default_synth_avenues_stage.yaml on scenes version 7's), end to end, both
# seeds, judged and resumable: run it again after any interruption and it continues where
# it stopped; each step whose output exists is skipped.
#   render the validation tree and the recipe's training trees (its root, or each root of a
#   mixture's sources: data/synth_kitti_v2, scenes version 1 as train_default.sh renders it;
#   data/synth_kitti_v9, scenes version 6; data/synth_kitti_v10, version
#   7; data/synth_kitti_v11, version 8; data/synth_kitti_v12, version 9), each by the
#   commit of its version; list
#   the annotated validation frames; for seed 0, then seed 1: a stage (the recipe's steps) from
#   the recipe's init_from, a bundled model by its bytes (training_steps.sh bundled_at),
#   which is also the model its rule must beat (fit --resume once a checkpoint exists),
#   its best.ckpt exported and judged (training_steps.sh judge: the two-reading rule on the
#   189, the real frames once with REAL=DIR, both probes); then the recipe's rule: seed 0's
#   model is to be bundled only if both seeds win. A recipe's line "# the rule also reads:
#   data/synth_kitti_v10_val" (a validation tree of scenes version 7, rendered by 1e2e6d8)
#   adds that tree to its rule: each seed must win there too (data/synth_kitti_v11_val:
#   scenes version 8, rendered by 6b0849e; data/synth_kitti_v12_val: version 9, by
#   eb766cf; data/synth_kitti_v2_val2:
#   scenes version 1 again, other streets, rendered by 1589a8f^ with seed 2016), and "# the
#   rule no longer reads: data/synth_kitti_v2_val" drops the 189 from the verdict (they are
#   still scored: every bundled model since the first was chosen on them). A recipe's line
#   "# then averaged with its start: W" also judges, for each seed, its export
#   weight-averaged with the model it started from (python -m training average-weights, W
#   the stage's share) by the same rule, in RUN_DIR_seedN/average_W, and the final verdict
#   is the averages'. A recipe's line "# then the seeds' averages averaged" (with the line
#   before) also judges, after every seed, the mean of the seeds' averages (each seed's
#   export at W / seeds, the start at 1 - W: one average-weights call) in RUN_DIR_soup,
#   a candidate of its own with no seed verdict (docs/training.md, "Both seeds' averages,
#   averaged"); its verdict prints last. It copies nothing into models/.
# About 115 minutes on two quiet CPU cores (trees 11, each stage 45, each judgement 6).
# Environment: PYTHON (default python), RECIPE, RUN_DIR (default runs/ and the recipe's
# name: the seeds' runs are RUN_DIR_seed0 and RUN_DIR_seed1), SEEDS (default "0 1"), WORKERS
# (default 2), NICE (default 19), MINUTES=N (stop each fit after N minutes: the next run
# resumes), REAL (folders of real KITTI frames, space-separated, docs/training.md "Real
# KITTI frames"; unset: not scored), RECORD (with REAL: the source text --record writes into
# the exported models' cards).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
RECIPE=${RECIPE:-training/configs/default_synth_cues_stage.yaml}
RUN_DIR=${RUN_DIR:-runs/$(basename "$RECIPE" .yaml)}
WORKERS=${WORKERS:-2}
NICE=${NICE:-19}
VAL_TREE=data/synth_kitti_v2_val
[[ $PYTHON == */* ]] && PYTHON=$(realpath -s "$PYTHON")  # it also runs from other folders
source scripts/training_steps.sh  # run, synth_at, bundled_at, validation_lists, fit, judge, ...

SIZE=(--width 640 --height 193 --format kitti --workers "$WORKERS" --resume)
VAL_FRAMES=(--frames 240 --frames-per-drive 12)  # every validation tree's
VAL_SHAPE=("${VAL_FRAMES[@]}" --seed 1016)
synth_at '1589a8f^' "$VAL_TREE" "${VAL_SHAPE[@]}" "${SIZE[@]}"
# the recipe's training trees (its data root, or each of a mixture's sources' roots; the
# validation trees it names are rendered below), each by the commit of its scenes' version
roots=$(grep -o 'root: *data/[A-Za-z0-9_]*' "$RECIPE" | sed 's/^root: *//' | grep -v '_val$' \
    | sort -u) || true
[ -n "$roots" ] || { echo "$RECIPE: no training tree (data root) found" >&2; exit 2; }
for root in $roots; do
    shape=(--frames 4000 --frames-per-drive 20 --seed 22)
    case $root in
        data/synth_kitti_v2)  # scenes version 1: the first model's streets, as train_default.sh
            commit='1589a8f^' shape=(--frames 2000 --frames-per-drive 20 --seed 16) ;;
        data/synth_kitti_v9) commit=28bc182 ;;  # scenes version 6
        data/synth_kitti_v10) commit=1e2e6d8 ;;  # scenes version 7: avenues
        data/synth_kitti_v11) commit=6b0849e ;;  # scenes version 8: towns, plaster
        data/synth_kitti_v12) commit=eb766cf ;;  # scenes version 9: framed windows
        *) echo "$RECIPE: no rendering known for its tree '$root'" >&2; exit 2 ;;
    esac
    synth_at "$commit" "$root" "${shape[@]}" "${SIZE[@]}"
done
validation_lists "$VAL_TREE"  # the 190 validation frames and the 189 of the rules
# the further trees the recipe's rule reads, named by its line "# the rule also reads: TREE..."
read -ra more_trees <<< "$(sed -n 's/^# the rule also reads: *//p' "$RECIPE")"
for tree in "${more_trees[@]}"; do
    case $tree in
        data/synth_kitti_v10_val)  # scenes version 7
            synth_at 1e2e6d8 "$tree" "${VAL_SHAPE[@]}" "${SIZE[@]}" ;;
        data/synth_kitti_v11_val)  # scenes version 8
            synth_at 6b0849e "$tree" "${VAL_SHAPE[@]}" "${SIZE[@]}" ;;
        data/synth_kitti_v12_val)  # scenes version 9
            synth_at eb766cf "$tree" "${VAL_SHAPE[@]}" "${SIZE[@]}" ;;
        data/synth_kitti_v2_val2)  # scenes version 1 again, streets no model was chosen on
            synth_at '1589a8f^' "$tree" "${VAL_FRAMES[@]}" --seed 2016 "${SIZE[@]}" ;;
        *) echo "$RECIPE: no rendering known for its rule's tree '$tree'" >&2; exit 2 ;;
    esac
    rule_tree_lists "$tree"
done
bundled_at bb02e63 runs/bundled_version4  # the bundled models a stage may start from
bundled_at c8e1a36 runs/bundled_cues
bundled_at 97a9493 runs/bundled_full_height
bundled_at ff4ff59 runs/bundled_town  # the town stage's average, bundled 2026-12-04
bundled_at 431b2ac runs/bundled_rehearsal_soup  # both full rehearsal seeds' averages, averaged
# the recipe's start is the model its rule must beat
BASELINE=$(sed -n 's/^ *init_from: *//p' "$RECIPE")
[ -f "$BASELINE" ] || { echo "$RECIPE: init_from '$BASELINE' is not a file" >&2; exit 2; }
export BASELINE

# the share of the stage's weights in an average with its start, if the recipe names one
average=$(sed -n 's/^# then averaged with its start: *//p' "$RECIPE")
grep -q "^# then the seeds' averages averaged\$" "$RECIPE" && soup=1 || soup=0
if [ "$soup" = 1 ] && [ -z "$average" ]; then
    echo "$RECIPE: the seeds' averages averaged needs '# then averaged with its start: W'" >&2
    exit 2
fi

read -ra seeds <<< "${SEEDS:-0 1}"
for seed in "${seeds[@]}"; do
    dir=${RUN_DIR}_seed$seed
    fit "$dir" --config training/configs/default_synth.yaml --config "$RECIPE" \
        --seed_everything "$seed"
    # the bundled model's side of the rule is the same for every seed: scored once per tree
    bundled_side "${RUN_DIR}_seed${seeds[0]}/reports" "$dir/reports"
    judge "$dir" "$dir/mtdepth_default.onnx" "$dir/reports" "$VAL_TREE" "${more_trees[@]}"
    [ -n "$average" ] || continue
    # the export weight-averaged with its start, judged the same way (the start's side of
    # the rule is the stage's, copied)
    averaged=$dir/average_$average
    [ -f "$averaged/mtdepth_default.onnx" ] || run "$PYTHON" -m training average-weights \
        "$dir/mtdepth_default.onnx" "$BASELINE" --weight "$average" \
        --out "$averaged/mtdepth_default.onnx"
    bundled_side "$dir/reports" "$averaged/reports"
    judge "$dir" "$averaged/mtdepth_default.onnx" "$averaged/reports" "$VAL_TREE" \
        "${more_trees[@]}"
done
# "# the rule no longer reads: data/synth_kitti_v2_val": the 189 are still scored, not judged
grep -q "^# the rule no longer reads: $VAL_TREE\$" "$RECIPE" && first_tree=0 || first_tree=1
verdicts() {  # verdicts REPORTS_SUBDIR: every seed's rule files, every tree
    local seed tree
    for seed in "${seeds[@]}"; do
        [ "$first_tree" = 1 ] && echo "${RUN_DIR}_seed$seed/$1/rule.json"
        for tree in "${more_trees[@]}"; do
            echo "${RUN_DIR}_seed$seed/$1/rule_${tree##*/}.json"
        done
    done
}
mapfile -t stage < <(verdicts reports)
if [ "${#seeds[@]}" -lt 2 ]; then  # rule --seeds counts files, here seeds x trees
    echo "SEEDS='${seeds[*]}': the rule asks for two seeds; no verdict" >&2
    exit 0
fi
if [ -z "$average" ]; then
    "$PYTHON" -m training rule --seeds "${stage[@]}"  # every seed must win on every tree
    exit
fi
echo "the stage itself:"
"$PYTHON" -m training rule --seeds "${stage[@]}" || true
echo "the stage averaged with its start ($average of the stage):"
mapfile -t averaged < <(verdicts "average_$average/reports")
[ "$soup" = 1 ] || { "$PYTHON" -m training rule --seeds "${averaged[@]}"; exit; }
"$PYTHON" -m training rule --seeds "${averaged[@]}" || true
# the seeds' averages averaged: each seed's export at average / seeds, the start at the rest
soup_dir=${RUN_DIR}_soup
if [ ! -f "$soup_dir/mtdepth_default.onnx" ]; then
    exports=() shares=()
    for seed in "${seeds[@]}"; do
        exports+=("${RUN_DIR}_seed$seed/mtdepth_default.onnx")
        shares+=("$("$PYTHON" -c "print($average / ${#seeds[@]})")")
    done
    run "$PYTHON" -m training average-weights "${exports[@]}" "$BASELINE" \
        --weights "${shares[@]}" "$("$PYTHON" -c "print(1 - $average)")" \
        --out "$soup_dir/mtdepth_default.onnx"
fi
bundled_side "${RUN_DIR}_seed${seeds[0]}/reports" "$soup_dir/reports"
judge "$soup_dir" "$soup_dir/mtdepth_default.onnx" "$soup_dir/reports" "$VAL_TREE" \
    "${more_trees[@]}"
echo "the seeds' averages averaged (each seed's export at $average / ${#seeds[@]}):"
souped=()
[ "$first_tree" = 1 ] && souped+=("$soup_dir/reports/rule.json")
for tree in "${more_trees[@]}"; do souped+=("$soup_dir/reports/rule_${tree##*/}.json"); done
"$PYTHON" -m training rule --trees "${souped[@]}"

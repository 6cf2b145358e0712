# The steps the training scripts share, sourced by scripts/train_*.sh after cd to the
# project root, with PYTHON and NICE set (MINUTES optional).
#
# run COMMAND...: print it, then run it at NICE.
#
# synth_at COMMIT OUT ARGUMENTS...: python -m training synth --out OUT ARGUMENTS, by the
# generator of COMMIT. Each tree is rendered by the generator that first rendered it:
# today's draws other scenes, and figures on another validation tree do not compare
# (docs/training.md, "The machine lost"). In a git checkout each commit's generator runs
# from a temporary worktree (every frame is seeded on its own: the same bytes each time);
# elsewhere today's generator renders the tree, with a warning.
#
# rule_tree_lists TREE: a further tree a rule reads, with no broken frame known: its
# splits/all_files.txt (its train and val lists) and splits/sound_files.txt, the same frames.
#
# validation_lists VAL_TREE: write its splits/all_files.txt, the 190 annotated frames of
# 19 validation streets (the tree's own train and val lists; its test list holds one
# street's frames, two of them unannotated), and splits/sound_files.txt, the 189 the
# rules are read on (line 151, drive 16 frame 1, has its camera in a tree crown).
#
# fit RUN_DIR ARGUMENTS...: python -m training fit ARGUMENTS into RUN_DIR, resumed from its
# last.ckpt when there is one (a run already at its max_steps returns at once,
# training/cli.py); with MINUTES=N it is stopped after N minutes (SIGINT: Lightning stops
# between steps, at most one checkpoint interval of 100 steps is redone) and the script
# exits, to be run again to resume.
#
# bundled_at COMMIT DIR: write DIR/mtdepth_default.onnx, the model bundled at COMMIT, from
# git: the start of a recipe written as a stage from a bundled model, which names it by
# these bytes whatever models/ holds later (runs/bundled_version4: bb02e63, the version-4
# stage, bundled 2026-11-30 to 2026-12-03; runs/bundled_cues: c8e1a36, the cues stage,
# bundled 2026-12-03). Outside a git checkout, with a warning, models/'s copy.
#
# bundled_side FROM TO: copy the rule's bundled side (FROM/rule_bundled*, scored
# reports) to TO where TO lacks it: the model a stage must beat is the same for every seed
# and for a stage's average, so it is scored once per tree.
#
# judge RUN_DIR OUT REPORTS VAL_TREE [RULE_TREE...]: a recipe's judgement of RUN_DIR's
# best.ckpt, each step skipped when its output exists (the reports are kept for the
# notes). Export it to OUT with the card facts the checkpoint does not hold (depth valid
# 2-120 m: the coding's near end to the simulated LiDAR's farthest return; the input
# resized from KITTI's 1242 x 375 frames, rendered at 640 x 193, the same aspect); the
# rule: OUT and the model it must beat (BASELINE, default models/mtdepth_default.onnx:
# the recipe's rule names it) on the 189 sound frames of VAL_TREE, as rendered and with
# the probe's pattern (REPORTS/rule_candidate, rule_bundled), OUT winning only with both
# means (AbsRel and SILog) lower (python -m training rule), printed and written to
# REPORTS/rule.json; the same on each RULE_TREE's sound frames (REPORTS/rule_candidate_NAME,
# rule_bundled_NAME, rule_NAME.json, NAME the tree's folder name); the real frames once
# whatever the rule says (REAL="DIR [DIR...]": folders of real KITTI frames, docs/training.md,
# scored as one set per layout; RECORD=TEXT writes them into OUT's card), and the model it
# must beat on the same frames (once, in REPORTS/real_bundled), the two paired frame by frame
# (python -m training compare-frames: the difference, its bootstrap interval, a sign test;
# REPORTS/real_compare.json), which says whether the frames tell the two apart at all; the
# texture and sharpen probes (REPORTS/probe.json, probe_sharpen.json).
run() { echo "+ $*" >&2; nice -n "$NICE" "$@"; }

synth_at() {
    local commit=$1 out=$PWD/$2 tree status=0
    shift 2
    if ! git rev-parse -q --verify "$commit^{commit}" > /dev/null 2>&1; then
        echo "warning: no commit $commit here: today's generator renders $out" >&2
        run "$PYTHON" -m training synth --out "$out" "$@"
        return
    fi
    git worktree prune
    tree=$(mktemp -d)
    git worktree add -q --detach "$tree" "$commit"
    (cd "$tree" && PYTHONPATH="$tree" run "$PYTHON" -m training synth --out "$out" "$@") \
        || status=$?
    git worktree remove --force "$tree"
    return "$status"
}

bundled_at() {
    local commit=$1 out=$2/mtdepth_default.onnx
    [ -f "$out" ] && return
    mkdir -p "$2"
    if git rev-parse -q --verify "$commit^{commit}" > /dev/null 2>&1; then
        git show "$commit:models/mtdepth_default.onnx" > "$out.part"
    else
        echo "warning: no commit $commit here: $out is a copy of models/" >&2
        cp models/mtdepth_default.onnx "$out.part"
    fi
    mv "$out.part" "$out"
}

rule_tree_lists() {
    local splits=$1/splits
    cat "$splits/train_files.txt" "$splits/val_files.txt" > "$splits/all_files.txt"
    cp "$splits/all_files.txt" "$splits/sound_files.txt"
}

validation_lists() {
    rule_tree_lists "$1"
    sed -i '151d' "$1/splits/sound_files.txt"
}

fit() {
    local dir=$1 bound=() resume=() status=0
    shift
    [ -n "${MINUTES:-}" ] && bound=(timeout --signal=INT --kill-after=120 "${MINUTES}m")
    [ -f "$dir/checkpoints/last.ckpt" ] && resume=(--resume)
    "${bound[@]}" nice -n "$NICE" "$PYTHON" -m training fit "$@" \
        --trainer.default_root_dir "$dir" "${resume[@]}" || status=$?
    echo "checkpoints: $dir/checkpoints (last.ckpt, best.ckpt)" >&2
    if [ "$status" != 0 ]; then  # 124: MINUTES ran out
        echo "training stopped (status $status); run this script again to resume" >&2
        exit "$status"
    fi
}

bundled_side() {
    local first
    for first in "$1"/rule_bundled*; do
        if [ -f "$first/summary.json" ] && [ ! -e "$2/${first##*/}" ]; then
            mkdir -p "$2" && cp -r "$first" "$2/"
        fi
    done
}

real_compare() {  # real_compare REPORTS DIR...: judge's pairing of REPORTS/real with the start's
    local reports=$1
    shift
    [ -f "$reports/real_compare.json" ] && return
    [ -f "$reports/real_bundled/summary.json" ] || run "$PYTHON" -m training real-check \
        --frames "$@" --out "$reports/real_bundled" \
        --model "${BASELINE:-models/mtdepth_default.onnx}"
    "$PYTHON" -m training compare-frames "$reports/real_bundled" "$reports/real" \
        --json "$reports/real_compare.json"
}

rule_on() {  # rule_on OUT REPORTS TREE SUFFIX: judge's two-reading rule on TREE
    local out=$1 reports=$2 tree=$3 suffix=$4 who model
    for who in candidate bundled; do
        model=$out
        [ "$who" = bundled ] && model=${BASELINE:-models/mtdepth_default.onnx}
        [ -f "$reports/rule_$who$suffix/summary.json" ] || run "$PYTHON" -m training real-check \
            --kitti "$tree" --split "$tree/splits/sound_files.txt" --textured \
            --out "$reports/rule_$who$suffix" --model "$model"
    done
    "$PYTHON" -m training rule "$reports/rule_candidate$suffix" "$reports/rule_bundled$suffix" \
        --json "$reports/rule$suffix.json"
}

judge() {
    local dir=$1 out=$2 reports=$3 val_tree=$4 tree change json record=() real
    local sound=(--kitti "$val_tree" --split "$val_tree/splits/sound_files.txt")
    shift 4
    read -ra real <<< "${REAL:-}"
    [ -f "$out" ] || run "$PYTHON" -m training export "$dir/checkpoints/best.ckpt" \
        --out "$out" --valid-range 2 120 --frame-size 1242 375
    rule_on "$out" "$reports" "$val_tree" ""
    for tree in "$@"; do rule_on "$out" "$reports" "$tree" "_$(basename "$tree")"; done
    if [ -n "${REAL:-}" ] && [ ! -f "$reports/real/summary.json" ]; then
        [ -n "${RECORD:-}" ] && record=(--record "$RECORD")
        run "$PYTHON" -m training real-check --frames "${real[@]}" --kitti "$val_tree" \
            --split "$val_tree/splits/all_files.txt" --out "$reports/real" --model "$out" \
            "${record[@]}"
    fi
    [ -z "${REAL:-}" ] || real_compare "$reports" "${real[@]}"
    for change in texture sharpen; do  # probe.json: texture (as before), probe_sharpen.json
        json=$reports/probe.json
        [ "$change" = sharpen ] && json=$reports/probe_sharpen.json
        [ -f "$json" ] || run "$PYTHON" -m training texture-probe "${sound[@]}" \
            --every 6 --change "$change" --model "$out" --json "$json"
    done
}

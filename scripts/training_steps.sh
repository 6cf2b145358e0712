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

validation_lists() {
    local splits=$1/splits
    cat "$splits/train_files.txt" "$splits/val_files.txt" > "$splits/all_files.txt"
    sed '151d' "$splits/all_files.txt" > "$splits/sound_files.txt"
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

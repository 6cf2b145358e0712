# Sourced by scripts/train_*.sh (after cd to the project root; PYTHON and NICE set).
# run COMMAND...: print it, then run it at NICE.
# synth_at COMMIT OUT ARGUMENTS...: python -m training synth --out OUT ARGUMENTS, by the
# generator of COMMIT. Each tree is rendered by the generator that first rendered it:
# today's draws other scenes, and figures on another validation tree do not compare
# (docs/training.md, "The machine lost"). In a git checkout each commit's generator runs
# from a temporary worktree (every frame is seeded on its own: the same bytes each time);
# elsewhere today's generator renders the tree, with a warning.
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

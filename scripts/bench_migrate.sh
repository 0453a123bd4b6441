#!/usr/bin/env bash
# `dvlite migrate --force` of a DVC repository tracking TREE, beside `dvlite add` of the same tree.
#
#   scripts/bench_migrate.sh TREE [ROUNDS]     # e.g. the bench's tree: WORKDIR/data/tree/tree
#
# Needs .venv (scripts/test.sh makes it) and .venv-dvc (scripts/install-dvc.sh). Each round makes
# a fresh DVC repository (`dvc add TREE`) and a fresh dvlite one under $TMPDIR, syncs, and times
# the two commands. Figures: docs/migrating-from-dvc.md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREE=$(cd "${1:?usage: bench_migrate.sh TREE [ROUNDS]}" && pwd)
ROUNDS=${2:-3}
DVC=$ROOT/.venv-dvc/bin/dvc
DVL=("$ROOT/.venv/bin/python" -m dvlite)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dvlite-bench-migrate.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost

timed() {  # seconds the command took
    local start end
    start=$(date +%s.%N); "$@" >/dev/null; end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.2f}')"
}

for r in $(seq "$ROUNDS"); do
    dvc_repo=$WORK/dvc$r add_repo=$WORK/add$r
    mkdir -p "$dvc_repo" "$add_repo"
    (cd "$dvc_repo" && git init -q && "$DVC" init -q && cp -a "$TREE" data \
        && "$DVC" add -q data && git add -A && git commit -qm dvc)
    (cd "$add_repo" && git init -q && "${DVL[@]}" init -q && cp -a "$TREE" data)
    sync
    add_s=$(cd "$add_repo" && timed "${DVL[@]}" add data)
    sync
    migrate_s=$(cd "$dvc_repo" && timed "${DVL[@]}" migrate --force)
    echo "round $r: dvlite add ${add_s} s, dvlite migrate --force ${migrate_s} s," \
         "ratio $(python3 -c "print(f'{$migrate_s / $add_s:.2f}')")x"
done

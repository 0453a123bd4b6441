#!/usr/bin/env bash
# A narrated end-to-end dvlite session in a throwaway git repository.
#
#   scripts/demo.sh
#
# Creates .venv/ (with python3, or $PYTHON) if it is missing and installs dvlite into it,
# then versions a small dataset and a model with git + dvlite: add, commit, change, status,
# add again, diff, go back to the first commit, come back, gc (dry run) and fsck. Then it
# shares the data: push to a remote in a directory, clone the repository as a colleague
# would, pull, and check the bytes of both versions with sha256sum.
# Everything happens in a temporary directory that is deleted at the end.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv

die() { echo "demo.sh: error: $*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }
# Print a command the way a user would type it (quoted where needed), then run it.
quote() {
    local a out=()
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=~@%+-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
    done
    printf '%s' "${out[*]}"
}
run() { printf '$ %s\n' "$(quote "$@")"; "$@"; }
# The same for a small shell pipeline given as one string.
run_sh() { printf '$ %s\n' "$1"; eval "$1"; }

command -v git >/dev/null || die "git is not installed; on Debian: apt-get install git"

# --- dvlite in .venv -------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
    "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null \
        || die "$PYTHON cannot create virtualenvs; on Debian: apt-get install python3-venv"
    step "creating $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import dvlite' 2>/dev/null || [[ ! -x $VENV/bin/dvlite ]]; then
    step "installing dvlite into .venv (pip install -e .)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install --quiet -e "$ROOT"
fi
export PATH="$VENV/bin:$PATH"

# --- a scratch repository --------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/dvlite-demo.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/project"
cd "$WORK/project"
# Keep the user's global git settings (signing, hooks, templates) out of the demo.
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export COLUMNS=${COLUMNS:-100}

# sha256 of every file under data/ plus model.bin, in a stable order.
fingerprint() {
    find data model.bin -type f ! -name '*.tmp' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
}

step "$(dvlite --version) in a scratch git repository: $WORK/project"

step "Create a git repository and initialise dvlite in it"
run git init -q -b main
run git config user.name "dvlite demo"
run git config user.email "demo@example.invalid"
run dvlite init

step "Generate a small dataset (CSV files in nested folders) and a 1 MiB model"
cat > "$WORK/gen.py" <<'PY'
import os, random, sys

def write(path, text):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="\n") as f:
        f.write(text)

def csv(seed, rows):
    rng = random.Random(seed)
    return "id,x,y,label\n" + "".join(
        f"{i},{rng.uniform(-1, 1):.6f},{rng.uniform(-1, 1):.6f},{rng.choice('abc')}\n"
        for i in range(rows)
    )

version = sys.argv[1]
if version == "v1":
    write("data/train/part-000.csv", csv(1, 200))
    write("data/train/part-001.csv", csv(2, 200))
    write("data/val/part-000.csv", csv(3, 50))
    write("data/meta/labels.csv", "label,name\na,alpha\nb,beta\nc,gamma\n")
    seed = 42
else:  # v2: modify one CSV, add one, delete one, retrain the model
    write("data/train/part-001.csv", csv(2, 225))  # the same 200 rows plus 25 more
    write("data/train/part-002.csv", csv(4, 200))
    os.remove("data/val/part-000.csv")
    os.rmdir("data/val")
    seed = 43
with open("model.bin", "wb") as f:
    f.write(random.Random(seed).randbytes(1 << 20))
PY
run python ../gen.py v1
run_sh "find data -type f | sort"
run_sh "wc -c model.bin"

step "Track the data with dvlite: it goes to the cache, small .dvl pointers stay for git"
run dvlite add data model.bin
run cat data.dvl
run cat .gitignore

step "Commit the pointers (not the data) to git"
run git add .dvlite/config .dvlite/.gitignore data.dvl model.bin.dvl .gitignore
run git commit -q -m "v1: data and model"
FIRST=$(git rev-parse HEAD)
echo "first commit: $FIRST"
run dvlite status

step "Fingerprint version 1 with sha256sum (an independent check for later)"
V1_SUMS=$(fingerprint)
echo "$V1_SUMS"

step "Change the data: modify one CSV, add one, delete one, retrain the model"
run python ../gen.py v2
run dvlite status

step "Record the new version"
run dvlite add data model.bin
run git add data.dvl model.bin.dvl
run git commit -q -m "v2: more training data, new model"
run git log --oneline
run dvlite status
V2_SUMS=$(fingerprint)

step "What changed between the two commits?"
run dvlite diff HEAD~1 HEAD
echo "(and inside the tables: part-001.csv kept its 200 rows, by key, and gained 25)"
run dvlite diff HEAD~1 HEAD --table --key id --targets data/train/part-001.csv

step "Scratch files inside tracked data: .dvliteignore (gitignore syntax), and what the data weighs"
run_sh "echo '*.tmp' > .dvliteignore && echo scratch > data/notes.tmp"
run dvlite check-ignore --details data/notes.tmp
run dvlite status
run dvlite du -d 1

step "Go back in time: git checkout the first commit, then dvlite checkout"
run git checkout -q "$FIRST"
run dvlite checkout
run dvlite status
echo "sha256 now, compared with the fingerprint of version 1:"
NOW_SUMS=$(fingerprint)
echo "$NOW_SUMS"
if [[ $NOW_SUMS == "$V1_SUMS" ]]; then
    echo "OK: every file is byte-for-byte version 1 again"
else
    diff <(echo "$V1_SUMS") <(echo "$NOW_SUMS") || true
    die "the workspace does not match version 1"
fi

step "Back to main"
run git checkout -q main
run dvlite checkout
run dvlite status
[[ $(fingerprint) == "$V2_SUMS" ]] || die "the workspace does not match version 2"
echo "(the ignored scratch file survived both checkouts: $(cat data/notes.tmp))"
echo "OK: every file is byte-for-byte version 2 again"

step "Cache upkeep: what could gc free? (dry run: only the workspace's pointers are kept)"
run dvlite gc
echo "(with --all-commits, gc also keeps what older commits need:)"
run dvlite gc --all-commits

step "Verify every object in the cache"
run dvlite fsck

step "Share the data: add a remote (here a directory) and commit its URL so clones know it"
run dvlite remote add -d storage "$WORK/remote"
run git add .dvlite/config
run git commit -q -m "Add a dvlite remote"
run dvlite status --cloud
echo "(push sends what the current pointers need: version 2)"
run dvlite push
echo "(--all-commits also sends every earlier commit's data, so clones can go back in time)"
run dvlite push --all-commits
run dvlite status --cloud
run_sh "find '$WORK/remote' -type f | LC_ALL=C sort | head -n 4"
run cat "$WORK/remote/dvlite-remote.json"

step "A colleague clones the git repository: pointers only, no data yet"
run git clone -q "$WORK/project" "$WORK/colleague"
run cd "$WORK/colleague"
run dvlite status
run dvlite pull
echo "sha256 in the colleague's clone, compared with version 2 in the original:"
CLONE_SUMS=$(fingerprint)
echo "$CLONE_SUMS"
if [[ $CLONE_SUMS == "$V2_SUMS" ]]; then
    echo "OK: the colleague has version 2, byte for byte"
else
    diff <(echo "$V2_SUMS") <(echo "$CLONE_SUMS") || true
    die "the clone does not match version 2"
fi
echo "(a second pull has nothing to do, and says so in one line)"
run dvlite pull

step "The colleague goes back to the first commit and pulls its data"
run git checkout -q "$FIRST"
echo "(that commit predates the remote, so its .dvlite/config does not name it;"
echo " the colleague names it in the untracked .dvlite/config.local, which every commit sees)"
run dvlite remote add --local storage "$WORK/remote"
run dvlite pull
echo "sha256 in the colleague's clone, compared with the fingerprint of version 1:"
CLONE_SUMS=$(fingerprint)
echo "$CLONE_SUMS"
if [[ $CLONE_SUMS == "$V1_SUMS" ]]; then
    echo "OK: the colleague has version 1, byte for byte"
else
    diff <(echo "$V1_SUMS") <(echo "$CLONE_SUMS") || true
    die "the clone does not match version 1"
fi

step "A big file changes in the middle: only the changed chunks travel"
run cd "$WORK/project"
echo "(files of 64 MiB and more go to a remote as content-defined chunks plus a chunk list)"
echo "(95 MiB of seeded random bytes, so that every run of the demo sends the same)"
run_sh "\"\$VENV/bin/python\" -c 'import random, sys; sys.stdout.buffer.write(random.Random(1).randbytes(100_000_000))' > weights.bin"
run dvlite add -q weights.bin
run dvlite push
run_sh "\"\$VENV/bin/python\" -c 'import random, sys; sys.stdout.buffer.write(random.Random(2).randbytes(1 << 20))' | dd of=weights.bin bs=1M seek=40 conv=notrunc status=none"
run dvlite add -q weights.bin
SENT=$(dvlite push --json | "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["uploaded_bytes"])')
echo "\$ dvlite push --json   # uploaded_bytes: $SENT of 100000000"
(( SENT < 16000000 )) || die "a 1 MiB change sent $SENT bytes"
echo "OK: 1 MiB changed in 95 MiB, $((SENT / 1024)) KiB sent"

step "Pipelines: a stage in dvlite.yaml, dvlite repro, the run cache and lineage"
mkdir -p "$WORK/pipeline" && cd "$WORK/pipeline"
run git init -q -b main
run git config user.name "dvlite demo"
run git config user.email "demo@example.invalid"
run dvlite init
cat > train.py <<'PY'
import json, sys, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
rows = open("data.csv").read().splitlines()[1:]
json.dump({"rows": len(rows), "score": round(len(rows) * lr, 3)}, open("metrics.json", "w"))
open("model.bin", "w").write(f"model trained on {len(rows)} rows with lr={lr}\n")
PY
printf 'x,y\n1,2\n3,4\n5,6\n' > data.csv
printf 'train:\n  lr: 0.1\n' > params.yaml
cat > dvlite.yaml <<'YAML'
stages:
  train:
    cmd: python train.py
    deps: [train.py, data.csv]
    params: [train.lr]
    outs: [model.bin]
    metrics: [{metrics.json: {cache: false}}]
checks:                      # a data contract, run by repro before train reads data.csv
  data.csv:
    version: 1
    columns: {x: {type: integer, not_null: true}, y: integer}
    rows: {min: 3}
gates:                       # metric gates, run by repro after train and by `metrics check`
  metrics.json:
    rows: ">= 3"
    score: ">= previous * 0.5"
YAML
run cat dvlite.yaml
run dvlite repro
run git add -A
run git commit -q -m "pipeline, lr 0.1"
run dvlite repro
echo "(nothing changed: nothing runs)"
run_sh "sed -i 's/0.1/0.2/' params.yaml"
run dvlite status
run dvlite repro
run dvlite params diff
run_sh "sed -i 's/0.2/0.1/' params.yaml"
run dvlite repro
echo "(back to lr 0.1: the run cache restores that model without running train.py)"
run dvlite lineage model.bin
run dvlite metrics check

step "Experiments: a sweep over lr, queued and run 2 at a time, without touching the workspace"
run dvlite exp run --queue -S train.lr=0.05,0.2,0.4
run dvlite queue start -j 2
run dvlite exp show --only-changed --sort-by score --sort-order desc

step "The model registry: versions and stages are git tags (GTO's names)"
run dvlite model register demo-model --path model.bin --version v1.0.0 --stage prod
run dvlite model ls
run dvlite model get demo-model#prod -o prod-model.bin
run cat prod-model.bin

step "Done; removing $WORK"

"""A small ML-like project for the experiment tests: tracked data, params, one training stage that
writes a model (cached), metrics (in git) and plots (one in git, one cached)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import GIT_ENV, git, run, write_tree

TRAIN = r'''
import json, os, sys, time
import yaml
p = yaml.safe_load(open("params.yaml"))["train"]
if p["kernel"] == "fail":
    print("training failed on purpose", flush=True)
    sys.exit(3)
print(f"training with C={p['C']} kernel={p['kernel']}", flush=True)
time.sleep(float(p.get("sleep", 0)))
rows = open("data/raw.csv").read().splitlines()[1:]
acc = round(0.5 + 0.04 * float(p["C"]) + (0.1 if p["kernel"] == "linear" else 0) + 0.001 * len(rows), 6)
os.makedirs("logs", exist_ok=True); os.makedirs("eval", exist_ok=True)
json.dump({"acc": acc, "loss": round(1 - acc, 6)}, open("metrics.json", "w"))
open("model.bin", "wb").write(f"model C={p['C']} kernel={p['kernel']}\n".encode() * 100)
with open("logs/train.csv", "w") as f:
    f.write("step,loss,val_loss\n")
    for i in range(8):
        f.write(f"{i},{round(1 / (i + 1) / (1 + float(p['C'])), 5)},{round(1.2 / (i + 1), 5)}\n")
json.dump([{"fpr": i / 4, "tpr": min(1.0, (i / 4) ** (1 / (1 + float(p["C"]))))} for i in range(5)],
          open("eval/roc.json", "w"))
'''

PIPELINE = f"""stages:
  train:
    cmd: {sys.executable} train.py
    deps: [train.py, data]
    params: [train]
    outs: [model.bin]
    metrics: [{{metrics.json: {{cache: false}}}}]
    plots:
      - logs/train.csv: {{cache: false, y: [loss, val_loss], title: Loss}}
      - eval/roc.json: {{x: fpr, y: tpr, template: scatter}}
"""

PARAMS = "# training parameters\ntrain:\n  C: 1.0   # regularisation\n  kernel: rbf\n  sleep: 0\n"


def make_project(root: Path, sleep: float = 0) -> Path:
    """A git repository with dvlite, tracked data and the pipeline run and committed."""
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    write_tree(root, {
        "train.py": TRAIN.encode(),
        "dvlite.yaml": PIPELINE.encode(),
        "params.yaml": PARAMS.replace("sleep: 0", f"sleep: {sleep}").encode(),
        "data/raw.csv": b"x,y\n1,2\n3,4\n5,6\n",
    })
    run(root, "add", "data")
    run(root, "repro")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base pipeline")
    return root


def exp_refs(root: Path) -> dict[str, str]:
    """name -> commit of every experiment ref."""
    out = git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps/")
    return {line.split()[0].rsplit("/", 1)[1]: line.split()[1] for line in out.splitlines()}


def show_json(root: Path, *args) -> list[dict]:
    return json.loads(run(root, "exp", "show", "--json", *args).stdout)


def rows_by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def workspace_state(root: Path) -> dict[str, str]:
    """What a user would notice changing: the files outside .git/.dvlite, HEAD, the index."""
    import hashlib

    files = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if rel.startswith((".git/", ".dvlite/", "dvlite_plots/")) or not p.is_file():
            continue
        files[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    files["<HEAD>"] = git(root, "rev-parse", "HEAD").strip()
    files["<branch>"] = git(root, "symbolic-ref", "HEAD").strip()
    files["<index>"] = git(root, "ls-files", "-s")
    files["<status>"] = git(root, "status", "--porcelain")
    return files


def popen(cwd: Path, *args: str, **kwargs) -> subprocess.Popen:
    """`dvlite ARGS` started in the background (its own process group)."""
    return subprocess.Popen([sys.executable, "-m", "dvlite", *args], cwd=cwd,
                            env={**os.environ, **GIT_ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)

"""Reproducing a past experiment: a real 3-stage pipeline, real git, the CLI in a subprocess,
a local-directory remote and a fresh clone."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import xxhash
import yaml
from conftest import git, run, write_tree

PY = sys.executable

PREPARE = b'''import os, random, sys
import yaml
p = yaml.safe_load(open("params.yaml"))["prepare"]
rows = open(os.path.join(sys.argv[1], "points.csv")).read().split()
random.Random(p["seed"]).shuffle(rows)
n = int(len(rows) * p["split"])
os.makedirs(sys.argv[2], exist_ok=True)
open(os.path.join(sys.argv[2], "train.csv"), "w").write("\\n".join(rows[:n]) + "\\n")
open(os.path.join(sys.argv[2], "test.csv"), "w").write("\\n".join(rows[n:]) + "\\n")
print("prepared", n, "rows")
'''

TRAIN = b'''import json, os, sys
import yaml
alpha = yaml.safe_load(open("params.yaml"))["train"]["alpha"]
pts = [tuple(map(float, r.split(","))) for r in open(os.path.join(sys.argv[1], "train.csv")).read().split()]
mx = sum(x for x, _ in pts) / len(pts)
my = sum(y for _, y in pts) / len(pts)
slope = sum((x - mx) * (y - my) for x, y in pts) / (sum((x - mx) ** 2 for x, _ in pts) + alpha)
open(sys.argv[2], "w").write(json.dumps({"slope": round(slope, 9), "intercept": round(my - slope * mx, 9)}))
print("trained with alpha", alpha)
'''

EVALUATE = b'''import json, os, sys
m = json.load(open(sys.argv[1]))
pts = [tuple(map(float, r.split(","))) for r in open(os.path.join(sys.argv[2], "test.csv")).read().split()]
mse = sum((y - m["slope"] * x - m["intercept"]) ** 2 for x, y in pts) / len(pts)
os.makedirs("eval", exist_ok=True)
json.dump({"mse": round(mse, 9), "rows": len(pts)}, open("eval/metrics.json", "w"))
'''

PIPELINE = f"""stages:
  prepare:
    cmd: {PY} src/prepare.py data/raw data/prepared
    deps: [src/prepare.py, data/raw]
    params: [prepare.split, prepare.seed]
    outs: [data/prepared]
  train:
    cmd: {PY} src/train.py data/prepared model.pkl
    deps: [src/train.py, data/prepared]
    params: [train]
    outs: [model.pkl]
  evaluate:
    cmd: {PY} src/evaluate.py model.pkl data/prepared
    deps: [src/evaluate.py, model.pkl, data/prepared]
    metrics: [{{eval/metrics.json: {{cache: false}}}}]
"""


def points(seed: int, n: int = 60) -> bytes:
    rnd = random.Random(seed)
    return "".join(f"{x},{3 * x + rnd.gauss(0, 2):.6f}\n" for x in range(n)).encode()


def params(alpha: float) -> bytes:
    return f"prepare:\n  split: 0.75\n  seed: 7\ntrain:\n  alpha: {alpha}\n".encode()


def xxh(path: Path) -> str:
    return xxhash.xxh3_128_hexdigest(path.read_bytes())


def lock_at(root: Path, rev: str) -> dict:
    return yaml.safe_load(git(root, "show", f"{rev}:dvlite.lock"))


def out_of(lock: dict, stage: str, path: str) -> dict:
    return next(o for o in lock["stages"][stage]["outs"] if o["path"] == path)


def commit(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


class History:
    """Three commits of a real experiment: baseline, a param change, a data change (pushed)."""

    def __init__(self, repo: Path, tmp_path: Path):
        run(repo, "remote", "add", "-d", "origin", str(tmp_path / "store"))
        write_tree(repo, {
            "src/prepare.py": PREPARE, "src/train.py": TRAIN, "src/evaluate.py": EVALUATE,
            "data/raw/points.csv": points(1), "params.yaml": params(0.5), "dvlite.yaml": PIPELINE.encode(),
        })
        run(repo, "add", "data/raw")
        self.first = run(repo, "repro").stdout
        self.c1 = commit(repo, "baseline")
        self.raw1 = yaml.safe_load((repo / "data/raw.dvl").read_bytes())["digest"]
        self.again = run(repo, "repro").stdout  # nothing changed
        (repo / "params.yaml").write_bytes(params(2.0))
        self.stale = run(repo, "status").stdout
        self.second = run(repo, "repro").stdout
        self.c2 = commit(repo, "alpha 2.0")
        (repo / "data/raw/points.csv").write_bytes(points(2))
        run(repo, "add", "data/raw")
        self.third = run(repo, "repro").stdout
        self.c3 = commit(repo, "new data")
        self.raw3 = yaml.safe_load((repo / "data/raw.dvl").read_bytes())["digest"]
        run(repo, "push", "--all-commits")
        self.locks = {c: lock_at(repo, c) for c in (self.c1, self.c2, self.c3)}


def test_reproducing_a_past_experiment(repo: Path, tmp_path: Path) -> None:
    h = History(repo, tmp_path)
    assert "[prepare] prepared 45 rows" in h.first
    assert "[train] trained with alpha 0.5" in h.first
    assert "model.pkl" not in git(repo, "ls-files")  # a cached out is git-ignored, not committed
    lock1 = h.locks[h.c1]
    assert lock1["stages"]["train"]["params"] == {"params.yaml": {"train": {"alpha": 0.5}}}
    assert "Running stage" not in h.again and "Data and pipelines are up to date." in h.again
    assert "train: stale (param train.alpha: 0.5 -> 2.0)" in h.stale
    assert "Running stage 'prepare'" not in h.second and "[train] trained with alpha 2.0" in h.second
    assert "Running stage 'prepare'" in h.third and h.raw3 != h.raw1

    # every past commit: git checkout + dvlite checkout gives a workspace that is up to date
    for rev in (h.c1, h.c2, h.c3):
        git(repo, "checkout", "-q", rev)
        run(repo, "checkout")
        status = run(repo, "status")
        assert "Data and pointers are up to date." in status.stdout
        assert "Pipeline stages are up to date." in status.stdout
        assert xxh(repo / "model.pkl") == out_of(h.locks[rev], "train", "model.pkl")["digest"]

    # lineage of a past commit, read from history (the workspace is at c3)
    doc = json.loads(run(repo, "lineage", "model.pkl", "--rev", h.c1, "--json").stdout)
    node = doc["lineage"]
    assert node["stage"]["name"] == "train"
    assert node["stage"]["params"] == {"params.yaml": {"train": {"alpha": 0.5}}}
    assert node["digest"] == out_of(lock1, "train", "model.pkl")["digest"]
    assert node["workspace"] == "differs"  # the workspace has c3's model
    prepared = next(d for d in node["stage"]["deps"] if d["path"] == "data/prepared")
    assert prepared["stage"]["params"] == {"params.yaml": {"prepare.seed": 7, "prepare.split": 0.75}}
    raw = next(d for d in prepared["stage"]["deps"] if d["path"] == "data/raw")
    assert (raw["source"], raw["pointer"], raw["digest"]) == ("tracked", "data/raw.dvl", h.raw1)
    text = run(repo, "lineage", "model.pkl", "--rev", h.c3).stdout
    assert h.raw3 in text and 'param train = {"alpha": 2.0}' in text

    # at c2, reverting alpha to 0.5: the run cache restores c1's model without training
    git(repo, "checkout", "-q", h.c2)
    run(repo, "checkout")
    (repo / "params.yaml").write_bytes(params(0.5))
    restored = run(repo, "repro")
    assert "Stage 'train' restored from the run cache" in restored.stdout
    assert "[train]" not in restored.stdout
    assert xxh(repo / "model.pkl") == out_of(lock1, "train", "model.pkl")["digest"]
    assert json.loads((repo / "eval/metrics.json").read_text()) == json.loads(
        git(repo, "show", f"{h.c1}:eval/metrics.json"))
    assert run(repo, "status", "-q", check=False).returncode == 0


def test_a_fresh_clone_reproduces_every_commit_exactly(repo: Path, tmp_path: Path) -> None:
    h = History(repo, tmp_path)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    for rev in (h.c1, h.c2, h.c3):
        git(clone, "checkout", "-q", rev)
        run(clone, "pull")
        forced = run(clone, "repro", "--force")
        assert forced.stdout.count("Running stage") == 3
        lock = h.locks[rev]
        now = yaml.safe_load((clone / "dvlite.lock").read_bytes())
        for stage in ("prepare", "train", "evaluate"):
            assert now["stages"][stage]["outs"] == lock["stages"][stage]["outs"], (rev, stage)
        assert xxh(clone / "model.pkl") == out_of(lock, "train", "model.pkl")["digest"]
        assert git(clone, "status", "--porcelain") == ""  # the same lock and metrics, byte for byte

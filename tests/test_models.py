"""The model registry through the real CLI and real git tags: a scikit-learn model trained on
a bundled dataset, registered, promoted, listed, and fetched from a fresh clone and by URL."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import git, run

TRAIN = """\
import json, pickle, sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
c = float(sys.argv[1])
x, y = load_iris(return_X_y=True)
xa, xb, ya, yb = train_test_split(x, y, random_state=0)
model = LogisticRegression(C=c, max_iter=500).fit(xa, ya)
pickle.dump(model, open("models/model.pkl", "wb"))
json.dump({"accuracy": round(model.score(xb, yb), 4)}, open("eval/metrics.json", "w"))
"""
PIPELINE = """\
stages:
  train:
    cmd: PYTHON train.py ${train.c}
    deps: [train.py]
    params: [train.c]
    outs: [models/model.pkl]
    metrics:
    - eval/metrics.json:
        cache: false
gates:
  eval/metrics.json:
    accuracy: ">= 0.8"
"""


def _train(root: Path, c: float, message: str) -> None:
    (root / "params.yaml").write_text(f"train:\n  c: {c}\n")
    run(root, "repro")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


@pytest.fixture
def project(repo: Path, tmp_path: Path) -> Path:
    (repo / "train.py").write_text(TRAIN)
    (repo / "models").mkdir()
    (repo / "eval").mkdir()
    (repo / "dvlite.yaml").write_text(PIPELINE.replace("PYTHON", sys.executable))
    run(repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    _train(repo, 1.0, "model 1")
    run(repo, "push")
    return repo


def test_register_promote_ls_and_get_from_a_fresh_clone(project: Path, tmp_path: Path) -> None:
    out = run(project, "model", "register", "iris", "--path", "models/model.pkl", "--version",
              "v1.0.0", "--stage", "staging").stdout
    assert "Created tag iris@v1.0.0" in out and "iris#staging#1" in out
    _train(project, 0.5, "model 2")
    run(project, "push")
    run(project, "model", "register", "iris", "--path", "models/model.pkl", "--version", "v1.1.0")
    run(project, "model", "promote", "iris", "v1.0.0", "--stage", "prod")
    run(project, "model", "promote", "iris", "v1.1.0", "--stage", "staging")
    tags = git(project, "tag", "--list").split()
    assert sorted(tags) == ["iris#prod#1", "iris#staging#1", "iris#staging#2", "iris@v1.0.0", "iris@v1.1.0"]
    assert git(project, "cat-file", "-t", "iris@v1.0.0").strip() == "tag"  # annotated
    listed = json.loads(run(project, "model", "ls", "--json").stdout)
    assert listed[0]["name"] == "iris" and listed[0]["stages"] == {"prod": "v1.0.0", "staging": "v1.1.0"}
    first = listed[0]["versions"][0]
    assert first["version"] == "v1.0.0" and first["artifact"]["path"] == "models/model.pkl"
    assert first["metrics"]["eval/metrics.json"]["accuracy"] >= 0.8
    assert first["params"]["params.yaml"]["train.c"] == 1.0
    assert "iris" in run(project, "model", "ls").stdout

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project), str(clone))  # tags come with the clone
    run(clone, "model", "get", "iris#prod", "-o", "prod.pkl")
    prod = pickle.loads((clone / "prod.pkl").read_bytes())
    assert prod.C == 1.0
    assert (clone / "prod.pkl").read_bytes() == git_show_bytes(project, "iris@v1.0.0")
    assert not (clone / "models" / "model.pkl").exists()  # no checkout
    # by URL, from outside any repository
    outside = tmp_path / "outside"
    outside.mkdir()
    run(outside, "model", "get", "iris@latest", "--repo", str(project), "-o", "latest.pkl")
    assert pickle.loads((outside / "latest.pkl").read_bytes()).C == 0.5


def git_show_bytes(project: Path, tag: str) -> bytes:
    """The artifact's bytes at a tag, through the Python API (the reference to compare with)."""
    code = ("import dvlite.api, sys\n"
            f"sys.stdout.buffer.write(dvlite.api.read('models/model.pkl', repo='.', rev='{tag}', mode='rb'))")
    return subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True,
                          check=True).stdout


def test_registry_mistakes_are_one_line_errors(project: Path) -> None:
    run(project, "model", "register", "iris", "--path", "models/model.pkl", "--version", "v1.0.0")
    cases = [
        (["register", "iris", "--path", "models/model.pkl", "--version", "v1.0.0"], "already has version v1.0.0"),
        (["register", "iris", "--path", "models/model.pkl", "--version", "1.0"], "'1.0' is not a version"),
        (["register", "Iris!", "--path", "models/model.pkl", "--version", "v2.0.0"], "not a valid model name"),
        (["register", "iris", "--path", "train.py", "--version", "v2.0.0"], "train.py is not tracked by dvlite"),
        (["promote", "iris", "v9.0.0", "--stage", "prod"], "has no version v9.0.0"),
        (["get", "iris#prod"], "has no version in stage 'prod'"),
        (["get", "nosuch"], "no model 'nosuch'"),
    ]
    for args, message in cases:
        proc = run(project, "model", *args, check=False)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) <= 2


def test_a_hostile_tag_record_cannot_name_a_path_outside(project: Path, tmp_path: Path) -> None:
    commit = git(project, "rev-parse", "HEAD").strip()
    record = {"name": "evil", "version": "v1.0.0", "metrics": {}, "params": {},
              "artifact": {"path": "../../etc/passwd", "kind": "file", "digest": "0" * 32, "size": 1, "files": 1}}
    message = f"Register\n\ndvlite-model: 1\n{json.dumps(record)}\n"
    subprocess.run(["git", "tag", "-a", "evil@v1.0.0", commit, "-F", "-"], cwd=project, input=message.encode(),
                   check=True, capture_output=True, env={**__import__("os").environ, "GIT_COMMITTER_NAME": "t",
                                                         "GIT_COMMITTER_EMAIL": "t@example.invalid"})
    proc = run(project, "model", "get", "evil@v1.0.0", "-o", str(tmp_path / "x"), check=False)
    assert proc.returncode == 4 and "unsafe path" in proc.stderr and "evil@v1.0.0" in proc.stderr
    assert not (tmp_path / "x").exists()
    assert "evil" in run(project, "model", "ls").stdout  # listed, never used

"""dvlite.yaml as DVC writes it: vars, ${...}, foreach (lists and mappings), matrix, and several
dvlite.yaml files in subdirectories (each with its dvlite.lock) in one DAG."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from conftest import git, run, write_tree

TEMPLATED = """vars:
  - sizes: {small: 2, large: 5}
stages:
  make:
    foreach: ${sizes}
    do:
      cmd: mkdir -p out && python3 -c "print('x' * ${item})" > out/${key}.txt
      outs: ["out/${key}.txt"]
  grid:
    matrix:
      lr: [0.1, 0.01]
      act: [relu, tanh]
    cmd: mkdir -p grid && echo ${item.lr} ${item.act} ${train.seed} > grid/${item.act}-${item.lr}.txt
    params: [train.seed]
    outs: ["grid/${item.act}-${item.lr}.txt"]
"""


def test_foreach_and_matrix_expand_run_and_are_locked(repo: Path) -> None:
    write_tree(repo, {"dvlite.yaml": TEMPLATED.encode(), "params.yaml": b"train:\n  seed: 7\n"})
    names = json.loads(run(repo, "dag", "--json").stdout)["stages"]
    assert sorted(names) == sorted(["make@small", "make@large", "grid@0.1-relu", "grid@0.1-tanh",
                                    "grid@0.01-relu", "grid@0.01-tanh"])
    run(repo, "repro")
    assert (repo / "out" / "large.txt").read_text() == "x" * 5 + "\n"
    assert (repo / "grid" / "tanh-0.01.txt").read_text() == "0.01 tanh 7\n"
    lock = yaml.safe_load((repo / "dvlite.lock").read_text())["stages"]
    assert lock["grid@0.01-tanh"]["params"] == {"params.yaml": {"train.seed": 7}}
    assert all(s["state"] == "up to date" for s in json.loads(run(repo, "status", "--json").stdout)["stages"])
    write_tree(repo, {"params.yaml": b"train:\n  seed: 8\n"})  # a param the template reads
    dry = run(repo, "repro", "--dry").stdout
    assert "Would run stage 'grid@0.1-relu': cmd changed; param train.seed: 7 -> 8" in dry
    assert "Would run stage 'make@small'" not in dry


def test_pipeline_files_in_subdirectories_form_one_dag(repo: Path) -> None:
    write_tree(repo, {
        "dvlite.yaml": b"stages:\n  raw:\n    cmd: echo raw > raw.txt\n    outs: [raw.txt]\n",
        "model/dvlite.yaml": b"stages:\n  train:\n    cmd: cat ../raw.txt ../raw.txt > model.bin\n"
                             b"    deps: [../raw.txt]\n    outs: [model.bin]\n",
    })
    dag = json.loads(run(repo, "dag", "--json").stdout)
    assert dag["stages"] == ["raw", "model:train"] and dag["edges"] == [["raw", "model:train"]]
    out = run(repo, "repro", "model:train").stdout
    assert "raw" in out and (repo / "model" / "model.bin").read_text() == "raw\nraw\n"
    sub = yaml.safe_load((repo / "model" / "dvlite.lock").read_text())["stages"]
    assert list(sub) == ["train"]  # keyed by its name in its own file
    assert sub["train"]["outs"][0]["path"] == "model/model.bin"  # paths are repo-relative
    assert sub["train"]["deps"][0]["path"] == "raw.txt"
    assert "raw" in yaml.safe_load((repo / "dvlite.lock").read_text())["stages"]
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two pipeline files")
    (repo / "model" / "model.bin").unlink()
    run(repo, "checkout")  # a cached out of the subdirectory's lock comes back
    assert (repo / "model" / "model.bin").read_text() == "raw\nraw\n"
    assert "Nothing to run" in run(repo, "repro", "model/dvlite.yaml:train", "--dry").stdout


def test_an_out_declared_in_two_files_is_an_error(repo: Path) -> None:
    write_tree(repo, {
        "dvlite.yaml": b"stages:\n  a:\n    cmd: echo > x.txt\n    outs: [x.txt]\n",
        "sub/dvlite.yaml": b"stages:\n  b:\n    cmd: echo > ../x.txt\n    outs: [../x.txt]\n",
    })
    proc = run(repo, "repro", check=False)
    assert proc.returncode == 2 and "stages 'a' and 'sub:b' both declare the out x.txt" in proc.stderr

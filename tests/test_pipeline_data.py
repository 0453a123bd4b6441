"""Pipelines through the CLI, the data side: the run cache, stage outs in checkout/status/gc/push/pull,
stage add, dag, params and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import xxhash
import yaml
from conftest import git, run, write_tree
from test_pipeline import CHAIN, fails, lock, pipeline

# --- run cache ----------------------------------------------------------------------------------

def test_run_cache_restores_outs_and_can_be_turned_off(repo: Path) -> None:
    pipeline(repo, "stages:\n  a: {cmd: cat in.txt in.txt > a.txt && echo ran, deps: [in.txt], outs: [a.txt]}\n",
             {"in.txt": b"v1\n"})
    run(repo, "repro")
    (repo / "in.txt").write_bytes(b"v2\n")
    run(repo, "repro")
    (repo / "in.txt").write_bytes(b"v1\n")
    out = run(repo, "repro").stdout
    assert "Stage 'a' restored from the run cache" in out and "[a] ran" not in out
    assert (repo / "a.txt").read_bytes() == b"v1\nv1\n"
    records = list((repo / ".dvlite/cache/runs").iterdir())
    assert len(records) == 2
    (repo / "in.txt").write_bytes(b"v2\n")
    out = run(repo, "repro", "--no-run-cache").stdout
    assert "[a] ran" in out


def test_run_cache_push_and_pull_through_a_remote(repo: Path, tmp_path: Path) -> None:
    import os

    from dvlite.pipelines import runcache
    from dvlite.remotes.backend import Remote
    from dvlite.remotes.config import choose
    from dvlite.repo import Repo

    pipeline(repo, "stages:\n  a: {cmd: cp in.txt a.txt, deps: [in.txt], outs: [a.txt]}\n", {"in.txt": b"v1\n"})
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "store"))
    run(repo, "repro")
    r = Repo.find(str(repo))
    records = [key for key, _entry in runcache.records(r.odb)]
    need = {d: s for _key, entry in runcache.records(r.odb) for d, s in runcache.objects_of(r, entry.outs)[0].items()}
    assert len(records) == 1 and need == {xxhash.xxh3_128_hexdigest(b"v1\n"): 3}
    assert runcache.push_records(r, Remote(choose(r.config, None))) == 1
    run(repo, "push")
    for key in records:
        rec = os.path.join(r.cache_dir, "runs", key)
        os.chmod(rec, 0o644)
        os.unlink(rec)
    assert runcache.pull_records(r, Remote(choose(r.config, None))) == 1
    assert [key for key, _entry in runcache.records(r.odb)] == records


# --- stage outs behave like pointers --------------------------------------------------------------

def test_checkout_status_gc_push_pull_cover_stage_outs(repo: Path, tmp_path: Path) -> None:
    pipeline(repo, """stages:
  a:
    cmd: mkdir -p d && echo 1 > d/one && echo 2 > d/two && echo m > m.txt
    outs: [d, m.txt]
""")
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "store"))
    run(repo, "repro")
    assert "d: new" in run(repo, "status").stdout  # dvlite.lock is not committed yet
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "lock")
    assert "Data and pointers are up to date." in run(repo, "status").stdout
    (repo / "m.txt").unlink()
    (repo / "d/one").write_bytes(b"changed\n")
    status = run(repo, "status").stdout
    assert "m.txt: deleted" in status and "d: modified" in status
    run(repo, "checkout", "--force")
    assert (repo / "m.txt").read_bytes() == b"m\n" and (repo / "d/one").read_bytes() == b"1\n"
    gc = run(repo, "gc", "--force").stdout
    assert "Nothing to collect" in gc
    run(repo, "push")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    run(clone, "pull")
    assert (clone / "d/two").read_bytes() == b"2\n" and (clone / "m.txt").read_bytes() == b"m\n"
    assert "Pipeline stages are up to date." in run(clone, "status").stdout


# --- stage add, dag ---------------------------------------------------------------------------------

def test_stage_add_appends_and_validates(repo: Path) -> None:
    write_tree(repo, {"in.txt": b"i\n", "params.yaml": b"lr: 0.1\n"})
    run(repo, "stage", "add", "-n", "copy", "-d", "in.txt", "-o", "out.txt", "-p", "lr", "cp in.txt out.txt")
    doc = yaml.safe_load((repo / "dvlite.yaml").read_bytes())
    assert doc == {"stages": {"copy": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "params": ["lr"],
                                       "outs": ["out.txt"]}}}
    run(repo, "stage", "add", "-n", "count", "-d", "out.txt", "-m", "m.json", "--", "echo", "{}", ">", "m.json")
    before = (repo / "dvlite.yaml").read_bytes()
    assert "stage 'copy' already exists" in fails(repo, "stage", "add", "-n", "copy", "echo")
    assert "both declare the out out.txt" in fails(repo, "stage", "add", "-n", "dup", "-o", "out.txt", "echo")
    assert (repo / "dvlite.yaml").read_bytes() == before
    run(repo, "repro")
    assert (repo / "out.txt").read_bytes() == b"i\n"
    assert lock(repo)["stages"]["copy"]["params"] == {"params.yaml": {"lr": 0.1}}
    assert lock(repo)["stages"]["count"]["outs"][0]["cache"] is False


def test_dag_text_dot_mermaid(repo: Path) -> None:
    pipeline(repo, CHAIN)
    assert run(repo, "dag").stdout.splitlines() == ["* a  -> b", "* b  -> c", "* c"]
    dot = run(repo, "dag", "--dot").stdout
    assert '"a" -> "b";' in dot and dot.startswith("digraph")
    mermaid = run(repo, "dag", "--mermaid").stdout
    assert mermaid.splitlines()[0] == "flowchart TD" and "s0 --> s1" in mermaid


# --- params and metrics ------------------------------------------------------------------------------

def test_params_from_json_and_toml_and_params_diff(repo: Path) -> None:
    pipeline(repo, """stages:
  s:
    cmd: cp m0.json m.json
    params: [{cfg.json: [model.depth]}, {cfg.toml: [opt]}]
    metrics: [{m.json: {cache: false}}]
""", {"cfg.json": b'{"model": {"depth": 3, "name": "x"}}', "cfg.toml": b"[opt]\nlr = 0.1\n",
      "m0.json": b'{"acc": 0.5, "loss": 2}'})
    run(repo, "repro")
    assert lock(repo)["stages"]["s"]["params"] == {"cfg.json": {"model.depth": 3},
                                                   "cfg.toml": {"opt": {"lr": 0.1}}}
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "cfg.toml").write_bytes(b"[opt]\nlr = 0.3\n")
    assert "s: stale (param opt.lr: 0.1 -> 0.3)" in run(repo, "status").stdout
    rows = json.loads(run(repo, "params", "diff", "--json").stdout)
    assert rows == [{"path": "cfg.toml", "key": "opt.lr", "old": 0.1, "new": 0.3, "change": 0.2}]
    md = run(repo, "params", "diff", "--md").stdout.splitlines()
    assert md[0] == "| path | param | HEAD | workspace | change |"
    assert md[2] == "| cfg.toml | opt.lr | 0.1 | 0.3 | +0.2 |"
    (repo / "m.json").write_text('{"acc": 0.75, "loss": 2}')
    assert json.loads(run(repo, "metrics", "diff", "--json").stdout) == [
        {"path": "m.json", "key": "acc", "old": 0.5, "new": 0.75, "change": 0.25}]
    shown = json.loads(run(repo, "metrics", "show", "--json").stdout)
    assert {"rev": "workspace", "path": "m.json", "key": "acc", "value": 0.75} in shown
    history = json.loads(run(repo, "metrics", "show", "--all-commits", "--json").stdout)
    assert [r["value"] for r in history if r["key"] == "acc"] == [0.5]


def test_a_missing_param_is_an_error(repo: Path) -> None:
    pipeline(repo, "stages:\n  s: {cmd: echo, params: [train.lr]}\n", {"params.yaml": b"train: {}\n"})
    assert "stage 's': param 'train.lr' is not in params.yaml" in fails(repo, "repro")

"""Sharing experiments: `exp push` sends the refs through git and the data to the dvlite remote;
after `exp pull` a teammate sees the same `exp show` table and can apply an experiment."""

from __future__ import annotations

from pathlib import Path

from conftest import git, run
from exp_project import exp_refs, make_project, show_json


def _team(tmp_path: Path) -> tuple[Path, Path, Path]:
    proj = make_project(tmp_path / "proj")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    run(proj, "remote", "add", "-d", "store", str(tmp_path / "store"))
    git(proj, "add", ".dvlite/config")
    git(proj, "commit", "-q", "-m", "a remote")
    git(proj, "remote", "add", "origin", str(origin))
    run(proj, "push")
    git(proj, "push", "-q", "origin", "main")
    mate = tmp_path / "mate"
    git(tmp_path, "clone", "-q", str(origin), str(mate))
    return proj, origin, mate


def _table(rows):
    return [{k: r[k] for k in ("name", "kind", "commit", "created", "state", "params", "metrics")}
            for r in rows if r["kind"] != "workspace"]


def test_a_teammate_sees_the_same_table_after_exp_pull_and_can_apply(tmp_path):
    proj, origin, mate = _team(tmp_path)
    run(proj, "exp", "run", "-S", "train.C=3", "-n", "c3")
    c3_model = (proj / "model.bin").read_bytes()
    run(proj, "exp", "run", "--queue", "-S", "train.C=5,7")
    run(proj, "queue", "start", "-j", "2")
    pushed = run(proj, "exp", "push", "origin")
    assert "Pushed 3 experiment(s) to origin" in pushed.stdout
    assert set(git(origin, "for-each-ref", "--format=%(refname:short)", "refs/exps/").split()) == \
        {r.removeprefix("refs/") for r in git(proj, "for-each-ref", "--format=%(refname)", "refs/exps/").split()}
    assert git(mate, "for-each-ref", "refs/exps/") == ""
    pulled = run(mate, "exp", "pull", "origin")
    assert "Fetched 3 experiment(s) from origin" in pulled.stdout
    assert _table(show_json(mate)) == _table(show_json(proj))
    assert exp_refs(mate) == exp_refs(proj)
    run(mate, "exp", "apply", "c3")  # its data came through the dvlite remote
    assert (mate / "model.bin").read_bytes() == c3_model


def test_push_and_pull_by_name_and_unknown_names(tmp_path):
    proj, origin, mate = _team(tmp_path)
    run(proj, "exp", "run", "-S", "train.C=3", "-n", "c3")
    run(proj, "exp", "run", "-S", "train.C=4", "-n", "c4")
    run(proj, "exp", "push", "origin", "c4")
    assert git(origin, "for-each-ref", "--format=%(refname)", "refs/exps/").strip().endswith("/c4")
    missing = run(proj, "exp", "push", "origin", "nope", check=False)
    assert missing.returncode == 2 and "no experiment named 'nope'" in missing.stderr
    run(proj, "exp", "push", "origin")
    run(mate, "exp", "pull", "origin", "c3")
    assert list(exp_refs(mate)) == ["c3"]
    bad_remote = run(mate, "exp", "pull", str(tmp_path / "no-such-repo"), check=False)
    assert bad_remote.returncode == 5 and "git ls-remote failed" in bad_remote.stderr
    assert len(bad_remote.stderr.strip().splitlines()) == 1

"""Commits from before the switch keep working: after `dvlite migrate`, checking out a commit
that only has DVC's files and running `dvlite pull` (or `checkout`, `diff`, `dvlite.api`)
gives that commit's data, byte-identical, verified by DVC's md5.

The scenario is test_dvc_migrate's: three DVC commits built by the real `dvc`, with objects
deleted from the DVC cache (they come from the DVC remote).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import GIT_ENV, git, run
from dvc_helpers import requires_dvc
from test_dvc_migrate import _dataset, built, scenario  # noqa: F401 - fixtures

pytestmark = requires_dvc


def _commits(repo: Path) -> list[str]:
    """The three pre-switch commits, oldest first."""
    return git(repo, "rev-list", "--reverse", "HEAD").split()


def _switch(repo: Path) -> None:
    run(repo, "migrate", "--force", "--remove-dvc")
    run(repo, "checkout")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "switch to dvlite")
    run(repo, "push")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _recorded_md5(repo: Path, dvc_file: str) -> str:
    return yaml.safe_load((repo / dvc_file).read_text())["outs"][0]["md5"]


def _data_matches(repo: Path, version: int) -> None:
    expected = {rel: data for rel, data in _dataset(version).items()}
    found = {str(p.relative_to(repo)).replace(os.sep, "/"): p.read_bytes()
             for p in (repo / "data").rglob("*") if p.is_file()}
    assert found == expected  # (DVC's listings do not record the executable bit)


def test_each_pre_switch_commit_pulls_byte_identical_in_a_fresh_clone(scenario: Path) -> None:
    repo = scenario / "repo"
    first, second, third = _commits(repo)
    _switch(repo)
    clone = scenario / "clone"
    git(scenario, "clone", "-q", str(repo), str(clone))
    for sha, version in ((first, 1), (second, 2), (third, 2)):
        git(clone, "checkout", "-q", sha)
        assert not (clone / ".dvlite" / "config").exists()  # a commit from before the switch
        proc = run(clone, "pull")
        _data_matches(clone, version)
        assert _md5(clone / "model.bin") == _recorded_md5(clone, "model.bin.dvc"), proc.stdout
        if version == 2:  # dvc.lock's cached outs come back too
            assert (clone / "out" / "prepared.txt").read_text() == "--alpha\n"
            assert (clone / "pipelines" / "out" / "model-small.txt").exists()
        assert run(clone, "status").returncode == 0
        assert "?? .dvlite" not in git(clone, "status", "--porcelain")  # the cache stays out of git
    assert sorted(p.name for p in (clone / "imported").iterdir()) == ["1.png", "2.png"]
    git(clone, "checkout", "-q", "main")
    run(clone, "pull")
    _data_matches(clone, 2)


def test_checkout_of_an_old_commit_uses_the_dvc_cache_and_names_what_it_lacks(scenario: Path) -> None:
    repo = scenario / "repo"
    first = _commits(repo)[0]
    _switch(repo)
    git(repo, "checkout", "-q", first)
    run(repo, "checkout")  # every object of commit 1 is linked (migrate saw them) or in the DVC cache
    _data_matches(repo, 1)
    # a clone with no DVC cache and no DVC remote: checkout names what it cannot find
    clone = scenario / "clone"
    git(scenario, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", first)
    shutil.move(str(scenario / "remote"), str(scenario / "remote-away"))
    waiting = run(clone, "status", check=False)
    assert "path(s) tracked by DVC's files are not in the cache yet" in waiting.stdout
    assert "model.bin" in waiting.stdout
    assert run(clone, "status", "-q", check=False).returncode == 1
    proc = run(clone, "checkout", check=False)
    assert proc.returncode == 4
    assert "tracked by DVC's files, not in the DVC cache" in proc.stderr and "data" in proc.stderr
    pulled = run(clone, "pull", check=False)
    assert pulled.returncode == 1 and "md5" in pulled.stderr + pulled.stdout
    assert not (clone / "model.bin").exists()


def test_diff_across_the_switch_sees_no_change(scenario: Path) -> None:
    repo = scenario / "repo"
    _switch(repo)
    proc = run(repo, "diff", "HEAD~1", "HEAD", "--json")
    assert json.loads(proc.stdout)["changes"] == []
    old = run(repo, "diff", "HEAD~3", "HEAD", "--json")
    changes = {c["path"]: c["kind"] for c in json.loads(old.stdout)["changes"]}
    assert changes["data/test/b.csv"] == "added" and changes["data/train/a.csv"] == "modified"


def test_the_api_reads_a_pre_switch_revision(scenario: Path) -> None:
    repo = scenario / "repo"
    first = _commits(repo)[0]
    _switch(repo)
    clone = scenario / "clone"
    git(scenario, "clone", "-q", str(repo), str(clone))
    code = ("import dvlite.api, sys\n"
            f"sys.stdout.buffer.write(dvlite.api.read('data/train/a.csv', repo='.', rev='{first}', mode='rb'))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True,
                          env={**os.environ, **GIT_ENV}, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == _dataset(1)["data/train/a.csv"]


def test_get_and_import_from_another_repository_at_a_pre_switch_commit(scenario: Path) -> None:
    repo = scenario / "repo"
    first, _second, third = _commits(repo)
    _switch(repo)
    # the source's cache lacks the old objects until a get asks for them: from its DVC cache
    # or its DVC remote, verified by md5
    got = scenario / "got-v1"
    run(scenario, "get", str(repo), "data", "--rev", first, "-o", str(got))
    assert {str(p.relative_to(got)).replace(os.sep, "/"): p.read_bytes()
            for p in got.rglob("*") if p.is_file()} == {
        rel[len("data/"):]: data for rel, data in _dataset(1).items() if rel.startswith("data/")}
    one = scenario / "model-v1.bin"
    run(scenario, "get", str(repo), "model.bin", "--rev", first, "-o", str(one))
    assert _md5(one) == yaml.safe_load(git(repo, "show", f"{first}:model.bin.dvc"))["outs"][0]["md5"]

    here = scenario / "consumer"
    here.mkdir()
    git(here, "init", "-q")
    run(here, "init")
    run(here, "import", str(repo), "data", "--rev", third, "-o", "old-data")
    pointer = yaml.safe_load((here / "old-data.dvl").read_text())
    assert pointer["source"]["rev_lock"] == third
    assert {str(p.relative_to(here / "old-data")).replace(os.sep, "/"): p.read_bytes()
            for p in (here / "old-data").rglob("*") if p.is_file()} == {
        rel[len("data/"):]: data for rel, data in _dataset(2).items() if rel.startswith("data/")}
    assert run(here, "status").returncode == 0

    missing = run(scenario, "get", str(repo), "nosuch", "--rev", first, check=False)
    assert missing.returncode == 2 and "not tracked" in missing.stderr
    bare = scenario / "bare.git"
    git(scenario, "clone", "-q", "--bare", str(repo), str(bare))
    refused = run(scenario, "get", f"file://{bare}", "data", "--rev", first, "-o", "x", check=False)
    assert refused.returncode == 2 and "before the switch from DVC" in refused.stderr


def test_the_api_names_a_pre_switch_commit_of_a_repository_given_by_url(scenario: Path) -> None:
    repo = scenario / "repo"
    first = _commits(repo)[0]
    _switch(repo)
    code = ("import dvlite.api, sys\n"
            "try:\n"
            f"    dvlite.api.get_url('model.bin', repo='file://{repo}', rev='{first}')\n"
            "except dvlite.errors.BadInputError as exc:\n"
            "    print(exc.message)\n"
            "    sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", "import dvlite.errors\n" + code], cwd=scenario,
                          capture_output=True, text=True, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 2, proc.stderr
    assert "before the switch from DVC" in proc.stdout and "\n" not in proc.stdout.strip()

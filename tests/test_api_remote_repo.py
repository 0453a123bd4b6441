"""dvlite.api with `repo=` naming another repository (a URL, `file://`, a bare repository): the
named repository is read, never the one around the caller; params_show and metrics_show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import git, run, write_tree
from remote_helpers import corrupt_object
from servers.base import Server

from dvlite import api
from dvlite.errors import BadInputError, DvliteError, IntegrityError, NotARepoError

PARAMS = b"train:\n  lr: 0.1\n  epochs: 3\nprep:\n  split: 0.2\n"
EXTRA = b"train:\n  batch: 32\nseed: 7\n"
STAGES = b"""stages:
  train:
    cmd: python3 metrics.py
    params: [train.lr, {extra.yaml: [seed]}]
    metrics: [metrics.json]
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Tags v1 and v2 (pushed to `../store`), and `unpushed` (a file never pushed)."""
    top = tmp_path_factory.mktemp("apiremote")
    src = top / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    run(src, "remote", "add", "-d", "store", "../store")
    for tag in ("v1", "v2"):
        write_tree(src, {"data/train.csv": f"{tag} rows\n".encode(), "data/img/a.png": tag.encode() * 9,
                         "model.bin": tag.encode() * 1000})
        run(src, "add", "data", "model.bin")
        run(src, "push")
        git(src, "add", "-A")
        git(src, "commit", "-qm", tag)
        git(src, "tag", tag)
    write_tree(src, {"params.yaml": PARAMS, "extra.yaml": EXTRA, "dvlite.yaml": STAGES,
                     "metrics.py": b"import json\njson.dump({'acc': 0.9, 'loss': {'val': 0.25}}, "
                                   b"open('metrics.json', 'w'))\n"})
    run(src, "repro")
    run(src, "push")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "pipeline")
    git(src, "tag", "pipeline")
    write_tree(src, {"secret.txt": b"never pushed\n"})
    run(src, "add", "secret.txt")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "unpushed")
    git(src, "tag", "unpushed")
    return src


@pytest.fixture
def elsewhere(repo, monkeypatch) -> Path:
    """The caller stands in another dvlite repository that tracks the same paths differently."""
    write_tree(repo, {"data/train.csv": b"the caller's own rows\n", "model.bin": b"caller"})
    run(repo, "add", "data/train.csv", "model.bin")
    monkeypatch.chdir(repo)
    return repo


def test_a_url_reads_the_named_repository_not_the_one_around_the_caller(source, elsewhere):
    url = f"file://{source}"
    assert api.read("data/train.csv") == "the caller's own rows\n"
    assert api.read("data/train.csv", repo=url, rev="v1") == "v1 rows\n"
    assert api.read("data/train.csv", repo=url, rev="v2") == "v2 rows\n"
    assert api.read("data/img/a.png", repo=url, rev="v1", mode="rb") == b"v1" * 9
    with api.open("model.bin", repo=url, rev="v2") as f:
        assert f.read() == b"v2" * 1000
    assert api.read("data/train.csv", repo=url) == "v2 rows\n"  # rev None: the source's HEAD


def test_a_bare_repository_path_is_cloned_and_new_commits_are_seen(source, tmp_path):
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(bare))
    git(bare, "config", "remote.origin.url", str(source))
    # the bare clone has no config.local and no checkout: the remote is named relative to
    # the original, so give it an absolute one at a new commit of its own
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    run(work, "remote", "add", "-d", "--force", "store", str(source.parent / "store"))
    git(work, "commit", "-qam", "absolute remote")
    git(work, "push", "-q", "origin", "HEAD:main")
    assert api.read("data/train.csv", repo=bare, rev="main") == "v2 rows\n"
    write_tree(work, {"data/train.csv": b"v3 rows\n"})
    run(work, "add", "data")
    run(work, "push", "data")
    git(work, "commit", "-qam", "v3")
    git(work, "push", "-q", "origin", "HEAD:main")
    assert api.read("data/train.csv", repo=bare, rev="main") == "v3 rows\n"  # the clone is refreshed


def test_errors_name_the_repository(source, elsewhere, tmp_path):
    url = f"file://{source}"
    with pytest.raises(FileNotFoundError, match="nope.csv is not tracked"):
        api.read("nope.csv", repo=url, rev="v1")
    with pytest.raises(FileNotFoundError, match="not in the tracked directory"):
        api.read("data/img/zzz.png", repo=url, rev="v1")
    with pytest.raises(IsADirectoryError):
        api.read("data/img", repo=url, rev="v1")
    with pytest.raises(BadInputError, match="unknown revision 'v9'"):
        api.read("data/train.csv", repo=url, rev="v9")
    with pytest.raises(DvliteError, match="missing on remote"):
        api.read("secret.txt", repo=url, rev="unpushed")
    with pytest.raises(BadInputError, match="cannot clone"):
        api.read("data/train.csv", repo=f"file://{tmp_path}/nothing-here")
    with pytest.raises(BadInputError, match="no such repository"):
        api.read("data/train.csv", repo=tmp_path / "nothing-here")
    with pytest.raises(BadInputError, match="reads a repository on this machine"):
        api.status(repo=url)
    plain = elsewhere / "vendored"  # a git work tree of its own inside the caller's repository
    plain.mkdir()
    git(plain, "init", "-q", "-b", "main")
    with pytest.raises(NotARepoError, match="not in a dvlite repository"):
        api.read("data/train.csv", repo=plain)


def test_objects_from_the_source_remote_are_verified(source, tmp_path):
    store = source.parent / "store"
    backup = tmp_path / "store-backup"
    shutil.copytree(store, backup)
    digest = yaml.safe_load(git(source, "show", "v1:model.bin.dvl"))["digest"]
    try:
        corrupt_object(Server("local", str(store)), digest)
        with pytest.raises(IntegrityError):
            api.read("model.bin", repo=f"file://{source}", rev="v1", mode="rb")
    finally:
        shutil.rmtree(store)
        shutil.copytree(backup, store)


def test_get_url_of_another_repository(source, elsewhere):
    url = api.get_url("data/train.csv", repo=f"file://{source}", rev="v1")
    pack, span = url.split("#bytes=")
    assert pack.startswith(f"{source.parent / 'store'}/packs/")
    start, end = map(int, span.split("-"))
    with open(pack, "rb") as f:
        f.seek(start)
        assert f.read(end - start + 1) == b"v1 rows\n"


# --- params_show, metrics_show ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["path", "url"])
def test_params_show_as_dvc_gives_them(source, how):
    repo = source if how == "path" else f"file://{source}"
    rev = None if how == "path" else "pipeline"
    everything = api.params_show(repo=repo, rev=rev)
    assert everything == {"params.yaml:train": {"lr": 0.1, "epochs": 3}, "prep": {"split": 0.2},
                          "extra.yaml:train": {"batch": 32}, "seed": 7}
    assert api.params_show(stages="train", repo=repo, rev=rev) == {"train": {"lr": 0.1}, "seed": 7}
    assert api.params_show("extra.yaml", repo=repo, rev=rev) == {"train": {"batch": 32}, "seed": 7}
    assert api.params_show(repo=repo, rev="v1") == {}  # no params files then
    with pytest.raises(BadInputError, match="unknown stage"):
        api.params_show(stages="nope", repo=repo, rev=rev)


@pytest.mark.parametrize("how", ["path", "url"])
def test_metrics_show_reads_cached_metrics(source, how):
    repo = source if how == "path" else f"file://{source}"
    # metrics.json is a cached out: not in git; from the cache, or the source's remote for a URL
    assert api.metrics_show(repo=repo, rev="pipeline") == {"acc": 0.9, "loss": {"val": 0.25}}
    assert api.metrics_show(repo=repo, rev="v2") == {}

"""`dvlite list REPO_URL [PATH]`: what another dvlite (or DVC) repository tracks, read from its
git history, with only manifests fetched from its remote (for -R and paths inside directories)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import git, run, write_tree
from dvc_helpers import dvc, requires_dvc

IMAGES_V1 = {"cat.png": b"meow" * 100, "dog.png": b"woof" * 50, "birds/owl.png": b"hoo" * 10}
IMAGES_V2 = {**IMAGES_V1, "fish.png": b"blub" * 7}


def _listed(proc) -> dict[str, dict]:
    return {i["path"]: i for i in json.loads(proc.stdout)}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A dvlite repository: a directory, a file and a stage out; tags v1 and v2, pushed."""
    top = tmp_path_factory.mktemp("list")
    src = top / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    run(src, "remote", "add", "-d", "store", "../store")
    write_tree(src, {**{f"data/images/{k}": v for k, v in IMAGES_V1.items()}, "model.bin": b"m" * 300})
    run(src, "add", "data/images", "model.bin")
    run(src, "push")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "v1")
    git(src, "tag", "v1")
    write_tree(src, {**{f"data/images/{k}": v for k, v in IMAGES_V2.items()},
                     "dvlite.yaml": b"stages:\n  count:\n    cmd: ls data/images > count.txt\n"
                                    b"    deps: [data/images]\n    outs: [count.txt]\n"})
    run(src, "add", "data/images")
    run(src, "repro")
    run(src, "push")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "v2")
    git(src, "tag", "v2")
    return src


def test_list_what_a_dvlite_repository_tracks_at_two_revisions(source, tmp_path):
    v2 = _listed(run(tmp_path, "list", source, "--json"))
    assert set(v2) == {"data/images", "model.bin", "count.txt"}
    assert v2["data/images"]["kind"] == "dir" and v2["data/images"]["files"] == 4
    assert v2["data/images"]["size"] == sum(map(len, IMAGES_V2.values()))
    assert v2["model.bin"] == {**v2["model.bin"], "kind": "file", "size": 300, "files": 1}
    v1 = _listed(run(tmp_path, "list", f"file://{source}", "--rev", "v1", "--json"))
    assert set(v1) == {"data/images", "model.bin"} and v1["data/images"]["files"] == 3
    text = run(tmp_path, "list", source).stdout
    assert "data/images/" in text and "model.bin" in text


def test_list_inside_a_directory_and_recursively(source, tmp_path):
    inside = _listed(run(tmp_path, "list", source, "data/images/birds", "--json"))
    assert inside == {"data/images/birds/owl.png": {**inside["data/images/birds/owl.png"],
                                                    "kind": "entry", "size": 30}}
    deep = _listed(run(tmp_path, "list", source, "-R", "--json", "--rev", "v1"))
    assert {p for p, i in deep.items() if i["kind"] == "entry"} == {f"data/images/{k}" for k in IMAGES_V1}
    only = _listed(run(tmp_path, "list", source, "data/images", "--json"))
    assert len(only) == 1 + len(IMAGES_V2)


def test_list_needs_no_data_and_no_remote_without_recursion(tmp_path):
    src = tmp_path / "noremote"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    write_tree(src, {"big/a.bin": b"a" * 1000})
    run(src, "add", "big")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "one")
    shutil.rmtree(src / ".dvlite" / "cache")  # nothing anywhere but the pointers in git
    assert _listed(run(tmp_path, "list", src, "--json"))["big"]["size"] == 1000
    proc = run(tmp_path, "list", src, "-R", check=False)
    assert proc.returncode == 2 and "no remote" in proc.stderr and "Traceback" not in proc.stderr


def test_list_bad_inputs(source, tmp_path):
    for args, code, words in [
        (["list", source, "nope"], 2, "nope is not tracked"),
        (["list", source, "--rev", "v9"], 2, "unknown revision"),
        (["list", tmp_path / "missing"], 2, "cannot clone"),
        (["list", source, "../x"], 2, "invalid path"),
    ]:
        proc = run(tmp_path, *args, check=False)
        assert proc.returncode == code and words in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 2
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q", "-b", "main")
    (plain / "README").write_text("hi")
    git(plain, "add", "-A")
    git(plain, "commit", "-qm", "x")
    proc = run(tmp_path, "list", plain, check=False)
    assert proc.returncode == 2 and "neither a dvlite repository" in proc.stderr


def test_a_hostile_pointer_in_the_listed_repository_is_refused(tmp_path):
    src = tmp_path / "hostile"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    (src / "ok.txt.dvl").write_text("version: 1\nkind: file\nhash: xxh3-128\n"
                                    "digest: 0123456789abcdef0123456789abcdef\nsize: 1\n")
    (src / "bad.dvl").write_text("version: 1\nkind: file\nhash: md9\ndigest: x\nsize: 1\n")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "x")
    proc = run(tmp_path, "list", src, check=False)
    assert proc.returncode == 2 and "bad.dvl at HEAD" in proc.stderr and "Traceback" not in proc.stderr


@requires_dvc
def test_list_a_dvc_repository(tmp_path):
    src = tmp_path / "dvcrepo"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    dvc(src, "init", "-q")
    write_tree(src, {"data/raw/a.csv": b"a\n" * 10, "data/raw/b.csv": b"b\n" * 3, "model.bin": b"m" * 77,
                     "sub/make.py": b"open('out.txt', 'w').write('x' * 42)\n"})
    dvc(src, "add", "data/raw", "model.bin")
    (src / "dvc.yaml").write_text("stages:\n  make:\n    wdir: sub\n    cmd: python3 make.py\n"
                                  "    deps: [make.py]\n    outs: [out.txt]\n")
    dvc(src, "repro")
    git(src, "add", "-A")
    git(src, "commit", "-qm", "dvc data")
    listed = _listed(run(tmp_path, "list", src, "--json"))
    assert set(listed) == {"data/raw", "model.bin", "sub/out.txt"}
    assert listed["data/raw"] == {**listed["data/raw"], "kind": "dir", "size": 26, "files": 2,
                                  "hash": "md5"}
    assert listed["model.bin"]["size"] == 77 and listed["sub/out.txt"]["size"] == 42
    assert set(_listed(run(tmp_path, "list", src, "sub", "--json"))) == {"sub/out.txt"}

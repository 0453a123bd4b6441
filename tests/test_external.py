"""`dvlite get`, `dvlite import`, `dvlite update`: data from other repositories.

The source is a real dvlite git repository with a local-directory remote named by a
relative path (`../store`), which must resolve against the source repository, not the
temporary clone or the current directory.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
import yaml
from conftest import git, run, tree_digests, write_tree

V1_CSV = b"a,b\n1,2\n"
V2_CSV = b"a,b\n3,4\n5,6\n"
V1_IMAGES = {"cat.txt": b"meow\n", "dog.txt": b"woof\n", "sub/bird.txt": b"tweet\n"}
V2_IMAGES = {"cat.txt": b"MEOW!\n", "dog.txt": b"woof\n", "sub/bird.txt": b"tweet\n",
             "fish.txt": b"blub\n"}


def _sha(files: dict[str, bytes]) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """Tags v1 and v2 (pushed), and `unpushed` (a file added but never pushed)."""
    top = tmp_path_factory.mktemp("external")
    src = top / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    run(src, "remote", "add", "-d", "store", "../store")
    write_tree(src, {"data/train.csv": V1_CSV, **{f"data/images/{k}": v for k, v in V1_IMAGES.items()}})
    run(src, "add", "data/train.csv", "data/images")
    run(src, "push")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "v1")
    git(src, "tag", "v1")
    write_tree(src, {"data/train.csv": V2_CSV, **{f"data/images/{k}": v for k, v in V2_IMAGES.items()}})
    run(src, "add", "data/train.csv", "data/images")
    run(src, "push")
    git(src, "commit", "-q", "-am", "v2")
    git(src, "tag", "v2")
    write_tree(src, {"data/images/secret.txt": b"never pushed\n"})
    run(src, "add", "data/images")
    git(src, "commit", "-q", "-am", "unpushed")
    git(src, "tag", "unpushed")
    return src


def _rev(src: Path, rev: str) -> str:
    return git(src, "rev-parse", f"{rev}^{{commit}}").strip()


def _one_line_error(proc, code: int, *words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), proc.stderr
    for w in words:
        assert w in lines[0], proc.stderr


def _leftovers(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.startswith(".dvlite-tmp")]


# --- get ------------------------------------------------------------------------------------

def test_get_a_file_at_two_revisions_without_a_repo_here(source, tmp_path):
    out = tmp_path / "elsewhere"  # not a git repo, not a dvlite repo
    out.mkdir()
    run(out, "get", source, "data/train.csv", "--rev", "v1")
    assert (out / "train.csv").read_bytes() == V1_CSV
    run(out, "get", f"file://{source}", "data/train.csv", "--rev", "v2", "-o", "new.csv")
    assert (out / "new.csv").read_bytes() == V2_CSV
    assert sorted(p.name for p in out.iterdir()) == ["new.csv", "train.csv"]  # no cache, no temp


def test_get_a_directory_a_file_inside_it_and_a_sub_directory(source, tmp_path):
    run(tmp_path, "get", source, "data/images", "--rev", "v1", "-o", "imgs")
    assert tree_digests(tmp_path / "imgs") == _sha(V1_IMAGES)
    run(tmp_path, "get", source, "data/images/cat.txt", "--rev", "v2")
    assert (tmp_path / "cat.txt").read_bytes() == V2_IMAGES["cat.txt"]
    run(tmp_path, "get", source, "data/images/sub", "--rev", "v2")
    assert tree_digests(tmp_path / "sub") == _sha({"bird.txt": V2_IMAGES["sub/bird.txt"]})
    # the default revision is the source's HEAD
    run(tmp_path, "get", source, "data/train.csv", "-o", "head.csv")
    assert (tmp_path / "head.csv").read_bytes() == V2_CSV


def test_get_inside_a_repo_fills_its_cache_and_tracks_nothing(source, repo):
    run(repo, "get", source, "data/train.csv", "--rev", "v1", "--json")
    assert (repo / "train.csv").read_bytes() == V1_CSV
    assert not (repo / "train.csv.dvl").exists()
    from dvlite.digest import hash_bytes
    from dvlite.repo import Repo

    assert Repo(str(repo)).odb.read(hash_bytes(V1_CSV).hex) == V1_CSV  # fetched into its cache
    # writable, untracked copy: not a link into the read-only cache
    assert os.stat(repo / "train.csv").st_mode & stat.S_IWUSR


def test_get_refuses_to_overwrite(source, tmp_path):
    (tmp_path / "train.csv").write_bytes(b"mine")
    proc = run(tmp_path, "get", source, "data/train.csv", check=False)
    _one_line_error(proc, 2, "already exists")
    assert (tmp_path / "train.csv").read_bytes() == b"mine"


def test_get_of_unpushed_data_fails_and_leaves_nothing(source, tmp_path):
    proc = run(tmp_path, "get", source, "data/images", "--rev", "unpushed", check=False)
    _one_line_error(proc, 1, "missing on remote 'store'")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, code, words", [
    (["data/train.csv", "--rev", "v9"], 2, ["unknown revision 'v9'"]),
    (["data/nothing.csv"], 2, ["data/nothing.csv is not tracked by dvlite"]),
    (["data/images/nothing.txt", "--rev", "v1"], 2, ["not in the tracked directory data/images"]),
    (["data/train.csv", "-r", "nosuch"], 2, ["unknown remote 'nosuch'"]),
])
def test_get_bad_inputs_are_one_line_errors(source, tmp_path, args, code, words):
    proc = run(tmp_path, "get", source, *args, check=False)
    _one_line_error(proc, code, *words)
    assert list(tmp_path.iterdir()) == []


def test_get_from_a_git_repo_that_is_not_dvlite(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    git(plain, "init", "-q", "-b", "main")
    write_tree(plain, {"f.txt": b"x"})
    git(plain, "add", "f.txt")
    git(plain, "commit", "-q", "-m", "x")
    work = tmp_path / "work"
    work.mkdir()
    _one_line_error(run(work, "get", plain, "f.txt", check=False), 2, "not a dvlite repository")
    _one_line_error(run(work, "get", tmp_path / "missing", "f.txt", check=False), 2, "cannot clone")
    assert list(work.iterdir()) == []


# --- import, update ---------------------------------------------------------------------------

def _pointer(path: Path) -> dict:
    return yaml.safe_load(path.read_bytes())


def test_import_records_url_rev_and_commit(source, repo):
    proc = run(repo, "import", source, "data/train.csv", "--rev", "v1")
    assert "git add train.csv.dvl .gitignore" in proc.stdout
    assert (repo / "train.csv").read_bytes() == V1_CSV
    doc = _pointer(repo / "train.csv.dvl")
    assert doc["source"] == {"url": str(source), "rev": "v1", "rev_lock": _rev(source, "v1"),
                             "path": "data/train.csv"}
    assert doc["kind"] == "file" and doc["size"] == len(V1_CSV)
    assert "/train.csv" in (repo / ".gitignore").read_text().splitlines()
    # an import is ordinary tracked data: committed, it is clean, and checkout restores it
    git(repo, "add", "train.csv.dvl", ".gitignore")
    git(repo, "commit", "-q", "-m", "import")
    assert "up to date" in run(repo, "status").stdout
    (repo / "train.csv").unlink()
    run(repo, "checkout")
    assert (repo / "train.csv").read_bytes() == V1_CSV


def test_import_of_a_directory_and_of_a_sub_directory(source, repo):
    run(repo, "import", source, "data/images", "--rev", "v1", "-o", "data/images")
    assert tree_digests(repo / "data" / "images") == _sha(V1_IMAGES)
    run(repo, "import", f"file://{source}", "data/images/sub", "--rev", "v2", "-o", "birds")
    assert tree_digests(repo / "birds") == _sha({"bird.txt": V2_IMAGES["sub/bird.txt"]})
    doc = _pointer(repo / "birds.dvl")
    assert doc["kind"] == "dir" and doc["files"] == 1
    assert doc["source"]["url"] == f"file://{source}" and doc["source"]["path"] == "data/images/sub"
    status = run(repo, "status").stdout
    assert "modified" not in status and "not in cache" not in status


def test_update_moves_an_import_to_a_new_revision(source, repo):
    run(repo, "import", source, "data/images", "--rev", "v1")
    run(repo, "import", source, "data/train.csv", "--rev", "v1")
    proc = run(repo, "update", "images", "--rev", "v2")
    assert "images: updated" in proc.stdout
    assert tree_digests(repo / "images") == _sha(V2_IMAGES)
    doc = _pointer(repo / "images.dvl")
    assert doc["source"]["rev"] == "v2" and doc["source"]["rev_lock"] == _rev(source, "v2")
    assert (repo / "train.csv").read_bytes() == V1_CSV  # only the target moved
    # without --rev, an import stays on its recorded revision (a tag does not move)
    before = (repo / "train.csv.dvl").read_bytes()
    assert "train.csv: up to date" in run(repo, "update").stdout
    assert (repo / "train.csv.dvl").read_bytes() == before
    assert _leftovers(repo) == [] and _leftovers(repo / "images") == []


def test_update_follows_a_branch(tmp_path, repo):
    src = tmp_path / "branchy"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    run(src, "remote", "add", "-d", "store", str(tmp_path / "branch-store"))
    write_tree(src, {"model.bin": b"weights 1"})
    run(src, "add", "model.bin")
    run(src, "push")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "one")
    run(repo, "import", src, "model.bin")
    assert _pointer(repo / "model.bin.dvl")["source"]["rev"] == "HEAD"
    write_tree(src, {"model.bin": b"weights 2"})
    run(src, "add", "model.bin")
    run(src, "push")
    git(src, "commit", "-q", "-am", "two")
    run(repo, "update")
    assert (repo / "model.bin").read_bytes() == b"weights 2"
    assert _pointer(repo / "model.bin.dvl")["source"]["rev_lock"] == _rev(src, "HEAD")


def test_update_refuses_to_overwrite_unsaved_changes(source, repo):
    run(repo, "import", source, "data/train.csv", "--rev", "v1")
    before = (repo / "train.csv.dvl").read_bytes()
    (repo / "train.csv").write_bytes(b"my own edit\n")
    proc = run(repo, "update", "--rev", "v2", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (repo / "train.csv").read_bytes() == b"my own edit\n"
    assert (repo / "train.csv.dvl").read_bytes() == before


def test_import_and_update_bad_inputs(source, repo):
    write_tree(repo, {"local.txt": b"x"})
    run(repo, "add", "local.txt")
    _one_line_error(run(repo, "update", "local.txt", check=False), 2, "not made by `dvlite import`")
    _one_line_error(run(repo, "import", source, "data/train.csv", "-o", "local.txt", check=False),
                    2, "already tracked")
    _one_line_error(run(repo, "import", source, "data/train.csv", "--rev", "nope", check=False),
                    2, "unknown revision")
    _one_line_error(run(repo, "import", source, "data/none", check=False), 2, "not tracked")
    assert not (repo / "train.csv.dvl").exists() and not (repo / "none.dvl").exists()
    outside = repo.parent / "not-a-repo"
    outside.mkdir()
    _one_line_error(run(outside, "import", source, "data/train.csv", check=False), 2,
                    "not a dvlite repository")
    assert "No imports" in run(repo, "update").stdout


def test_import_pointer_round_trips_and_rejects_a_bad_source():
    from dvlite.digest import hash_bytes
    from dvlite.errors import FormatError
    from dvlite.formats.pointer import Pointer, Source

    src = Source('ssh://git@host:22/~me/réka "data".git', "feature/x: y", "a" * 40, "data/#1 x.csv")
    p = Pointer("file", hash_bytes(b"x"), 1, 1, src)
    assert Pointer.from_bytes(p.to_bytes(), "t.dvl") == p
    plain = Pointer("file", hash_bytes(b"x"), 1, 1)
    assert b"source" not in plain.to_bytes()
    bad = p.to_bytes().replace(b'"' + b"a" * 40 + b'"', b'"v1"')
    with pytest.raises(FormatError, match="rev_lock"):
        Pointer.from_bytes(bad, "t.dvl")

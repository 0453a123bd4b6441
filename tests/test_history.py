"""`dvlite diff` and `dvlite ls`: tracked data across git revisions, read from pointers in history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xxhash
from conftest import git, run, tree_digests, write_tree


def commit(repo: Path, message: str, *paths: str) -> str:
    if paths:
        run(repo, "add", *paths)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def diff_json(repo: Path, *revs: str) -> dict:
    return json.loads(run(repo, "diff", *revs, "--json").stdout)


def changes(doc: dict) -> set[tuple]:
    return {(c["kind"], c["path"], c["old_path"], c["size"], c["old_size"]) for c in doc["changes"]}


def ls_json(repo: Path, *args: str) -> dict[str, dict]:
    items = json.loads(run(repo, "ls", *args, "--json").stdout)
    by_path = {i["path"]: i for i in items}
    assert len(by_path) == len(items), "ls listed a path twice"
    return by_path


def replace(path: Path, data: bytes) -> None:
    """Write new bytes the way a user's tool would: a new file (checked-out files may be read-only)."""
    path.unlink()
    path.write_bytes(data)


def object_path(repo: Path, data: bytes) -> Path:
    d = xxhash.xxh3_128_hexdigest(data)
    return repo / ".dvlite" / "cache" / "objects" / d[:2] / d[2:]


V1 = {
    "data/keep.txt": b"unchanged",
    "data/edit.txt": b"old text",
    "data/drop.txt": b"to be deleted",
    "data/sub/move_me.csv": b"a,b\n1,2\n",
}


def two_revisions(repo: Path) -> tuple[str, str]:
    write_tree(repo, {**V1, "model.bin": b"m" * 5})
    r1 = commit(repo, "v1", "data", "model.bin")
    (repo / "data" / "drop.txt").unlink()
    replace(repo / "data" / "edit.txt", b"new, longer text")
    (repo / "data" / "sub" / "deeper").mkdir()
    (repo / "data" / "sub" / "move_me.csv").rename(repo / "data" / "sub" / "deeper" / "moved.csv")
    write_tree(repo, {"data/new.txt": b"brand new"})
    replace(repo / "model.bin", b"m" * 9)
    r2 = commit(repo, "v2", "data", "model.bin")
    return r1, r2


V2_CHANGES = {
    ("deleted", "data/drop.txt", None, 13, None),
    ("modified", "data/edit.txt", None, 16, 8),
    ("renamed", "data/sub/deeper/moved.csv", "data/sub/move_me.csv", 8, 8),
    ("added", "data/new.txt", None, 9, None),
    ("modified", "model.bin", None, 9, 5),
}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, str, str]:
    """A repository with two data revisions (see V1 and V2_CHANGES), shared read-only.

    Only tests that read history (rev vs rev diffs, ls) use it; anything that changes
    the workspace or the cache builds its own repository from the `repo` fixture.
    """
    root = tmp_path_factory.mktemp("history") / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    git(root, "add", ".dvlite/config", ".dvlite/.gitignore")
    git(root, "commit", "-q", "-m", "init dvlite")
    r1, r2 = two_revisions(root)
    return root, r1, r2


# --- diff -------------------------------------------------------------------------------

def test_diff_between_revisions_lists_every_change(history):
    repo, r1, r2 = history
    doc = diff_json(repo, r1, r2)
    assert changes(doc) == V2_CHANGES
    assert (doc["a"], doc["b"]) == (r1, r2)
    # the reverse direction undoes each change
    back = changes(diff_json(repo, r2, r1))
    assert back == {
        ("added", "data/drop.txt", None, 13, None),
        ("modified", "data/edit.txt", None, 8, 16),
        ("renamed", "data/sub/move_me.csv", "data/sub/deeper/moved.csv", 8, 8),
        ("deleted", "data/new.txt", None, 9, None),
        ("modified", "model.bin", None, 5, 9),
    }
    # symbolic revisions work as in git
    assert changes(diff_json(repo, "HEAD~1", "HEAD")) == V2_CHANGES


def test_diff_text_output(history):
    repo, r1, r2 = history
    out = run(repo, "diff", r1, r2).stdout
    lines = out.splitlines()
    row = lambda *words: any(all(w in line for w in words) for line in lines)
    assert row("deleted", "data/drop.txt", "13 B")
    assert row("modified", "data/edit.txt", "8 B -> 16 B")
    assert row("renamed", "data/sub/move_me.csv -> data/sub/deeper/moved.csv")
    assert row("added", "data/new.txt", "9 B")
    assert row("modified", "model.bin", "5 B -> 9 B")
    assert lines[-1] == "1 added, 1 deleted, 2 modified, 1 renamed"
    same = run(repo, "diff", "HEAD", "HEAD")
    assert same.stdout.strip() == "No changes between HEAD and HEAD."


def test_diff_head_against_workspace_sees_uncommitted_edits(repo):
    write_tree(repo, {**V1, "model.bin": b"weights"})
    commit(repo, "v1", "data", "model.bin")
    assert run(repo, "diff").stdout.strip() == "No changes between HEAD and workspace."

    # edits on disk, not yet added: diff compares HEAD's pointers with the files themselves
    replace(repo / "data" / "edit.txt", b"edited on disk")
    (repo / "data" / "drop.txt").unlink()
    write_tree(repo, {"data/sub/extra.bin": b"\x00\x01"})
    (repo / "data" / "keep.txt").rename(repo / "data" / "kept.txt")
    replace(repo / "model.bin", b"new weights!")
    (repo / "data" / "sub" / "move_me.csv").chmod(0o755)  # mode changes count inside directories
    expected = {
        ("modified", "data/sub/move_me.csv", None, 8, 8),
        ("modified", "data/edit.txt", None, 14, 8),
        ("deleted", "data/drop.txt", None, 13, None),
        ("added", "data/sub/extra.bin", None, 2, None),
        ("renamed", "data/kept.txt", "data/keep.txt", 9, 9),
        ("modified", "model.bin", None, 12, 7),
    }
    doc = diff_json(repo)
    assert (doc["a"], doc["b"]) == ("HEAD", "workspace")
    assert changes(doc) == expected
    assert changes(diff_json(repo, "HEAD")) == expected
    # after `dvlite add` (pointers changed, not committed) HEAD vs workspace is the same
    run(repo, "add", "data", "model.bin")
    assert changes(diff_json(repo)) == expected
    # once committed, nothing differs
    commit(repo, "v2")
    assert diff_json(repo)["changes"] == []
    # a deleted single tracked file shows up as deleted
    (repo / "model.bin").unlink()
    assert changes(diff_json(repo)) == {("deleted", "model.bin", None, 12, None)}


def test_diff_renames_pair_by_content(repo):
    write_tree(repo, {"data/a/one.bin": b"1" * 100, "data/a/two.bin": b"2" * 200,
                      "data/same1.txt": b"dup", "data/same2.txt": b"dup"})
    r1 = commit(repo, "v1", "data")
    (repo / "data" / "b").mkdir()
    (repo / "data" / "a" / "one.bin").rename(repo / "data" / "b" / "one.bin")  # moved to a new folder
    (repo / "data" / "a" / "two.bin").rename(repo / "data" / "a" / "zwei.bin")  # renamed in place
    (repo / "data" / "same1.txt").rename(repo / "data" / "same3.txt")  # one of two identical files
    r2 = commit(repo, "v2", "data")
    assert changes(diff_json(repo, r1, r2)) == {
        ("renamed", "data/b/one.bin", "data/a/one.bin", 100, 100),
        ("renamed", "data/a/zwei.bin", "data/a/two.bin", 200, 200),
        ("renamed", "data/same3.txt", "data/same1.txt", 3, 3),
    }
    # renamed and changed is not a rename: it is a deletion and an addition
    (repo / "data" / "b" / "one.bin").rename(repo / "data" / "b" / "uno.bin")
    replace(repo / "data" / "b" / "uno.bin", b"1" * 101)
    assert changes(diff_json(repo)) == {
        ("deleted", "data/b/one.bin", None, 100, None),
        ("added", "data/b/uno.bin", None, 101, None),
    }


def test_diff_single_file_pointer_changes(repo):
    write_tree(repo, {"models/model.bin": b"A" * 1000})
    r1 = commit(repo, "v1", "models/model.bin")
    replace(repo / "models" / "model.bin", b"B" * 1000)  # same size, new content
    r2 = commit(repo, "v2", "models/model.bin")
    replace(repo / "models" / "model.bin", b"C" * 4096)
    r3 = commit(repo, "v3", "models/model.bin")
    assert changes(diff_json(repo, r1, r2)) == {("modified", "models/model.bin", None, 1000, 1000)}
    assert changes(diff_json(repo, r2, r3)) == {("modified", "models/model.bin", None, 4096, 1000)}
    text = run(repo, "diff", r2, r3).stdout
    assert "models/model.bin" in text and "1000 B -> 4.0 KiB" in text
    # the pointer is all diff needs: the data on disk is not read for rev vs rev
    (repo / "models" / "model.bin").unlink()
    assert changes(diff_json(repo, r1, r2)) == {("modified", "models/model.bin", None, 1000, 1000)}


def test_diff_pointer_added_and_removed_between_revisions(repo):
    write_tree(repo, {"old.bin": b"old data", "data/x.txt": b"x"})
    r1 = commit(repo, "v1", "old.bin", "data")
    run(repo, "remove", "old.bin.dvl")
    write_tree(repo, {"extra/e1.txt": b"e1", "extra/deep/e2.txt": b"e22", "more.bin": b"more"})
    r2 = commit(repo, "v2", "extra", "more.bin")
    assert not (repo / "old.bin.dvl").exists()
    forward = {
        ("deleted", "old.bin", None, 8, None),
        ("added", "extra/e1.txt", None, 2, None),
        ("added", "extra/deep/e2.txt", None, 3, None),
        ("added", "more.bin", None, 4, None),
    }
    assert changes(diff_json(repo, r1, r2)) == forward
    assert changes(diff_json(repo, r2, r1)) == {
        ("added", "old.bin", None, 8, None),
        ("deleted", "extra/e1.txt", None, 2, None),
        ("deleted", "extra/deep/e2.txt", None, 3, None),
        ("deleted", "more.bin", None, 4, None),
    }
    # a tracked path moved with `dvlite move` is a rename
    run(repo, "move", "more.bin", "renamed.bin")
    r3 = commit(repo, "v3")
    assert changes(diff_json(repo, r2, r3)) == {("renamed", "renamed.bin", "more.bin", 4, 4)}


def test_diff_json_shape(history):
    repo, r1, r2 = history
    doc = diff_json(repo, r1, r2)
    assert set(doc) == {"a", "b", "changes", "unreadable"}
    assert doc["unreadable"] == []
    assert doc["changes"], "expected changes"
    for c in doc["changes"]:
        assert set(c) == {"kind", "path", "size", "old_path", "old_size"}
        assert c["kind"] in {"added", "deleted", "modified", "renamed"}
        assert isinstance(c["size"], int)
        assert (c["old_path"] is not None) == (c["kind"] == "renamed")
        assert (c["old_size"] is not None) == (c["kind"] in {"modified", "renamed"})
    # changes come sorted by path, so output is stable
    paths = [c["path"] for c in doc["changes"]]
    assert paths == sorted(paths)


def test_diff_reports_a_directory_whose_manifest_is_not_in_the_cache(repo):
    write_tree(repo, {"data/a.txt": b"a"})
    r1 = commit(repo, "v1", "data")
    write_tree(repo, {"data/b.txt": b"b"})
    r2 = commit(repo, "v2", "data")
    manifest = git(repo, "show", f"{r1}:data.dvl").split("digest:")[1].split()[0]
    (repo / ".dvlite" / "cache" / "objects" / manifest[:2] / manifest[2:]).unlink()
    doc = diff_json(repo, r1, r2)
    assert doc["unreadable"] == ["data"]
    proc = run(repo, "diff", r1, r2)
    assert "data: manifest not in the cache" in proc.stderr


def test_diff_unknown_revision_is_a_one_line_error(history):
    repo, _r1, _r2 = history
    for args in (["no-such-rev"], ["HEAD", "no-such-rev"], ["no-such-rev", "HEAD"]):
        proc = run(repo, "diff", *args, check=False)
        assert proc.returncode == 2, proc
        lines = proc.stderr.strip().splitlines()
        assert lines[0] == "error: unknown revision 'no-such-rev'"
        assert len(lines) <= 2 and all(l.startswith(("error:", "hint:")) for l in lines)
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""
    proc = run(repo, "diff", "no-such-rev", "--json", check=False)
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["exit_code"] == 2


# --- ls ---------------------------------------------------------------------------------

def test_ls_lists_tracked_paths_with_sizes(history):
    repo, _r1, r2 = history
    items = ls_json(repo)
    assert set(items) == {"data", "model.bin"}
    assert (items["data"]["kind"], items["data"]["size"], items["data"]["files"]) == ("dir", 42, 4)
    assert (items["model.bin"]["kind"], items["model.bin"]["size"]) == ("file", 9)
    assert items["model.bin"]["digest"] == xxhash.xxh3_128_hexdigest(b"m" * 9)
    assert items["data"]["digest"] == git(repo, "show", f"{r2}:data.dvl").split("digest:")[1].split()[0]
    assert all(i["in_cache"] is True for i in items.values())
    lines = run(repo, "ls").stdout.splitlines()
    assert any("data/" in l and "42 B" in l and " 4 " in f"{l} " and "yes" in l for l in lines)
    assert any("model.bin" in l and "9 B" in l and "yes" in l for l in lines)
    assert not any(".txt" in l or ".csv" in l for l in lines)  # files inside data/ need -R


def test_ls_recursive_lists_files_inside_directories(history):
    repo, _r1, _r2 = history
    items = ls_json(repo, "-R")
    assert {p: (i["kind"], i["size"]) for p, i in items.items()} == {
        "data": ("dir", 42),
        "data/keep.txt": ("entry", 9),
        "data/edit.txt": ("entry", 16),
        "data/new.txt": ("entry", 9),
        "data/sub/deeper/moved.csv": ("entry", 8),
        "model.bin": ("file", 9),
    }
    assert items["data/new.txt"]["digest"] == xxhash.xxh3_128_hexdigest(b"brand new")
    assert all(i["in_cache"] is True for i in items.values())
    assert "data/sub/deeper/moved.csv" in run(repo, "ls", "-R").stdout
    # a path limits the listing; a path inside a tracked directory lists the files under it
    assert set(ls_json(repo, "model.bin")) == {"model.bin"}
    assert set(ls_json(repo, "data/sub")) == {"data/sub/deeper/moved.csv"}
    assert set(ls_json(repo, "data/new.txt")) == {"data/new.txt"}
    # paths are relative to the current directory, as in git
    from_sub = json.loads(run(repo / "data", "ls", "sub", "--json").stdout)
    assert [i["path"] for i in from_sub] == ["data/sub/deeper/moved.csv"]


def test_ls_rev_reads_an_older_revision_without_checking_out(history):
    repo, r1, _r2 = history
    before_files = tree_digests(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    old = ls_json(repo, "--rev", r1, "-R")
    assert {p: (i["kind"], i["size"]) for p, i in old.items()} == {
        "data": ("dir", 38),
        "data/keep.txt": ("entry", 9),
        "data/edit.txt": ("entry", 8),
        "data/drop.txt": ("entry", 13),
        "data/sub/move_me.csv": ("entry", 8),
        "model.bin": ("file", 5),
    }
    assert old["model.bin"]["digest"] == xxhash.xxh3_128_hexdigest(b"m" * 5)
    assert old["data/drop.txt"]["digest"] == xxhash.xxh3_128_hexdigest(b"to be deleted")
    assert all(i["in_cache"] for i in old.values())
    assert {p: i["size"] for p, i in ls_json(repo, "--rev", "HEAD~1").items()} == {
        "data": 38, "model.bin": 5,
    }
    # nothing changed on disk or in git
    assert tree_digests(repo) == before_files
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "status", "--porcelain") == ""
    proc = run(repo, "ls", "--rev", "no-such-rev", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown revision 'no-such-rev'"


def test_ls_in_cache_false_after_an_object_is_deleted(repo):
    write_tree(repo, {"data/a.txt": b"a" * 10, "data/b.txt": b"b" * 20, "model.bin": b"m" * 100})
    commit(repo, "v1", "data", "model.bin")
    object_path(repo, b"m" * 100).unlink()
    object_path(repo, b"b" * 20).unlink()
    # a pointer not yet committed is listed too (ls reads the workspace's pointers by default)
    write_tree(repo, {"later.bin": b"later"})
    run(repo, "add", "later.bin")
    items = ls_json(repo, "-R")
    assert {p: i["in_cache"] for p, i in items.items()} == {
        "data": True,  # its manifest is still there
        "data/a.txt": True,
        "data/b.txt": False,
        "model.bin": False,
        "later.bin": True,
    }
    lines = run(repo, "ls", "-R").stdout.splitlines()
    assert any("model.bin" in l and l.rstrip().endswith("no") for l in lines)
    assert any("data/b.txt" in l and l.rstrip().endswith("no") for l in lines)
    assert any("data/a.txt" in l and l.rstrip().endswith("yes") for l in lines)

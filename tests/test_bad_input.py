"""Bad input gives one clear line and a non-zero exit; awkward file names round-trip exactly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import git, run, tree_digests, write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def commit(root: Path, msg: str = "data") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", msg)


def assert_clean_error(proc, *needles: str, code: int | None = 2) -> str:
    """Exit != 0, first stderr line `error: ...` naming `needles`, at most a hint after it."""
    assert proc.returncode != 0, proc
    if code is not None:
        assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert all(ln.startswith("hint: ") for ln in lines[1:]), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, proc.stderr)
    return lines[0]


# --- add refuses bad paths ---------------------------------------------------------------

def test_add_missing_path(repo):
    assert_clean_error(run(repo, "add", "no/such/file.csv", check=False), "no/such/file.csv")


def test_add_path_outside_repo(repo, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    proc = run(repo, "add", outside, check=False)
    assert_clean_error(proc, str(outside), "outside the repository")
    proc = run(repo, "add", "../outside.bin", check=False)
    assert_clean_error(proc, "../outside.bin", "outside the repository")
    assert not (tmp_path / "outside.bin.dvl").exists()


def test_add_inside_git_dir(repo):
    assert_clean_error(run(repo, "add", ".git/config", check=False), ".git/config")
    assert_clean_error(run(repo, "add", ".git", check=False), ".git")
    assert not (repo / ".git" / "config.dvl").exists()


def test_add_inside_dvlite_dir(repo):
    assert_clean_error(run(repo, "add", ".dvlite/config", check=False), ".dvlite/config")
    assert_clean_error(run(repo, "add", ".dvlite", check=False), ".dvlite")
    assert not (repo / ".dvlite.dvl").exists()


def test_add_git_tracked_file(repo):
    write_tree(repo, {"src/code.py": b"print(1)\n"})
    commit(repo, "code")
    proc = run(repo, "add", "src/code.py", check=False)
    assert_clean_error(proc, "src/code.py", "git")
    assert "git rm" in proc.stderr and "--cached" in proc.stderr
    proc = run(repo, "add", "src", check=False)  # a directory holding git-tracked files
    assert_clean_error(proc, "src")
    assert not (repo / "src.dvl").exists() and not (repo / "src" / "code.py.dvl").exists()


def test_add_path_inside_tracked_dir_names_the_pointer(repo):
    write_tree(repo, {"data/a.csv": b"a", "data/sub/b.csv": b"b"})
    run(repo, "add", "data")
    proc = run(repo, "add", "data/sub/b.csv", check=False)
    assert_clean_error(proc, "data/sub/b.csv", "data.dvl")
    assert "dvlite add data" in proc.stderr  # the hint says what to do instead
    assert not (repo / "data" / "sub" / "b.csv.dvl").exists()


def test_add_dir_containing_tracked_path(repo):
    write_tree(repo, {"data/a.csv": b"a", "data/b.csv": b"b"})
    run(repo, "add", "data/a.csv")
    proc = run(repo, "add", "data", check=False)
    assert_clean_error(proc, "data", "data/a.csv.dvl")
    assert not (repo / "data.dvl").exists()


def test_add_symlink_pointing_outside(repo, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not yours")
    (repo / "link.txt").symlink_to(secret)
    assert_clean_error(run(repo, "add", "link.txt", check=False), "link.txt", "outside")
    (repo / "d").mkdir()
    (repo / "d" / "ok.txt").write_bytes(b"ok")
    (repo / "d" / "escape").symlink_to(tmp_path)
    proc = run(repo, "add", "d", check=False)
    assert_clean_error(proc, "escape", "outside")
    assert not (repo / "d.dvl").exists() and not (repo / "link.txt.dvl").exists()
    # nothing of it reached the cache (which records only that this project uses it)
    cache = repo / ".dvlite" / "cache"
    objects = [p for p in cache.rglob("*") if p.is_file() and p.parent.name != "projects"]
    assert objects == []


def test_add_repo_root_and_pointer_file(repo):
    assert_clean_error(run(repo, "add", ".", check=False), "root")
    write_tree(repo, {"a.bin": b"a"})
    run(repo, "add", "a.bin")
    assert_clean_error(run(repo, "add", "a.bin.dvl", check=False), "a.bin.dvl")


def test_bad_add_changes_nothing_even_with_good_paths(repo):
    write_tree(repo, {"good.bin": b"g"})
    proc = run(repo, "add", "good.bin", "missing.bin", check=False)
    assert_clean_error(proc, "missing.bin")
    assert not (repo / "good.bin.dvl").exists()
    assert not (repo / ".gitignore").exists()


# --- malformed files -------------------------------------------------------------------

BAD_POINTERS = {
    "invalid-yaml": (b"version: 1\nkind: [file\n", "invalid YAML"),
    "version-99": (
        b"version: 99\nkind: file\nhash: xxh3-128\ndigest: 0123456789abcdef0123456789abcdef\nsize: 1\n",
        "version 99",
    ),
    "bad-digest": (b"version: 1\nkind: file\nhash: xxh3-128\ndigest: zzz\nsize: 1\n", "zzz"),
    "missing-digest": (b"version: 1\nkind: file\nhash: xxh3-128\nsize: 1\n", "digest"),
    "yaml-list": (b"- version: 1\n- kind: file\n", "mapping"),
    "empty": (b"", "mapping"),
    "unknown-hash": (
        b"version: 1\nkind: file\nhash: md5\ndigest: 0123456789abcdef0123456789abcdef\nsize: 1\n",
        "md5",
    ),
    "negative-size": (
        b"version: 1\nkind: file\nhash: xxh3-128\ndigest: 0123456789abcdef0123456789abcdef\nsize: -1\n",
        "size",
    ),
    "unknown-kind": (
        b"version: 1\nkind: blob\nhash: xxh3-128\ndigest: 0123456789abcdef0123456789abcdef\nsize: 1\n",
        "blob",
    ),
    "binary": (b"\x00\xff\xfe\x80garbage", ""),
}


@pytest.fixture
def repo_with_data(repo):
    write_tree(repo, {"good.bin": b"good", "data/x.csv": b"x"})
    run(repo, "add", "good.bin", "data")
    commit(repo)
    return repo


def test_malformed_pointers(repo_with_data):
    """One repository, each malformed pointer in turn (a fixture per case costs seconds)."""
    repo = repo_with_data
    (repo / "good.bin").unlink()
    for case, (content, needle) in sorted(BAD_POINTERS.items()):
        (repo / "data.dvl").write_bytes(content)
        for command in ("status", "checkout"):
            proc = run(repo, command, check=False)
            try:
                assert_clean_error(proc, "data.dvl", needle)
            except AssertionError as exc:
                raise AssertionError(f"{case}, dvlite {command}: {exc}") from None
        # checkout refused as a whole: it did not half-restore the good pointer's data
        assert not (repo / "good.bin").exists(), case


def test_malformed_pointer_json_error(repo_with_data):
    import json

    (repo_with_data / "data.dvl").write_bytes(b"version: 99\n")
    proc = run(repo_with_data, "status", "--json", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 2 and "data.dvl" in doc["error"]


@pytest.mark.parametrize("name,content,needle", [
    ("config", b"[core\nbad", "malformed"),
    ("config", b"\xff\xfe not utf-8", "malformed"),
    ("config", b"[cache]\ntype = teleport\n", "teleport"),
    ("config", b"[core]\nlock_timeout = soon\n", "soon"),
    ("config.local", b"[core\nbad", "malformed"),
])
def test_corrupt_config(repo, name, content, needle):
    (repo / ".dvlite" / name).write_bytes(content)
    proc = run(repo, "status", check=False)
    assert_clean_error(proc, f".dvlite/{name}", needle)
    write_tree(repo, {"a.bin": b"a"})
    assert_clean_error(run(repo, "add", "a.bin", check=False), f".dvlite/{name}")
    assert not (repo / "a.bin.dvl").exists()


def test_outside_a_dvlite_repo(tmp_path):
    env = {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    for args in (["status"], ["checkout"], ["add", "x"], ["config", "--list"]):
        proc = run(tmp_path, *args, check=False, env=env)
        assert_clean_error(proc, "not a dvlite repository")
        assert "dvlite init" in proc.stderr


def test_unknown_option_is_a_usage_error_not_a_traceback(repo):
    proc = run(repo, "status", "--bogus", check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "--bogus" in proc.stderr


def test_verbose_shows_the_traceback(repo):
    proc = run(repo, "-v", "add", "missing.bin", check=False)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert "error: no such file or directory: missing.bin" in proc.stderr
    (repo / "x.dvl").write_bytes(b"version: 99\n")
    proc = run(repo, "--verbose", "status", check=False)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "FormatError" in proc.stderr


# --- awkward file names ------------------------------------------------------------------

WEIRD = {
    "with space.txt": b"spaces\n",
    "donn\u00e9es/\u00df \U0001F600.csv": "unicode \u00e9\n".encode(),
    "new\nline.txt": b"newline in name\n",
    "-weird.txt": b"leading dash\n",
    "tab\there.txt": b"tab\n",
    "glob*?[x]#!.txt": b"glob characters\n",
    "trailing space ": b"trailing\n",
}


def _remove_all(repo: Path, rels) -> None:
    for rel in rels:
        (repo / rel).unlink()


def test_weird_names_as_single_file_pointers(repo):
    write_tree(repo, WEIRD)
    names = sorted(WEIRD)
    dash = "-weird.txt"
    others = [n for n in names if n != dash]
    hints = [run(repo, "add", *others).stdout, run(repo, "add", "--", dash).stdout]
    for n in names:
        assert (repo / (n + ".dvl")).is_file(), n
    # the printed `git add ...` hint works when pasted into a shell, and adds exactly
    # the pointers and .gitignore files
    for out in hints:
        command = out.split("git add ", 1)[1]
        subprocess.run(["sh", "-c", "git add " + command], cwd=repo, check=True)
    staged = set(git(repo, "diff", "--cached", "--name-only", "-z").split("\0")) - {""}
    assert staged == {n + ".dvl" for n in names} | {".gitignore", "donn\u00e9es/.gitignore"}
    git(repo, "commit", "-qm", "pointers")
    # git ignores the data (except a name with a newline, which .gitignore cannot express)
    ls = git(repo, "ls-files", "-z").split("\0")
    for n in names:
        assert n + ".dvl" in ls and n not in ls, n
    untracked = git(repo, "status", "--porcelain", "-z", "--untracked-files=all").split("\0")
    assert [u for u in untracked if u] == ["?? new\nline.txt"]
    assert "up to date" in run(repo, "status").stdout
    _remove_all(repo, names)
    out = run(repo, "status").stdout
    assert out.count(": deleted") == len(names)
    run(repo, "checkout")
    for n, data in WEIRD.items():
        assert (repo / n).read_bytes() == data, n
    # each one can also be named as a checkout target
    _remove_all(repo, names)
    run(repo, "checkout", *others[:3])
    for n, data in WEIRD.items():
        assert (repo / n).exists() == (n in others[:3]), n
    run(repo, "checkout", "--", *others[3:], dash)
    for n, data in WEIRD.items():
        assert (repo / n).read_bytes() == data, n
    assert "up to date" in run(repo, "status").stdout


def test_leading_dash_added_as_dot_slash(repo):
    write_tree(repo, {"-weird.txt": b"dash"})
    run(repo, "add", "./-weird.txt")
    assert (repo / "-weird.txt.dvl").is_file()
    (repo / "-weird.txt").unlink()
    run(repo, "checkout", "--", "-weird.txt")
    assert (repo / "-weird.txt").read_bytes() == b"dash"


def test_weird_names_inside_tracked_dir(repo):
    write_tree(repo, {f"tree/{n}": d for n, d in WEIRD.items()})
    write_tree(repo, {f"tree/{n}/nested {i}.bin": bytes([i]) * 3
                      for i, n in enumerate(["sub dir", "-dash dir", "ü"])})
    before = tree_digests(repo / "tree")
    run(repo, "add", "tree")
    commit(repo)
    (repo / "tree" / "with space.txt").write_bytes(b"edited")
    (repo / "tree" / "new\nline.txt").unlink()
    out = run(repo, "status").stdout
    assert "with space.txt" in out
    shutil.rmtree(repo / "tree")
    run(repo, "checkout", "--force")
    assert tree_digests(repo / "tree") == before
    assert "up to date" in run(repo, "status").stdout


def test_non_utf8_file_names(repo):
    """A single-file pointer round-trips; inside a directory the name is refused cleanly."""
    solo = os.fsencode(repo) + b"/solo\xff.bin"
    with open(solo, "wb") as f:
        f.write(b"solo")
    os.makedirs(os.fsencode(repo / "tree"))
    with open(os.fsencode(repo / "tree") + b"/caf\xe9.txt", "wb") as f:
        f.write(b"latin-1 name")
    proc = run(repo, "add", "tree", check=False)
    assert_clean_error(proc, "tree/caf\\xe9.txt", "UTF-8")
    assert not (repo / "tree.dvl").exists()
    proc = subprocess.run(  # raw bytes in argv and in the output
        [sys.executable, "-m", "dvlite", os.fsdecode(b"add"), os.fsdecode(b"solo\xff.bin")],
        cwd=repo, capture_output=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert b"added: solo\xff.bin" in proc.stdout
    assert os.path.isfile(solo + b".dvl")
    with open(os.fsencode(repo / ".gitignore"), "rb") as f:
        assert f.read() == b"/solo\xff.bin\n"
    commit(repo)
    assert "up to date" in run(repo, "status").stdout
    os.unlink(solo)
    proc = subprocess.run(
        [sys.executable, "-m", "dvlite", "status"], cwd=repo, capture_output=True, check=False
    )
    assert b"solo\xff.bin: deleted" in proc.stdout
    run(repo, "checkout")
    with open(solo, "rb") as f:
        assert f.read() == b"solo"
    assert "up to date" in run(repo, "status").stdout


# --- property: any tree of names and bytes round-trips -------------------------------------

_name_chars = st.characters(
    blacklist_categories=("Cs", "Cc"),  # no surrogates or control characters
    blacklist_characters="/\x00",
)
NAME = st.text(_name_chars, min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..") and not n.startswith(".dvlite-tmp-")
    and len(n.encode()) <= 200
)
TREE = st.dictionaries(
    st.lists(NAME, min_size=1, max_size=3).map(tuple),
    st.binary(max_size=300),
    min_size=1,
    max_size=8,
)


def _files_only(tree: dict[tuple, bytes]) -> dict[str, bytes]:
    """Drop any path that is also a directory of another path."""
    keys = set(tree)
    return {
        "/".join(k): v for k, v in tree.items()
        if not any(o != k and o[: len(k)] == k for o in keys)
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, single=NAME.filter(lambda n: not n.endswith(".dvl")), single_bytes=st.binary(max_size=300))
def test_any_tree_round_trips(tree, single, single_bytes):
    from dvlite.data import checkout as checkout_mod
    from dvlite.data.add import add
    from dvlite.data.status import status
    from dvlite.repo import Repo

    files = _files_only(tree)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        repo = Repo.init(str(root), no_scm=True)
        write_tree(root / "tree", files)
        write_tree(root / "solo", {single: single_bytes})
        before = tree_digests(root / "tree")
        assert len(before) == len(files)
        add(repo, [str(root / "tree"), str(root / "solo" / single)])
        shutil.rmtree(root / "tree")
        (root / "solo" / single).unlink()
        repo = Repo.find(str(root))  # a fresh process would start with a fresh Repo
        result = checkout_mod.checkout(repo, [])
        assert result.ok and len(result.written) == len(files) + 1
        assert tree_digests(root / "tree") == before
        assert (root / "solo" / single).read_bytes() == single_bytes
        statuses = status(Repo.find(str(root)), [])
        assert all(s.clean for s in statuses), statuses

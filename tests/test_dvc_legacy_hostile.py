"""DVC's files at a commit from before the switch are read like every other input: untrusted.
Hand-written `.dvc` files, `dvc.lock` files and DVC caches (no DVC needed) that try to escape
the repository, lie about their bytes, or damage the md5 index."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import git, run


def dvc_repo(root: Path) -> Path:
    """A git repository that DVC would call its own: `.dvc/` with an empty config."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / ".dvc").mkdir()
    (root / ".dvc" / "config").write_text("")
    return root


def cache_object(root: Path, data: bytes) -> str:
    md5 = hashlib.md5(data).hexdigest()
    path = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5


def dvc_file(root: Path, name: str, path: str, md5: str, size: int = 5) -> None:
    (root / name).write_text(f"outs:\n- md5: {md5}\n  size: {size}\n  hash: md5\n  path: {path}\n")


def test_an_ordinary_pre_switch_file_checks_out(tmp_path: Path) -> None:
    root = dvc_repo(tmp_path / "r")
    md5 = cache_object(root, b"hello")
    dvc_file(root, "greeting.txt.dvc", "greeting.txt", md5)
    run(root, "checkout")
    assert (root / "greeting.txt").read_bytes() == b"hello"
    assert run(root, "status").returncode == 0
    assert "/.dvlite/cache" in (root / ".git" / "info" / "exclude").read_text()


@pytest.mark.parametrize("path", ["../escape.txt", "/tmp/abs.txt", "sub/../../escape.txt", ".git/hooks/pre-commit"])
def test_a_dvc_file_naming_a_path_outside_is_refused(tmp_path: Path, path: str) -> None:
    root = dvc_repo(tmp_path / "r")
    md5 = cache_object(root, b"hello")
    dvc_file(root, "x.dvc", path, md5)
    proc = run(root, "checkout", check=False)
    assert proc.returncode in (2, 4), proc.stderr
    assert "x.dvc" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2
    assert not (tmp_path / "escape.txt").exists()
    assert not (root / ".git" / "hooks" / "pre-commit").exists()


def test_a_corrupt_object_in_the_dvc_cache_is_named_and_not_checked_out(tmp_path: Path) -> None:
    root = dvc_repo(tmp_path / "r")
    md5 = cache_object(root, b"hello")
    obj = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    obj.write_bytes(b"HELLO")
    dvc_file(root, "greeting.txt.dvc", "greeting.txt", md5)
    proc = run(root, "checkout", check=False)
    assert proc.returncode == 4
    assert "corrupt object in the DVC cache" in proc.stderr and md5[2:] in proc.stderr
    assert not (root / "greeting.txt").exists()


@pytest.mark.parametrize("text, message", [
    ("outs:\n- md5: nothex\n  path: a\n", "bad md5"),
    ("outs: [1, 2]\n", "exactly one output"),
    ("outs:\n- md5: 0123456789abcdef0123456789abcdef\n  path: a\n  hash: sha1\n", "unknown hash"),
    ("&a [*a]\n", "x.dvc"),
    ("a: " + "[" * 200 + "]" * 200 + "\n", "x.dvc"),
])
def test_malformed_dvc_files_are_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    root = dvc_repo(tmp_path / "r")
    (root / "x.dvc").write_text(text)
    proc = run(root, "status", check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_dvc_lock_out_outside_is_refused(tmp_path: Path) -> None:
    root = dvc_repo(tmp_path / "r")
    md5 = cache_object(root, b"hello")
    (root / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo\n    outs: [out.txt]\n")
    (root / "dvc.lock").write_text(f"schema: '2.0'\nstages:\n  s:\n    cmd: echo\n    outs:\n"
                                   f"    - path: ../../escape.txt\n      md5: {md5}\n      size: 5\n")
    proc = run(root, "checkout", check=False)
    assert proc.returncode in (2, 4) and "dvc.lock" in proc.stderr, proc.stderr
    assert not (tmp_path / "escape.txt").exists()


def test_a_damaged_md5_index_is_ignored_and_the_dvc_cache_used(tmp_path: Path) -> None:
    root = dvc_repo(tmp_path / "r")
    md5 = cache_object(root, b"hello")
    dvc_file(root, "greeting.txt.dvc", "greeting.txt", md5)
    run(root, "checkout")
    index = root / ".dvlite" / "cache" / "dvc-md5.sqlite"
    assert index.exists()
    index.write_bytes(b"not a database at all" * 100)
    (root / "greeting.txt").unlink()
    run(root, "checkout")
    assert (root / "greeting.txt").read_bytes() == b"hello"


def test_a_dvc_file_beside_a_dvl_pointer_is_not_read(tmp_path: Path, repo: Path) -> None:
    (repo / "a.txt").write_text("dvlite's\n")
    run(repo, "add", "a.txt")
    (repo / "a.txt.dvc").write_text("this is not yaml: [\n")  # never parsed: dvlite's pointer wins
    assert run(repo, "status").returncode == 0

""".dvliteignore through the real CLI: `check-ignore` against git's own answers for the same
rules, its --details/--json output and exit codes, bad and hostile rule files; and (once
workspace/scan.py asks the matcher) add, status and checkout honouring the rules."""

from __future__ import annotations

import inspect
import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import git, run, write_tree

RULES = {
    "": ["# top rules", "*.tmp", "!keep.tmp", "/build/", "logs/", "a/**/b", "doc/*.txt",
         "!doc/readme.txt", "deep/**", "!deep/keep/", "trail\\ ", "[xy].csv", "**/cache"],
    "sub": ["*.csv", "!important.csv", "/local.bin", "nested/"],
    "sub/inner": ["!*.csv", "x*"],
}
FILES = [
    "x.tmp", "keep.tmp", "d/keep.tmp", "d/x.tmp", "build/f", "d/build/f", "e/build", "logs/f",
    "d/logs/f", "e/logs", "a/b", "a/x/y/b", "doc/a.txt", "doc/readme.txt", "doc/s/a.txt",
    "deep/a", "deep/keep/f", "deep/x/y", "trail ", "trail", "x.csv", "z.csv", "d/cache/f",
    "sub/a.csv", "sub/important.csv", "sub/local.bin", "sub/d/local.bin", "sub/nested/f",
    "sub/inner/a.csv", "sub/inner/xray", "sub/inner/ok", "plain.bin", "sub/plain.bin",
]


def _rule_tree(root: Path, ignore_name: str) -> None:
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    for d, lines in RULES.items():
        (root / d / ignore_name).write_text("\n".join(lines) + "\n")


def test_check_ignore_agrees_with_git_on_nested_rules(repo: Path, tmp_path: Path):
    _rule_tree(repo / "w", ".dvliteignore")
    truth_repo = tmp_path / "truth"
    git(tmp_path, "init", "-q", "truth")
    _rule_tree(truth_repo / "w", ".gitignore")
    paths = [f"w/{rel}" for rel in FILES]
    proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=truth_repo,
                          input="\n".join(paths), capture_output=True, text=True, check=False)
    expected = set(proc.stdout.splitlines())
    assert 10 < len(expected) < len(paths)  # the rules ignore some paths, not all
    ours = run(repo, "check-ignore", *paths, check=False)
    assert ours.returncode == 0, ours.stderr
    assert set(ours.stdout.splitlines()) == expected


def test_details_name_the_file_line_and_pattern_and_negations_show(repo: Path):
    _rule_tree(repo, ".dvliteignore")
    out = run(repo, "check-ignore", "--details", "-n", "x.tmp", "sub/inner/a.csv", "plain.bin",
               "sub/nested/f", check=True).stdout.splitlines()
    assert out == [
        ".dvliteignore:2:*.tmp\tx.tmp",
        "sub/inner/.dvliteignore:1:!*.csv\tsub/inner/a.csv",  # re-included: shown, not ignored
        "::\tplain.bin",
        "sub/.dvliteignore:4:nested/\tsub/nested/f",  # inside an ignored directory
    ]
    listed = json.loads(run(repo, "check-ignore", "--json", "d/x.tmp", "plain.bin", check=False).stdout)
    assert listed == [
        {"path": "d/x.tmp", "ignored": True, "source": ".dvliteignore", "line": 2, "pattern": "*.tmp"},
        {"path": "plain.bin", "ignored": False, "source": None, "line": None, "pattern": None},
    ]


def test_exit_code_is_1_when_nothing_is_ignored(repo: Path):
    _rule_tree(repo, ".dvliteignore")
    assert run(repo, "check-ignore", "plain.bin", "sub/important.csv", check=False).returncode == 1
    assert run(repo, "check-ignore", "plain.bin", "x.tmp", check=False).returncode == 0
    (repo / "sub").mkdir(exist_ok=True)
    inside = run(repo / "sub", "check-ignore", "a.csv", check=False)  # relative to the current directory
    assert inside.returncode == 0 and inside.stdout == "a.csv\n"


def test_a_directory_pattern_matches_directories_only(repo: Path):
    (repo / ".dvliteignore").write_text("cache/\n")
    (repo / "d" / "cache").mkdir(parents=True)
    (repo / "e").mkdir()
    (repo / "e" / "cache").write_bytes(b"a file named cache")
    assert run(repo, "check-ignore", "d/cache", check=False).returncode == 0
    assert run(repo, "check-ignore", "e/cache", check=False).returncode == 1
    assert run(repo, "check-ignore", "e/cache/", check=False).returncode == 0  # a trailing / says directory


def test_a_bad_pattern_is_one_line_naming_file_and_line(repo: Path):
    (repo / "data").mkdir()
    (repo / "data" / ".dvliteignore").write_text("ok.tmp\n\\\n")
    proc = run(repo, "check-ignore", "data/x", check=False)
    assert proc.returncode == 2
    assert "data/.dvliteignore:2: invalid pattern" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_hostile_pattern_does_not_hang_the_matcher(repo: Path):
    """Patterns that make a backtracking regex take exponential time (`*a*a*a*a*a*a*b` on a
    long name of a's): RE2 matches them in linear time."""
    (repo / ".dvliteignore").write_text("*a*a*a*a*a*a*a*a*b\n" + "**/x/" * 6 + "**/b\n")
    name = "a" * 200 + "c"
    deep = "/".join(["x"] * 300) + "/c"
    started = time.monotonic()
    proc = run(repo, "check-ignore", name, deep, check=False)
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 20


# --- once workspace/scan.py asks the matcher ---------------------------------------------------

def _scan_wired() -> bool:
    from dvlite.workspace import scan

    return "ignores" in inspect.signature(scan.scan_tree).parameters


wired = pytest.mark.skipif(not _scan_wired(), reason="workspace/scan.py does not apply .dvliteignore yet")


@wired
def test_add_and_status_leave_ignored_files_out(repo: Path):
    write_tree(repo, {"data/a.csv": b"a", "data/run.tmp": b"scratch", "data/cache/big.bin": b"c" * 100,
                      "data/cache/keep.txt": b"k", "data/.dvliteignore": b"*.tmp\ncache/\n"})
    run(repo, "add", "data")
    listed = run(repo, "ls", "-R", "--json").stdout
    paths = {item["path"] for item in json.loads(listed)}
    assert {"data/a.csv", "data/.dvliteignore"} <= paths
    assert not {"data/run.tmp", "data/cache/big.bin", "data/cache/keep.txt"} & paths
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    (repo / "data" / "run.tmp").write_bytes(b"changed scratch")
    (repo / "data" / "cache" / "new.bin").write_bytes(b"new")
    assert run(repo, "status", "-q", check=False).returncode == 0  # nothing that counts changed
    (repo / "data" / "a.csv").write_bytes(b"changed")
    assert "modified" in run(repo, "status").stdout


@wired
def test_checkout_never_removes_ignored_files(repo: Path):
    write_tree(repo, {"data/a.csv": b"a", "data/.dvliteignore": b"*.log\n"})
    run(repo, "add", "data")
    (repo / "data" / "train.log").write_bytes(b"my log, in no cache")
    (repo / "data" / "b.csv").write_bytes(b"b")
    run(repo, "add", "data")
    (repo / "data" / "b.csv").unlink()
    run(repo, "checkout", "data")  # restores b.csv; train.log is not the data's business
    assert (repo / "data" / "train.log").read_bytes() == b"my log, in no cache"
    assert (repo / "data" / "b.csv").read_bytes() == b"b"


@wired
def test_a_rule_above_the_tracked_directory_changes_status(repo: Path):
    write_tree(repo, {"data/a.csv": b"a", "data/b.tmp": b"t"})
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    assert run(repo, "status", "-q", check=False).returncode == 0
    (repo / ".dvliteignore").write_text("*.tmp\n")  # outside the tracked tree: b.tmp no longer counts
    assert run(repo, "status", "-q", check=False).returncode == 1

"""CLI habits through the real CLI: -v/-q before or after the command, shell completion,
--json on the commands that change things, and a push that could not send everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DVLITE, GIT_ENV, git, run


@pytest.fixture
def tracked(repo: Path, tmp_path: Path) -> Path:
    (repo / "data").mkdir()
    (repo / "data" / "a.txt").write_text("a\n")
    (repo / "model.bin").write_bytes(b"m" * 100)
    run(repo, "add", "data", "model.bin")
    run(repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    return repo


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_and_verbose_go_before_or_after_the_command(tracked: Path, where: str) -> None:
    (tracked / "data" / "a.txt").chmod(0o644)
    (tracked / "data" / "a.txt").write_text("changed\n")
    args = ["-q", "status"] if where == "before" else ["status", "-q"]
    quiet = run(tracked, *args, check=False)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (1, "", "")
    loud = run(tracked, "status", check=False)
    assert loud.returncode == 0 and "data: modified" in loud.stdout
    pushed = run(tracked, *(["-q", "push"] if where == "before" else ["push", "-q"]))
    assert pushed.stdout == "" and pushed.stderr == ""
    bad = ["-v", "checkout", "nosuch"] if where == "before" else ["checkout", "nosuch", "--verbose"]
    proc = run(tracked, *bad, check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr  # -v: the traceback too
    plain = run(tracked, "checkout", "nosuch", check=False)
    assert "Traceback" not in plain.stderr and plain.stderr.startswith("error: ")


def test_arguments_after_a_double_dash_are_left_alone(tracked: Path) -> None:
    run(tracked, "stage", "add", "-n", "s", "-o", "out.txt", "--", "echo", "-q", "-v")
    assert "cmd: echo -q -v" in (tracked / "dvlite.yaml").read_text()


def _complete(cwd: Path, words: str) -> list[str]:
    env = {**os.environ, **GIT_ENV, "_DVLITE_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    proc = subprocess.run([*DVLITE], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_offers_commands_remotes_and_tracked_paths(tracked: Path) -> None:
    assert sorted(_complete(tracked, "dvlite pu")) == ["pull", "push"]
    assert _complete(tracked, "dvlite push -r ") == ["store"]
    assert set(_complete(tracked, "dvlite pull ")) == {"data", "model.bin"}
    assert _complete(tracked, "dvlite checkout mod") == ["model.bin"]


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o default -F _dvlite_completion dvlite"),
                                           ("zsh", "compdef _dvlite_completion dvlite"),
                                           ("fish", "complete --command dvlite")])
def test_the_completion_script_is_printed_for_each_shell(tmp_path: Path, shell: str, marker: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "dvlite", "--show-completion", shell], cwd=tmp_path,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and f"_DVLITE_COMPLETE=complete_{shell}" in proc.stdout


@pytest.mark.parametrize("shell, extra", [("zsh", {}), ("fish", {"_TYPER_COMPLETE_FISH_ACTION": "get-args"})])
def test_zsh_and_fish_complete_too(tracked: Path, shell: str, extra: dict) -> None:
    env = {**os.environ, **GIT_ENV, "_DVLITE_COMPLETE": f"complete_{shell}",
           "_TYPER_COMPLETE_ARGS": "dvlite pu", **extra}
    proc = subprocess.run([*DVLITE], cwd=tracked, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "push" in proc.stdout and "pull" in proc.stdout, proc.stderr


def test_json_from_the_commands_that_change_things(tracked: Path) -> None:
    moved = json.loads(run(tracked, "move", "model.bin", "weights.bin", "--json").stdout)
    assert (moved["src"], moved["dst"]) == ("model.bin", "weights.bin")
    unprotected = json.loads(run(tracked, "unprotect", "weights.bin", "--json").stdout)
    assert unprotected == {"unprotected": ["weights.bin"]} or unprotected["unprotected"] == []
    removed = json.loads(run(tracked, "remove", "weights.bin", "--json").stdout)
    assert removed["removed"][0]["path"] == "weights.bin" and (tracked / "weights.bin").exists()
    stage = json.loads(run(tracked, "stage", "add", "-n", "s", "-d", "data", "-o", "o.txt", "--json",
                           "--", "cp", "data/a.txt", "o.txt").stdout)
    assert stage == {"name": "s", "file": "dvlite.yaml", "cmd": "cp data/a.txt o.txt",
                     "deps": ["data"], "outs": ["o.txt"]}


def test_a_push_with_objects_missing_locally_does_not_say_everything_is_there(tracked: Path) -> None:
    run(tracked, "push")
    assert "Everything is already on store." in run(tracked, "push").stdout
    (tracked / "model2.bin").write_bytes(b"z" * 50)
    run(tracked, "add", "model2.bin")
    cache = tracked / ".dvlite" / "cache"
    objects = [p for p in cache.rglob("*") if p.is_file() and p.read_bytes() == b"z" * 50]
    for p in objects:
        p.chmod(0o644)
        p.unlink()
    proc = run(tracked, "push", check=False)
    assert proc.returncode == 1
    assert "Everything is already" not in proc.stdout
    assert "not in the local cache" in proc.stdout + proc.stderr


def _on_a_terminal(cwd: Path, *args: str, delay: str = "0") -> tuple[int, str]:
    """Run dvlite with stderr on a pseudo-terminal (stdout a pipe); what the terminal showed."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, **GIT_ENV, "DVLITE_PROGRESS_DELAY": delay, "COLUMNS": "120"}
    proc = subprocess.Popen([*DVLITE, *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, shown.decode(errors="replace")


def test_long_local_work_shows_progress_on_a_terminal_only(repo: Path) -> None:
    data = repo / "data"
    data.mkdir()
    for i in range(300):
        (data / f"f{i:03}.bin").write_bytes(os.urandom(4096))
    code, shown = _on_a_terminal(repo, "add", "data")
    assert code == 0 and "add" in shown and "300 files" in shown
    assert "1.2/1.2 MiB" in shown and "MiB/s" in shown and "MB/s" not in shown  # one set of units
    for i in range(0, 300, 2):  # half the files changed: status hashes them again
        (data / f"f{i:03}.bin").chmod(0o644)
        (data / f"f{i:03}.bin").write_bytes(os.urandom(4096))
    code, shown = _on_a_terminal(repo, "status")
    # (files added within the last second or so are hashed again: their mtimes are too new to trust)
    assert code == 0 and "status" in shown and ("150 files" in shown or "300 files" in shown)
    import shutil
    shutil.rmtree(data)  # the edits go; checkout writes all 300 again
    code, shown = _on_a_terminal(repo, "checkout")
    assert code == 0 and "checkout" in shown and "300 files" in shown
    code, shown = _on_a_terminal(repo, "fsck")
    assert code == 0 and "fsck" in shown and "files" in shown
    (repo / "data.dvl").unlink()
    code, shown = _on_a_terminal(repo, "gc", "--force")
    assert code == 0 and "gc" in shown and "files" in shown
    # not on a terminal, with -q, or before the delay has passed: no bar
    run(repo, "add", "data")
    assert "files" not in run(repo, "fsck").stderr
    code, shown = _on_a_terminal(repo, "-q", "fsck")
    assert code == 0 and "files" not in shown
    code, shown = _on_a_terminal(repo, "fsck", delay="30")
    assert code == 0 and "files" not in shown


def test_jobs_on_every_command_that_talks_to_a_remote(tracked: Path, tmp_path: Path) -> None:
    run(tracked, "push")
    out = tmp_path / "got"
    run(tmp_path, "get", str(tracked), "data", "-o", str(out), "-j", "2")
    assert (out / "a.txt").read_text() == "a\n"
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    run(other, "init")
    run(other, "import", str(tracked), "model.bin", "-j", "3")
    assert (other / "model.bin").read_bytes() == b"m" * 100
    assert run(other, "update", "-j", "3").returncode == 0
    assert "No problems found." in run(tracked, "fsck", "--cloud", "-j", "4").stdout
    for args in (["fsck", "--cloud", "-j", "0"], ["get", str(tracked), "data", "-j", "0"]):
        bad = run(tmp_path, *args, check=False)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_diff_takes_paths_after_a_double_dash_as_git_does(repo: Path) -> None:
    for d in ("a", "b"):
        (repo / d).mkdir()
        (repo / d / "f").write_text("1\n")
    run(repo, "add", "a", "b")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    for d in ("a", "b"):
        (repo / d / "f").chmod(0o644)
        (repo / d / "f").write_text("2\n")
    run(repo, "add", "a", "b")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two")
    only_a = json.loads(run(repo, "diff", "HEAD~1", "HEAD", "--json", "--", "a").stdout)
    assert [c["path"] for c in only_a["changes"]] == ["a/f"]
    both = json.loads(run(repo, "diff", "HEAD~1", "HEAD", "--json", "--", "a", "b/f").stdout)
    assert sorted(c["path"] for c in both["changes"]) == ["a/f", "b/f"]
    same = json.loads(run(repo, "diff", "--targets", "b", "HEAD~1", "HEAD", "--json").stdout)
    assert [c["path"] for c in same["changes"]] == ["b/f"]


def test_only_the_named_command_is_built_and_the_rest_still_answer(tracked: Path) -> None:
    """Only the command named on the line is turned into a click command (start-up time); a
    group, its help, the root help and a misspelt name still behave as with the whole app."""
    assert "store" in run(tracked, "remote", "list").stdout
    assert "Usage: dvlite push" in run(tracked, "push", "--help").stdout
    root = run(tracked, "--help").stdout
    assert "status" in root and "push" in root and "exp" in root
    typo = run(tracked, "statu", check=False)
    assert typo.returncode != 0 and "status" in typo.stderr
    assert len(typo.stderr.strip().splitlines()) <= 2 and "Traceback" not in typo.stderr

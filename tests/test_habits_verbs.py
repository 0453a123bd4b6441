"""The verbs through the real CLI: commit (pointers and dvlite.lock, running nothing), freeze /
unfreeze (one line of dvlite.yaml, the rest byte for byte), du (from manifests, no checkout),
root, destroy (the data stays, dvlite goes; it asks first)."""

from __future__ import annotations

import hashlib
import json
import os
import pty
import select
import shutil
import subprocess
import time
from pathlib import Path

from conftest import DVLITE, GIT_ENV, git, run, write_tree


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


# --- commit ---------------------------------------------------------------------------------------

def test_commit_records_an_edit_made_after_unprotect(repo: Path):
    run(repo, "config", "cache.type", "hardlink")
    write_tree(repo, {"model.bin": b"v1" * 1000, "data/a.csv": b"a\n", "data/b.csv": b"b\n"})
    run(repo, "add", "model.bin", "data")
    commit_all(repo, "v1")
    (repo / "model.bin").unlink()
    shutil.rmtree(repo / "data")
    run(repo, "checkout")  # now hard links into the cache
    assert os.stat(repo / "model.bin").st_nlink > 1
    run(repo, "unprotect", "model.bin", "data/a.csv")
    (repo / "model.bin").write_bytes(b"v2" * 1500)
    (repo / "data" / "a.csv").write_bytes(b"a, edited\n")
    assert run(repo, "status", "-q", check=False).returncode == 1
    before = (repo / "model.bin.dvl").read_text()
    out = run(repo, "commit", check=True).stdout
    assert "committed: model.bin (model.bin.dvl)" in out and "committed: data (data.dvl)" in out
    assert "git add data.dvl model.bin.dvl" in out
    assert (repo / "model.bin.dvl").read_text() != before and "size: 3000" in (repo / "model.bin.dvl").read_text()
    assert run(repo, "status", "-q", check=False).returncode == 0  # the pointers match the data
    assert "model.bin.dvl" in git(repo, "status", "--porcelain")  # for git to commit
    commit_all(repo, "v2")
    (repo / "model.bin").unlink()
    run(repo, "checkout")
    assert (repo / "model.bin").read_bytes() == b"v2" * 1500
    again = json.loads(run(repo, "commit", "--json", check=True).stdout)
    assert again == {"committed": [], "skipped": [], "gitignores": []}


PIPELINE = """\
stages:
  prep:
    cmd: python3 prep.py
    deps:
    - in.txt
    - prep.py
    outs:
    - out.txt
"""
PREP = "import pathlib\n" \
       "pathlib.Path('out.txt').write_text(pathlib.Path('in.txt').read_text().upper())\n" \
       "with open('runs.log', 'a') as f: f.write('ran\\n')\n"


def test_commit_records_a_stage_run_by_hand_without_running_it(repo: Path):
    write_tree(repo, {"dvlite.yaml": PIPELINE.encode(), "prep.py": PREP.encode(), "in.txt": b"one\n"})
    run(repo, "repro")
    commit_all(repo, "pipeline")
    (repo / "in.txt").write_text("two\n")
    subprocess.run(["python3", "prep.py"], cwd=repo, check=True)  # the command, by hand
    assert (repo / "runs.log").read_text() == "ran\nran\n"
    assert "prep" in run(repo, "repro", "--dry").stdout and "dep in.txt changed" in run(repo, "repro", "--dry").stdout
    out = run(repo, "commit", "prep", check=True).stdout
    assert "committed: stage prep (dvlite.lock)" in out
    assert (repo / "runs.log").read_text() == "ran\nran\n"  # commit ran nothing
    dry = run(repo, "repro", "--dry").stdout
    assert "dep in.txt changed" not in dry and "would run" not in dry.lower()
    lock = (repo / "dvlite.lock").read_text()
    assert hashlib.sha256(b"TWO\n").hexdigest() not in lock  # xxh3 in the lock, not sha256
    (repo / "out.txt").unlink()
    run(repo, "checkout", "out.txt")  # the committed out is in the cache
    assert (repo / "out.txt").read_text() == "TWO\n"


def test_commit_by_out_path_and_a_missing_out_is_an_error(repo: Path):
    write_tree(repo, {"dvlite.yaml": PIPELINE.encode(), "prep.py": PREP.encode(), "in.txt": b"one\n"})
    run(repo, "repro")
    (repo / "out.txt").write_text("edited by hand\n")
    run(repo, "commit", "out.txt", check=True)
    assert "out out.txt changed" not in run(repo, "repro", "--dry").stdout
    (repo / "out.txt").unlink()
    proc = run(repo, "commit", "prep", check=False)
    assert proc.returncode == 2 and "out out.txt missing" in proc.stderr
    proc = run(repo, "commit", "nothing-here", check=False)
    assert proc.returncode == 2 and "neither tracked" in proc.stderr


# --- freeze, unfreeze -----------------------------------------------------------------------------

STYLED = """\
# a pipeline with its author's habits
stages:
  prep:   # first
    cmd: python3 prep.py   # keep this comment
    deps: [in.txt, prep.py]
    outs:
      - out.txt

  report:
      cmd: "echo report > report.txt"
      deps:
      - out.txt
      outs:
      - report.txt
"""


def test_freeze_adds_one_line_and_unfreeze_restores_the_file_byte_for_byte(repo: Path):
    write_tree(repo, {"dvlite.yaml": STYLED.encode(), "prep.py": PREP.encode(), "in.txt": b"one\n"})
    run(repo, "repro")
    out = run(repo, "freeze", "report", check=True).stdout
    assert "stage report is frozen now (dvlite.yaml)" in out
    frozen = (repo / "dvlite.yaml").read_text()
    assert frozen == STYLED.replace('  report:\n', '  report:\n      frozen: true\n')
    (repo / "in.txt").write_text("two\n")
    repro = run(repo, "repro").stdout
    assert (repo / "runs.log").read_text().count("ran") == 2  # prep ran again
    assert "report" in repro and "frozen" in repro
    assert run(repo, "freeze", "report", check=True).stdout.strip() == "stage report was already frozen"
    run(repo, "unfreeze", "report", check=True)
    assert (repo / "dvlite.yaml").read_text() == STYLED
    run(repo, "freeze", "prep", check=True)
    assert (repo / "dvlite.yaml").read_text() == STYLED.replace(
        "  prep:   # first\n", "  prep:   # first\n    frozen: true\n")
    result = json.loads(run(repo, "unfreeze", "prep", "--json", check=True).stdout)
    assert result == {"stage": "prep", "file": "dvlite.yaml", "frozen": False, "changed": True}
    assert (repo / "dvlite.yaml").read_text() == STYLED


def test_freeze_turns_an_existing_false_into_true(repo: Path):
    text = STYLED.replace("    cmd: python3 prep.py", "    frozen: false  # for now\n    cmd: python3 prep.py")
    write_tree(repo, {"dvlite.yaml": text.encode(), "prep.py": PREP.encode(), "in.txt": b"one\n"})
    run(repo, "freeze", "prep", check=True)
    assert (repo / "dvlite.yaml").read_text() == text.replace("frozen: false  # for now", "frozen: true  # for now")


def test_freeze_of_an_unknown_stage_and_outside_a_pipeline(repo: Path):
    proc = run(repo, "freeze", "train", check=False)
    assert proc.returncode == 2 and "dvlite.yaml" in proc.stderr
    write_tree(repo, {"dvlite.yaml": STYLED.encode()})
    proc = run(repo, "freeze", "train", check=False)
    assert proc.returncode == 2 and "no stage named 'train'" in proc.stderr and "prep" in proc.stderr


# --- du -------------------------------------------------------------------------------------------

DATA = {"data/train/a.bin": b"a" * 1000, "data/train/b.bin": b"b" * 3000,
        "data/test/c.bin": b"c" * 500, "data/test/deep/d.bin": b"d" * 250, "data/top.txt": b"t" * 10,
        "model.bin": b"m" * 20000}


def test_du_totals_per_tracked_path_and_per_directory(repo: Path):
    write_tree(repo, DATA)
    run(repo, "add", "data", "model.bin")
    commit_all(repo, "v1")
    report = json.loads(run(repo, "du", "--json", check=True).stdout)
    assert report["total"] == sum(len(v) for v in DATA.values()) and report["files"] == 6
    assert {(e["path"], e["size"], e["files"]) for e in report["entries"]} == {
        ("data", 4760, 5), ("model.bin", 20000, 1)}
    deep = json.loads(run(repo, "du", "-d", "2", "--json", check=True).stdout)
    sizes = {e["path"]: e["size"] for e in deep["entries"]}
    assert sizes["data/train"] == 4000 and sizes["data/test"] == 750 and sizes["data/test/deep"] == 250
    inside = json.loads(run(repo, "du", "data/test", "-d", "1", "--json", check=True).stdout)
    assert inside["total"] == 750 and {e["path"] for e in inside["entries"]} == {"data/test", "data/test/deep"}
    text = run(repo, "du", "-d", "1", check=True).stdout
    assert "data/train/" in text and "total" in text and "24.2 KiB" in text


def test_du_at_a_revision_without_a_checkout(repo: Path):
    write_tree(repo, DATA)
    run(repo, "add", "data", "model.bin")
    commit_all(repo, "v1")
    (repo / "data" / "train" / "b.bin").unlink()
    run(repo, "add", "data")
    commit_all(repo, "v2")
    shutil.rmtree(repo / "data")  # nothing checked out: du reads pointers and manifests
    (repo / "model.bin").unlink()
    now = json.loads(run(repo, "du", "data", "-d", "1", "--json", check=True).stdout)
    then = json.loads(run(repo, "du", "data", "-d", "1", "--rev", "HEAD~1", "--json", check=True).stdout)
    assert now["total"] == 1760 and then["total"] == 4760
    assert {e["path"]: e["size"] for e in then["entries"]}["data/train"] == 4000
    assert not (repo / "data").exists()


def test_du_fetches_a_missing_manifest_from_the_remote(repo: Path, tmp_path: Path):
    write_tree(repo, DATA)
    run(repo, "add", "data")
    run(repo, "remote", "add", "-d", "store", str(tmp_path / "store"))
    run(repo, "push")
    shutil.rmtree(repo / ".dvlite" / "cache")
    report = json.loads(run(repo, "du", "-d", "1", "--json", check=True).stdout)
    assert report["unknown"] == [] and {e["path"] for e in report["entries"]} >= {"data/train", "data/test"}
    run(repo, "remote", "remove", "store")
    shutil.rmtree(repo / ".dvlite" / "cache")
    report = json.loads(run(repo, "du", "-d", "1", "--json", check=True).stdout)
    assert report["unknown"] == ["data"] and report["total"] == 4760  # the pointer still knows


# --- root -----------------------------------------------------------------------------------------

def test_root_prints_the_root_relative_to_here(repo: Path):
    (repo / "a" / "b").mkdir(parents=True)
    assert run(repo / "a" / "b", "root", check=True).stdout == "../..\n"
    assert run(repo, "root", check=True).stdout == ".\n"
    assert json.loads(run(repo / "a", "root", "--json", check=True).stdout) == {"root": "..", "absolute": str(repo)}


# --- destroy --------------------------------------------------------------------------------------

def _destroyable(repo: Path) -> dict[str, str]:
    run(repo, "config", "cache.type", "hardlink")
    write_tree(repo, {**DATA, "dvlite.yaml": PIPELINE.encode(), "prep.py": PREP.encode(), "in.txt": b"x\n"})
    run(repo, "add", "data", "model.bin")
    run(repo, "repro")
    commit_all(repo, "all")
    shutil.rmtree(repo / "data")
    run(repo, "checkout")  # hard links into the cache
    assert os.stat(repo / "data" / "train" / "a.bin").st_nlink > 1
    (repo / "model.bin").unlink()  # a tracked path not in the workspace: checked out first
    return {p: hashlib.sha256(v).hexdigest() for p, v in DATA.items()}


def test_destroy_keeps_the_data_as_plain_files(repo: Path):
    expected = _destroyable(repo)
    out = run(repo, "destroy", "-f", check=True).stdout
    assert not (repo / ".dvlite").exists()
    assert not list(repo.rglob("*.dvl")) and not (repo / "dvlite.lock").exists()
    assert (repo / "dvlite.yaml").exists()  # the pipeline the user wrote stays
    for rel, digest in expected.items():
        path = repo / rel
        assert sha(path) == digest, rel
        assert os.stat(path).st_nlink == 1 and os.access(path, os.W_OK), rel  # no link into a cache
    assert (repo / "out.txt").read_text() == "X\n"
    assert "/data" not in (repo / ".gitignore").read_text() and "/out.txt" not in (repo / ".gitignore").read_text()
    assert "git add" in out and "data.dvl" in out
    status = git(repo, "status", "--porcelain")
    assert "?? data/" in status and "?? model.bin" in status  # git sees the data now
    assert run(repo, "status", check=False).returncode == 2  # not a dvlite repository any more


def test_destroy_refuses_without_a_terminal_and_without_force(repo: Path):
    _destroyable(repo)
    proc = run(repo, "destroy", check=False)
    assert proc.returncode == 2 and "destroy -f" in proc.stderr
    assert (repo / ".dvlite").is_dir() and (repo / "data.dvl").is_file()


def _on_terminal(cwd: Path, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run dvlite on a pseudo-terminal, type `answer` at its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*DVLITE, *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env={**os.environ, **GIT_ENV}, close_fds=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(master)
    return code, seen.decode(errors="replace")


def test_destroy_asks_and_a_no_changes_nothing(repo: Path):
    _destroyable(repo)
    code, seen = _on_terminal(repo, ["destroy"], b"n\n")
    assert code == 1 and "Remove dvlite from this repository?" in seen
    assert (repo / ".dvlite").is_dir() and (repo / "data.dvl").is_file()
    code, seen = _on_terminal(repo, ["destroy"], b"y\n")
    assert code == 0, seen
    assert not (repo / ".dvlite").exists() and (repo / "model.bin").read_bytes() == DATA["model.bin"]


def test_destroy_leaves_a_cache_elsewhere(repo: Path, tmp_path: Path):
    cache = tmp_path / "elsewhere"
    run(repo, "config", "cache.dir", str(cache))
    write_tree(repo, {"model.bin": b"m" * 100})
    run(repo, "add", "model.bin")
    assert list((cache / "projects").iterdir())
    out = run(repo, "destroy", "-f", check=True).stdout
    assert f"The cache at {cache} is kept" in out
    assert cache.is_dir() and not list((cache / "projects").iterdir())  # this project's record went
    assert (repo / "model.bin").read_bytes() == b"m" * 100


def test_freeze_edits_the_pipeline_file_in_a_subdirectory(repo: Path):
    sub_text = "stages:\n  train:\n    cmd: echo trained > model.txt\n    outs:\n    - model.txt\n"
    write_tree(repo, {"dvlite.yaml": STYLED.encode(), "prep.py": PREP.encode(), "in.txt": b"one\n",
                      "ml/dvlite.yaml": sub_text.encode()})
    out = run(repo, "freeze", "ml:train", check=True).stdout
    assert "(ml/dvlite.yaml)" in out
    assert (repo / "ml" / "dvlite.yaml").read_text() == sub_text.replace(
        "  train:\n", "  train:\n    frozen: true\n")
    assert (repo / "dvlite.yaml").read_text() == STYLED
    run(repo, "unfreeze", "ml:train", check=True)
    assert (repo / "ml" / "dvlite.yaml").read_text() == sub_text

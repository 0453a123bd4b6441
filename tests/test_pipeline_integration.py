"""Stage outs next to the rest of dvlite: the run cache through a remote, and the commands that
must not treat a stage out as a pointer."""

from __future__ import annotations

from pathlib import Path

from conftest import git, run
from test_pipeline import fails, pipeline

STAGE = "stages:\n  a: {cmd: cat in.txt in.txt > a.txt && echo ran, deps: [in.txt], outs: [a.txt]}\n"


def test_push_and_pull_run_cache_let_a_clone_skip_the_run(repo: Path, tmp_path: Path) -> None:
    pipeline(repo, STAGE, {"in.txt": b"v1\n"})
    run(repo, "remote", "add", "-d", "origin", str(tmp_path / "store"))
    assert "[a] ran" in run(repo, "repro").stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    out = run(repo, "push", "--run-cache").stdout
    assert "pushed 1 run-cache record(s)" in out
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    (other / "in.txt").write_bytes(b"v2\n")  # a change the record does not cover: runs
    assert "[a] ran" in run(other, "repro").stdout
    (other / "in.txt").write_bytes(b"v1\n")  # back to what the colleague ran
    assert "fetched 1 run-cache record(s)" in run(other, "pull", "--run-cache").stdout
    out = run(other, "repro").stdout
    assert "restored from the run cache" in out and "[a] ran" not in out
    assert (other / "a.txt").read_bytes() == b"v1\nv1\n"


def test_stage_outs_are_not_pointers_for_add_remove_move(repo: Path) -> None:
    pipeline(repo, STAGE, {"in.txt": b"v1\n"})
    run(repo, "repro")
    assert "out of stage 'a'" in fails(repo, "add", "a.txt")
    assert "out of stage 'a'" in fails(repo, "remove", "a.txt")
    assert "out of stage 'a'" in fails(repo, "move", "a.txt", "b.txt")
    assert (repo / "a.txt").exists() and not (repo / "a.txt.dvl").exists()


def test_status_flags_a_stage_out_new_until_the_lock_is_committed(repo: Path) -> None:
    pipeline(repo, STAGE, {"in.txt": b"v1\n"})
    run(repo, "repro")
    assert "a.txt: new" in run(repo, "status").stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "lock")
    out = run(repo, "status").stdout
    assert "a.txt" not in out and "Data and pointers are up to date." in out

"""repro through the CLI: order, the lock, staleness reasons, target selection, failures, outs."""

from __future__ import annotations

from pathlib import Path

import xxhash
from conftest import run
from test_pipeline import CHAIN, fails, lock, pipeline

# --- repro --------------------------------------------------------------------------------------

def test_repro_runs_in_order_and_then_runs_nothing(repo: Path) -> None:
    pipeline(repo, CHAIN, {"in.txt": b"hello\n"})
    dry = run(repo, "repro", "--dry")
    assert "Would run stage 'a': never run" in dry.stdout
    assert not (repo / "a.txt").exists() and not (repo / "dvlite.lock").exists()
    out = run(repo, "repro").stdout
    assert out.index("Running stage 'a'") < out.index("Running stage 'b'") < out.index("Running stage 'c'")
    assert (repo / "b.txt").read_bytes() == b"hello\nhello\n"
    assert (repo / "c.txt").read_text().strip() == "12"
    entry = lock(repo)["stages"]["b"]
    assert entry["cmd"] == "cat a.txt a.txt > b.txt"
    assert entry["deps"] == [{"path": "a.txt", "kind": "file", "hash": "xxh3-128",
                              "digest": xxhash.xxh3_128_hexdigest(b"hello\n"), "size": 6, "files": 1}]
    assert entry["outs"][0]["digest"] == xxhash.xxh3_128_hexdigest(b"hello\nhello\n")
    again = run(repo, "repro").stdout
    assert "Running stage" not in again and "Data and pipelines are up to date." in again
    assert set((repo / ".gitignore").read_text().split()) >= {"/a.txt", "/b.txt", "/c.txt"}


def test_lock_is_canonical_and_stable(repo: Path) -> None:
    pipeline(repo, CHAIN, {"in.txt": b"x\n"})
    run(repo, "repro")
    first = (repo / "dvlite.lock").read_bytes()
    assert first.startswith(b"schema: 1\nstages:\n  a:\n")
    assert first.endswith(b"\n")
    run(repo, "repro", "--force")
    assert (repo / "dvlite.lock").read_bytes() == first
    (repo / "dvlite.lock").write_bytes(first.replace(b"schema: 1", b"schema: 2"))
    err = fails(repo, "status")
    assert "error: dvlite.lock: unknown lock schema 2 (this dvlite reads schema 1)" in err
    assert "upgrade dvlite" in err


def test_staleness_reasons_and_target_selection(repo: Path) -> None:
    pipeline(repo, CHAIN, {"in.txt": b"one\n"})
    run(repo, "repro")
    (repo / "in.txt").write_bytes(b"two\n")
    status = run(repo, "status").stdout
    assert "a: stale (dep in.txt changed)" in status
    dry = run(repo, "repro", "--dry").stdout
    assert "Would run stage 'b': upstream stage a would run" in dry
    out = run(repo, "repro", "b").stdout  # b and what it needs, not c
    assert "Running stage 'a'" in out and "Running stage 'b'" in out and "'c'" not in out
    assert "c: stale (dep b.txt changed)" in run(repo, "status").stdout
    out = run(repo, "repro", "c", "-s", "--force").stdout
    assert out.count("Running stage") == 1 and "Running stage 'c'" in out
    out = run(repo, "repro", "b", "--downstream", "--force").stdout
    assert "Running stage 'a'" not in out and out.count("Running stage") == 2
    (repo / "b.txt").unlink()
    assert "b: stale (out b.txt missing)" in run(repo, "status").stdout
    assert "unknown" not in fails(repo, "repro", "nosuch")


def test_failing_command_keeps_earlier_results(repo: Path) -> None:
    pipeline(repo, """stages:
  a: {cmd: echo A > a.txt, outs: [a.txt]}
  b: {cmd: echo partial > b.txt; exit 3, deps: [a.txt], outs: [b.txt]}
  c: {cmd: cp b.txt c.txt, deps: [b.txt], outs: [c.txt]}
  d: {cmd: echo D > d.txt, outs: [d.txt]}
""")
    proc = run(repo, "repro", check=False)
    assert proc.returncode == 1
    assert "error: stage 'b' failed: its command exited with code 3" in proc.stderr
    assert set(lock(repo)["stages"]) == {"a"}
    assert not (repo / "c.txt").exists() and not (repo / "d.txt").exists()
    proc = run(repo, "repro", "--keep-going", check=False)
    assert proc.returncode == 1
    assert "Stage 'c' not run: upstream stage 'b' failed." in proc.stdout
    assert (repo / "d.txt").read_text() == "D\n"
    assert set(lock(repo)["stages"]) == {"a", "d"}


def test_a_declared_out_not_produced(repo: Path) -> None:
    pipeline(repo, "stages:\n  a: {cmd: echo hi, outs: [never.txt]}\n")
    proc = run(repo, "repro", check=False)
    assert proc.returncode == 1
    assert "stage 'a' did not produce its declared out never.txt" in proc.stderr
    assert "[a] hi" in proc.stdout
    assert not (repo / "dvlite.lock").exists()


def test_outs_are_removed_before_running_unless_persist(repo: Path) -> None:
    pipeline(repo, """stages:
  a: {cmd: echo line >> a.txt, deps: [in.txt], outs: [a.txt]}
  p: {cmd: echo line >> p.txt, deps: [in.txt], outs: [{p.txt: {persist: true}}]}
""", {"in.txt": b"1"})
    run(repo, "repro")
    (repo / "in.txt").write_bytes(b"2")
    run(repo, "repro")
    assert (repo / "a.txt").read_text() == "line\n"
    assert (repo / "p.txt").read_text() == "line\nline\n"


def test_wdir_list_cmd_frozen_and_always_changed(repo: Path) -> None:
    pipeline(repo, """stages:
  w:
    wdir: sub
    cmd: [echo one > out.txt, echo two >> out.txt]
    outs: [out.txt]
  f: {cmd: echo f > f.txt, outs: [f.txt], frozen: true}
  x: {cmd: date +%N > x.txt, outs: [x.txt], always_changed: true}
""")
    run(repo, "repro")
    assert (repo / "sub/out.txt").read_text() == "one\ntwo\n"
    assert lock(repo)["stages"]["w"]["outs"][0]["path"] == "sub/out.txt"
    assert not (repo / "f.txt").exists()
    assert "Stage 'x' restored" not in run(repo, "repro").stdout
    assert "x: stale (always changed)" in run(repo, "status").stdout

"""The repository lock: a second process waits, gives up after core.lock_timeout, never
writes anything without the lock; a lock left by a dead process does not block."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DVLITE, GIT_ENV, run, write_tree

HOLDER = """
import sys
from dvlite.fsutil import repo_lock

with repo_lock(sys.argv[1], sys.argv[2], 0, lambda holder: None):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin
"""


class Holder:
    """Another process holding `.dvlite/lock` through dvlite's own lock code."""

    def __init__(self, repo: Path, command: str = "gc"):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(repo / ".dvlite" / "lock"), command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout.readline().strip() == "locked"
        self.pid = self.proc.pid

    def release(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        self.proc.stdout.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()


@pytest.fixture
def holder_factory():
    holders: list[Holder] = []

    def make(repo: Path, command: str = "gc") -> Holder:
        holders.append(Holder(repo, command))
        return holders[-1]

    yield make
    for h in holders:
        if h.proc.poll() is None:
            h.kill()


def cache_objects(repo: Path) -> list[Path]:
    return [p for p in (repo / ".dvlite" / "cache" / "objects").rglob("*") if p.is_file()]


def test_locked_repository_times_out_with_exit_3_and_writes_nothing(repo, holder_factory):
    run(repo, "config", "core.lock_timeout", "1")
    write_tree(repo, {"data.bin": b"payload\n" * 100})
    holder = holder_factory(repo, "gc")

    t0 = time.monotonic()
    r = run(repo, "add", "data.bin", check=False)
    elapsed = time.monotonic() - t0
    assert r.returncode == 3, r.stdout + r.stderr
    assert 1.0 <= elapsed < 8, elapsed  # waited about core.lock_timeout, not forever
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: the repository is locked by process {holder.pid} (gc)"], r.stderr
    assert f"waiting for the repository lock held by process {holder.pid} (gc)" in r.stderr
    assert not (repo / "data.bin.dvl").exists()
    assert not (repo / ".gitignore").exists()
    assert cache_objects(repo) == []

    # Other mutating commands wait too; a read-only one does not.
    for args in (["checkout"], ["gc", "--force"], ["fsck"]):
        other = run(repo, *args, check=False)
        assert other.returncode == 3, (args, other.stdout, other.stderr)
        assert f"process {holder.pid}" in other.stderr and "Traceback" not in other.stderr
    run(repo, "config", "core.lock_timeout", "30")
    t0 = time.monotonic()
    st = run(repo, "status")
    assert "waiting" not in st.stderr
    assert time.monotonic() - t0 < 15  # did not sit out the 30 s lock timeout

    holder.release()
    r = run(repo, "add", "data.bin")
    assert "waiting" not in r.stderr
    assert (repo / "data.bin.dvl").exists()


def test_lock_released_during_the_wait_lets_the_command_proceed(repo, holder_factory):
    run(repo, "config", "core.lock_timeout", "30")
    write_tree(repo, {"data.bin": b"payload\n" * 100})
    holder = holder_factory(repo, "checkout")

    proc = subprocess.Popen(
        [*DVLITE, "add", "data.bin"], cwd=repo, env={**os.environ, **GIT_ENV},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = proc.stderr.readline()  # printed once the command finds the lock taken
        waiting = f"waiting for the repository lock held by process {holder.pid} (checkout)..."
        assert first.strip() == waiting
        time.sleep(0.3)
        assert proc.poll() is None, "gave up while the lock was still held"
        assert not (repo / "data.bin.dvl").exists()  # nothing written while waiting
        holder.release()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, first + err
    assert "added: data.bin" in out
    assert "error" not in err
    assert (repo / "data.bin.dvl").exists()


def test_stale_lock_of_a_dead_process_does_not_block(repo, holder_factory):
    run(repo, "config", "core.lock_timeout", "1")
    write_tree(repo, {"data.bin": b"payload\n" * 100})
    holder = holder_factory(repo, "add")
    holder.kill()  # SIGKILL: no cleanup ran, the lock file still names it
    lock = repo / ".dvlite" / "lock"
    assert lock.read_text().split() == [str(holder.pid), "add"]

    t0 = time.monotonic()
    r = run(repo, "add", "data.bin")
    assert time.monotonic() - t0 < 1.0 + 4  # no waiting out the timeout
    assert "waiting" not in r.stderr and "locked" not in r.stderr
    assert (repo / "data.bin.dvl").exists()

    # A lock file naming a process that never held the lock (e.g. copied from elsewhere).
    lock.write_text("999999999 gc\n")
    r = run(repo, "checkout")
    assert "waiting" not in r.stderr

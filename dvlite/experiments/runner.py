"""`queue start`: run queued experiments, up to N at a time, each in a child process of its own
(a process group, so `queue kill` stops its commands too) and its own work tree, with the
repository's cache. One runner per repository (a lock); experiments queued while it runs are
picked up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from dvlite.errors import DvliteError, LockError
from dvlite.experiments import queue as queue_mod
from dvlite.experiments import worktrees
from dvlite.experiments.queue import Entry
from dvlite.fsutil import atomic_write, read_limited, repo_lock
from dvlite.repo import Repo

KILL_GRACE_S = 5.0


@dataclass(frozen=True)
class QueueEvent:
    kind: str  # started | success | failed
    name: str
    text: str = ""


@dataclass
class QueueResult:
    succeeded: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


@contextlib.contextmanager
def runner_lock(repo: Repo, what: str):
    """The lock one queue runner per repository holds; a second one is refused at once."""
    path = os.path.join(queue_mod.directory(repo), "runner.lock")
    try:
        with repo_lock(path, what, 0, lambda holder: None):
            yield
    except LockError as exc:
        who = exc.message.removeprefix("the repository is locked by ")
        raise LockError(f"the experiment queue of {repo.root} is already being run by {who}",
                        hint="wait for it (`dvlite queue status`); experiments queued now are "
                             "picked up by the running queue") from None


def recover(repo: Repo) -> list[str]:
    """Mark experiments left `running` by a runner that died as failed, and remove their work
    trees; their names. Call with the runner lock held."""
    names = []
    for entry in queue_mod.entries(repo):
        if entry.state == "running":  # no runner holds the lock: nothing runs it any more
            if entry.runner == "local" and queue_mod.alive(entry.pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(entry.pid, signal.SIGTERM)  # the orphan of a runner killed hard
            entry.state, entry.pid, entry.finished = "failed", None, time.time()
            entry.error = "interrupted: its queue runner stopped"
            queue_mod.save(repo, entry)
            names.append(entry.name)
    for top in worktrees.leftovers(repo):
        worktrees.remove(repo, top)
    return names


def _next(repo: Repo, skip: set[str]) -> Entry | None:
    for entry in queue_mod.entries(repo):
        if entry.state == "queued" and entry.id not in skip:
            return entry
    return None


def run_queue(repo: Repo, jobs: int, on_event: Callable[[QueueEvent], None] = lambda e: None,
              ) -> QueueResult:
    """Run every queued experiment (and those queued meanwhile), `jobs` at a time."""
    jobs = max(1, jobs)
    result = QueueResult()
    with runner_lock(repo, "queue start"):
        recover(repo)
        running: dict[int, tuple[Entry, str]] = {}  # pid -> (entry, work tree)
        try:
            while True:
                while len(running) < jobs:
                    entry = _next(repo, {e.id for e, _ in running.values()})
                    if entry is None:
                        break
                    pid, top = _start(repo, entry)
                    running[pid] = (entry, top)
                    on_event(QueueEvent("started", entry.name))
                if not running:
                    return result
                pid, status = os.wait()
                if pid in running:
                    entry, top = running.pop(pid)
                    _finish(repo, entry, top, status, result, on_event)
        except BaseException:
            _stop_all(repo, running)
            raise


def _start(repo: Repo, entry: Entry) -> tuple[int, str]:
    entry.state, entry.started, entry.runner = "running", time.time(), "local"
    queue_mod.save(repo, entry)
    log = queue_mod.log_path(repo, entry)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        _child(repo, entry, log)
    entry.pid = pid
    queue_mod.save(repo, entry)
    return pid, worktrees.path_of(repo, entry)


def _child(repo: Repo, entry: Entry, log: str) -> None:
    """The process of one experiment: its own process group, its output into the log, its own
    work tree (made and removed here, so that experiments prepare in parallel), its end into a
    result file the runner reads when it is gone."""
    outcome: dict = {"state": "failed", "commit": None, "error": "it stopped before it began"}
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        from dvlite.experiments.execute import run_entry

        try:
            root = worktrees.create(repo, entry)
        except DvliteError as exc:
            raise DvliteError(f"cannot make its work tree: {exc.message}") from None
        try:
            commit = run_entry(Repo(root), entry, lambda text: os.write(1, (text + "\n").encode()))
        finally:
            worktrees.remove(repo, worktrees.path_of(repo, entry))
        outcome = {"state": "success", "commit": commit, "error": None}
    except DvliteError as exc:
        outcome["error"] = exc.message
        os.write(2, f"error: {exc.message}\n".encode())
    except BaseException as exc:  # noqa: BLE001 - a child must always record how it ended
        outcome["error"] = f"unexpected {type(exc).__name__}: {exc}"
        os.write(2, traceback.format_exc().encode())
    finally:
        try:
            atomic_write(_result_path(repo, entry), json.dumps(outcome).encode(), durable=False)
        finally:
            os._exit(0 if outcome["state"] == "success" else 1)


def _result_path(repo: Repo, entry: Entry) -> str:
    return os.path.join(queue_mod.directory(repo), entry.id + ".result")


def _outcome(repo: Repo, entry: Entry) -> dict | None:
    path = _result_path(repo, entry)
    try:
        doc = json.loads(read_limited(path, 1 << 20, path))
    except (OSError, ValueError):
        return None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    return doc if isinstance(doc, dict) and doc.get("state") in ("success", "failed") else None


def _finish(repo: Repo, entry: Entry, top: str, status: int, result: QueueResult, on_event) -> None:
    outcome = _outcome(repo, entry)
    if os.path.lexists(top):  # the child was killed before it removed its work tree
        worktrees.remove(repo, top)
    try:
        entry = queue_mod.load(repo, entry)
    except (DvliteError, OSError):
        return  # removed while it ran (`queue remove`)
    if outcome is None:  # the child did not get to record its end: killed
        how = os.waitstatus_to_exitcode(status)
        outcome = {"state": "failed", "commit": None,
                   "error": f"killed by signal {-how}" if how < 0 else f"exited with code {how}"}
    entry.state, entry.commit, entry.error = outcome["state"], outcome.get("commit"), outcome.get("error")
    entry.pid, entry.finished = None, time.time()
    queue_mod.save(repo, entry)
    report(entry, result, on_event)


def report(entry: Entry, result: QueueResult, on_event) -> None:
    """Count a finished experiment in `result` and tell the caller."""
    if entry.state == "success":
        result.succeeded.append(entry.name)
        on_event(QueueEvent("success", entry.name, entry.commit or ""))
    else:
        result.failed.append((entry.name, entry.error or ""))
        on_event(QueueEvent("failed", entry.name, entry.error or ""))


def _stop_all(repo: Repo, running: dict[int, tuple[Entry, str]]) -> None:
    """Ctrl-C or an error in the runner: stop every child (its whole process group), record
    them as failed, remove their work trees."""
    for pid in running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    waiting = dict(running)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
            waiting.pop(pid)
        time.sleep(0.05)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    for entry, top in running.values():
        with contextlib.suppress(DvliteError, OSError):
            entry.state, entry.pid, entry.finished = "failed", None, time.time()
            entry.error = "interrupted: the queue runner was stopped"
            queue_mod.save(repo, entry)
        with contextlib.suppress(DvliteError, OSError):
            if os.path.lexists(top):
                worktrees.remove(repo, top)


def kill(repo: Repo, entry: Entry) -> None:
    """Stop a running experiment: its process group (local), or ask its client to cancel it
    (Dask)."""
    from dvlite.errors import BadInputError

    if entry.state != "running":
        raise BadInputError(f"experiment {entry.name!r} is not running ({entry.state})",
                            hint="`dvlite queue remove NAME` drops a queued one")
    if entry.runner == "dask":
        entry.kill = True
        queue_mod.save(repo, entry)
        return
    if entry.pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(entry.pid, signal.SIGTERM)

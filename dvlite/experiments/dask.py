"""`queue start --dask ADDRESS`: queued experiments as tasks on a Dask distributed cluster.

Each task runs on a worker that needs only git, dvlite and the dvlite remote: it clones the base
commit (from `--git-url`, by default this repository's path, which suits a cluster on one
machine or a shared file system), writes the params, pulls the data and run records, runs the
stages, pushes the outputs and run records, and returns the experiment's commit as a git
bundle, which the client fetches into `refs/exps/`. The client pushes the base commits' data
first, so the workers find it."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable

from dvlite import scm as scm_mod
from dvlite.errors import BadInputError, DvliteError, RemoteError
from dvlite.experiments import queue as queue_mod
from dvlite.experiments import refs, worktrees
from dvlite.experiments.queue import Entry
from dvlite.experiments.runner import QueueEvent, QueueResult, recover, report, runner_lock
from dvlite.outputs import outputs_at
from dvlite.repo import Repo

POLL_S = 0.2


# --- on a worker ---------------------------------------------------------------------------

def run_task(spec: dict) -> dict:
    """One experiment on a Dask worker, in a temporary clone; {state, commit, bundle, log, error}."""
    from dvlite import sync
    from dvlite.experiments.execute import run_entry

    entry = Entry(**spec["entry"])
    lines: list[str] = []
    tmp = tempfile.mkdtemp(prefix="dvlite-exp-")
    try:
        top = os.path.join(tmp, "repo")
        scm_mod.clone_at(spec["git_url"], top, entry.base)
        root = os.path.join(top, spec["prefix"].rstrip("/")) if spec["prefix"] else top
        worktrees.configure(root, spec["settings"], spec["shared_config"])
        repo = Repo(root)
        fetched = sync.fetch(repo, [], run_cache=True)
        lines.append(f"fetched {fetched.downloaded} object(s) and {fetched.run_records} run record(s)"
                     f" from {fetched.remote}")
        commit = run_entry(repo, entry, lines.append)
        pushed = sync.push(repo, [], run_cache=True)
        if not pushed.ok:
            raise RemoteError(f"could not push the experiment's outputs to {pushed.remote} "
                              f"({len(pushed.failed) + len(pushed.missing_locally)} object(s))")
        lines.append(f"pushed {pushed.uploaded} object(s) and {pushed.run_records} run record(s)")
        bundle = os.path.join(tmp, "experiment.bundle")
        scm_mod.bundle(top, refs.ref_of(entry.base, entry.name), entry.base, bundle)
        with open(bundle, "rb") as f:
            data = f.read()
        return {"state": "success", "commit": commit, "bundle": data, "log": "\n".join(lines),
                "error": None, "worker": os.uname().nodename}
    except DvliteError as exc:
        lines.append(f"error: {exc.message}")
        return {"state": "failed", "commit": None, "bundle": None, "log": "\n".join(lines),
                "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - the client records every task's end
        lines.append(traceback.format_exc())
        return {"state": "failed", "commit": None, "bundle": None, "log": "\n".join(lines),
                "error": f"unexpected {type(exc).__name__}: {exc}"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- on the client -------------------------------------------------------------------------

def _connect(address: str, timeout: float):
    try:
        from distributed import Client
    except ImportError:
        raise BadInputError("`queue start --dask` needs Dask's distributed scheduler client",
                            hint="pip install 'dvlite[dask]'") from None
    try:
        return Client(address, timeout=f"{max(timeout, 0.1)}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise RemoteError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({first})",
                          hint="check the address (tcp://HOST:8786) and that the scheduler runs") from None
    except ValueError as exc:
        raise BadInputError(f"not a Dask scheduler address: {address!r} ({exc})") from None


def _push_bases(repo: Repo, entries: list[Entry]) -> None:
    """The data of the commits the experiments start from, and the run records, onto the remote
    (what is there already is not sent again)."""
    from dvlite.pipelines import runcache
    from dvlite.remotes import transfer

    scm = repo.require_scm()
    remote = transfer.connect(repo, None)
    outputs, seen = [], set()
    for base in sorted({e.base for e in entries}):
        for t in outputs_at(scm, base, base[:10]):
            if (t.rel, t.pointer) not in seen:
                seen.add((t.rel, t.pointer))
                outputs.append((t, None))
    outputs += [(t, None) for t in runcache.outputs(repo)]
    result = transfer.push_outputs(repo, outputs, None, remote=remote)
    if result.failed:
        raise RemoteError(f"cannot push the base commits' data to {remote.name}: {result.failed[0][1]}")
    runcache.push_records(repo, remote)


def _spec(repo: Repo, entry: Entry, git_url: str) -> dict:
    scm = repo.require_scm()
    shared = None
    with contextlib.suppress(OSError), open(os.path.join(repo.dvlite_dir, "config"), "rb") as f:
        shared = f.read()
    return {"entry": dataclasses.asdict(entry), "git_url": git_url, "prefix": scm.prefix,
            "settings": worktrees.portable_settings(repo), "shared_config": shared}


def _record(repo: Repo, entry: Entry, outcome: dict) -> Entry:
    """The client's side of a finished task: its log, and its commit fetched from the bundle."""
    with open(queue_mod.log_path(repo, entry), "w", encoding="utf-8") as f:
        f.write((outcome.get("log") or "") + "\n")
    if outcome.get("state") == "success":
        path = os.path.join(queue_mod.directory(repo), entry.id + ".bundle")
        try:
            with open(path, "wb") as f:
                f.write(outcome["bundle"])
            worktree = refs.worktree(repo)
            scm_mod.fetch_refs(worktree, path, [refs.ref_of(entry.base, entry.name)])
            if scm_mod.parent_of(worktree, outcome["commit"]) != entry.base:
                raise DvliteError("the commit the worker returned does not start from its base")
            entry.state, entry.commit, entry.error = "success", outcome["commit"], None
        except DvliteError as exc:
            entry.state, entry.error = "failed", f"cannot record its commit: {exc.message}"
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    else:
        entry.state, entry.error = "failed", outcome.get("error") or "failed"
    entry.pid, entry.finished = None, time.time()
    queue_mod.save(repo, entry)
    return entry


def run_queue(repo: Repo, address: str, jobs: int | None, git_url: str | None, timeout: float,
              on_event: Callable[[QueueEvent], None] = lambda e: None) -> QueueResult:
    """Send every queued experiment to the Dask scheduler at `address`, at most `jobs` at a
    time (None: all), and record each as it ends."""
    result = QueueResult()
    with runner_lock(repo, "queue start --dask"):
        recover(repo)
        todo = [e for e in queue_mod.entries(repo) if e.state == "queued"]
        if not todo:
            return result
        client = _connect(address, timeout)
        try:
            on_event(QueueEvent("note", "", f"connected to {address}; pushing the base commits' data"))
            _push_bases(repo, todo)
            _run(repo, client, todo, jobs or len(todo), git_url or refs.worktree(repo), result, on_event)
        finally:
            with contextlib.suppress(Exception):
                client.close(timeout=5)
    return result


def _run(repo: Repo, client, todo: list[Entry], jobs: int, git_url: str, result: QueueResult,
         on_event) -> None:
    running: dict = {}  # future -> entry
    try:
        while todo or running:
            while todo and len(running) < jobs:
                entry = todo.pop(0)
                entry.state, entry.started, entry.runner, entry.pid = "running", time.time(), "dask", os.getpid()
                queue_mod.save(repo, entry)
                future = client.submit(run_task, _spec(repo, entry, git_url), key=f"dvlite-{entry.id}-"
                                       f"{int(entry.started)}", pure=False, retries=0)
                running[future] = entry
                on_event(QueueEvent("started", entry.name))
            done = [f for f in running if f.done()]
            if not done:
                time.sleep(POLL_S)
            for future in done:
                entry = running.pop(future)
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker lost, a task erred in Dask
                    outcome = {"state": "failed", "error": f"the Dask task failed: {exc}", "log": ""}
                report(_record(repo, entry, outcome), result, on_event)
            for future, entry in list(running.items()):
                if _kill_asked(repo, entry):
                    future.cancel()
                    running.pop(future)
                    report(_record(repo, entry, {"state": "failed", "error": "killed", "log": ""}),
                            result, on_event)
    except BaseException:
        for future, entry in running.items():
            with contextlib.suppress(Exception):
                future.cancel()
            _record(repo, entry, {"state": "failed", "error": "interrupted: the queue runner was stopped",
                                  "log": ""})
        raise


def _kill_asked(repo: Repo, entry: Entry) -> bool:
    try:
        return queue_mod.load(repo, entry).kill
    except (DvliteError, OSError):
        return True  # removed from the queue


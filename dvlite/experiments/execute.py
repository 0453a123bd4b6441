"""One queued experiment run to its end in a checkout of its own (a queue's work tree, or a clone
on a Dask worker): the tracked data checked out, the params written, `repro`, the commit."""

from __future__ import annotations

from collections.abc import Callable

from dvlite.data.checkout import checkout
from dvlite.errors import StageFailed
from dvlite.experiments import overrides as ov
from dvlite.experiments.queue import Entry
from dvlite.experiments.run import failure_of, run_experiment
from dvlite.pipelines.repro import Event
from dvlite.repo import Repo


def event_text(e: Event) -> str | None:
    """A repro event as a plain line of an experiment's log."""
    if e.kind == "output":
        return f"[{e.stage}] {e.text}"
    return {
        "start": f"Running stage {e.stage!r}:\n> {e.text}",
        "restored": f"Stage {e.stage!r} restored from the run cache (its command was not run).",
        "up-to-date": f"Stage {e.stage!r} didn't change, skipping.",
        "frozen": f"Stage {e.stage!r} is frozen, skipping.",
        "skipped": f"Stage {e.stage!r} not run: {e.text}.",
        "done": f"Updated dvlite.lock for stage {e.stage!r}.",
        "failed": f"error: {e.text}",
    }.get(e.kind)


def run_entry(repo: Repo, entry: Entry, write: Callable[[str], object]) -> str:
    """Run `entry` in `repo` (a checkout of its base commit); its commit. A failed stage raises
    StageFailed (the log has its output)."""
    write(f"experiment {entry.name} of commit {entry.base[:7]}: {ov.describe(entry.params) or 'no changes'}")
    with repo.lock("exp run", lambda holder: None):
        done = checkout(repo, [], force=True)
        if done.missing:
            write(f"note: {len(done.missing)} file(s) of the commit's data are not in the cache; "
                  "the stages that need them run (or fail)")

        def on_event(e: Event) -> None:
            line = event_text(e)
            if line is not None:
                write(line)

        result = run_experiment(repo, entry.base, entry.name, entry.params, entry.targets, on_event)
    if result.commit is None:
        raise StageFailed(failure_of(result.repro))
    write(f"recorded experiment {entry.name} as commit {result.commit[:10]}")
    return result.commit

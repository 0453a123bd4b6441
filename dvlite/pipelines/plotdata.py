"""The plots of dvlite.yaml and its metrics at revisions (the workspace, commits, experiments),
read and built into charts: a plot file comes from the workspace, from git (`cache: false`) or
from the object store through the revision's dvlite.lock (cached)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from dvlite.errors import DvliteError, FormatError
from dvlite.formats.lockfile import Lock
from dvlite.pipelines import values
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.project import cached_out, lock_at, pipeline_at, read_at
from dvlite.plots import data as plot_data
from dvlite.plots.spec import Plot, PlotSpec, parse_spec
from dvlite.repo import Repo


@dataclass(frozen=True)
class Revision:
    label: str  # what the charts call it: workspace, HEAD, an experiment's name
    rev: str | None  # a git revision; None for the workspace
    detail: str = ""  # a line for the page's title block (e.g. the commit's subject)


def specs_of(pipe: Pipeline | None) -> list[PlotSpec]:
    """Every plot the stages declare, in stage order."""
    if pipe is None:
        return []
    return [parse_spec(o.path, dict(o.plot)) for stage in pipe.stages.values()
            for o in stage.outs if o.role == "plots"]


def _matches(spec: PlotSpec, targets: list[str]) -> bool:
    return not targets or any(spec.path == t or spec.path.startswith(t.rstrip("/") + "/") for t in targets)


def collect_specs(repo: Repo, revisions: list[Revision], targets: list[str]) -> list[PlotSpec]:
    """The plots of every revision's pipeline (the first revision that declares a file wins)."""
    found: dict[str, PlotSpec] = {}
    for revision in revisions:
        for spec in specs_of(pipeline_at(repo, revision.rev)):
            if _matches(spec, targets):
                found.setdefault(spec.path, spec)
    return list(found.values())


class _Reader:
    """A revision's files: the workspace, git, or the object store through its lock."""

    def __init__(self, repo: Repo, revision: Revision):
        self.repo, self.revision = repo, revision
        self._lock: Lock | None = None

    def lock(self) -> Lock:
        if self._lock is None:
            self._lock = lock_at(self.repo, self.revision.rev)
        return self._lock

    def read(self, rel: str) -> bytes | None:
        rev = self.revision.rev
        if rev is None:
            path = self.repo.abs(rel)
            if os.path.isdir(path):
                raise FormatError(f"{rel}: a directory; dvlite draws plot files")
            try:
                with open(path, "rb") as f:
                    return f.read(plot_data.MAX_BYTES + 1)
            except FileNotFoundError:
                return None
        data = read_at(self.repo, rev, rel)
        if data is None:
            data = cached_out(self.repo, self.lock(), rel)
        return data


def build(repo: Repo, revisions: list[Revision], targets: list[str]) -> list[Plot]:
    """One chart per plot file, each revision a series (a revision without the file is a note)."""
    readers = [_Reader(repo, r) for r in revisions]
    plots = []
    for spec in collect_specs(repo, revisions, targets):
        tables, notes = [], []
        for reader in readers:
            label = reader.revision.label
            origin = spec.path + (f" at {label}" if reader.revision.rev is not None else "")
            try:
                raw = reader.read(spec.path)
                if raw is None:
                    notes.append(f"{label}: {spec.path} not found")
                    continue
                want = [f for f in (spec.x, *spec.y) if f] if spec.y else []
                tables.append((label, plot_data.parse_table(raw, spec.path, origin, spec.header, want)))
            except DvliteError as exc:
                notes.append(f"{label}: {exc.message}")
        plots.append(plot_data.build_plot(spec, tables, notes))
    return plots


def metric_plots(repo: Repo, revisions: list[Revision]) -> list[Plot]:
    """One bar chart per numeric metric, a bar per revision."""
    found: dict[tuple[str, str], dict[str, object]] = {}
    for revision in revisions:
        try:
            for key, value in values.metrics_at(repo, revision.rev).items():
                found.setdefault(key, {})[revision.label] = value
        except DvliteError:
            continue
    plots = []
    for (path, key), by_rev in sorted(found.items()):
        if not any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in by_rev.values()):
            continue
        title = f"{key} ({path})"
        plots.append(plot_data.metric_plot(key, [(r.label, by_rev.get(r.label)) for r in revisions],
                                           title=title))
    return plots

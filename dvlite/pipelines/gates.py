"""Metric gates: `dvlite metrics check`, and the gates `repro` applies to the metrics a stage
writes. The conditions come from the `gates:` sections of every dvlite.yaml."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from dvlite.errors import BadInputError
from dvlite.formats import params as params_mod
from dvlite.formats.gates import Condition, Outcome, judge, parse_gates
from dvlite.formats.lockfile import Lock
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.project import load_pipeline, lock_at, out_at
from dvlite.repo import Repo

WORKSPACE = "workspace"


@dataclass(frozen=True)
class GateReport:
    rev: str  # "workspace" or the revision checked
    baseline: str | None  # the revision `previous` refers to (None: there is none)
    outcomes: list[Outcome]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def gates_of(pipeline: Pipeline) -> list[Condition]:
    """Every condition of every pipeline file's `gates:` section."""
    out: list[Condition] = []
    for f in pipeline.files:
        out += parse_gates(f.gates, f.path, posixpath.dirname(f.path))
    return out


class _Values:
    """Metrics files at one revision, each read and parsed once."""

    def __init__(self, repo: Repo, rev: str | None):
        self.repo, self.rev = repo, rev
        self.lock: Lock | None = None
        self.docs: dict[str, object] = {}

    def get(self, path: str, key: str):
        if path not in self.docs:
            if self.lock is None:
                self.lock = lock_at(self.repo, self.rev)
            data = out_at(self.repo, self.rev, path, self.lock)
            origin = path + (f" at {self.rev}" if self.rev else "")
            self.docs[path] = None if data is None else params_mod.parse(data, origin)
        doc = self.docs[path]
        if doc is None:
            return None
        try:
            return params_mod.lookup(doc, key)
        except KeyError:
            return None


def previous_rev(repo: Repo, rev: str | None, baseline: str | None) -> str | None:
    """The revision `previous` means: given, else HEAD for the workspace and REV~1 for REV."""
    if repo.scm is None:
        if baseline is not None:
            raise BadInputError("--baseline needs a git repository")
        return None
    wanted = baseline or ("HEAD" if rev is None else f"{rev}~1")
    try:
        return repo.scm.resolve(wanted)
    except BadInputError:
        if baseline is not None:
            raise
        return None  # a first commit, or no commit yet: nothing to compare with


def judge_all(repo: Repo, conditions: list[Condition], rev: str | None,
              baseline: str | None) -> list[Outcome]:
    now = _Values(repo, rev)
    before = _Values(repo, baseline) if baseline else None
    out = []
    for c in conditions:
        previous = before.get(c.path, c.key) if before is not None and c.relative else None
        out.append(judge(c, now.get(c.path, c.key), previous))
    return out


def check(repo: Repo, rev: str | None = None, baseline: str | None = None,
          paths: list[str] | None = None) -> GateReport:
    """The gates of the pipeline at `rev` (None: the workspace) against its metrics."""
    pipeline = load_pipeline(repo, rev, check=False)
    conditions = gates_of(pipeline)
    if paths:
        conditions = [c for c in conditions if c.path in paths]
    if not conditions:
        where = f" at {rev}" if rev else ""
        raise BadInputError(f"no gates{where}" + (f" on {', '.join(paths)}" if paths else ""),
                            hint="add a `gates:` section to dvlite.yaml (see docs/data-quality.md)")
    base = previous_rev(repo, rev, baseline)
    return GateReport(rev or WORKSPACE, base, judge_all(repo, conditions, rev, base))


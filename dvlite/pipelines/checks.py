"""The checks `repro` runs around a stage: the contracts of its deps before it runs; the
contracts of its outs and the metric gates on them after. A failing check fails the stage:
its outs stay in the workspace and the cache, its lock entry and run record are not written.

`previous`, for relative rules (a contract's `max_row_drop` and `keep_columns`, a gate's
`previous`), is what the stage's last recorded run saw or produced: the lock entry's deps
and outs for contracts, HEAD's metrics for gates.
"""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.formats.gates import Condition, Outcome
from dvlite.formats.lockfile import StageLock
from dvlite.pipelines.dag import Pipeline
from dvlite.pipelines.gates import gates_of, judge_all, previous_rev
from dvlite.pipelines.spec import Stage
from dvlite.repo import Repo


@dataclass(frozen=True)
class Finding:
    path: str
    passed: bool
    text: str  # one line: what was checked and, when it failed, how


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def _failed_checks(report) -> str:
    bad = [c for c in report.checks if not c.passed]
    named = ", ".join(f"{c.check} {c.target}" for c in bad[:4]) + (", ..." if len(bad) > 4 else "")
    return f"{len(bad)} of {len(report.checks)} checks failed: {named}"


def _gate_text(o: Outcome) -> str:
    c = o.condition
    if o.status == "missing":
        return f"{c.path}: {c.key} is missing or not a number (wanted {c.text})"
    if o.status == "no-baseline":
        return f"{c.path}: {c.key} = {o.value} ({c.text}: no previous value, not compared)"
    verdict = "passed" if o.ok else "FAILED"
    if not c.relative:
        return f"{c.path}: {c.key} = {o.value}, wanted {c.text}: {verdict}"
    return f"{c.path}: {c.key} = {o.value}, wanted {c.op} {o.bound:g} ({c.text}): {verdict}"


class StageChecks:
    """The contracts of dvlite.yaml's `checks:` and every file's gates, read once per repro."""

    def __init__(self, repo: Repo, contracts: dict, gates: list[Condition]):
        self.repo, self.contracts, self.gates = repo, contracts, gates

    @classmethod
    def load(cls, repo: Repo, pipeline: Pipeline | None) -> StageChecks:
        from dvlite.tables.local import read_checks

        return cls(repo, read_checks(repo), gates_of(pipeline) if pipeline is not None else [])

    def _contract(self, rel: str, previous_hex: str | None) -> Finding:
        from dvlite.tables.checks import baseline_of, validate
        from dvlite.tables.local import cached_source, label, workdir, workspace_source

        contract = self.contracts[rel]
        source = workspace_source(self.repo, rel)
        baseline = None
        if previous_hex and (contract.max_row_drop is not None or contract.keep_columns):
            before = cached_source(self.repo, rel, previous_hex, label(rel, "last run"))
            baseline = baseline_of(before) if before is not None else None
        report = validate(source, contract, baseline, workdir(self.repo))
        if report.passed:
            return Finding(rel, True, f"{rel}: contract passed ({len(report.checks)} checks, "
                                      f"{report.rows:,} rows)")
        return Finding(rel, False, f"{rel} breaks its contract ({_failed_checks(report)})")

    def _contracts_under(self, tops: list[str], recorded: dict[str, str]) -> list[Finding]:
        paths = sorted(p for p in self.contracts if any(_inside(p, t) for t in tops))
        return [self._contract(p, recorded.get(p)) for p in paths]

    def before(self, stage: Stage, last: StageLock | None) -> list[Finding]:
        """The contracts on the stage's deps (and on files inside dep directories)."""
        recorded = {d.path: d.digest.hex for d in last.deps} if last else {}
        return self._contracts_under(list(stage.deps), recorded)

    def after(self, stage: Stage, last: StageLock | None) -> list[Finding]:
        """The contracts on the stage's outs, then the gates on its metrics."""
        recorded = {o.path: o.digest.hex for o in last.outs} if last else {}
        outs = [o.path for o in stage.outs]
        found = self._contracts_under(outs, recorded)
        conditions = [c for c in self.gates if c.path in outs]
        if conditions:
            for o in judge_all(self.repo, conditions, None, previous_rev(self.repo, None, None)):
                found.append(Finding(o.condition.path, o.ok, _gate_text(o)))
        return found



def staged_findings(repo: Repo, data_paths: list[str]) -> list[Finding]:
    """The contracts of `checks:` on these tracked paths (or on files inside them), run on the
    workspace files: what the pre-commit hook runs for the pointers a commit records."""
    from dvlite.tables.local import read_checks

    checks = StageChecks(repo, read_checks(repo), [])
    wanted = sorted(p for p in checks.contracts if any(_inside(p, top) for top in data_paths))
    return [checks._contract(p, None) for p in wanted]

"""The table operations: show, diff, validate and drift of tracked tables at revisions.

Each returns a dataclass the CLI renders. A revision is a git revision, `"workspace"` for
the file on disk, or None: the workspace file when it is there, else the data the
pointers name.
"""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.errors import BadInputError
from dvlite.tables import local, versions
from dvlite.tables.checks import Baseline, ValidationReport, baseline_of
from dvlite.tables.drift import DriftReport, DriftSettings, compare
from dvlite.tables.formats import TableReader, TableSource, detect_format, open_table
from dvlite.tables.rowdiff import KeyedDiff, MultisetDiff, keyed_diff, multiset_diff
from dvlite.tables.schema import Column, SchemaDiff, columns_of, diff_columns
from dvlite.tables.sketches import jsonable
from dvlite.tables.stats import TableStats

HEAD_CAP = 10_000


def _source(repo, rel: str, rev: str | None, fmt: str | None, remote: str | None) -> TableSource:
    if rev is None:
        return versions.default_source(repo, rel, fmt, remote)
    return versions.source_at(repo, rel, rev, fmt, remote)


def _count(reader: TableReader) -> int:
    if reader.num_rows is not None:
        return reader.num_rows
    first = reader.schema.names[:1]
    return sum(b.num_rows for b in reader.batches(columns=first)) if first else 0


# --- show ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShowResult:
    path: str
    source: str
    format: str
    rows: int
    columns: list[Column]
    head: list[dict]
    stats: TableStats | None


def show(repo, rel: str, rev: str | None = None, head: int = 0, stats: bool = False,
         fmt: str | None = None, remote: str | None = None) -> ShowResult:
    """Schema, row count, the first `head` rows and (with `stats`) per-column statistics."""
    if head < 0 or head > HEAD_CAP:
        raise BadInputError(f"--head must be between 0 and {HEAD_CAP}")
    source = _source(repo, rel, rev, fmt, remote)
    table_stats = local.stats_cache(repo).stats(source) if stats else None
    with open_table(source) as reader:
        rows_head = reader.head(head).to_pylist() if head else []
        rows = table_stats.rows if table_stats else _count(reader)
        columns = columns_of(reader.schema)
    return ShowResult(rel, source.label, source.format, rows, columns,
                      [{k: jsonable(v) for k, v in r.items()} for r in rows_head], table_stats)


# --- diff ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TableDiff:
    path: str
    a: str
    b: str
    rows_a: int
    rows_b: int
    identical: bool  # the same bytes: nothing to compare
    schema: SchemaDiff
    rows: KeyedDiff | MultisetDiff | None  # None when identical


def diff(repo, rel: str, rev_a: str | None, rev_b: str | None, key: list[str] | None = None,
         fmt: str | None = None, remote: str | None = None) -> TableDiff:
    """Schema and row differences of one table between two revisions."""
    sa = _source(repo, rel, rev_a, fmt, remote)
    sb = _source(repo, rel, rev_b, fmt, remote)
    with open_table(sa) as ra, open_table(sb) as rb:
        if sa.digest != sb.digest:  # a whole-table read: corrupt bytes must not pass as data
            sa.check_intact()
            sb.check_intact()
        cols_a, cols_b = columns_of(ra.schema), columns_of(rb.schema)
        schema = diff_columns(cols_a, cols_b)
        if sa.digest is not None and sa.digest == sb.digest:
            n = _count(ra)
            return TableDiff(rel, sa.label, sb.label, n, n, True, schema, None)
        pairs = schema.pairs(cols_a, cols_b)
        work = local.workdir(repo)
        if key:
            rows = keyed_diff(ra, rb, key, pairs, work)
            rows_a, rows_b = rows.removed + rows.changed + rows.unchanged, rows.added + rows.changed + rows.unchanged
        else:
            rows = multiset_diff(ra, rb, pairs, work)
            rows_a, rows_b = rows.only_in_a + rows.in_both, rows.only_in_b + rows.in_both
    return TableDiff(rel, sa.label, sb.label, rows_a, rows_b, False, schema, rows)


def _is_table(rel: str) -> bool:
    try:
        detect_format(rel)
    except BadInputError:
        return False
    return True


def diff_changed(repo, rev_a: str | None, rev_b: str | None, targets: list[str],
                 key: list[str] | None = None, remote: str | None = None) -> list[TableDiff]:
    """Table diffs of every table file modified between two revisions, as `dvlite diff`
    finds them (renames pair identical bytes: nothing inside changed); `rev_b` None is the
    workspace."""
    from dvlite.data.history import diff_revs

    out = []
    for change in diff_revs(repo, rev_a, rev_b, targets).changes:
        if change.kind == "modified" and _is_table(change.path):
            out.append(diff(repo, change.path, rev_a or "HEAD", rev_b or local.WORKSPACE, key,
                            None, remote))
    return out


# --- validate -----------------------------------------------------------------------------

def _previous_rev(rev: str | None) -> str:
    return "HEAD" if rev in (None, local.WORKSPACE) else f"{rev}~1"


def _baseline(repo, rel: str, rev: str | None, fmt: str | None, remote: str | None) -> Baseline | None:
    """The previous committed version: HEAD for the workspace, else the revision's parent."""
    if repo.scm is None:
        return None
    prev = _previous_rev(rev)
    try:
        source = versions.source_at(repo, rel, prev, fmt, remote)
    except BadInputError:  # no such revision, or the file is not tracked there
        return None
    if source.format in ("csv", "tsv", "jsonl") and source.digest:
        st = local.stats_cache(repo).stats(source)  # counting rows is a full pass: cache it
        return Baseline(source.label, [c.name for c in st.columns], st.rows)
    return baseline_of(source)


def validate(repo, paths: list[str], rev: str | None = None, fmt: str | None = None,
             remote: str | None = None) -> list[ValidationReport]:
    """Run the contracts of dvlite.yaml's `checks:` on `paths` (default: every path there)."""
    from dvlite.tables.checks import validate as run_contract

    contracts = local.read_checks(repo)
    reports = []
    for rel in paths or sorted(contracts):
        contract = contracts.get(rel)
        if contract is None:
            raise BadInputError(f"{rel} has no contract", hint=f"add it under `checks:` in {local.CHECKS_FILE}")
        source = _source(repo, rel, rev, fmt, remote)
        source.check_intact()
        relative = contract.max_row_drop is not None or contract.keep_columns
        previous = _baseline(repo, rel, rev, fmt, remote) if relative else None
        reports.append(run_contract(source, contract, previous, local.workdir(repo)))
    return reports


# --- drift --------------------------------------------------------------------------------

def _drift_settings(repo, rel: str) -> DriftSettings:
    contract = local.read_checks(repo).get(rel)
    return contract.drift if contract is not None else DriftSettings()


def drift(repo, rel: str, rev_a: str | None, rev_b: str | None, columns: list[str] | None = None,
          fmt: str | None = None, remote: str | None = None) -> DriftReport:
    """Drift of one table from revision A to revision B (thresholds from its contract)."""
    cache = local.stats_cache(repo)
    sa = _source(repo, rel, rev_a, fmt, remote)
    sb = _source(repo, rel, rev_b, fmt, remote)
    report = compare(cache.stats(sa), cache.stats(sb), sa.label, sb.label,
                     _drift_settings(repo, rel), columns)
    _check_columns(columns, report)
    return report


def _check_columns(columns: list[str] | None, report: DriftReport) -> None:
    known = {c.column for c in report.columns}
    for name in columns or []:
        if name not in known:
            raise BadInputError(f"no column {name!r} in {report.a} or {report.b}")


@dataclass(frozen=True)
class DriftStep:
    commit: str
    subject: str
    report: DriftReport


@dataclass(frozen=True)
class DriftHistory:
    path: str
    versions: list[versions.Version]
    steps: list[DriftStep]  # one per version after the first, against the one before it


def _stats_of(repo, rel: str, v: versions.Version, fmt: str | None, remote: str | None) -> TableStats:
    from dvlite.tables.formats import detect_format

    cache = local.stats_cache(repo)
    cached = cache.get(v.digest, detect_format(rel, fmt))
    if cached is not None:
        return cached
    return cache.stats(versions.source_at(repo, rel, v.commit, fmt, remote))


def drift_history(repo, rel: str, columns: list[str] | None = None, fmt: str | None = None,
                  remote: str | None = None) -> DriftHistory:
    """Drift between each pair of consecutive versions of a file in HEAD's history."""
    found = versions.versions_of(repo, rel, remote)
    if not found:
        raise BadInputError(f"{rel} is not tracked as a file in any commit of HEAD's history")
    settings = _drift_settings(repo, rel)
    steps, before = [], None
    for v in found:
        current = _stats_of(repo, rel, v, fmt, remote)
        if before is not None:
            prev_v, prev_stats = before
            report = compare(prev_stats, current, local.label(rel, prev_v.commit[:12]),
                             local.label(rel, v.commit[:12]), settings, columns)
            steps.append(DriftStep(v.commit, v.subject, report))
        before = (v, current)
    return DriftHistory(rel, found, steps)

"""A table diff as titled sections of text rows: the terminal and Markdown render the same.

Pure text, no terminal: the CLI draws the sections as rich tables, `markdown()` as GitHub
Markdown (for `--md`, e.g. a pull-request comment).
"""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.tables.ops import TableDiff
from dvlite.tables.rowdiff import KeyedDiff, MultisetDiff

CELL_CAP = 60


@dataclass(frozen=True)
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]


def cell(value) -> str:
    text = "null" if value is None else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_CAP else text[:CELL_CAP - 1] + "…"


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def summary(d: TableDiff) -> str:
    if d.identical:
        return f"{d.path}: identical in {d.a} and {d.b} ({d.rows_a:,} rows)"
    return f"{d.path}: {d.a} -> {d.b}, rows {d.rows_a:,} -> {d.rows_b:,} ({_signed(d.rows_b - d.rows_a)})"


def _nulls(nullable: bool) -> str:
    return "nullable" if nullable else "not null"


def _schema_rows(d: TableDiff) -> list[list[str]]:
    s = d.schema
    rows = [["added", c.name, c.type] for c in s.added]
    rows += [["removed", c.name, c.type] for c in s.removed]
    rows += [["renamed", f"{r.old} -> {r.new}", r.type] for r in s.renamed]
    rows += [["type", t.name, f"{t.old} -> {t.new}"] for t in s.type_changed]
    rows += [["nullability", n.name, f"{_nulls(n.old)} -> {_nulls(n.new)}"] for n in s.nullability_changed]
    if s.reordered:
        rows.append(["order", "", "the common columns are in another order"])
    return rows


def _keyed(r: KeyedDiff) -> list[Section]:
    key = ", ".join(r.key)
    out = [Section(f"Rows by key ({key})", ["added", "removed", "changed", "unchanged"],
                   [[f"{r.added:,}", f"{r.removed:,}", f"{r.changed:,}", f"{r.unchanged:,}"]])]
    if r.changed_columns:
        out.append(Section("Changed columns", ["column", "rows changed"],
                           [[c, f"{n:,}"] for c, n in r.changed_columns.items()]))
    if r.changed_sample:
        rows = []
        for row in r.changed_sample:
            k = ", ".join(cell(v) for v in row.key.values())
            rows += [[k, c, cell(old), cell(new)] for c, (old, new) in row.changes.items()]
        out.append(Section("Sample of changed rows", [key, "column", "old", "new"], rows))
    for title, sample in (("Sample of added keys", r.added_sample), ("Sample of removed keys", r.removed_sample)):
        if sample:
            out.append(Section(title, list(r.key), [[cell(v) for v in s.values()] for s in sample]))
    if r.not_compared:
        out.append(Section("Not compared (nested types)", ["column"], [[c] for c in r.not_compared]))
    return out


def _multiset(r: MultisetDiff) -> list[Section]:
    out = [Section("Rows (no key: compared as multisets)", ["only in A", "only in B", "in both"],
                   [[f"{r.only_in_a:,}", f"{r.only_in_b:,}", f"{r.in_both:,}"]])]
    for title, sample in (("Sample of rows only in A", r.only_in_a_sample),
                          ("Sample of rows only in B", r.only_in_b_sample)):
        if sample:
            names = list(sample[0])
            out.append(Section(title, names, [[cell(row.get(n)) for n in names] for row in sample]))
    return out


def sections(d: TableDiff) -> list[Section]:
    out = []
    schema = _schema_rows(d)
    if schema:
        out.append(Section("Schema changes", ["change", "column", "detail"], schema))
    if isinstance(d.rows, KeyedDiff):
        out += _keyed(d.rows)
    elif isinstance(d.rows, MultisetDiff):
        out += _multiset(d.rows)
    return out


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")


def markdown(d: TableDiff) -> str:
    """The diff as GitHub Markdown."""
    lines = [f"### {_md_cell(d.path)}", "", _md_cell(summary(d)), ""]
    for s in sections(d):
        lines += [f"**{s.title}**", "", "| " + " | ".join(map(_md_cell, s.columns)) + " |",
                  "|" + "---|" * len(s.columns)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s.rows]
        lines.append("")
    return "\n".join(lines)

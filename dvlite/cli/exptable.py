"""The `exp show` table: choosing, naming and sorting columns, and fitting them to the terminal
(cells clipped, columns that do not fit named in a note), or as JSON, CSV and Markdown."""

from __future__ import annotations

import csv
import math
import re
import shutil
import sys
import time
from dataclasses import dataclass

from dvlite.cli import output as ui
from dvlite.errors import BadInputError

MAX_CELL = 14  # characters of a value before it is clipped
MAX_NAME = 18  # characters of an experiment name
GAP = "  "


@dataclass(frozen=True)
class Column:
    group: str  # metrics | params | deps
    file: str  # the file (for deps: the dep path)
    key: str
    title: str  # what the header shows

    @property
    def full(self) -> str:
        return self.file if self.group == "deps" else f"{self.file}:{self.key}"

    def value(self, row):
        if self.group == "deps":
            return row.deps.get(self.file)
        return getattr(row, self.group).get((self.file, self.key), _MISSING)


_MISSING = object()


def _titles(keys: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A key alone when no other file has it, else `file:key`."""
    count: dict[str, int] = {}
    for _, key in keys:
        count[key] = count.get(key, 0) + 1
    return {(f, k): k if count[k] == 1 else f"{f}:{k}" for f, k in keys}


def _regex(text: str | None, option: str):
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise BadInputError(f"{option}: not a regular expression ({exc})") from None


def columns(rows, only_changed: bool, drop: str | None, keep: str | None, deps: bool) -> list[Column]:
    out = []
    for group in ("metrics", "params"):
        keys = sorted({k for r in rows for k in getattr(r, group)})
        titles = _titles(keys)
        out += [Column(group, f, k, titles[(f, k)]) for f, k in keys]
    if deps:
        out += [Column("deps", p, "", p) for p in sorted({p for r in rows for p in r.deps})]
    drop_re, keep_re = _regex(drop, "--drop"), _regex(keep, "--keep")

    def changed(c: Column) -> bool:
        # experiments that did not finish have no metrics or deps to compare
        among = rows if c.group == "params" else [r for r in rows if r.state in ("", "success")]
        return len({_text(c.value(r), full=True) for r in among}) > 1

    def kept(c: Column) -> bool:
        if keep_re and (keep_re.search(c.full) or keep_re.search(c.title)):
            return True
        if drop_re and (drop_re.search(c.full) or drop_re.search(c.title)):
            return False
        if keep_re and not drop_re:  # --keep alone selects
            return False
        return changed(c) if only_changed or c.group == "deps" else True

    return [c for c in out if kept(c)]


def _sort_key(value):
    if isinstance(value, bool) or value is _MISSING or value is None:
        return (2, "")
    if isinstance(value, (int, float)):
        return (0, value if not math.isnan(value) else math.inf)
    return (1, str(value))


def sort_rows(rows, cols: list[Column], sort_by: str | None, descending: bool):
    """Experiments sorted within each base commit (missing values last); the workspace and each
    base row stay in place."""
    if sort_by is None:
        return rows
    matches = [c for c in cols if sort_by in (c.full, c.title, c.key)]
    if not matches:
        every = columns(rows, False, None, None, False)
        matches = [c for c in every if sort_by in (c.full, c.title, c.key)]
    if not matches:
        raise BadInputError(f"--sort-by {sort_by}: no such metric or param")
    if len({c.full for c in matches}) > 1:
        raise BadInputError(f"--sort-by {sort_by}: ambiguous: " + ", ".join(c.full for c in matches))
    col = matches[0]
    out, group = [], []

    def flush():
        present = [r for r in group if _sort_key(col.value(r))[0] < 2]
        absent = [r for r in group if _sort_key(col.value(r))[0] == 2]
        out.extend(sorted(present, key=lambda r: _sort_key(col.value(r)), reverse=descending) + absent)
        group.clear()

    for r in rows:
        if r.kind == "experiment":
            group.append(r)
            continue
        flush()
        out.append(r)
    flush()
    return out


def _text(value, full: bool = False) -> str:
    from dvlite.formats.params import show

    if value is _MISSING:
        return "-"
    if isinstance(value, float) and not full and math.isfinite(value):
        return f"{value:.6g}"
    return show(value)


def _created(row) -> str:
    if row.created is None:
        return ""
    when = time.localtime(row.created)
    if time.strftime("%Y-%m-%d", when) == time.strftime("%Y-%m-%d"):
        return time.strftime("%H:%M:%S", when)
    return time.strftime("%Y-%m-%d", when)


def _clip(text: str, width: int, keep_end: bool = False) -> str:
    if len(text) <= width:
        return text
    return "…" + text[-(width - 1):] if keep_end else text[: width - 1] + "…"


def _name(row, last: bool) -> str:
    if row.kind == "experiment":
        return ("└── " if last else "├── ") + row.name
    return row.name


def print_table(rows, cols: list[Column]) -> None:
    width = shutil.get_terminal_size((100, 24)).columns
    names = []
    for i, r in enumerate(rows):
        last = r.kind == "experiment" and (i + 1 == len(rows) or rows[i + 1].kind != "experiment")
        names.append(_clip(_name(r, last), MAX_NAME + 4))
    fixed = [("Experiment", names), ("Created", [_created(r) for r in rows]),
             ("State", [r.state for r in rows])]
    shown: list[tuple[str, list[str]]] = []
    used = sum(max(len(h), *(len(c) for c in cells)) for h, cells in fixed) + len(GAP) * (len(fixed) - 1)
    hidden = []
    for c in cols:
        cells = [_clip(_text(c.value(r)) if c.group != "deps" else (r.deps.get(c.file) or "-")[:8],
                       MAX_CELL) for r in rows]
        header = _clip(c.title, MAX_CELL, keep_end=True)
        need = len(GAP) + max(len(header), *(len(x) for x in cells))
        if used + need > width or hidden:
            hidden.append(c)
            continue
        used += need
        shown.append((header, cells))
    table = fixed + shown
    widths = [max(len(h), *(len(c) for c in cells)) for h, cells in table]
    numeric = [i >= len(fixed) for i in range(len(table))]
    lines = [_group_line(cols, hidden, widths[len(fixed):], sum(widths[:len(fixed)]) + len(GAP) * len(fixed))]
    lines = [line for line in lines if line]
    lines.append(GAP.join(h.ljust(w) for (h, _), w in zip(table, widths)).rstrip())
    for i in range(len(rows)):
        cells = [(cells[i].rjust(w) if numeric[j] else cells[i].ljust(w))
                 for j, ((_, cells), w) in enumerate(zip(table, widths))]
        lines.append(GAP.join(cells).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")
    if hidden:
        names_hidden = ", ".join(c.title for c in hidden[:6]) + (", ..." if len(hidden) > 6 else "")
        ui.note(f"{len(hidden)} more column(s) do not fit in {width} columns: {names_hidden}. "
                "Choose with --keep/--drop/--only-changed, or see all with --csv, --md or --json.")
    for r in rows:
        if r.error:
            ui.note(f"{r.name}: {r.error}")


def _group_line(cols: list[Column], hidden: list[Column], widths: list[int], start: int) -> str:
    """A line over the value columns naming their groups (metrics, params, deps)."""
    shown = [c for c in cols if c not in hidden]
    groups = [c.group for c in shown]
    if len(set(groups)) < 2:
        return ""
    spans: list[list] = []  # [group, start, width] of each run of one group's columns
    pos = start
    for i, (group, width) in enumerate(zip(groups, widths)):
        if i == 0 or groups[i - 1] != group:
            spans.append([group, pos, width])
        else:
            spans[-1][2] = pos + width - spans[-1][1]
        pos += width + len(GAP)
    line = ""
    for group, at, width in spans:  # a label never runs into the next group's columns
        label = group if len(group) <= width else group[:max(width - 1, 1)] + "…"
        line = line.ljust(at) + label
    return line.rstrip()


def as_json(rows) -> list[dict]:
    def nest(values: dict) -> dict:
        out: dict = {}
        for (f, k), v in sorted(values.items()):
            out.setdefault(f, {})[k] = v
        return out

    return [{"name": r.name, "kind": r.kind, "commit": r.commit, "base": r.base,
             "created": None if r.created is None else
             time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(r.created)),
             "state": r.state, "error": r.error, "params": nest(r.params), "metrics": nest(r.metrics),
             "deps": r.deps} for r in rows]


def _cell(c: Column, r) -> str:
    value = c.value(r)
    if c.group == "deps":
        return value or ""
    return "" if value is _MISSING else _text(value, full=True)


def write_csv(rows, cols: list[Column]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["name", "kind", "commit", "base", "created", "state"] + [c.full for c in cols])
    for r in rows:
        created = "" if r.created is None else time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.created))
        writer.writerow([r.name, r.kind, r.commit or "", r.base or "", created, r.state]
                        + [_cell(c, r) for c in cols])


def write_md(rows, cols: list[Column]) -> None:
    head = ["Experiment", "Created", "State"] + [c.title for c in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in rows:
        cells = [r.name, _created(r), r.state] + [_cell(c, r) or "-" for c in cols]
        lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    sys.stdout.write("\n".join(lines) + "\n")

"""Schema differences between two versions of a table.

A column is identified by its name. A removed and an added column count as a **rename**
when the rename is unambiguous: they have the same type and nullability, and no other
removed or added column has that type. Anything else stays "removed" plus "added"
(two removed int64 columns and one added int64 column are not guessed at).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the Arrow type as pyarrow prints it (`int64`, `timestamp[us, tz=UTC]`)
    nullable: bool


@dataclass(frozen=True)
class Renamed:
    old: str
    new: str
    type: str


@dataclass(frozen=True)
class TypeChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class NullabilityChange:
    name: str
    old: bool  # nullable before
    new: bool


@dataclass(frozen=True)
class SchemaDiff:
    added: list[Column]
    removed: list[Column]
    renamed: list[Renamed]
    type_changed: list[TypeChange]
    nullability_changed: list[NullabilityChange]
    reordered: bool  # the common columns appear in another order

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.type_changed
                    or self.nullability_changed or self.reordered)

    def pairs(self, a: list[Column], b: list[Column]) -> list[tuple[str, str]]:
        """(name in A, name in B) of every column both versions hold, renames included."""
        b_names = {c.name for c in b}
        out = [(c.name, c.name) for c in a if c.name in b_names]
        return out + [(r.old, r.new) for r in self.renamed]


def columns_of(schema) -> list[Column]:
    """The columns of a pyarrow Schema."""
    return [Column(f.name, str(f.type), bool(f.nullable)) for f in schema]


def diff_columns(a: list[Column], b: list[Column]) -> SchemaDiff:
    a_by, b_by = {c.name: c for c in a}, {c.name: c for c in b}
    removed = [c for c in a if c.name not in b_by]
    added = [c for c in b if c.name not in a_by]
    renamed = _renames(removed, added)
    gone = {r.old for r in renamed} | {r.new for r in renamed}
    common = [c.name for c in a if c.name in b_by]
    type_changed = [TypeChange(n, a_by[n].type, b_by[n].type) for n in common
                    if a_by[n].type != b_by[n].type]
    nullability = [NullabilityChange(n, a_by[n].nullable, b_by[n].nullable) for n in common
                   if a_by[n].nullable != b_by[n].nullable]
    order_b = [c.name for c in b if c.name in a_by]
    return SchemaDiff(
        added=[c for c in added if c.name not in gone],
        removed=[c for c in removed if c.name not in gone],
        renamed=renamed,
        type_changed=type_changed,
        nullability_changed=nullability,
        reordered=common != order_b,
    )


def _renames(removed: list[Column], added: list[Column]) -> list[Renamed]:
    removed_types = Counter(c.type for c in removed)
    added_types = Counter(c.type for c in added)
    out = []
    for old in removed:
        if removed_types[old.type] != 1 or added_types[old.type] != 1:
            continue
        new = next(c for c in added if c.type == old.type)
        if new.nullable == old.nullable:
            out.append(Renamed(old.name, new.name, old.type))
    return out


def diff_schemas(a, b) -> SchemaDiff:
    """The differences between two pyarrow Schemas."""
    return diff_columns(columns_of(a), columns_of(b))

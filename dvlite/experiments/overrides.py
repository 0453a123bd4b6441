"""`-S FILE:KEY=VALUE` param overrides: parsed, expanded into a grid (sweeps), checked against the
pipeline's params files, and written into those files keeping their text where possible."""

from __future__ import annotations

import copy
import itertools
import json
import math
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml

from dvlite import yamldoc
from dvlite.errors import BadInputError, FormatError
from dvlite.formats import params as params_mod
from dvlite.pipelines.spec import DEFAULT_PARAMS

MAX_GRID = 10_000  # experiments one command may queue
MAX_VALUE_CHARS = 10_000
Changes = dict[str, dict[str, object]]  # params file -> {dotted key: value}
_RANGE = re.compile(r"^range\((.*)\)$", re.DOTALL)
_CHOICE = re.compile(r"^choice\((.*)\)$", re.DOTALL)


@dataclass(frozen=True)
class Override:
    file: str  # repo-relative params file
    key: str  # dotted key
    values: tuple  # one value, or several for a sweep

    @property
    def label(self) -> str:
        return f"{self.file}:{self.key}"


def _value(text: str, arg: str):
    try:
        return yamldoc.load(text.encode(), f"-S {arg}") if text.strip() else None
    except FormatError:
        return text  # not YAML: the text itself


def _split_top(text: str) -> list[str]:
    """`text` split at the commas outside brackets and quotes."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def _number(text: str, arg: str):
    value = _value(text, arg)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadInputError(f"-S {arg}: range() takes numbers, not {text!r}")
    return value


def _range(body: str, arg: str) -> list:
    parts = [p for p in _split_top(body)]
    if not 2 <= len(parts) <= 3:
        raise BadInputError(f"-S {arg}: use range(start, stop) or range(start, stop, step)")
    start, stop = _number(parts[0], arg), _number(parts[1], arg)
    step = _number(parts[2], arg) if len(parts) == 3 else 1
    if step == 0:
        raise BadInputError(f"-S {arg}: range() step must not be 0")
    count = math.ceil((stop - start) / step)
    if count > MAX_GRID:
        raise BadInputError(f"-S {arg}: range() gives more than {MAX_GRID:,} values")
    if all(isinstance(v, int) for v in (start, stop, step)):
        return list(range(start, stop, step))
    return [float(f"{start + i * step:.12g}") for i in range(max(0, count))]


def parse_values(text: str, arg: str) -> tuple:
    """The value(s) of one `-S`: `1`, `rbf`, `[1, 2]` (one list), `a,b,c` or `choice(a, b)` (a
    sweep), `range(start, stop[, step])` (numbers, stop excluded, as Python's range)."""
    text = text.strip()
    found = _RANGE.match(text)
    if found:
        values = _range(found.group(1), arg)
    else:
        found = _CHOICE.match(text)
        inner = found.group(1) if found else text
        parts = _split_top(inner) if (found or "," in inner) and not text.startswith(("[", "{")) else [inner]
        values = [_value(p, arg) for p in parts]
    if not values:
        raise BadInputError(f"-S {arg}: the sweep has no values")
    return tuple(values)


def parse_args(args: list[str]) -> list[Override]:
    """`[FILE:]KEY=VALUE` options (FILE defaults to params.yaml), in order; a key given twice is
    an error."""
    out: list[Override] = []
    for arg in args:
        if len(arg) > MAX_VALUE_CHARS:
            raise BadInputError(f"-S: an override longer than {MAX_VALUE_CHARS} characters")
        lhs, eq, text = arg.partition("=")
        if not eq or not lhs.strip():
            raise BadInputError(f"-S {arg}: expected [FILE:]KEY=VALUE")
        file, colon, key = lhs.strip().partition(":")
        if not colon:
            file, key = DEFAULT_PARAMS, file
        file = posixpath.normpath(file.replace("\\", "/"))
        if not key or file.startswith(("../", "/")) or file == "..":
            raise BadInputError(f"-S {arg}: expected [FILE:]KEY=VALUE with a repo-relative FILE")
        if any(o.file == file and o.key == key for o in out):
            raise BadInputError(f"-S: {file}:{key} is given twice")
        out.append(Override(file, key, parse_values(text, arg)))
    return out


def grid(overrides: list[Override]) -> list[Changes]:
    """Every combination of the values (one Changes when nothing sweeps)."""
    total = math.prod(len(o.values) for o in overrides)
    if total > MAX_GRID:
        raise BadInputError(f"the sweep makes {total:,} experiments, more than {MAX_GRID:,}")
    combos = []
    for values in itertools.product(*(o.values for o in overrides)):
        changes: Changes = {}
        for o, v in zip(overrides, values):
            changes.setdefault(o.file, {})[o.key] = v
        combos.append(changes)
    return combos


def check(overrides: list[Override], known_files: set[str], read: Callable[[str], bytes | None],
          where: str) -> None:
    """Each file must be a params file of the pipeline, and each key must be in it (at `where`,
    e.g. "the workspace")."""
    docs: dict[str, object] = {}
    for o in overrides:
        if o.file not in known_files:
            raise BadInputError(f"-S \"{o.label}\": {o.file} is not a params file of the pipeline",
                                hint="params files: " + ", ".join(sorted(known_files)))
        if o.file not in docs:
            data = read(o.file)
            if data is None:
                raise BadInputError(f"-S \"{o.label}\": {o.file} does not exist in {where}")
            docs[o.file] = params_mod.parse(data, o.file)
        try:
            params_mod.lookup(docs[o.file], o.key)
        except KeyError:
            raise BadInputError(f"-S \"{o.label}\": {o.file} has no param {o.key!r}",
                                hint="overrides change existing params; add new ones to the file first"
                                ) from None


# --- writing the changed values into the file ---------------------------------------------

def _set(doc, key: str, value):
    """`doc` with the value at dotted `key` replaced (a key that itself holds dots first)."""
    if isinstance(doc, dict) and key in doc:
        doc[key] = value
        return doc
    cur = doc
    parts = key.split(".")
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return doc


def apply(data: bytes, rel: str, changes: dict[str, object]) -> bytes:
    """The params file `rel` (its bytes) with `changes` made: YAML and TOML keep their text
    (comments, order) where each value sits on its key's line; JSON is written again."""
    doc = params_mod.parse(data, rel)
    expected = copy.deepcopy(doc)
    for key, value in changes.items():
        try:
            expected = _set(expected, key, value)
        except (KeyError, IndexError, ValueError, TypeError):
            raise BadInputError(f"{rel}: cannot set {key}") from None
    ext = posixpath.splitext(rel)[1].lower()
    if ext == ".json":
        indent = 2 if b"\n" in data.strip() else None
        return (json.dumps(expected, indent=indent, ensure_ascii=False) + "\n").encode()
    text = data.decode("utf-8")
    edit = _toml_line if ext == ".toml" else _yaml_line
    for key, value in changes.items():
        text = edit(text, key, value) or ""
    if text and _same(text.encode(), rel, expected):
        return text.encode()
    if ext == ".toml":
        raise BadInputError(f"{rel}: cannot rewrite {', '.join(changes)} in place",
                            hint="dvlite rewrites TOML values written as `key = value` on one line")
    return yaml.safe_dump(expected, sort_keys=False, allow_unicode=True, width=1000).encode()


def _same(data: bytes, rel: str, expected) -> bool:
    try:
        return params_mod.parse(data, rel) == expected
    except FormatError:
        return False


_YAML_KEY = re.compile(r"""^(?P<ind>[ ]*)(?P<key>"[^"]*"|'[^']*'|[^\s#'"{\[-][^:#]*?)[ ]*:(?P<rest>[ ].*|)$""")


def _yaml_scalar(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, allow_unicode=True)
    return text.strip().removesuffix("...").strip()


def _split_comment(rest: str) -> tuple[str, str]:
    """A line's value and its trailing comment (` # ...`), quotes respected."""
    quote = ""
    for i, ch in enumerate(rest):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or rest[i - 1] in " \t"):
            value = rest[:i].rstrip()
            return value, rest[len(value):] if value else rest[i:]
    return rest.rstrip(), ""


def _yaml_line(text: str, key: str, value) -> str | None:
    """`text` with `key`'s one-line value replaced; None when the layout does not allow it."""
    path = key.split(".")
    stack: list[tuple[int, str]] = []
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        if not body.strip() or body.lstrip().startswith("#") or body.startswith(("---", "...")):
            continue
        found = _YAML_KEY.match(body)
        indent = len(body) - len(body.lstrip(" "))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if not found:
            continue
        name = found.group("key").strip()
        name = name[1:-1] if name[:1] in "'\"" else name
        stack.append((indent, name))
        if [k for _, k in stack] != path:
            continue
        old, comment = _split_comment(found.group("rest").lstrip())
        if not old or old[0] in "|>&*!":
            return None
        end = line[len(body):]
        lines[i] = f"{found.group('ind')}{found.group('key')}: {_yaml_scalar(value)}{comment}{end}"
        return "".join(lines)
    return None


_TOML_HEADER = re.compile(r"^\s*\[(?P<name>[^\[\]]+)\]\s*(#.*)?$")
_TOML_KEY = re.compile(r"^(?P<ind>\s*)(?P<key>[A-Za-z0-9_.\- \"']+?)\s*=\s*(?P<rest>.*)$")


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                           ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise BadInputError(f"cannot write {value!r} as a TOML value")


def _toml_parts(name: str) -> list[str]:
    return [p.strip().strip("\"'") for p in name.split(".")]


def _toml_line(text: str, key: str, value) -> str | None:
    path = key.split(".")
    section: list[str] = []
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        body = line.rstrip("\r\n")
        header = _TOML_HEADER.match(body)
        if header:
            section = _toml_parts(header.group("name"))
            continue
        found = _TOML_KEY.match(body)
        if not found or body.lstrip().startswith("#"):
            continue
        if section + _toml_parts(found.group("key")) != path:
            continue
        old, comment = _split_comment(found.group("rest"))
        if not old or old.startswith(("[", "{", '"""', "'''")) and not _closed(old):
            return None
        end = line[len(body):]
        lines[i] = f"{found.group('ind')}{found.group('key')} = {_toml_value(value)}{comment}{end}"
        return "".join(lines)
    return None


def _closed(value: str) -> bool:
    return value.count("[") == value.count("]") and value.count("{") == value.count("}") \
        and not value.startswith(('"""', "'''"))


def flat(changes: Changes) -> dict[tuple[str, str], object]:
    """(file, key) -> value of some changes, as `exp show` columns them."""
    out = {}
    for file, values in changes.items():
        for key, value in values.items():
            if isinstance(value, dict) and value:
                for sub, v in params_mod.flatten(value, key).items():
                    out[(file, sub)] = v
            else:
                out[(file, key)] = value
    return out


def describe(changes: Changes) -> str:
    return " ".join(f"{k}={params_mod.show(v)}" if f == DEFAULT_PARAMS else f"{f}:{k}={params_mod.show(v)}"
                    for f, values in sorted(changes.items()) for k, v in values.items())

"""Reading YAML and JSON that people and other dvlites write, within bounds.

Everything here may come from someone else's commit: a document is refused (one
FormatError naming the file) when it is bigger than its limit, nested deeper than
`MAX_DEPTH`, or would expand through YAML aliases into more than `MAX_NODES` values (a
"billion laughs" document is a few hundred bytes). A syntax error names the file and line.
"""

from __future__ import annotations

import json

from dvlite.errors import FormatError

MAX_BYTES = 64 << 20  # a lock of thousands of stages is a few MiB
MAX_DEPTH = 100
MAX_NODES = 2_000_000  # values after alias expansion: a million-file manifest in YAML


def _too_big(data: bytes, origin: str, limit: int) -> None:
    if len(data) > limit:
        raise FormatError(f"{origin}: {len(data)} bytes, more than the {limit >> 20} MiB "
                          "dvlite reads from such a file")


def load(data: bytes, origin: str, max_bytes: int = MAX_BYTES):
    import yaml  # here: JSON readers (manifests, a status) need not load it

    _too_big(data, origin, max_bytes)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml also caps nesting itself
    try:
        doc = yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise FormatError(f"{origin}: invalid YAML{where}") from exc
    except (RecursionError, MemoryError) as exc:
        raise FormatError(f"{origin}: invalid YAML (nested too deeply)") from exc
    except ValueError as exc:  # a value YAML allows but Python will not build (a 5,000-digit int)
        raise FormatError(f"{origin}: invalid YAML ({str(exc).splitlines()[0][:80]})") from exc
    check_shape(doc, origin)
    return doc


def load_json(data: bytes, origin: str, max_bytes: int = MAX_BYTES, shape: bool = True):
    """JSON with the same bounds; ValueError-free: a malformed document is a FormatError.
    `shape` False skips check_shape, for a reader that checks every value's type itself (JSON
    has no aliases, and the decoder's own recursion limit bounds its depth)."""
    _too_big(data, origin, max_bytes)
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{origin}: invalid JSON ({str(exc).splitlines()[0][:80]})") from exc
    except RecursionError as exc:
        raise FormatError(f"{origin}: invalid JSON (nested too deeply)") from exc
    if shape:
        check_shape(doc, origin)
    return doc


def check_shape(doc, origin: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH, recursive, or expanding to more than
    MAX_NODES values. A shared container (a YAML alias) counts once per use but is measured
    once, so a "billion laughs" document is refused in microseconds."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()  # containers whose children are being measured: the ancestors
    stack: list[tuple[object, int, bool]] = [(doc, 1, False)]
    while stack:  # iterative: the depths refused here would overflow Python's own stack
        node, depth, measured = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = list(node.values()) if isinstance(node, dict) else node
        if measured:
            total = len(children) + sum(sizes.get(id(c), 0) for c in children)
            if total > MAX_NODES:
                raise FormatError(f"{origin}: expands to more than {MAX_NODES} values "
                                  "(YAML aliases used as a bomb?)")
            sizes[key] = total
            visiting.discard(key)
            continue
        if key in sizes:
            continue
        if key in visiting:
            raise FormatError(f"{origin}: a value contains itself (recursive YAML alias)")
        if depth > MAX_DEPTH:
            raise FormatError(f"{origin}: nested more than {MAX_DEPTH} levels deep")
        visiting.add(key)
        stack.append((node, depth, True))
        stack += [(c, depth + 1, False) for c in children if isinstance(c, (dict, list))]

"""Parameter and metrics files: YAML, JSON or TOML (by extension), read by dotted key or section."""

from __future__ import annotations

import json
import math
import posixpath

from dvlite import yamldoc
from dvlite.errors import FormatError

_MISSING = object()


def parse(data: bytes, origin: str):
    """The document in a params or metrics file, chosen by its extension (YAML when unknown)."""
    ext = posixpath.splitext(origin.split(" at ", 1)[0])[1].lower()
    if ext == ".json":
        return yamldoc.load_json(data, origin)
    if ext != ".toml":
        return yamldoc.load(data, origin)
    import tomllib

    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # TOMLDecodeError is one
        first = (str(exc).splitlines() or [""])[0][:120]
        raise FormatError(f"{origin}: cannot parse ({type(exc).__name__}: {first})") from exc
    yamldoc.check_shape(doc, origin)
    return doc


def _plain(value):
    """Values as YAML and JSON can write them (TOML dates become ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def lookup(doc, key: str):
    """The value at dotted `key` ("" for the whole document); raises KeyError if absent."""
    if key == "":
        return _plain(doc)
    if isinstance(doc, dict) and key in doc:  # a key that itself contains dots
        return _plain(doc[key])
    cur = doc
    for part in key.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise KeyError(key)
    return _plain(cur)


def flatten(doc, prefix: str = "") -> dict[str, object]:
    """Every leaf value by dotted key (lists are leaves)."""
    out: dict[str, object] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = _plain(v)
    elif prefix:
        out[prefix] = _plain(doc)
    return out


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (
        isinstance(v, float) and math.isnan(v))


def delta(old, new):
    """new - old for two numbers, else None."""
    if is_number(old) and is_number(new):
        d = new - old
        return round(d, 12) if isinstance(d, float) else d
    return None


def show(value) -> str:
    if value is _MISSING or value is None:
        return "-" if value is _MISSING else "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


MISSING = _MISSING

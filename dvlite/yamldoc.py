"""Reading YAML documents dvlite and people write: a syntax error names the file and line."""

from __future__ import annotations

import yaml

from dvlite.errors import FormatError


def load(data: bytes, origin: str):
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise FormatError(f"{origin}: invalid YAML{where}") from exc

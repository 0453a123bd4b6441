"""`.dvc/config` and `.dvc/config.local`: configobj-style INI, and what becomes of it in dvlite.

    [core]
        remote = storage
    ['remote "storage"']
        url = s3://bucket/path
        endpointurl = http://127.0.0.1:9000
    [cache]
        type = "reflink,copy"

Section and key names are case-insensitive (DVC lowers them, remote names included). An
unquoted value with commas is a list. Relative local paths (`url`, `cache.dir`) are relative
to `.dvc/`, the directory of the config file.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from dvlite.errors import FormatError

MAX_CONFIG = 1 << 20
_NAMED = re.compile(r'^\s*(remote|machine|db)\s*"(.*)"\s*$')


def _unquote(text: str, origin: str, lineno: int) -> tuple[str, str]:
    """A quoted or bare token at the start of `text`, and what follows it."""
    text = text.lstrip()
    if text[:3] in ("'''", '"""'):
        raise FormatError(f"{origin}:{lineno}: multi-line values are not supported")
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end < 0:
            raise FormatError(f"{origin}:{lineno}: unterminated quote")
        return text[1:end], text[end + 1:]
    match = re.match(r"[^,#]*", text)
    return match.group(0).strip(), text[match.end():]


def _value(text: str, origin: str, lineno: int):
    items, rest = [], text
    token, rest = _unquote(rest, origin, lineno)
    items.append(token)
    is_list = False
    while True:
        rest = rest.lstrip()
        if not rest or rest.startswith("#"):
            break
        if not rest.startswith(","):
            raise FormatError(f"{origin}:{lineno}: unexpected text after a value")
        is_list = True
        rest = rest[1:]
        if not rest.strip() or rest.strip().startswith("#"):
            break  # a trailing comma: configobj's one-item list
        token, rest = _unquote(rest, origin, lineno)
        items.append(token)
    return items if is_list else items[0]


def parse_ini(data: bytes, origin: str) -> dict[str, dict]:
    """Sections -> {key: str or list of str}, keys lowered; named sections kept as written."""
    if len(data) > MAX_CONFIG:
        raise FormatError(f"{origin}: larger than {MAX_CONFIG >> 10} KiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{origin}: not UTF-8 text") from exc
    sections: dict[str, dict] = {}
    current: dict | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            if stripped.startswith("[["):
                raise FormatError(f"{origin}:{lineno}: nested sections are not supported")
            end = stripped.rfind("]")
            if end < 0:
                raise FormatError(f"{origin}:{lineno}: unterminated section header")
            name, rest = _unquote(stripped[1:end], origin, lineno)
            current = sections.setdefault(name.strip().lower(), {})
            continue
        key, eq, rest = line.partition("=")
        if not eq or current is None:
            raise FormatError(f"{origin}:{lineno}: expected `key = value` inside a [section]")
        key = key.strip().strip("'\"").lower()
        current[key] = _value(rest, origin, lineno)
    return sections


@dataclass(frozen=True)
class DvcConfig:
    """One DVC config file, split into plain sections and named remotes."""

    sections: dict  # section -> {key: value}
    remotes: dict  # remote name -> {key: value}

    def get(self, section: str, key: str):
        return self.sections.get(section, {}).get(key)


def parse(data: bytes | None, origin: str) -> DvcConfig:
    if data is None:
        return DvcConfig({}, {})
    sections, remotes = {}, {}
    for name, body in parse_ini(data, origin).items():
        named = _NAMED.match(name)
        if named and named.group(1) == "remote":
            remotes[named.group(2)] = body
        elif not named:
            sections[name] = body
    return DvcConfig(sections, remotes)


def merged(shared: DvcConfig, local: DvcConfig) -> DvcConfig:
    """config.local over config, key by key."""
    sections = {s: dict(v) for s, v in shared.sections.items()}
    for s, v in local.sections.items():
        sections.setdefault(s, {}).update(v)
    remotes = {r: dict(v) for r, v in shared.remotes.items()}
    for r, v in local.remotes.items():
        remotes.setdefault(r, {}).update(v)
    return DvcConfig(sections, remotes)


def as_text(value) -> str:
    return ",".join(value) if isinstance(value, list) else str(value)


def rebase_local_path(value: str, origin: str, what: str) -> str:
    """A local path DVC reads relative to `.dvc/`, made relative to the repository root."""
    if value.startswith("~"):
        raise FormatError(f"{origin}: {what}: a path under ~ is not supported",
                          hint="write the absolute path in its place")
    if re.match(r"^\w+://", value) or posixpath.isabs(value):
        return value
    return posixpath.normpath(posixpath.join(".dvc", value.replace("\\", "/")))


def cache_dir(conf: DvcConfig, origin: str) -> str:
    """The DVC cache directory, relative to the repository root unless absolute."""
    value = conf.get("cache", "dir")
    if value is None:
        return ".dvc/cache"
    if not isinstance(value, str) or not value:
        raise FormatError(f"{origin}: cache.dir must be a path")
    return rebase_local_path(value, origin, "cache.dir")


@dataclass
class Settings:
    """What dvlite's config gets: keys (git-style) for config and config.local, and notes."""

    shared: dict = field(default_factory=dict)
    local: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

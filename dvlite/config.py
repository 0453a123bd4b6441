"""`.dvlite/config` (tracked) and `.dvlite/config.local` (untracked), INI, git-style keys.

A key is `section.option` (`cache.type`, `core.remote`) or, for named sections,
`section.name.option` (`remote.origin.url`, stored as `[remote "origin"]`).
Values in config.local override those in config.
"""

from __future__ import annotations

import configparser
import io
import os
import re
from dataclasses import dataclass

from dvlite.errors import BadInputError, FormatError
from dvlite.fsutil import LINK_TYPES, atomic_write

KNOWN = {
    "core.remote": "name of the default remote",
    "core.lock_timeout": "seconds to wait for the repository lock (default 10)",
    "core.no_scm": "true when the repository lives outside git",
    "cache.type": "ordered link types to try: reflink, hardlink, symlink, copy",
    "cache.dir": "where the cache lives (default .dvlite/cache)",
    "hooks.strict": "pre-commit hook fails instead of warning",
}
DEFAULTS = {"cache.type": "reflink,copy", "core.lock_timeout": "10"}
_NAMED = re.compile(r'^(\w+) "(.+)"$')


@dataclass(frozen=True)
class ConfigFile:
    path: str
    parser: configparser.ConfigParser


def _section_and_option(key: str) -> tuple[str, str]:
    parts = key.split(".")
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    if len(parts) >= 3 and all(parts):
        return f'{parts[0]} "{parts[1]}"', ".".join(parts[2:])
    raise BadInputError(f"invalid config key {key!r} (expected section.option)")


def _key_of(section: str, option: str) -> str:
    named = _NAMED.match(section)
    return f"{named[1]}.{named[2]}.{option}" if named else f"{section}.{option}"


def _read(path: str) -> ConfigFile:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except FileNotFoundError:
        pass
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise FormatError(f"{path}: malformed config ({first})") from exc
    return ConfigFile(path, parser)


class Config:
    def __init__(self, dvlite_dir: str):
        self.repo_root = os.path.dirname(os.path.abspath(dvlite_dir))
        self.shared = _read(os.path.join(dvlite_dir, "config"))
        self.local = _read(os.path.join(dvlite_dir, "config.local"))

    def get(self, key: str, default: str | None = None) -> str | None:
        section, option = _section_and_option(key)
        for cfg in (self.local, self.shared):
            if cfg.parser.has_option(section, option):
                return cfg.parser.get(section, option)
        return DEFAULTS.get(key, default)

    def items(self, which: str = "merged") -> dict[str, str]:
        files = {"shared": [self.shared], "local": [self.local], "merged": [self.shared, self.local]}
        out: dict[str, str] = {}
        for cfg in files[which]:
            for section in cfg.parser.sections():
                for option, value in cfg.parser.items(section):
                    out[_key_of(section, option)] = value
        return dict(sorted(out.items()))

    def set(self, key: str, value: str, local: bool = False) -> None:
        validate(key, value)
        cfg = self.local if local else self.shared
        section, option = _section_and_option(key)
        if not cfg.parser.has_section(section):
            cfg.parser.add_section(section)
        cfg.parser.set(section, option, value)
        save(cfg)

    def unset(self, key: str, local: bool = False) -> bool:
        cfg = self.local if local else self.shared
        section, option = _section_and_option(key)
        if not cfg.parser.has_option(section, option):
            return False
        cfg.parser.remove_option(section, option)
        if not cfg.parser.items(section):
            cfg.parser.remove_section(section)
        save(cfg)
        return True

    def link_types(self) -> list[str]:
        value = self.get("cache.type") or DEFAULTS["cache.type"]
        kinds = [k.strip() for k in value.split(",") if k.strip()]
        bad = [k for k in kinds if k not in LINK_TYPES]
        if bad or not kinds:
            raise FormatError(
                f"cache.type: unknown link type {', '.join(bad) or value!r}",
                hint=f"choose from {', '.join(LINK_TYPES)}",
            )
        return kinds

    def pack_small(self) -> bool:
        value = (self.get("cache.pack") or "true").strip().lower()
        if value not in ("true", "false"):
            raise FormatError(f"cache.pack: expected true or false, not {value!r}")
        return value == "true"

    def lock_timeout(self) -> float:
        value = self.get("core.lock_timeout")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise FormatError(f"core.lock_timeout: not a number: {value!r}") from None


def validate(key: str, value: str) -> None:
    _section_and_option(key)
    if key == "cache.type":
        kinds = [k.strip() for k in value.split(",")]
        bad = [k for k in kinds if k not in LINK_TYPES]
        if bad:
            raise BadInputError(
                f"cache.type: unknown link type {', '.join(bad)!r}",
                hint=f"choose from {', '.join(LINK_TYPES)}",
            )
    if key == "core.lock_timeout":
        try:
            float(value)
        except ValueError:
            raise BadInputError(f"core.lock_timeout: not a number: {value!r}") from None


def save(cfg: ConfigFile) -> None:
    buf = io.StringIO()
    cfg.parser.write(buf)
    atomic_write(cfg.path, buf.getvalue().encode())

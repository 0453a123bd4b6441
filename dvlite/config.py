"""dvlite's settings: INI files with git-style keys, in four scopes as git has them.

A key is `section.option` (`cache.type`, `core.remote`) or, for named sections,
`section.name.option` (`remote.origin.url`, stored as `[remote "origin"]`).

Scopes, lowest precedence first: `system` (for the machine), `global` (for the user),
`project` (`.dvlite/config`, committed) and `local` (`.dvlite/config.local`, untracked). A
value in a later scope wins. Where the system and global files live is for the caller to say
(`ScopePaths`; the CLI reads `XDG_CONFIG_HOME` and friends): the library reads no environment.
A relative path in a setting (`cache.dir`) is relative to the file that sets it.
"""

from __future__ import annotations

import configparser
import io
import os
import re
from dataclasses import dataclass

from dvlite.errors import BadInputError, FormatError
from dvlite.fsutil import LINK_TYPES, atomic_write, read_limited

KNOWN = {
    "core.remote": "name of the default remote",
    "core.lock_timeout": "seconds to wait for the repository lock (default 10)",
    "core.no_scm": "true when the repository lives outside git",
    "cache.type": "ordered link types to try: reflink, hardlink, symlink, copy",
    "cache.dir": "where the cache lives (default .dvlite/cache; relative to the config file)",
    "cache.shared": "group: a cache that the users of one group share (setgid directories)",
    "hooks.strict": "pre-commit hook fails instead of warning",
    "hooks.fetch": "post-merge and post-rewrite fetch what the cache lacks (default true)",
}
DEFAULTS = {"cache.type": "reflink,copy", "core.lock_timeout": "10"}
SCOPES = ("system", "global", "project", "local")  # lowest precedence first
SHARED_MODES = ("group",)
MAX_BYTES = 1 << 20
_NAMED = re.compile(r'^(\w+) "(.+)"$')


@dataclass(frozen=True)
class ScopePaths:
    """Where the machine's and the user's config files are; None leaves the scope out."""

    system: str | None = None
    user: str | None = None  # the `global` scope


_scope_paths = ScopePaths()


def use_scope_paths(paths: ScopePaths) -> None:
    """Set the system and global files every `Config` made from now on reads (the CLI does
    this once at start; a Python caller may too)."""
    global _scope_paths
    _scope_paths = paths


def scope_paths() -> ScopePaths:
    return _scope_paths


@dataclass(frozen=True)
class ConfigFile:
    path: str
    parser: configparser.ConfigParser
    scope: str = "project"


@dataclass(frozen=True)
class Setting:
    key: str
    value: str
    scope: str
    path: str  # the file that sets it


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


def _read(path: str, scope: str) -> ConfigFile:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        text = read_limited(path, MAX_BYTES, path).decode("utf-8")
        parser.read_string(text, path)
    except (FileNotFoundError, NotADirectoryError):
        pass
    except (configparser.Error, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise FormatError(f"{path}: malformed config ({first})") from exc
    return ConfigFile(path, parser, scope)


class Config:
    """The settings of one repository (or, with `dvlite_dir` None, of none: system and
    global only)."""

    def __init__(self, dvlite_dir: str | None, paths: ScopePaths | None = None):
        paths = _scope_paths if paths is None else paths
        self.repo_root = os.path.dirname(os.path.abspath(dvlite_dir)) if dvlite_dir else None
        self.files: dict[str, ConfigFile] = {}
        if paths.system:
            self.files["system"] = _read(paths.system, "system")
        if paths.user:
            self.files["global"] = _read(paths.user, "global")
        if dvlite_dir:
            self.files["project"] = _read(os.path.join(dvlite_dir, "config"), "project")
            self.files["local"] = _read(os.path.join(dvlite_dir, "config.local"), "local")

    @property
    def shared(self) -> ConfigFile:
        return self.file("project")

    @property
    def local(self) -> ConfigFile:
        return self.file("local")

    def file(self, scope: str) -> ConfigFile:
        if scope not in SCOPES:
            raise BadInputError(f"unknown config scope {scope!r} (choose from {', '.join(SCOPES)})")
        if scope not in self.files:
            where = "outside a dvlite repository" if scope in ("project", "local") else \
                "here: no file is known for it"
            raise BadInputError(f"no {scope} config {where}")
        return self.files[scope]

    def _chain(self) -> list[ConfigFile]:
        """Highest precedence first."""
        return [self.files[s] for s in reversed(SCOPES) if s in self.files]

    def get(self, key: str, default: str | None = None) -> str | None:
        found = self.origin(key)
        if found is not None:
            return found.value
        return DEFAULTS.get(key, default)

    def origin(self, key: str) -> Setting | None:
        """The setting that decides `key`, with its scope and file; None when unset."""
        section, option = _section_and_option(key)
        for cfg in self._chain():
            if cfg.parser.has_option(section, option):
                return Setting(key, cfg.parser.get(section, option), cfg.scope, cfg.path)
        return None

    def get_path(self, key: str) -> str | None:
        """A path setting, absolute: a relative one is taken from the directory of its file."""
        found = self.origin(key)
        if found is None or not found.value:
            return None
        value = os.path.expanduser(found.value) if found.value.startswith("~") else found.value
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(found.path)), value))

    def settings(self, scope: str | None = None) -> list[Setting]:
        """Every effective setting (or every one of one scope's file), sorted by key."""
        files = [self.file(scope)] if scope else [self.files[s] for s in SCOPES if s in self.files]
        out: dict[str, Setting] = {}
        for cfg in files:
            for section in cfg.parser.sections():
                for option, value in cfg.parser.items(section):
                    key = _key_of(section, option)
                    out[key] = Setting(key, value, cfg.scope, cfg.path)
        return [out[k] for k in sorted(out)]

    def items(self, which: str = "merged") -> dict[str, str]:
        """key -> value: `merged` (every scope, as in effect), a scope name, or `shared`
        (the project file)."""
        scope = {"merged": None, "shared": "project"}.get(which, which)
        return {s.key: s.value for s in self.settings(scope)}

    def _target(self, local: bool, scope: str | None) -> ConfigFile:
        return self.file(scope or ("local" if local else "project"))

    def set(self, key: str, value: str, local: bool = False, scope: str | None = None) -> None:
        validate(key, value)
        cfg = self._target(local, scope)
        section, option = _section_and_option(key)
        if not cfg.parser.has_section(section):
            cfg.parser.add_section(section)
        cfg.parser.set(section, option, value)
        save(cfg)

    def unset(self, key: str, local: bool = False, scope: str | None = None) -> bool:
        cfg = self._target(local, scope)
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

    def shared_cache(self) -> str | None:
        """`cache.shared`: "group", or None for a cache of one user."""
        value = (self.get("cache.shared") or "").strip().lower()
        if value in ("", "false", "none"):
            return None
        if value not in SHARED_MODES:
            raise FormatError(f"cache.shared: expected group, not {value!r}")
        return value


def cache_dir(config: Config, dvlite_dir: str) -> str:
    """Where the cache is: `cache.dir` (relative to the file that sets it), else
    `.dvlite/cache`."""
    return config.get_path("cache.dir") or os.path.join(dvlite_dir, "cache")


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
    if key == "cache.shared" and value.strip().lower() not in SHARED_MODES + ("false", "none"):
        raise BadInputError(f"cache.shared: expected group, not {value!r}",
                            hint="`group` makes the cache writable by its directory's group")
    if key.startswith("remote.") and key.endswith(".timeout"):
        try:
            ok = float(value) > 0
        except ValueError:
            ok = False
        if not ok:
            raise BadInputError(f"{key}: expected a number of seconds above 0, not {value!r}")


def save(cfg: ConfigFile) -> None:
    buf = io.StringIO()
    cfg.parser.write(buf)
    os.makedirs(os.path.dirname(os.path.abspath(cfg.path)), exist_ok=True)
    atomic_write(cfg.path, buf.getvalue().encode())

"""Remotes in the config: `[remote "NAME"]` sections to RemoteConfig values, the default
remote (`core.remote`), the URL and options fsspec is given for one (DVC's URL schemes and the
`timeout` option included), and editing them (`dvlite remote ...`)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from dvlite.config import Config
from dvlite.errors import BadInputError

EXTRAS = {
    "s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs", "az": "azure", "abfs": "azure",
    "adl": "azure", "sftp": "ssh", "ssh": "ssh", "webdav": "webdav", "http": "http", "https": "http",
}
# URL schemes DVC configs use that fsspec knows by another name
ALIASES = {"azure": "az", "webdavs": "webdav", "davs": "webdav", "dav": "webdav"}
_HTTPS_DAV = ("webdavs", "davs")


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    options: dict = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        """The URL's scheme as written (`azure`, `webdavs`, ...)."""
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "file"

    @property
    def protocol(self) -> str:
        """fsspec's name for the scheme (`azure://` is `az`, `webdavs://` is `webdav`)."""
        return ALIASES.get(self.scheme, self.scheme)

    @property
    def timeout(self) -> float | None:
        """The `timeout` option in seconds: what one request, or an unreachable endpoint, may
        take before it fails (None: the backend's own limits)."""
        value = self.options.get("timeout")
        if value is None or isinstance(value, dict):
            return None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise BadInputError(f"remote {self.name!r}: timeout must be a number of seconds, "
                                f"not {value!r}") from None
        if seconds <= 0:
            raise BadInputError(f"remote {self.name!r}: timeout must be above 0, not {value!r}")
        return seconds


def _coerce(value: str):
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low.isdigit():
        return int(low)
    return value


def remote_configs(config: Config) -> dict[str, RemoteConfig]:
    """Every remote of every scope (a remote in the global config serves every repository)."""
    found: dict[str, dict[str, str]] = {}
    for key, value in config.items().items():
        parts = key.split(".")
        if len(parts) >= 3 and parts[0] == "remote":
            found.setdefault(parts[1], {})[".".join(parts[2:])] = value
    out = {}
    for name, keys in sorted(found.items()):
        url = keys.pop("url", None)
        if url is None:
            continue  # options in config.local for a remote defined nowhere: ignored
        if "://" not in url and not os.path.isabs(url):
            url = _relative_url(config, name, url)
        options = {k: v if _is_secret(k) else _coerce(v) for k, v in keys.items()}
        out[name] = RemoteConfig(name, url, _nest(options))
    return out


def _relative_url(config: Config, name: str, url: str) -> str:
    """A relative local path: relative to the repository when a repository's config sets it,
    else to the directory of the (global or system) file that does."""
    origin = config.origin(f"remote.{name}.url")
    if origin is not None and origin.scope in ("system", "global") or config.repo_root is None:
        base = os.path.dirname(os.path.abspath(origin.path)) if origin is not None else os.getcwd()
    else:
        base = config.repo_root
    return os.path.normpath(os.path.join(base, url))


def _is_secret(key: str) -> bool:
    """Credentials and names stay strings even when they look like numbers."""
    leaf = key.rsplit(".", 1)[-1]
    return any(w in leaf for w in ("pass", "secret", "key", "token", "user", "name", "project",
                                   "account", "connection", "sas", "id"))


def _nest(flat: dict) -> dict:
    """`config_kwargs.retries.max_attempts = 1` -> {"config_kwargs": {"retries": {"max_attempts": 1}}}."""
    out: dict = {}
    for key, value in sorted(flat.items()):
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BadInputError(f"remote option {key!r} conflicts with {p!r}")
        node[leaf] = value
    return out


def fsspec_kwargs(protocol: str, options: dict) -> dict:
    """Config options -> filesystem keyword arguments, for the few backends that want other
    shapes; `timeout` becomes each backend's own connect and read limits."""
    kwargs = json.loads(json.dumps(options))  # a deep copy: botocore edits its config in place
    protocol = ALIASES.get(protocol, protocol)
    if protocol == "webdav" and ("user" in kwargs or "password" in kwargs):
        kwargs["auth"] = (str(kwargs.pop("user", "")), str(kwargs.pop("password", "")))
    timeout = kwargs.pop("timeout", None)
    if isinstance(timeout, (int, float, str)) and not isinstance(timeout, bool):
        try:
            _apply_timeout(protocol, kwargs, float(timeout))
        except ValueError:
            raise BadInputError(f"remote option timeout: not a number of seconds: {timeout!r}") from None
    return kwargs


def _apply_timeout(protocol: str, kwargs: dict, seconds: float) -> None:
    """Each backend's limits on connecting and on waiting for an answer (explicit options win)."""
    if protocol in ("s3", "s3a"):
        config = kwargs.setdefault("config_kwargs", {})
        config.setdefault("connect_timeout", seconds)
        config.setdefault("read_timeout", seconds)
    elif protocol in ("gs", "gcs"):
        kwargs.setdefault("requests_timeout", _aiohttp_timeout(seconds))
        kwargs.setdefault("timeout", seconds)
    elif protocol in ("az", "abfs", "abfss", "adl"):
        kwargs.setdefault("connection_timeout", seconds)
        kwargs.setdefault("read_timeout", seconds)
    elif protocol in ("sftp", "ssh"):
        kwargs.setdefault("connect_timeout", seconds)  # connect, handshake and login
    elif protocol == "webdav":
        kwargs.setdefault("timeout", seconds)  # httpx: connect, read, write, pool
    elif protocol in ("http", "https"):
        client = kwargs.setdefault("client_kwargs", {})
        client.setdefault("timeout", _aiohttp_timeout(seconds))


def _aiohttp_timeout(seconds: float):
    """No limit on a whole transfer (a big file takes long), only on silence."""
    try:
        import aiohttp
    except ImportError:  # the backend is not installed: connecting says so
        return seconds
    return aiohttp.ClientTimeout(total=None, connect=None, sock_connect=seconds, sock_read=seconds)


def fsspec_target(cfg: RemoteConfig) -> tuple[str, dict]:
    """The URL and keyword arguments fsspec gets for a remote. DVC's scheme names are
    translated, and DVC's `webdav[s]://HOST[:PORT]/PATH` form (no `base_url` option) becomes
    `base_url` http(s)://HOST[:PORT] and the path below it."""
    kwargs = fsspec_kwargs(cfg.protocol, cfg.options)
    url = cfg.url
    if cfg.scheme != cfg.protocol:
        url = cfg.protocol + url[len(cfg.scheme):]
    if cfg.protocol == "webdav" and "base_url" not in kwargs:
        host, _, path = url.split("://", 1)[1].partition("/")
        if not host:
            raise BadInputError(f"remote {cfg.name!r} ({cfg.url}): no server in the URL and no "
                                "base_url option",
                                hint="use webdavs://HOST/PATH, or set base_url with "
                                     "`dvlite remote modify NAME base_url URL`")
        kwargs["base_url"] = f"{'https' if cfg.scheme in _HTTPS_DAV else 'http'}://{host}"
        url = f"webdav://{path}"
    return url, kwargs


def choose(config: Config, name: str | None) -> RemoteConfig:
    remotes = remote_configs(config)
    if name is None:
        name = config.get("core.remote")
        if name is None:
            if len(remotes) == 1:
                return next(iter(remotes.values()))
            raise BadInputError(
                "no remote given and no default remote set",
                hint="add one with `dvlite remote add -d NAME URL`, or pass -r NAME",
            )
    if name not in remotes:
        known = ", ".join(remotes) or "none"
        raise BadInputError(f"unknown remote {name!r} (known: {known})", hint="see `dvlite remote list`")
    return remotes[name]


# --- editing (`dvlite remote ...`) ------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _section(name: str) -> str:
    return f'remote "{name}"'


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise BadInputError(f"invalid remote name {name!r} (letters, digits, - and _ only)")


def _require(config: Config, name: str) -> None:
    if name not in remote_configs(config):
        raise BadInputError(f"unknown remote {name!r}", hint="see `dvlite remote list`")


def add_remote(config: Config, name: str, url: str, default: bool, local: bool, force: bool,
               scope: str | None = None) -> None:
    """Add a remote to the project's config (`local`: config.local; `scope`: any scope, e.g.
    `global` for a remote every repository of this user sees)."""
    _check_name(name)
    if name in remote_configs(config):
        if not force:
            raise BadInputError(f"remote {name!r} already exists", hint="use --force to replace it")
        was_default = config.get("core.remote") == name
        _remove_in(config, name, scope)  # one defined in another scope stays, overridden here
        default = default or was_default
    config.set(f"remote.{name}.url", url, local=local, scope=scope)
    if default:
        config.set("core.remote", name, local=local, scope=scope)


def _scopes(config: Config, scope: str | None) -> list[str]:
    """The scopes an edit touches: the one named, else the repository's two files."""
    if scope is not None:
        return [scope]
    return [s for s in ("project", "local") if s in config.files]


def remove_remote(config: Config, name: str, scope: str | None = None) -> None:
    _require(config, name)
    _remove_in(config, name, scope)
    _refuse_elsewhere(config, name)


def _remove_in(config: Config, name: str, scope: str | None) -> None:
    for where in _scopes(config, scope):
        cfg_file = config.file(where)
        if cfg_file.parser.has_section(_section(name)):
            for option in list(cfg_file.parser.options(_section(name))):
                config.unset(f"remote.{name}.{option}", scope=where)
    for where in _scopes(config, scope):
        if config.items(where).get("core.remote") == name:
            config.unset("core.remote", scope=where)


def _refuse_elsewhere(config: Config, name: str) -> None:
    """A remote still defined in another scope after an edit: say where."""
    origin = config.origin(f"remote.{name}.url")
    if origin is not None:
        raise BadInputError(f"remote {name!r} is also defined in the {origin.scope} config "
                            f"({origin.path})",
                            hint=f"remove it there with --{origin.scope}")


def rename_remote(config: Config, old: str, new: str, scope: str | None = None) -> None:
    _require(config, old)
    _check_name(new)
    if new in remote_configs(config):
        raise BadInputError(f"remote {new!r} already exists")
    for where in _scopes(config, scope):
        cfg_file = config.file(where)
        if cfg_file.parser.has_section(_section(old)):
            for option, value in list(cfg_file.parser.items(_section(old))):
                config.set(f"remote.{new}.{option}", value, scope=where)
                config.unset(f"remote.{old}.{option}", scope=where)
    for where in _scopes(config, scope):
        if config.items(where).get("core.remote") == old:
            config.set("core.remote", new, scope=where)
    _refuse_elsewhere(config, old)


def set_default(config: Config, name: str | None, scope: str | None = None) -> None:
    if name is None:
        config.unset("core.remote", scope=scope)
        return
    _require(config, name)
    config.set("core.remote", name, scope=scope)


def modify_remote(config: Config, name: str, key: str, value: str | None, local: bool, unset: bool,
                  scope: str | None = None) -> None:
    _require(config, name)
    if not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", key):
        raise BadInputError(f"invalid option name {key!r}")
    if unset:
        if not config.unset(f"remote.{name}.{key}", local=local, scope=scope):
            where = scope or ("local" if local else "project")
            raise BadInputError(f"remote {name!r} has no option {key!r} in the {where} config")
        return
    if value is None:
        raise BadInputError("give a VALUE, or --unset")
    config.set(f"remote.{name}.{key}", value, local=local, scope=scope)

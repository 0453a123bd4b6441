"""Remotes in the config: `[remote "NAME"]` sections to RemoteConfig values, the default
remote (`core.remote`), and editing them (`dvlite remote ...`)."""

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


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    options: dict = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower() if "://" in self.url else "file"


def _coerce(value: str):
    low = value.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low.isdigit():
        return int(low)
    return value


def remote_configs(config: Config) -> dict[str, RemoteConfig]:
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
            url = os.path.normpath(os.path.join(config.repo_root, url))  # relative to the repo
        options = {k: v if _is_secret(k) else _coerce(v) for k, v in keys.items()}
        out[name] = RemoteConfig(name, url, _nest(options))
    return out


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
    """Config options -> filesystem keyword arguments, for the few backends that want other shapes."""
    kwargs = json.loads(json.dumps(options))  # a deep copy: botocore edits its config in place
    if protocol == "webdav" and ("user" in kwargs or "password" in kwargs):
        kwargs["auth"] = (str(kwargs.pop("user", "")), str(kwargs.pop("password", "")))
    return kwargs


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


def add_remote(config: Config, name: str, url: str, default: bool, local: bool, force: bool) -> None:
    _check_name(name)
    if name in remote_configs(config):
        if not force:
            raise BadInputError(f"remote {name!r} already exists", hint="use --force to replace it")
        was_default = config.get("core.remote") == name
        remove_remote(config, name)
        default = default or was_default
    config.set(f"remote.{name}.url", url, local=local)
    if default:
        config.set("core.remote", name, local=local)


def remove_remote(config: Config, name: str) -> None:
    _require(config, name)
    for cfg_file in (config.shared, config.local):
        if cfg_file.parser.has_section(_section(name)):
            for option in list(cfg_file.parser.options(_section(name))):
                config.unset(f"remote.{name}.{option}", local=cfg_file is config.local)
    for local in (False, True):
        if config.get("core.remote") == name:
            config.unset("core.remote", local=local)


def rename_remote(config: Config, old: str, new: str) -> None:
    _require(config, old)
    _check_name(new)
    if new in remote_configs(config):
        raise BadInputError(f"remote {new!r} already exists")
    for cfg_file in (config.shared, config.local):
        if cfg_file.parser.has_section(_section(old)):
            for option, value in list(cfg_file.parser.items(_section(old))):
                local = cfg_file is config.local
                config.set(f"remote.{new}.{option}", value, local=local)
                config.unset(f"remote.{old}.{option}", local=local)
    if config.get("core.remote") == old:
        config.set("core.remote", new)


def set_default(config: Config, name: str | None) -> None:
    if name is None:
        config.unset("core.remote")
        return
    _require(config, name)
    config.set("core.remote", name)


def modify_remote(config: Config, name: str, key: str, value: str | None, local: bool, unset: bool) -> None:
    _require(config, name)
    if not re.match(r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$", key):
        raise BadInputError(f"invalid option name {key!r}")
    if unset:
        if not config.unset(f"remote.{name}.{key}", local=local):
            where = "config.local" if local else "config"
            raise BadInputError(f"remote {name!r} has no option {key!r} in {where}")
        return
    if value is None:
        raise BadInputError("give a VALUE, or --unset")
    config.set(f"remote.{name}.{key}", value, local=local)

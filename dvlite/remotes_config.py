"""Editing remotes in the config: `[remote "NAME"]` sections, the default in core.remote."""

from __future__ import annotations

import re

from dvlite.config import Config
from dvlite.errors import BadInputError
from dvlite.remote import remote_configs

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

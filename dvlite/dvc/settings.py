"""DVC's remotes and core settings as dvlite config keys; credentials always to config.local.

DVC names remote options after its own plugins (`endpointurl`, `access_key_id`); dvlite
passes options straight to the fsspec filesystem (`endpoint_url`, `key`). Options that only
tune DVC (`jobs`, `verify`) are dropped with a note; options dvlite cannot express stop the
migration with an error naming the option.
"""

from __future__ import annotations

from dvlite.dvc.dvcconfig import DvcConfig, Settings, as_text, rebase_local_path
from dvlite.errors import FormatError
from dvlite.fsutil import LINK_TYPES

DROPPED = {"jobs", "checksum_jobs", "verify", "no_traverse", "listobjects", "worktree",
           "version_aware", "slow_link_warning", "cache_regions", "timeout", "read_timeout",
           "connection_timeout", "connect_timeout", "max_sessions"}
SECRETS = {"access_key_id", "secret_access_key", "session_token", "password", "passphrase",
           "account_key", "sas_token", "connection_string", "client_secret", "token"}
RENAMES = {
    "s3": {"endpointurl": "endpoint_url", "access_key_id": "key", "secret_access_key": "secret",
           "session_token": "token", "profile": "profile", "region": "client_kwargs.region_name",
           "use_ssl": "use_ssl", "ssl_verify": "client_kwargs.verify",
           "allow_anonymous_login": "anon", "acl": "s3_additional_kwargs.ACL",
           "sse": "s3_additional_kwargs.ServerSideEncryption",
           "sse_kms_key_id": "s3_additional_kwargs.SSEKMSKeyId"},
    "gs": {"projectname": "project", "credentialpath": "token", "endpointurl": "endpoint_url"},
    "azure": {"connection_string": "connection_string", "sas_token": "sas_token",
              "account_name": "account_name", "account_key": "account_key",
              "tenant_id": "tenant_id", "client_id": "client_id", "client_secret": "client_secret",
              "allow_anonymous_login": "anon"},
    "ssh": {"user": "username", "port": "port", "password": "password",
            "keyfile": "client_keys", "passphrase": "passphrase"},
    "http": {},
    "local": {},
}
PATHS = {"keyfile", "credentialpath"}  # DVC reads these relative to .dvc/, like url
PROTOCOLS = {"s3": "s3", "gs": "gs", "azure": "azure", "ssh": "ssh", "http": "http",
             "https": "http", "file": "local", "": "local"}


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _remote_url(name: str, url, origin: str) -> str:
    if not isinstance(url, str) or not url:
        raise FormatError(f"{origin}: remote {name!r}: url must be a string")
    proto = _protocol(url)
    if proto not in PROTOCOLS:
        raise FormatError(f"{origin}: remote {name!r}: {proto}:// remotes are not supported by dvlite",
                          hint="see docs/remotes.md for the supported URLs")
    if proto == "azure":
        return "az://" + url.split("://", 1)[1]
    return rebase_local_path(url, origin, f"remote {name!r} url") if proto in ("", "file") else url


def _remote_options(name: str, body: dict, kind: str, origin: str, settings: Settings,
                    is_local_file: bool) -> None:
    renames = RENAMES[kind]
    for key, value in sorted(body.items()):
        if key == "url":
            continue
        if key in DROPPED:
            settings.notes.append(f"remote {name!r}: option {key!r} dropped (DVC-only)")
            continue
        if key == "allow_anonymous_login" and kind == "gs":
            target, value = "token", "anon"
        elif key in renames:
            target = renames[key]
        else:
            raise FormatError(f"{origin}: remote {name!r}: option {key!r} has no dvlite equivalent",
                              hint="remove it from the DVC config (or set it up with "
                                   "`dvlite remote modify` after migrating), then migrate")
        if key in PATHS:
            value = rebase_local_path(as_text(value), origin, f"remote {name!r} {key}")
        secret = key in SECRETS
        if secret and not is_local_file:
            settings.notes.append(f"remote {name!r}: credential {key!r} moved to .dvlite/config.local")
        dest = settings.local if (secret or is_local_file) else settings.shared
        dest[f"remote.{name}.{target}"] = as_text(value)


def _remotes(conf: DvcConfig, origin: str, settings: Settings, is_local_file: bool,
             urls: dict) -> None:
    for name, body in sorted(conf.remotes.items()):
        url = body.get("url", urls.get(name))
        if url is None:
            raise FormatError(f"{origin}: remote {name!r} has no url")
        urls[name] = url
        converted = _remote_url(name, url, origin)
        kind = PROTOCOLS[_protocol(url)]
        if "url" in body:
            dest = settings.local if is_local_file else settings.shared
            dest[f"remote.{name}.url"] = converted
        _remote_options(name, body, kind, origin, settings, is_local_file)


def _core(conf: DvcConfig, origin: str, settings: Settings, is_local_file: bool) -> None:
    dest = settings.local if is_local_file else settings.shared
    for key, value in sorted(conf.sections.get("core", {}).items()):
        if key in ("remote", "no_scm"):
            dest[f"core.{key}"] = as_text(value).lower()
        else:
            settings.notes.append(f"core.{key} dropped (DVC-only)")
    for key, value in sorted(conf.sections.get("cache", {}).items()):
        if key == "type":
            kinds = [k.strip() for k in as_text(value).split(",") if k.strip()]
            bad = [k for k in kinds if k not in LINK_TYPES]
            if bad:
                raise FormatError(f"{origin}: cache.type: unknown link type {bad[0]!r}")
            dest["cache.type"] = ",".join(kinds)
        else:
            settings.notes.append(f"cache.{key} dropped (dvlite keeps its own cache in .dvlite/cache)")
    for key, value in sorted(conf.sections.get("parsing", {}).items()):
        dest[f"parsing.{key}"] = as_text(value).lower()
    for section in sorted(conf.sections):
        if section not in ("core", "cache", "parsing"):
            settings.notes.append(f"[{section}] dropped (DVC-only)")


def convert(shared: DvcConfig, local: DvcConfig, shared_origin: str, local_origin: str) -> Settings:
    """The dvlite config keys for DVC's two config files (values as strings)."""
    settings = Settings()
    urls: dict = {}
    _core(shared, shared_origin, settings, False)
    _remotes(shared, shared_origin, settings, False, urls)
    _core(local, local_origin, settings, True)
    _remotes(local, local_origin, settings, True, urls)
    return settings

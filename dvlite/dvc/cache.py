"""Where an md5 object lives in a DVC cache or on a DVC remote, and reading it.

Both stores use the same two layouts:

    files/md5/ab/cdef...       DVC 3.x (`hash: md5` records)
    ab/cdef...                 DVC 2.x (records without `hash:`, md5-dos2unix)

and a directory's listing is the object `ab/cdef....dir`. A record's own layout is tried
first, then the other one (DVC 3.x also reads 2.x objects from the old place); the caller
verifies the bytes against the md5, so a hit in the "wrong" layout is only used if it is right.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass

from dvlite.dvc.hashing import MD5, is_md5
from dvlite.errors import FormatError

SMALL = 4 << 20  # objects below this are read into memory; bigger ones are streamed to a file


def object_relpaths(md5: str, is_dir: bool, hash_name: str) -> list[str]:
    """The places an object may be under a cache or remote root, most likely first."""
    if not is_md5(md5):
        raise FormatError(f"bad md5 {md5!r:.40}")
    name = f"{md5[:2]}/{md5[2:]}" + (".dir" if is_dir else "")
    new, old = f"files/md5/{name}", name
    return [new, old] if hash_name == MD5 else [old, new]


@dataclass(frozen=True)
class Found:
    store: object  # the LocalStore or FsStore that has it
    path: str  # local path, or path on the store's filesystem
    size: int


class LocalStore:
    """A DVC cache directory, or a DVC remote that is a local directory."""

    def __init__(self, root: str, label: str):
        self.root = root
        self.label = label  # for messages: "the DVC cache", "DVC remote 'storage'"

    def find_all(self, md5: str, is_dir: bool, hash_name: str):
        """Each place that holds a file by this name, most likely first."""
        for rel in object_relpaths(md5, is_dir, hash_name):
            path = os.path.join(self.root, rel)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                st = os.stat(path)
                if stat.S_ISREG(st.st_mode):
                    yield Found(self, path, st.st_size)

    def read(self, found: Found, limit: int) -> bytes:
        with open(found.path, "rb", buffering=0) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise FormatError(f"{found.path}: larger than {limit} bytes")
        return data

    def local_path(self, found: Found, tmp_dir: str) -> tuple[str, bool]:
        """A local file with the object's bytes, and whether it is a temp copy to delete."""
        return found.path, False

    def describe(self, found: Found) -> str:
        return found.path


class FsStore:
    """A DVC remote reached through fsspec (S3, GCS, ...), by way of a dvlite `Remote`."""

    def __init__(self, remote, label: str):
        self.remote = remote  # dvlite.remotes.backend.Remote: retries and one-line errors
        self.label = label

    def find_all(self, md5: str, is_dir: bool, hash_name: str):
        """Each place that holds a file by this name (asked with `info`, never `exists`)."""
        for rel in object_relpaths(md5, is_dir, hash_name):
            path = f"{self.remote.root}/{rel}"
            try:
                info = self.remote.call(lambda p=path: self.remote.fs.info(p))
            except FileNotFoundError:
                continue
            if info.get("type") != "directory":
                yield Found(self, path, int(info.get("size") or 0))

    def read(self, found: Found, limit: int) -> bytes:
        if found.size > limit:
            raise FormatError(f"{self.describe(found)}: larger than {limit} bytes")
        data = self.remote.call(lambda: self.remote.fs.cat_file(found.path))
        if len(data) > limit:
            raise FormatError(f"{self.describe(found)}: larger than {limit} bytes")
        return data

    def local_path(self, found: Found, tmp_dir: str) -> tuple[str, bool]:
        from dvlite.fsutil import removed_on_failure, temp_name

        os.makedirs(tmp_dir, exist_ok=True)
        with removed_on_failure(temp_name(os.path.join(tmp_dir, "dvc-object"))) as tmp:
            self.remote.call(lambda: self.remote.fs.get_file(found.path, tmp))
        return tmp, True

    def describe(self, found: Found) -> str:
        return f"{self.label}: {found.path}"


class _Keys:
    """What `dvlite.remotes.config.remote_configs` asks of a Config: DVC's config is the
    project's, so a relative URL is taken from the repository root."""

    def __init__(self, root: str, keys: dict):
        self.repo_root, self._keys = root, keys

    def items(self) -> dict:
        return dict(self._keys)

    def origin(self, key: str) -> None:
        return None


def open_remote(root: str, config, settings) -> LocalStore | FsStore | None:
    """The DVC remote a repository's DVC config names (core.remote, or its only remote), as a
    store to read objects from; None when it names none. `config` is the merged DvcConfig,
    `settings` the dvlite keys `dvlite.dvc.settings.convert` made of it."""
    from dvlite.dvc import dvcconfig
    from dvlite.remotes.backend import Remote
    from dvlite.remotes.config import remote_configs

    configs = remote_configs(_Keys(root, {**settings.shared, **settings.local}))
    name = config.get("core", "remote")
    name = dvcconfig.as_text(name).lower() if name is not None else None
    if name is None:
        name = next(iter(configs)) if len(configs) == 1 else None
    if name is None:
        return None
    if name not in configs:
        raise FormatError(f".dvc/config: core.remote names {name!r}, which has no url")
    cfg, label = configs[name], f"DVC remote {name!r}"
    if cfg.protocol in ("file", "local"):
        url = cfg.url.removeprefix("file://")
        return LocalStore(url if os.path.isabs(url) else os.path.join(root, url), label)
    return FsStore(Remote(cfg), label)

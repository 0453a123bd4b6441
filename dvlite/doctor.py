"""Facts about this installation and repository, for `dvlite doctor`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform

from dvlite import __version__, scm
from dvlite.fsutil import LINK_TYPES, link_works
from dvlite.repo import Repo, find_root

BACKENDS = {
    "s3": "s3fs",
    "gs": "gcsfs",
    "azure": "adlfs",
    "ssh": "sshfs",
    "webdav": "webdav4",
    "http": "aiohttp",
}


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def report(cwd: str) -> dict:
    info: dict = {
        "dvlite": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": scm.git_version(),
        "packages": {p: _version(p) for p in ("fsspec", "pyarrow", "xxhash", "gitpython", "typer", "rich")},
        "backends": {
            scheme: _version(pkg) if importlib.util.find_spec(pkg.replace("-", "_")) else None
            for scheme, pkg in BACKENDS.items()
        },
    }
    root = find_root(cwd)
    if root is None:
        info["repo"] = None
        return info
    repo = Repo(root)
    os.makedirs(repo.odb.objects_dir, exist_ok=True)
    info["repo"] = root
    info["cache"] = repo.cache_dir
    workspace_side = os.path.join(repo.dvlite_dir, "tmp")  # on the work tree's filesystem
    os.makedirs(workspace_side, exist_ok=True)
    info["link_types"] = {
        kind: link_works(kind, repo.odb.objects_dir, workspace_side) for kind in LINK_TYPES
    }
    info["cache.type"] = repo.config.get("cache.type")
    return info

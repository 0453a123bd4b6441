"""Shared pieces of the remote tests: backends by name, a configured repo, direct storage access."""

from __future__ import annotations

import contextlib
import importlib
import uuid
from pathlib import Path

import fsspec.core
import pytest

from conftest import git, run, write_tree
from servers.base import Server, ServerUnavailable

BACKENDS = ["local", "s3", "sftp", "azure", "gcs", "webdav"]


@contextlib.contextmanager
def serve(name: str, workdir: Path):
    if name == "local":
        root = workdir / "remote-root"
        root.mkdir(parents=True, exist_ok=True)
        yield Server("local", str(root / "store"))
        return
    try:
        module = importlib.import_module(f"servers.{name}")
        with module.serve(workdir) as server:
            yield server
    except ServerUnavailable as exc:
        pytest.skip(f"{name} server unavailable: {exc}")


def fresh_location(server: Server) -> Server:
    """A new empty sub-location on a running server, so tests sharing it never collide."""
    url = f"{server.url.rstrip('/')}/{uuid.uuid4().hex[:12]}"
    return Server(server.name, url, dict(server.options), server.bad_options, dict(server.extra))


def storage(server: Server):
    """(fs, root path) straight through fsspec, to inspect or damage the remote."""
    from dvlite.remote import fsspec_kwargs

    protocol = server.url.split("://", 1)[0] if "://" in server.url else "file"
    kwargs = fsspec_kwargs(protocol, server.options)
    fs, root = fsspec.core.url_to_fs(server.url, skip_instance_cache=True, **kwargs)
    return fs, root.rstrip("/")


def configure(repo: Path, server: Server, name: str = "origin", options: dict | None = None) -> None:
    """Point `repo` at `server`: the URL in .dvlite/config, options in config.local."""
    run(repo, "remote", "add", "-d", "--force", name, server.url)
    for key, value in (server.options if options is None else options).items():
        run(repo, "remote", "modify", "--local", name, key, str(value).lower() if isinstance(value, bool) else str(value))


def make_data(repo: Path, files: int = 40, seed: int = 0) -> dict[str, bytes]:
    import random

    rnd = random.Random(seed)
    data = {f"data/d{i % 5}/f{i}.bin": rnd.randbytes(rnd.randint(10, 3000)) for i in range(files)}
    data["model.bin"] = rnd.randbytes(200_000)
    write_tree(repo, data)
    return data


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def clone(src: Path, dst: Path, server: Server) -> Path:
    git(dst.parent, "clone", "-q", str(src), str(dst))
    # config.local is not in git: credentials are per machine
    for key, value in server.options.items():
        run(dst, "remote", "modify", "--local", "origin", key,
            str(value).lower() if isinstance(value, bool) else str(value))
    return dst


def remote_objects(server: Server) -> set[str]:
    fs, root = storage(server)
    try:
        paths = fs.find(f"{root}/objects")
    except FileNotFoundError:
        return set()
    out = set()
    for p in paths:
        head, name = p.rsplit("/", 2)[-2:]
        if not name.startswith(".dvlite-tmp-"):
            out.add(head + name)
    return out

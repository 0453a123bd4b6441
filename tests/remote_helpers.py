"""Shared pieces of the remote tests: backends by name, a configured repo, direct storage access."""

from __future__ import annotations

import contextlib
import importlib
import uuid
from pathlib import Path

import fsspec.core
import pytest

from dvlite.formats.packs import PackIndex
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
    from dvlite.remotes.config import fsspec_kwargs

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


def _indexes(fs, root: str) -> dict[str, PackIndex]:
    try:
        names = [p for p in fs.find(f"{root}/packs") if p.endswith(".idx")]
    except FileNotFoundError:
        return {}
    out = {}
    for path in names:
        if not path.rsplit("/", 1)[-1].startswith(".dvlite-tmp-"):
            index = PackIndex.from_bytes(fs.cat_file(path), path)
            out[index.pack] = index
    return out


def loose_objects(server: Server) -> set[str]:
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


def remote_objects(server: Server) -> set[str]:
    """Every object the remote holds, loose or in a pack (as dvlite would see it)."""
    fs, root = storage(server)
    packed = {d for index in _indexes(fs, root).values() for d in index.entries}
    return loose_objects(server) | packed


def corrupt_object(server: Server, digest: str, data: bytes | None = None) -> None:
    """Overwrite an object's bytes where it lives: its loose file, or its bytes inside a pack."""
    fs, root = storage(server)
    if digest in loose_objects(server):
        fs.pipe_file(f"{root}/objects/{digest[:2]}/{digest[2:]}", data or b"evil bytes")
        return
    for index in _indexes(fs, root).values():
        if digest in index.entries:
            offset, length = index.entries[digest]
            path = f"{root}/packs/{index.pack}.pack"
            pack = bytearray(fs.cat_file(path))
            pack[offset:offset + length] = bytes(b ^ 0xFF for b in pack[offset:offset + length])
            fs.pipe_file(path, bytes(pack))
            return
    raise AssertionError(f"{digest} is not on the remote")


def drop_object(server: Server, digest: str) -> None:
    """Make the remote lose one object (its loose file, or its entry in a pack index)."""
    fs, root = storage(server)
    if digest in loose_objects(server):
        fs.rm_file(f"{root}/objects/{digest[:2]}/{digest[2:]}")
        return
    for index in _indexes(fs, root).values():
        if digest in index.entries:
            entries = {d: loc for d, loc in index.entries.items() if d != digest}
            fs.pipe_file(f"{root}/packs/{index.pack}.idx",
                         PackIndex(index.pack, index.pack_size, entries).to_bytes())
            return
    raise AssertionError(f"{digest} is not on the remote")


def drop_packs(server: Server) -> list[str]:
    """As if a push had died before writing any index: the packs are there, invisible."""
    fs, root = storage(server)
    lost = []
    for index in _indexes(fs, root).values():
        fs.rm_file(f"{root}/packs/{index.pack}.idx")
        lost += list(index.entries)
    return lost

"""What is somewhere: `list` (what another repository tracks), `ls-url` (what a URL holds), and
the survey of a URL that `import-url` and `get-url` make before they download anything.

`list`: a dvlite repository lists its `.dvl` pointers and the cached outs of its `dvlite.lock`
files (path, kind, size, files), read from a bare clone of its git history. The files inside a
tracked directory (with `-R`, or when PATH is that directory or inside it) come from its
manifest, fetched from the repository's default remote into a temporary cache: one small object
each, never the data. A DVC repository (no `.dvlite/config`) lists the outs of its `.dvc` files
and `dvc.lock` files with the sizes DVC recorded; DVC directories are listed as a whole.

A URL is anything fsspec opens (a path, `file://`, `s3://`, `gs://`, `http(s)://`, ...); backend
options come from `--fs-config KEY=VALUE` or wherever the backend reads them (`AWS_*`,
`~/.aws/`). A survey is one `info`, then a walk of a directory's listing, bounded (depth, number
of entries) and checked: every name must be a safe relative path, a symlink to a directory is
refused (so no loop is walked), and anything but files and directories too. Each file's version
marker is what the backend's `info` says (ETag, version id, checksum, mtime, size).
"""

from __future__ import annotations

import json
import os
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

from dvlite import paths, scm, yamldoc
from dvlite.digest import hash_bytes
from dvlite.dvc import dvcfile, dvclock
from dvlite.dvc.paths import check_path
from dvlite.errors import BadInputError, FormatError, RemoteError, UnsafePathError
from dvlite.formats.pointer import MAX_BYTES, MAX_MARKER, Pointer, checked_data_path
from dvlite.outputs import Tracked
from dvlite.remotes.config import EXTRAS, RemoteConfig, fsspec_kwargs
from dvlite.remotes.errors import classify, retrying, run_jobs
from dvlite.sources import repos
from dvlite.storage.cache import Cache

MAX_FILES = 1_000_000  # files in one imported directory: its listing is held in memory
MAX_DEPTH = 100  # directory levels below the URL
_MARKERS = {  # version key -> what backends call it in `info()`, most telling first
    "etag": ("ETag", "etag", "e_tag"),
    "version_id": ("VersionId", "version_id", "generation"),
    "checksum": ("md5Hash", "Content-MD5", "content_md5", "crc32c", "checksum", "Digest"),
    "mtime": ("mtime", "LastModified", "last_modified", "Last-Modified", "updated", "modified"),
}


# --- where: a URL as an fsspec filesystem ---------------------------------------------------

@dataclass
class Location:
    url: str
    fs: object
    path: str  # the backend's path of the URL
    protocol: str
    cfg: RemoteConfig  # what error messages are made from

    def error(self, exc: BaseException) -> RemoteError:
        """A backend's exception as one line naming the URL."""
        return self._reword(classify(exc, self.cfg))

    def _reword(self, exc: RemoteError) -> RemoteError:
        message = exc.message.replace(f"remote {self.cfg.name!r} ({self.url})", self.url, 1)
        hint = exc.hint
        if hint and "dvlite remote" in hint:
            hint = ("pass the backend's options with --fs-config KEY=VALUE, or set them where it "
                    "reads them (e.g. AWS_* variables, ~/.aws/)")
        return RemoteError(message, hint, exc.transient)

    def call(self, fn: Callable):
        """fn(), retried when worth it; failures as one line naming the URL."""
        try:
            return retrying(fn, self.cfg)
        except RemoteError as exc:
            if exc.message.startswith(f"remote {self.cfg.name!r} ("):
                raise self._reword(exc) from exc
            raise

    def is_http(self) -> bool:
        return self.protocol in ("http", "https")


def connect(url: str, options: dict | None = None) -> Location:
    """The filesystem behind `url`; a clear error for an unknown scheme or a missing backend."""
    import fsspec.core

    if not url or url.startswith("-"):
        raise BadInputError(f"not a URL: {url!r}")
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    options = options or {}
    cfg = RemoteConfig("url", url, options)
    try:
        fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True,
                                         **fsspec_kwargs(protocol, options))
    except ImportError as exc:
        extra = EXTRAS.get(protocol)
        raise BadInputError(f"{url}: the {protocol}:// backend is not installed",
                            hint=f"pip install 'dvlite[{extra}]'" if extra else str(exc)) from exc
    except (ValueError, TypeError) as exc:
        if "protocol not known" in str(exc).lower():
            raise BadInputError(f"unknown URL scheme {protocol}:// in {url}",
                                hint="give a path, file://, s3://, gs://, http(s)://, ... URL"
                                ) from exc
        raise BadInputError(f"{url}: bad option ({str(exc).splitlines()[0][:120]})") from exc
    except Exception as exc:
        raise Location(url, None, "", protocol, cfg).error(exc) from exc
    return Location(url, fs, path.rstrip("/") or path, protocol, cfg)


def fs_options(pairs: dict[str, str]) -> dict:
    """`--fs-config` pairs as backend options: dotted keys nest, true/false and integers are
    read as such (except for credentials, which stay strings)."""
    out: dict = {}
    for key, value in sorted(pairs.items()):
        if not key or any(not part for part in key.split(".")):
            raise BadInputError(f"bad --fs-config key {key!r}")
        *parents, leaf = key.split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise BadInputError(f"--fs-config {key!r} conflicts with {p!r}")
        low = value.strip().lower()
        secret = any(w in leaf.lower() for w in ("key", "secret", "token", "pass", "user", "id"))
        node[leaf] = (low == "true") if low in ("true", "false") else \
            int(low) if low.isdigit() and not secret else value
    return out


def default_name(url: str) -> str:
    """What a download is called when no OUT is given: the URL's last name."""
    path = urlparse(url).path if "://" in url else url
    name = path.rstrip("/").rsplit("/", 1)[-1] or urlparse(url).netloc
    if name in ("", ".", "..") or paths.why_unsafe(name) is not None:
        raise BadInputError(f"cannot name the download after {url}; give OUT")
    return name


# --- what is there: a bounded, checked survey -----------------------------------------------

@dataclass(frozen=True)
class Item:
    rel: str  # relative to the URL, `/` separators; "" when the URL is one file
    path: str  # the backend's path
    size: int | None
    marker: tuple[tuple[str, str | int], ...]
    executable: bool = False


@dataclass(frozen=True)
class Survey:
    kind: str  # file | dir
    items: tuple[Item, ...]  # sorted by rel

    def version(self) -> dict:
        if self.kind == "file":
            return dict(self.items[0].marker)
        lines = [json.dumps([i.rel, [list(kv) for kv in i.marker]]) for i in self.items]
        return {"listing": hash_bytes("\n".join(lines).encode()).hex}

    @property
    def weak(self) -> bool:
        """Whether some file has no marker but its size (a change of the same size would hide)."""
        return any({k for k, _v in i.marker} <= {"size"} for i in self.items)


def marker_of(info: dict) -> tuple[tuple[str, str | int], ...]:
    found: dict[str, str | int] = {}
    for key, names in _MARKERS.items():
        value = next((info[n] for n in names if info.get(n) not in (None, "")), None)
        if value is not None:
            text = value.isoformat() if hasattr(value, "isoformat") else str(value)
            if len(text) > MAX_MARKER:
                text = "xxh3-128:" + hash_bytes(text.encode()).hex
            found[key] = text
    size = info.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        found["size"] = size
    return tuple(sorted(found.items()))


def kind_of(loc: Location, path: str, info: dict) -> str:
    if loc.is_http():  # a web server answers for a directory's page as for a file
        return "directory" if loc.url.endswith("/") else "file"
    return info.get("type") or "other"


def root_info(loc: Location) -> dict:
    try:
        return loc.call(lambda: loc.fs.info(loc.path))
    except FileNotFoundError:
        raise BadInputError(f"{loc.url}: no such file or directory") from None


def children(loc: Location, path: str) -> list[tuple[str, dict]]:
    """(name relative to `path`, info) of a directory's entries, as the backend lists them."""
    base = path if loc.is_http() else path.rstrip("/")
    try:
        listed = loc.call(lambda: loc.fs.ls(base, detail=True))
    except FileNotFoundError:
        raise BadInputError(f"{loc.url}: directory {path} vanished while it was listed") from None
    prefix = base.rstrip("/") + "/"
    out = []
    for info in listed:
        name = str(info.get("name", ""))
        if name.rstrip("/") == base.rstrip("/"):
            continue  # the directory itself (a placeholder object)
        if not name.startswith(prefix):
            raise UnsafePathError(f"{loc.url}: the listing of {path} names {name!r}, which is not "
                                  "inside it", hint="dvlite never writes outside OUT")
        out.append((name[len(prefix):].rstrip("/"), info))
    return out


def walk(loc: Location, strict: bool = True) -> Iterator[tuple[str, str, dict]]:
    """(rel, backend path, info) of everything below the URL, depth first, bounded. With
    `strict`, names that are not safe relative paths are refused; otherwise they are yielded
    but never descended into."""
    stack = [(loc.path + ("/" if loc.is_http() else ""), "", 0)]
    count = 0
    while stack:
        path, rel, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise BadInputError(f"{loc.url}: more than {MAX_DEPTH} directory levels; not imported")
        for name, info in sorted(children(loc, path), key=lambda c: c[0], reverse=True):
            child = f"{rel}/{name}" if rel else name
            rule = paths.why_unsafe(child)
            if rule is not None and strict:
                raise UnsafePathError(f"{loc.url}: unsafe name {child!r} in the listing: {rule}",
                                      hint="dvlite never writes outside OUT")
            count += 1
            if count > MAX_FILES:
                raise BadInputError(f"{loc.url}: more than {MAX_FILES:,} entries; not imported")
            full = str(info.get("name"))
            kind = info.get("type")
            if loc.is_http():
                kind = "directory" if full.endswith("/") else "file"
            yield child, full, {**info, "type": kind}
            if kind == "directory" and rule is None:
                stack.append((full, child, depth + 1))


def _resolve_link(loc: Location, rel: str, path: str, info: dict) -> dict:
    """A symlink in a local tree: the file it points to; a directory or a dangling link is
    refused (so no loop is ever walked)."""
    try:
        target = loc.fs.info(path)  # follows the link
    except (FileNotFoundError, OSError):
        raise BadInputError(f"{loc.url}: {rel} is a dangling or looping symlink") from None
    if target.get("type") == "directory":
        raise BadInputError(f"{loc.url}: {rel} is a symlink to a directory, which dvlite does "
                            "not follow", hint="import the directory it points to on its own")
    return {**info, **target, "name": path}


def survey(loc: Location, jobs: int = 8) -> Survey:
    """What the URL holds: one file, or every file of a directory, with their markers."""
    info = root_info(loc)
    if kind_of(loc, loc.path, info) == "file":
        return Survey("file", (Item("", loc.path, size_of(info), marker_of(info)),))
    if kind_of(loc, loc.path, info) != "directory":
        raise BadInputError(f"{loc.url}: neither a file nor a directory")
    found = []
    for rel, path, entry in walk(loc):
        if entry.get("islink") and entry.get("type") not in ("file", "directory"):
            entry = _resolve_link(loc, rel, path, entry)
        if entry.get("type") == "directory":
            continue
        if entry.get("type") != "file":
            raise BadInputError(f"{loc.url}: {rel} is neither a file nor a directory; not imported")
        found.append((rel, path, entry))
    if loc.is_http():  # a web listing says nothing of sizes or versions: ask each file
        found = _with_infos(loc, found, jobs)
    paths.check_entries([rel for rel, _p, _i in found], loc.url)
    items = tuple(Item(rel, path, size_of(i), marker_of(i), bool(int(i.get("mode") or 0) & 0o100))
                  for rel, path, i in sorted(found, key=lambda f: f[0]))
    return Survey("dir", items)


def _with_infos(loc: Location, found: list, jobs: int) -> list:
    infos: dict[str, dict] = {}

    def ask(entry) -> None:
        infos[entry[0]] = loc.call(lambda: loc.fs.info(entry[1]))

    for entry, error in run_jobs(jobs, ask, found):
        if error is not None:
            raise BadInputError(f"{loc.url}: {entry[0]} vanished while it was listed") from error
    return [(rel, path, {**infos[rel], "name": path}) for rel, path, _i in found]


def size_of(info: dict) -> int | None:
    size = info.get("size")
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None

# --- ls-url -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class UrlEntry:
    name: str  # relative to the URL (the file's own name when the URL is a file)
    size: int | None  # None for directories, and where the listing gives none
    type: str  # file | directory | link | other


def _entry(name: str, info: dict, http: bool) -> UrlEntry:
    kind = str(info.get("type") or "other")
    if http:
        kind = "directory" if str(info.get("name")).endswith("/") else "file"
    elif info.get("islink"):
        kind = "link"
    return UrlEntry(name, None if kind == "directory" else size_of(info), kind)


def ls_url(url: str, recursive: bool = False, options: dict | None = None) -> list[UrlEntry]:
    """What a location holds: its entries (with `recursive`, every file below it), or the file
    itself. Names are shown as the backend gives them; nothing is written."""
    loc = connect(url, options)
    info = root_info(loc)
    if kind_of(loc, loc.path, info) != "directory":
        return [UrlEntry(default_name(url), size_of(info), kind_of(loc, loc.path, info))]
    if recursive:
        found = [_entry(rel, i, False) for rel, _p, i in walk(loc, strict=False)
                 if i["type"] != "directory"]
    else:
        found = [_entry(name, i, loc.is_http())
                 for name, i in children(loc, loc.path + ("/" if loc.is_http() else ""))]
        if len(found) > MAX_FILES:
            raise BadInputError(f"{url}: more than {MAX_FILES:,} entries")
    return sorted(found, key=lambda e: e.name)


# --- list -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ListedItem:
    path: str  # relative to the listed repository's root
    kind: str  # file | dir | entry (a file inside a tracked directory)
    size: int | None  # None where DVC recorded no size
    files: int | None
    hash: str  # xxh3-128 | md5 (a DVC repository)
    digest: str


def list_repo(url: str, path: str | None = None, rev: str | None = None,
              recursive: bool = False, remote: str | None = None) -> list[ListedItem]:
    """What `url` tracks at `rev` (its HEAD by default), at or below `path`."""
    prefix = paths.user_path(path) if path else ""
    with tempfile.TemporaryDirectory(prefix="dvlite-list-") as tmp:
        git_dir, wanted, commit = repos.clone(url, rev, tmp)
        if scm.blob_at(git_dir, commit, ".dvlite/config") is not None:
            odb = Cache(os.path.join(tmp, "cache"))
            src = repos.source_at(url, wanted, commit, git_dir, odb, tmp)
            items = _dvlite_items(src, prefix, recursive, remote)
        else:
            items = _dvc_items(git_dir, commit, url, wanted, prefix)
    if prefix and not items:
        raise repos.NotTrackedError(f"{prefix} is not tracked in {url} at {wanted}")
    return items


# --- dvlite -----------------------------------------------------------------------------------

def _outputs(src: repos.SourceRepo) -> list[Tracked]:
    pointers = src.pointer_paths()
    blobs = scm.read_blobs(src.git_dir, [f"{src.commit}:{p}" for p in pointers], limit=MAX_BYTES)
    out = []
    for p in pointers:
        origin = f"{p} at {src.rev}"
        data = blobs.get(f"{src.commit}:{p}")
        if data is not None:
            out.append(Tracked(checked_data_path(p, origin), Pointer.from_bytes(data, origin)))
    return out + src.stage_outputs()


def _dvlite_items(src: repos.SourceRepo, prefix: str, recursive: bool,
                  remote: str | None) -> list[ListedItem]:
    items = []
    for t in sorted(_outputs(src), key=lambda t: t.rel):
        inside = paths.is_inside(t.rel, prefix)
        around = bool(prefix) and prefix.startswith(t.rel + "/")
        if not inside and not around:
            continue
        p = t.pointer
        if inside:
            items.append(ListedItem(t.rel, p.kind, p.size, p.files, p.digest.algo, p.digest.hex))
        if p.kind == "dir" and (recursive or around or prefix == t.rel):
            for e in src.manifest(t, remote).entries:
                full = f"{t.rel}/{e.path}"
                if around and not paths.is_inside(full, prefix):
                    continue
                items.append(ListedItem(full, "entry", e.size, 1, p.digest.algo, e.digest))
    return items


# --- DVC --------------------------------------------------------------------------------------

def _dvc_items(git_dir: str, commit: str, url: str, rev: str, prefix: str) -> list[ListedItem]:
    everything = scm.paths_at(git_dir, commit)
    names = {p: p.rsplit("/", 1)[-1] for p in everything}
    dvc_files = [p for p in everything if p.endswith(dvcfile.SUFFIX) and names[p] != dvcfile.SUFFIX
                 and not p.startswith(".dvc/")]
    locks = [p for p in everything if names[p] == dvclock.FILENAME]
    if not dvc_files and not locks:
        raise BadInputError(f"{url} at {rev} is neither a dvlite repository (no .dvlite/config) "
                            "nor a DVC one (no .dvc files, no dvc.lock)")
    yamls = [posixpath.join(posixpath.dirname(lock), "dvc.yaml") for lock in locks]
    blobs = scm.read_blobs(git_dir, [f"{commit}:{p}" for p in dvc_files + locks + yamls],
                           limit=dvclock.MAX_FILE)
    found: dict[str, ListedItem] = {}
    for p in dvc_files:
        data = blobs.get(f"{commit}:{p}")
        if data is not None:
            out = _at(rev, p, dvcfile.parse, data, p).out
            found[out.path] = _dvc_item(out.path, out.is_dir, out.size, out.nfiles, out.md5)
    for lock in locks:
        data = blobs.get(f"{commit}:{lock}")
        if data is None:
            continue
        base = posixpath.dirname(lock)
        wdirs = _wdirs(blobs.get(f"{commit}:{posixpath.join(base, 'dvc.yaml')}"), base, rev)
        for name, stage in _at(rev, lock, dvclock.parse, data, lock).items():
            where = posixpath.normpath(posixpath.join(base, wdirs.get(name.split("@", 1)[0], ".")))
            for item in stage.outs:
                if item.md5 is None:
                    continue
                rel = _at(rev, lock, check_path, item.path, lock, f"stage {name!r} outs",
                          "" if where == "." else where)
                found[rel] = _dvc_item(rel, item.is_dir, item.size, item.nfiles, item.md5)
    return [found[rel] for rel in sorted(found)
            if paths.is_inside(rel, prefix) or prefix.startswith(rel + "/")]


def _dvc_item(rel: str, is_dir: bool, size: int | None, nfiles: int | None, md5: str) -> ListedItem:
    return ListedItem(rel, "dir" if is_dir else "file", size, nfiles if is_dir else 1, "md5", md5)


def _at(rev: str, origin: str, parse, *args):
    """parse(*args), its errors naming the file at the revision."""
    try:
        return parse(*args)
    except FormatError as exc:
        message = exc.message
        if message.startswith(origin + ":"):
            message = f"{origin} at {rev}" + message[len(origin):]
        raise type(exc)(message, exc.hint) from None


def _wdirs(data: bytes | None, base: str, rev: str) -> dict[str, str]:
    """Each stage's `wdir` in a dvc.yaml (the stage name, before any `@key`)."""
    origin = posixpath.join(base, "dvc.yaml")
    if data is None:
        return {}
    doc = _at(rev, origin, yamldoc.load, data, origin)
    stages = doc.get("stages") if isinstance(doc, dict) else None
    out = {}
    for name, body in (stages.items() if isinstance(stages, dict) else ()):
        wdir = body.get("wdir") if isinstance(body, dict) else None
        if wdir is None:
            continue
        if not isinstance(wdir, str) or "${" in wdir:
            raise FormatError(f"{origin} at {rev}: stage {name!s:.40}: wdir {wdir!r:.60} cannot be "
                              "listed (not a plain path)")
        out[str(name)] = wdir
    return out

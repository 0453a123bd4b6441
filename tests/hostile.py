"""Crafting hostile repositories for tests/test_hostile.py (issue 10).

An attacker controls everything a victim receives: commits (pointers, `dvlite.lock`, symlinks,
`.dvlite/config`) and the objects on a shared remote. This module writes such inputs byte by byte,
with correct XXH3-128 digests, without asking dvlite (so a fixed dvlite cannot refuse to build
its own attack): objects are stored loose under their digest in a cache (`.dvlite/cache/objects/`)
or on a local-directory remote (`REMOTE/objects/`), manifests in the canonical format of
dvlite/manifest.py, pointers as dvlite/pointer.py writes them, lock files and run records as
dvlite/lockfile.py dumps them.

`Sandbox` holds the repositories and canary files beside and above them; `Sandbox.watch(repo)`
snapshots everything (paths, sha256, mode, symlinks as links) so that `Watch.assert_harmless()`
can prove that a command changed nothing outside the repository and added nothing inside `.git/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import xxhash
import yaml
from conftest import GIT_ENV, git, run

ALGO = "xxh3-128"
PAYLOAD = b"written by the attacker\n"
HONEST = b"an honest file\n"


# --- objects, manifests, pointers ------------------------------------------------------------

def digest_of(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def put_object(objects: Path, data: bytes) -> str:
    """Store `data` as a loose object named by its digest, read-only as dvlite stores them."""
    hexdigest = digest_of(data)
    path = objects / hexdigest[:2] / hexdigest[2:]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o444)
    return hexdigest


def cache_objects(repo: Path) -> Path:
    return repo / ".dvlite" / "cache" / "objects"


def remote_objects(remote: Path, layout: int = 1) -> Path:
    """The objects directory of a local-directory remote (its layout file written if missing)."""
    remote.mkdir(parents=True, exist_ok=True)
    layout_file = remote / "dvlite-remote.json"
    if not layout_file.exists():
        doc = {"format": "dvlite-remote", "layout": layout}
        layout_file.write_bytes(json.dumps(doc).encode() + b"\n")
    return remote / "objects"


def manifest_bytes(entries: list[tuple[str, str, int, bool]]) -> bytes:
    """Canonical manifest bytes of (path, digest, size, executable) rows, kept as given:
    duplicates stay, nothing is checked. Sorted by path, one entry per line."""
    rows = sorted(entries, key=lambda e: e[0])
    body = ",\n".join(
        f'[{json.dumps(p, ensure_ascii=False)}, "{d}", {s}, {"true" if x else "false"}]'
        for p, d, s, x in rows
    )
    return ('{"version": 1, "algo": "xxh3-128", "entries": [\n' + body + "\n]}\n").encode()


def pointer_bytes(kind: str, hexdigest: str, size: int, files: int = 1,
                  source: dict[str, str] | None = None) -> bytes:
    lines = ["version: 1", f"kind: {kind}", f"hash: {ALGO}", f"digest: {hexdigest}",
             f"size: {size}"]
    if kind == "dir":
        lines.append(f"files: {files}")
    if source is not None:
        lines.append("source:")
        lines += [f"  {key}: {json.dumps(source[key])}"
                  for key in ("url", "rev", "rev_lock", "path")]
    return ("\n".join(lines) + "\n").encode()


@dataclass(frozen=True)
class Crafted:
    """Tracked data as an attacker writes it: file objects, the manifest that lists them under
    whatever paths the attacker chose (a directory), and the pointer naming it.

    kind "file": one object, `entries` holds one row whose path is ignored.
    """

    kind: str
    entries: tuple[tuple[str, bytes, bool], ...]

    @property
    def manifest(self) -> bytes:
        return manifest_bytes([(p, digest_of(d), len(d), x) for p, d, x in self.entries])

    @property
    def digest(self) -> str:
        return digest_of(self.manifest if self.kind == "dir" else self.entries[0][1])

    @property
    def size(self) -> int:
        return sum(len(d) for _, d, _ in self.entries)

    @property
    def files(self) -> int:
        return len(self.entries)

    def pointer(self, source: dict[str, str] | None = None) -> bytes:
        return pointer_bytes(self.kind, self.digest, self.size, self.files, source)

    def objects(self) -> list[bytes]:
        data = [d for _, d, _ in self.entries]
        return data + [self.manifest] if self.kind == "dir" else data

    def store(self, objects: Path) -> Crafted:
        for data in self.objects():
            put_object(objects, data)
        return self

    def into_cache(self, repo: Path) -> Crafted:
        return self.store(cache_objects(repo))

    def onto_remote(self, remote: Path) -> Crafted:
        return self.store(remote_objects(remote))

    def lock_entry(self, path: str, cache: bool | None = True) -> dict:
        """This data as a dep (cache=None) or out of a stage in dvlite.lock or a run record."""
        entry = {"path": path, "kind": self.kind, "hash": ALGO, "digest": self.digest,
                 "size": self.size, "files": self.files}
        if cache is not None:
            entry["cache"] = cache
        return entry

    def commit(self, repo: Path, data_path: str, message: str = "add data",
               source: dict[str, str] | None = None) -> Crafted:
        """Write `data_path.dvl`, ignore the data path as `dvlite add` would, commit both."""
        pointer = repo / (data_path + ".dvl")
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_bytes(self.pointer(source))
        paths = [pointer]
        head, _, name = data_path.rpartition("/")
        if name and name not in (".", "..") and not head.startswith((".dvlite", ".git")):
            ignore = repo / head / ".gitignore"
            ignore.parent.mkdir(parents=True, exist_ok=True)
            with ignore.open("a") as f:
                f.write(f"/{name}\n")
            paths.append(ignore)
        git(repo, "add", "-f", *paths)
        git(repo, "commit", "-q", "--no-verify", "-m", message)  # the attacker's hooks: none
        return self


def attack(*entries: tuple) -> Crafted:
    """A directory whose manifest lists `entries`: (path, bytes) or (path, bytes, executable).

    `attack(("ok.txt", HONEST), ("../../escaped.txt", PAYLOAD))` reads as the attack it is.
    """
    return Crafted("dir", tuple((e[0], e[1], bool(e[2]) if len(e) > 2 else False) for e in entries))


def honest(files: dict[str, bytes]) -> Crafted:
    return attack(*files.items())


def single_file(data: bytes) -> Crafted:
    return Crafted("file", (("", data, False),))


def lock_bytes(outs: Sequence[dict] = (), deps: Sequence[dict] = (), stage: str = "evil",
               cmd: str = "true") -> bytes:
    """A `dvlite.lock` with one stage, dumped as dvlite/lockfile.py does."""
    body: dict = {"cmd": cmd}
    if deps:
        body["deps"] = sorted(deps, key=lambda e: e["path"])
    if outs:
        body["outs"] = sorted(outs, key=lambda e: e["path"])
    return _dump({"schema": 1, "stages": {stage: body}})


def _dump(doc) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True,
                          width=1 << 16).encode()


def rewrite_run_record(path: Path, outs: list[dict]) -> None:
    """Replace the outs of the run record at `path` (`.dvlite/cache/runs/<key>`), key kept."""
    doc = yaml.safe_load(path.read_bytes())
    doc["run"]["outs"] = outs
    path.chmod(0o644)
    path.write_bytes(_dump(doc))


# --- repositories ------------------------------------------------------------------------------

def make_repo(path: Path, remote: Path | None = None) -> Path:
    """A git repository with `dvlite init` done (and a default remote), committed."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    run(path, "init")
    if remote is not None:
        run(path, "remote", "add", "-d", "origin", str(remote))
    git(path, "add", ".dvlite/config", ".dvlite/.gitignore")
    git(path, "commit", "-q", "-m", "init dvlite")
    return path


def clone(src: Path, dest: Path) -> Path:
    git(src.parent, "clone", "-q", str(src), str(dest))
    return dest


def commit_symlink(repo: Path, rel: str, target: str, message: str = "a link") -> None:
    """Replace whatever is at `rel` with a symlink to `target` and commit it to git."""
    path = repo / rel
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    git(repo, "add", "-f", rel)
    git(repo, "commit", "-q", "--no-verify", "-m", message)


def git_proc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """git with its exit code and output (hooks print to stderr), never raising."""
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, stdin=subprocess.DEVNULL, check=False)


# --- the sandbox and its canaries ----------------------------------------------------------------

CANARIES = {
    "canary.txt": b"above the repositories\n",
    "sibling/keep.txt": b"a sibling directory of the sandbox\n",
    "work/canary.txt": b"in the repositories' parent directory\n",
    "work/sibling/keep.txt": b"a sibling directory of the repositories\n",
    "work/sibling/nested/deep.txt": b"deeper in a sibling\n",
    "work/sibling/tool.sh": b"#!/bin/sh\necho a canary\n",
}


State = dict[str, tuple]


def _state(path: str) -> tuple:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        return ("link", os.readlink(path))
    if stat.S_ISDIR(st.st_mode):
        return ("dir", mode)
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            return ("file", mode, hashlib.sha256(f.read()).hexdigest())
    return ("other", stat.S_IFMT(st.st_mode), mode)


def snapshot(top: Path, skip: tuple[Path, ...] = ()) -> State:
    """Every path under `top` (not following symlinks) -> its state; `skip` subtrees left out."""
    found: State = {}
    skipped = {os.path.abspath(p) for p in skip}
    stack = [str(top)]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if entry.path in skipped:
                continue
            found[os.path.relpath(entry.path, top)] = _state(entry.path)
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    return found


def _differences(before: State, after: State, label: str) -> list[str]:
    out = [f"{label}: appeared: {p} {after[p]}" for p in sorted(after.keys() - before.keys())]
    out += [f"{label}: disappeared: {p}" for p in sorted(before.keys() - after.keys())]
    out += [f"{label}: changed: {p} {before[p]} -> {after[p]}"
            for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return out


class Sandbox:
    """A directory holding the repositories (under `work/`) and canaries beside and above them."""

    def __init__(self, root: Path, links: bool = True):
        self.root = root.resolve()
        self.work = self.root / "work"
        for rel, data in CANARIES.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (self.root / "work/sibling/tool.sh").chmod(0o755)
        if links:  # a symlink canary: it must stay a link with the same target
            os.symlink("keep.txt", self.work / "sibling" / "link")
        self.marker = self.root / "HOOK_RAN"

    @property
    def hook(self) -> bytes:
        """A git hook that leaves a marker file when it runs."""
        return f"#!/bin/sh\ntouch '{self.marker}'\n".encode()

    def path(self, rel: str) -> Path:
        return self.root / rel

    def watch(self, repo: Path | None) -> Watch:
        """Snapshot the sandbox now, to compare after a command that runs in `repo`."""
        return Watch(self, repo.resolve() if repo is not None else None)


class Watch:
    """What the sandbox looked like before a command: outside `repo`, its `.git`, its workspace."""

    def __init__(self, sandbox: Sandbox, repo: Path | None):
        self.sandbox = sandbox
        self.repo = repo
        self.before = self._capture()

    def _capture(self) -> dict[str, State]:
        if self.repo is None:
            return {"outside": snapshot(self.sandbox.root)}
        git_dir, dvlite_dir = self.repo / ".git", self.repo / ".dvlite"
        # what dvlite itself may write while refusing: its cache, its temp dir, its lock file
        own = tuple(dvlite_dir / name for name in ("cache", "tmp", "lock"))
        return {
            "outside": snapshot(self.sandbox.root, skip=(self.repo,)),
            "git": snapshot(git_dir),
            "workspace": snapshot(self.repo, skip=(git_dir, *own)),
            "cache": {f"{part}/{p}": v for part in ("objects", "packs")
                      for p, v in snapshot(dvlite_dir / "cache" / part).items()},
        }

    def problems(self, workspace: bool = True, cache: bool = False,
                 allow_new: tuple[Path, ...] = ()) -> list[str]:
        after = self._capture()
        allowed = {os.path.relpath(p.resolve(), self.sandbox.root) for p in allow_new}
        outside_after = {p: s for p, s in after["outside"].items()
                         if not any(p == a or p.startswith(a + "/") for a in allowed)}
        found = _differences(self.before["outside"], outside_after, "outside the repository")
        if self.repo is None:
            return found
        if not self.repo.is_dir():
            return found + [f"the repository {self.repo} is gone"]
        git_before, git_after = self.before["git"], after["git"]
        found += [f"inside .git: appeared: {p} {git_after[p]}"
                  for p in sorted(git_after.keys() - git_before.keys())]
        watched = [p for p in git_before.keys() | git_after.keys()
                   if p == "config" or p == "hooks" or p.startswith("hooks/")]
        found += [f"inside .git: {p}: {git_before.get(p, 'absent')} -> {git_after.get(p, 'absent')}"
                  for p in sorted(watched)
                  if git_before.get(p) != git_after.get(p) and p in git_before]
        if workspace:
            found += _differences(self.before["workspace"], after["workspace"], "in the workspace")
        if cache:
            found += _differences(self.before["cache"], after["cache"], "in the cache")
        return found

    def assert_harmless(self, proc: subprocess.CompletedProcess | None = None, *,
                        workspace: bool = True, cache: bool = False,
                        allow_new: tuple[Path, ...] = ()) -> None:
        """No canary changed, nothing outside the repository appeared or disappeared, nothing
        appeared in `.git/` (hooks and config unchanged); with `workspace`, nothing written in the
        repository either (`.dvlite/config*` included; only `.dvlite/cache`, `.dvlite/tmp` and
        `.dvlite/lock` may change); with `cache`, no object or pack of the cache added, removed
        or changed (what else the cache records, e.g. the projects using it, may change)."""
        found = self.problems(workspace, cache, allow_new)
        if found:
            raise AssertionError(
                "the command was not harmless:\n  " + "\n  ".join(found[:40])
                + (f"\n  ... and {len(found) - 40} more" if len(found) > 40 else "")
                + (_describe(proc) if proc is not None else "")
            )


def _describe(proc: subprocess.CompletedProcess) -> str:
    return f"\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


# --- what a refused attack looks like --------------------------------------------------------

def assert_unsafe(proc: subprocess.CompletedProcess, shown: str | None) -> None:
    """The command refused an invalid path from data: exit 4, `unsafe path` and the path as
    written in the data on stderr, no traceback."""
    where = _describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, where
    assert proc.returncode == 4, f"expected exit 4 (integrity){where}"
    assert "unsafe path" in proc.stderr, f"expected 'unsafe path' on stderr{where}"
    if shown is not None:
        assert shown in proc.stderr, f"expected the offending path {shown!r} on stderr{where}"


def assert_fsck_reports(proc: subprocess.CompletedProcess, pointer: str) -> None:
    """fsck found an unsafe path: exit 4, its output names the pointer and says `unsafe path`."""
    where = _describe(proc)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text, where
    assert proc.returncode == 4, f"expected exit 4{where}"
    assert "unsafe path" in text, f"expected 'unsafe path' in the output{where}"
    assert pointer in text, f"expected the pointer {pointer!r} in the output{where}"


def assert_symlink_refused(proc: subprocess.CompletedProcess, link: str) -> None:
    """A write below a symlink was refused: non-zero exit, stderr names `symlink` and the link."""
    where = _describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, where
    assert proc.returncode != 0, f"expected a refusal (non-zero exit){where}"
    assert "symlink" in proc.stderr, f"expected 'symlink' on stderr{where}"
    assert link in proc.stderr, f"expected the link {link!r} on stderr{where}"


def dvlite(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The real CLI, whatever its exit code."""
    return run(cwd, *args, check=False)

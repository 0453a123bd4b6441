"""Everything dvlite asks git. The only module that talks to git (GitPython is imported here, lazily).

Hot queries on the work tree (`ls-files`) run the git binary directly, which
starts faster than importing GitPython; history is read through GitPython.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

from dvlite.errors import BadInputError, DvliteError, FormatError

MAX_BLOB = 64 << 20  # the biggest dvlite.lock, dvlite.yaml or params file read from history


def _git(cwd: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
    except FileNotFoundError:
        raise DvliteError("git is not installed", hint="install git, or use --no-scm") from None
    if check and proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise DvliteError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
    return proc


def find_worktree(path: str) -> str | None:
    proc = _git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        return None
    return os.path.realpath(proc.stdout.decode().strip())


def git_version() -> str | None:
    try:
        return _git(".", "--version").stdout.decode().strip().removeprefix("git version ")
    except DvliteError:
        return None


LISTED = ["*.dvl", "dvlite.yaml", "*/dvlite.yaml", "dvlite.lock", "*/dvlite.lock",
          # DVC's files: what a commit from before the switch tracks (see dvlite.dvc.tracked)
          "*.dvc", "dvc.lock", "*/dvc.lock", "dvc.yaml", "*/dvc.yaml"]


def exclude_locally(worktree: str, patterns: list[str]) -> None:
    """Add `patterns` (relative to the work tree's top) to `.git/info/exclude`: ignored in this
    clone only, never committed, so no later checkout can conflict with them."""
    from dvlite.fsutil import atomic_write

    proc = _git(worktree, "rev-parse", "--git-path", "info/exclude")
    path = os.path.join(worktree, proc.stdout.decode().strip())
    try:
        with open(path, "rb") as f:
            current = f.read(1 << 20).decode("utf-8", "replace")
    except FileNotFoundError:
        current = ""
    lines = current.splitlines()
    new = [p for p in patterns if p not in lines]
    if new:
        text = current + ("" if not current or current.endswith("\n") else "\n")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, (text + "\n".join(new) + "\n").encode())


class Scm:
    def __init__(self, worktree: str, repo_root: str):
        self.worktree = worktree
        self.repo_root = repo_root
        rel = os.path.relpath(repo_root, worktree)
        self.prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"

    # --- the work tree --------------------------------------------------
    def _ls_files(self, *args: str, paths: Iterable[str] = ()) -> list[str]:
        proc = _git(self.repo_root, "ls-files", "-z", *args, "--", *paths)
        return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]

    def dvlite_files(self) -> list[str]:
        """Pointer files, dvlite.yaml and dvlite.lock files (and DVC's `.dvc`, dvc.yaml and
        dvc.lock files) under the repo root, committed or not (paths relative to the root),
        from one `git ls-files`."""
        return self.listing()[0]

    def listing(self) -> tuple[list[str], set[str]]:
        """`dvlite_files`, and which of them git does not track, from the same `git ls-files`
        (its `-t` tags say which)."""
        tagged = self._ls_files("-t", "--cached", "--others", "--exclude-standard", paths=LISTED)
        return sorted({line[2:] for line in tagged}), {line[2:] for line in tagged if line[0] == "?"}

    def staged(self, patterns: list[str]) -> list[str]:
        """Files matching `patterns` that the index adds or changes against HEAD (what the next
        commit records), relative to the repo root."""
        proc = _git(self.repo_root, "diff", "--cached", "--name-only", "--diff-filter=ACMR", "-z",
                    "--relative", "--", *patterns, check=False)
        return sorted(p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p)

    def untracked(self, rel_paths: list[str]) -> set[str]:
        """Which of `rel_paths` git does not track (ignored or not)."""
        if not rel_paths:
            return set()
        return set(self._ls_files("--others", paths=rel_paths))

    def tracked_under(self, abs_path: str) -> list[str]:
        """Files git tracks at or under `abs_path`."""
        rel = os.path.relpath(abs_path, self.repo_root)
        return self._ls_files("--cached", paths=[":(literal)" + rel])

    # --- history ----------------------------------------------------------
    def _open(self):
        import git

        return git.Repo(self.worktree)

    def resolve(self, rev: str) -> str:
        import git

        with self._open() as repo:
            try:
                return repo.rev_parse(rev).hexsha
            except (git.BadName, ValueError, git.GitCommandError):
                raise BadInputError(f"unknown revision {rev!r}") from None

    def files_at(self, rev: str, suffix: str | tuple[str, ...], limit: int = 1 << 20) -> dict[str, bytes]:
        """Contents of every file ending in `suffix` under the repo root at `rev`.

        Keys are paths relative to the repo root, with `/` separators.
        """
        sha = self.resolve(rev)
        out: dict[str, bytes] = {}
        with self._open() as repo:
            args = ["-r", "-z", "--full-tree", sha]
            if self.prefix:
                args += ["--", self.prefix]
            listing = repo.git.ls_tree(*args)
            for record in listing.split("\0"):
                if not record:
                    continue
                meta, path = record.split("\t", 1)
                _mode, kind, blob = meta.split()
                if kind == "blob" and path.endswith(suffix):
                    stream = repo.odb.stream(bytes.fromhex(blob))
                    if stream.size > limit:
                        raise FormatError(f"{path} at {rev}: {stream.size} bytes; not a file "
                                          "dvlite wrote")
                    out[path[len(self.prefix):]] = stream.read()
        return out

    def revisions(self, all_branches: bool, all_tags: bool, all_commits: bool) -> set[str]:
        with self._open() as repo:
            if all_commits:
                shas = repo.git.rev_list("--all").split()
                return set(shas)
            revs: set[str] = set()
            if all_branches:
                revs |= {h.commit.hexsha for h in repo.heads}
            if all_tags:
                revs |= {t.commit.hexsha for t in repo.tags}
            return revs

    def read_at(self, rev: str, rels: Iterable[str], limit: int = MAX_BLOB) -> dict[str, bytes]:
        """Contents of the named files (repo-root-relative) at `rev`; absent files are left out."""
        sha = self.resolve(rev)
        out: dict[str, bytes] = {}
        for rel in rels:
            data = blob_at(self.worktree, sha, f"{self.prefix}{rel}", limit)
            if data is not None:
                out[rel] = data
        return out

    def log(self, all_refs: bool = True) -> list[tuple[str, str]]:
        """(sha, subject) of commits, newest first (every ref's history with `all_refs`, else HEAD's)."""
        proc = _git(self.worktree, "log", "--all" if all_refs else "HEAD", "--format=%H%x00%s", check=False)
        if proc.returncode != 0:
            return []
        lines = proc.stdout.decode("utf-8", "replace").splitlines()
        return [tuple(line.split("\0", 1)) for line in lines if "\0" in line]


# --- other repositories: `dvlite get`, `dvlite import`, the API's sources -----------------

def _is_local_path(url: str) -> bool:
    """A path on this machine (not `file://`, not `host:path`, not `scheme://...`)."""
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" not in head or os.path.exists(url)


def clone_bare(url: str, dest: str) -> None:
    """Clone `url` into `dest` (a new directory) as a bare repository: every branch and tag,
    no work tree. Over a network the clone is partial (`--filter=blob:none`): file contents
    are fetched only when read. git never prompts for credentials here."""
    if url.startswith("-"):
        raise BadInputError(f"not a repository URL: {url!r}")
    args = ["git", "clone", "--bare", "--quiet"]
    if not _is_local_path(url) and not url.startswith("file://"):
        args.append("--filter=blob:none")  # local clones copy or hardlink objects anyway
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run([*args, "--", url, dest], check=False, capture_output=True,
                              env=env, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DvliteError("git is not installed") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith("fatal:")]
        reason = (fatal or lines or [f"exit {proc.returncode}"])[0].removeprefix("fatal: ")
        raise BadInputError(f"cannot clone {url}: {reason}")


def commit_of(git_dir: str, rev: str) -> str:
    """The full commit id `rev` names in the repository at `git_dir`."""
    if not rev or rev.startswith("-"):
        raise BadInputError(f"unknown revision {rev!r}")
    proc = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise BadInputError(f"unknown revision {rev!r}")
    return proc.stdout.decode().strip()


def paths_at(git_dir: str, commit: str) -> list[str]:
    """Every file path in `commit` (`/` separators), without reading any file's contents."""
    proc = _git(git_dir, "ls-tree", "-r", "-z", "--name-only", "--full-tree", commit)
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def blob_at(git_dir: str, commit: str, path: str, limit: int = MAX_BLOB) -> bytes | None:
    """The contents of `path` in `commit`, or None when the commit has no such file (or it is
    not a file); a FormatError when it is bigger than `limit`, before it is read."""
    spec = f"{commit}:{path}"
    if "\n" in spec:
        return None
    proc = subprocess.run(["git", "cat-file", "--batch-check"], cwd=git_dir, input=spec.encode() + b"\n",
                          capture_output=True)
    header = proc.stdout.decode(errors="replace").split()
    if proc.returncode != 0 or len(header) != 3 or header[1] != "blob":
        return None
    if int(header[2]) > limit:
        raise FormatError(f"{path} at {commit[:10]}: {header[2]} bytes; not a file dvlite wrote")
    got = _git(git_dir, "cat-file", "blob", header[0], check=False)
    return got.stdout if got.returncode == 0 else None


# --- hooks, merge driver, pushed commits (git integration) ---------------------------------

ZERO_SHA = "0" * 40


def git_path(worktree: str, name: str) -> str:
    """Absolute `git rev-parse --git-path NAME` (honours core.hooksPath, worktrees, GIT_DIR)."""
    out = _git(worktree, "rev-parse", "--git-path", name).stdout.decode().strip()
    return os.path.normpath(os.path.join(worktree, out))


def hooks_dir(worktree: str) -> str:
    return git_path(worktree, "hooks")


def operation_in_progress(worktree: str) -> str | None:
    """'merge' or 'rebase' (or 'cherry-pick', 'revert') when one is under way, else None."""
    for name, what in (("rebase-merge", "rebase"), ("rebase-apply", "rebase"), ("MERGE_HEAD", "merge"),
                       ("CHERRY_PICK_HEAD", "cherry-pick"), ("REVERT_HEAD", "revert")):
        if os.path.exists(git_path(worktree, name)):
            return what
    return None


def config_get(worktree: str, key: str) -> str | None:
    proc = _git(worktree, "config", "--get", key, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def config_set(worktree: str, key: str, value: str) -> None:
    """Set `key` in the repository's own config (.git/config, shared by its worktrees)."""
    _git(worktree, "config", "--local", key, value)


def config_remove_section(worktree: str, section: str) -> bool:
    return _git(worktree, "config", "--local", "--remove-section", section, check=False).returncode == 0


def is_remote_name(worktree: str, name: str) -> bool:
    proc = _git(worktree, "remote", check=False)
    return proc.returncode == 0 and name in proc.stdout.decode().split()


def commit_exists(worktree: str, sha: str) -> bool:
    return _git(worktree, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0


def new_commits(worktree: str, tip: str, exclude: list[str], exclude_remote: str | None) -> list[str]:
    """Commits reachable from `tip` but not from `exclude` nor from `exclude_remote`'s tracking refs."""
    args = ["rev-list", tip, "--not", *exclude]
    if exclude_remote:
        args.append(f"--remotes={exclude_remote}")
    return _git(worktree, *args).stdout.decode().split()


_FALLBACK_IDENTITY = ("-c", "user.name=dvlite", "-c", "user.email=dvlite@localhost")


def _identity(worktree: str) -> tuple[str, ...]:
    """`-c` options naming a committer when git has none configured (commit-tree needs one)."""
    ok = all(_git(worktree, "var", var, check=False).returncode == 0
             for var in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"))
    return () if ok else _FALLBACK_IDENTITY


# The rest of what dvlite asks git, by topic (imported last: they use the helpers above).
from dvlite.scm.refs import *  # experiments: refs, plumbing commits, work trees
from dvlite.scm.tags import *  # annotated tags: the model registry

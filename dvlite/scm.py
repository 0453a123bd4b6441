"""Everything dvlite asks git. The only module that talks to git (GitPython is imported here, lazily).

Hot queries on the work tree (`ls-files`) run the git binary directly, which
starts faster than importing GitPython; history is read through GitPython.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

from dvlite.errors import BadInputError, DvliteError


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

    def pointer_files(self) -> list[str]:
        """Pointer files under the repo root, committed or not (paths relative to the root)."""
        found = self._ls_files("--cached", "--others", "--exclude-standard", paths=["*.dvl"])
        return sorted(set(found))

    def untracked(self, rel_paths: list[str]) -> set[str]:
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

    def files_at(self, rev: str, suffix: str) -> dict[str, bytes]:
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
                    data = repo.odb.stream(bytes.fromhex(blob)).read()
                    out[path[len(self.prefix):]] = data
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

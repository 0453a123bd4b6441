"""Experiments in git: refs under `refs/exps/`, commits made with plumbing (a temporary index,
`commit-tree`, `update-ref`: HEAD, the index and the branch never move), work trees, remote
refs, clones at a commit and bundles."""

from __future__ import annotations

import os
import subprocess

from dvlite.errors import BadInputError, DvliteError, FormatError
from dvlite.scm import MAX_BLOB, ZERO_SHA, _git, _identity, git_path

__all__ = ["bundle", "changed_between", "clone_at", "commit_dates", "commit_work_tree", "create_branch", "create_ref", "current_branch", "delete_ref", "fetch_refs", "head_commit", "log_without", "modified_tracked", "parent_of", "push_refs", "read_blobs", "refs_under", "remote_refs", "worktree_add", "worktree_remove"]


def head_commit(worktree: str) -> str | None:
    """The commit HEAD names, or None in a repository without commits."""
    proc = _git(worktree, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def current_branch(worktree: str) -> str | None:
    proc = _git(worktree, "symbolic-ref", "--short", "--quiet", "HEAD", check=False)
    return proc.stdout.decode().strip() or None if proc.returncode == 0 else None


def refs_under(worktree: str, prefix: str) -> list[tuple[str, str, int, str]]:
    """(ref, commit, committer time, subject) of every ref under `prefix` (e.g. `refs/exps/`)."""
    fmt = "%(refname)%00%(objectname)%00%(committerdate:unix)%00%(subject)"
    proc = _git(worktree, "for-each-ref", f"--format={fmt}", prefix)
    out = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\0")
        if len(parts) == 4 and parts[2].isdigit():
            out.append((parts[0], parts[1], int(parts[2]), parts[3]))
    return out


def create_ref(worktree: str, ref: str, sha: str) -> bool:
    """Point the new `ref` at `sha`; False (and nothing changed) when `ref` already exists."""
    proc = _git(worktree, "update-ref", "--no-deref", ref, sha, ZERO_SHA, check=False)
    return proc.returncode == 0


def delete_ref(worktree: str, ref: str) -> None:
    _git(worktree, "update-ref", "-d", ref)


def create_branch(worktree: str, name: str, sha: str) -> None:
    """A new branch `name` at `sha`; refused when the name is taken or not a branch name."""
    if _git(worktree, "check-ref-format", "--branch", name, check=False).returncode != 0:
        raise BadInputError(f"{name!r} is not a valid branch name")
    proc = _git(worktree, "branch", "--no-track", "--", name, sha, check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        raise BadInputError(f"cannot create branch {name!r}: "
                            f"{(lines or ['git branch failed'])[-1].removeprefix('fatal: ')}")


def changed_between(worktree: str, a: str, b: str) -> list[tuple[str, str]]:
    """(status A/M/D/T, path from the top of the work tree) of files that differ from `a` to `b`."""
    proc = _git(worktree, "diff-tree", "-r", "-z", "--no-renames", "--name-status", a, b)
    items = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [(items[i][:1], items[i + 1]) for i in range(0, len(items) - 1, 2) if items[i]]


def read_blobs(worktree: str, specs: list[str], limit: int = MAX_BLOB) -> dict[str, bytes]:
    """Contents of `COMMIT:PATH` specs, read by two git processes whatever their number; specs
    that name no file are left out, and a file bigger than `limit` is a FormatError."""
    specs = [s for s in dict.fromkeys(specs) if "\n" not in s]
    if not specs:
        return {}
    check = subprocess.run(["git", "cat-file", "--batch-check"], cwd=worktree, capture_output=True,
                           input="".join(s + "\n" for s in specs).encode("utf-8", "surrogateescape"))
    lines = check.stdout.decode("utf-8", "replace").splitlines()
    wanted: dict[str, list[str]] = {}
    for spec, line in zip(specs, lines):
        parts = line.split()
        if len(parts) != 3 or parts[1] != "blob":
            continue
        if int(parts[2]) > limit:
            raise FormatError(f"{spec}: {parts[2]} bytes; not a file dvlite wrote")
        wanted.setdefault(parts[0], []).append(spec)
    if not wanted:
        return {}
    got = subprocess.run(["git", "cat-file", "--batch"], cwd=worktree, capture_output=True,
                         input="".join(b + "\n" for b in wanted).encode())
    out: dict[str, bytes] = {}
    data, pos = got.stdout, 0
    for blob in wanted:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        size = int(header[2])
        content = data[end + 1:end + 1 + size]
        pos = end + 2 + size
        for spec in wanted[blob]:
            out[spec] = content
    return out


def _temp_index_env(index: str) -> dict:
    return dict(os.environ, GIT_INDEX_FILE=index)


def commit_work_tree(worktree: str, base: str, paths: list[str], message: str, tmp_dir: str) -> str:
    """A commit of the work tree as it is, with `base` as its only parent, made through a
    temporary index: the changes of files git tracks, plus `paths` (relative to the top of the
    work tree, added even when untracked or ignored). HEAD, the index and branches are untouched."""
    import secrets
    import shutil

    index = os.path.join(tmp_dir, f"exp-index-{secrets.token_hex(6)}")
    real = git_path(worktree, "index")
    try:
        if os.path.exists(real):
            # with its stat data (`add -u` hashes only what changed) and its mtime: git re-reads
            # a file as new as its index ("racily clean"), which a copy made now would hide
            shutil.copy2(real, index)
        env = _temp_index_env(index)
        steps = [["read-tree", base]] if not os.path.exists(real) else []
        steps.append(["add", "-u"])
        present = [p for p in paths if os.path.lexists(os.path.join(worktree, p))]
        if present:
            steps.append(["add", "-f", "-A", "--", *present])
        for step in steps:
            proc = subprocess.run(["git", *step], cwd=worktree, env=env, capture_output=True)
            if proc.returncode != 0:
                raise DvliteError(f"git {step[0]} failed: "
                                  f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
        tree = subprocess.run(["git", "write-tree"], cwd=worktree, env=env, capture_output=True)
        if tree.returncode != 0:
            raise DvliteError("git write-tree failed: " + tree.stderr.decode(errors="replace").strip())
    finally:
        if os.path.exists(index):
            os.unlink(index)
    proc = _git(worktree, *_identity(worktree), "commit-tree", tree.stdout.decode().strip(),
                "-p", base, "-m", message)
    return proc.stdout.decode().strip()


def worktree_add(worktree: str, path: str, commit: str) -> None:
    """A new linked work tree at `path`, detached at `commit` (the main work tree is untouched)."""
    _git(worktree, "worktree", "add", "--quiet", "--detach", path, commit)


def worktree_remove(worktree: str, path: str) -> None:
    """Remove a linked work tree made by `worktree_add`, whatever it holds."""
    import shutil

    removed = _git(worktree, "worktree", "remove", "--force", "--force", path, check=False)
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)
    if removed.returncode != 0:
        _git(worktree, "worktree", "prune", check=False)


def _remote_git(cwd: str, *args: str) -> subprocess.CompletedProcess:
    """git talking to another repository: never prompts; a failure is a RemoteError (exit 5)."""
    from dvlite.errors import RemoteError

    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise DvliteError("git is not installed") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
        reason = (fatal or lines or [f"exit {proc.returncode}"])[0]
        raise RemoteError(f"git {args[0]} failed: {reason.removeprefix('fatal: ')}")
    return proc


def _check_remote_arg(remote: str) -> None:
    if not remote or remote.startswith("-"):
        raise BadInputError(f"not a git remote: {remote!r}")


def remote_refs(worktree: str, remote: str, prefix: str) -> dict[str, str]:
    """ref -> commit of the refs under `prefix` in git remote (name or URL) `remote`."""
    _check_remote_arg(remote)
    proc = _remote_git(worktree, "ls-remote", "--refs", "--", remote, f"{prefix}*")
    out = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        sha, _, ref = line.partition("\t")
        if ref.startswith(prefix):
            out[ref] = sha
    return out


def push_refs(worktree: str, remote: str, refs: list[str]) -> None:
    """Push `refs` to the same names in `remote` (forced: experiment refs are not shared history)."""
    _check_remote_arg(remote)
    if refs:
        _remote_git(worktree, "push", "--quiet", "--", remote, *[f"+{r}:{r}" for r in refs])


def fetch_refs(worktree: str, remote: str, refs: list[str]) -> None:
    """Fetch `refs` of `remote` (a name, URL or bundle file) into the same names here."""
    _check_remote_arg(remote)
    if refs:
        _remote_git(worktree, "fetch", "--quiet", "--no-tags", "--", remote,
                    *[f"+{r}:{r}" for r in refs])


def clone_at(url: str, dest: str, commit: str) -> None:
    """Clone `url` into the new directory `dest` with `commit` checked out (detached)."""
    if url.startswith("-"):
        raise BadInputError(f"not a repository URL: {url!r}")
    _remote_git(os.path.dirname(dest) or ".", "clone", "--quiet", "--no-checkout", "--", url, dest)
    _git(dest, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit)


def bundle(worktree: str, ref: str, exclude: str, dest: str) -> None:
    """A git bundle at `dest` holding `ref` and what it needs beyond commit `exclude`."""
    _git(worktree, "bundle", "create", "--quiet", dest, ref, f"^{exclude}")


def parent_of(worktree: str, sha: str) -> str | None:
    proc = _git(worktree, "rev-parse", "--verify", "--quiet", f"{sha}^1", check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def commit_dates(worktree: str, shas: list[str]) -> dict[str, tuple[int, str]]:
    """sha -> (committer time, subject) for the given commits."""
    if not shas:
        return {}
    proc = _git(worktree, "show", "-s", "--format=%H%x00%ct%x00%s", *shas)
    out = {}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\0")
        if len(parts) == 3 and parts[1].isdigit():
            out[parts[0]] = (int(parts[1]), parts[2])
    return out


def modified_tracked(worktree: str) -> list[str]:
    """Files git tracks that differ from HEAD in the index or the work tree (from the top)."""
    proc = _git(worktree, "status", "--porcelain=v1", "-z", "--no-renames", "--untracked-files=no", check=False)
    items = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [item[3:] for item in items if len(item) > 3]


def log_without(worktree: str, exclude: str) -> list[tuple[str, str]]:
    """(sha, subject) of the commits of every ref except those matching `exclude` (a glob such as
    `refs/exps/*`), newest first."""
    proc = _git(worktree, "log", f"--exclude={exclude}", "--all", "--format=%H%x00%s", check=False)
    if proc.returncode != 0:
        return []
    lines = proc.stdout.decode("utf-8", "replace").splitlines()
    return [tuple(line.split("\0", 1)) for line in lines if "\0" in line]

"""git hooks (post-checkout, post-merge, post-rewrite, pre-commit, pre-push) and the merge
driver's registration.

`install` writes small shell hooks into the directory git reads them from
(`git rev-parse --git-path hooks`). Each hook runs a hook that was there before
(moved aside to `NAME.dvlite-chained`) first, then
`<the installing Python> -m dvlite hook NAME ...`. `uninstall` removes dvlite's hooks and
moves the chained ones back, byte for byte and with their mode.

The merge driver's attributes go to the repository's own `info/attributes`, never into the
work tree: an untracked `.gitattributes` there would stop the `git pull` that brings a
committed one ("untracked working tree file would be overwritten"), and a changed tracked one
any pull that changes it. Each clone runs `dvlite install` anyway (git never takes a merge
driver's command from a clone), so nothing is lost by not committing them.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

from dvlite import scm as scm_mod
from dvlite.errors import BadInputError
from dvlite.formats.pointer import SUFFIX
from dvlite.fsutil import atomic_write
from dvlite.outputs import Tracked, parse_pointers_at
from dvlite.repo import Repo

HOOKS = ("post-checkout", "post-merge", "post-rewrite", "pre-commit", "pre-push")
MARKER = "# dvlite-hook:"
CHAINED = ".dvlite-chained"
DRIVER = "dvlite"
ATTRIBUTES = (f"*.dvl merge={DRIVER}", f"dvlite.lock merge={DRIVER}")

_SCRIPT = """\
#!/bin/sh
{marker} {name} (installed by `dvlite install`; `dvlite install --uninstall` removes it
# and puts back the hook it chained, if any). Edits here are lost on the next install.
PYTHON={python}
DVLITE={package}
CHAINED="$(dirname "$0")/{name}{chained}"
{body}"""

_CHECK = """\
if [ ! -x "$PYTHON" ] || [ ! -d "$DVLITE" ]; then
    echo "error: dvlite's {name} hook cannot run: $PYTHON (the Python that ran \\`dvlite install\\`) is gone \
or no longer has dvlite" >&2
    echo "hint: reinstall dvlite and run \\`dvlite install\\` again, or remove the hook: $0" >&2
    exit 1
fi
"""

_PLAIN_BODY = """\
if [ -x "$CHAINED" ]; then
    "$CHAINED" "$@" || exit $?
fi
{check}exec "$PYTHON" -m dvlite hook {name}{root} "$@" </dev/null
"""

# post-rewrite reads the rewritten commits from stdin: the chained hook gets them, dvlite
# needs only the argument.
_STDIN_BODY = """\
input=$(cat)
if [ -x "$CHAINED" ]; then
    {{ [ -z "$input" ] || printf '%s\\n' "$input"; }} | "$CHAINED" "$@" || exit $?
fi
{check}exec "$PYTHON" -m dvlite hook {name}{root} "$@" </dev/null
"""

# pre-push reads the refs being pushed from stdin: both hooks get the same lines.
_PUSH_BODY = """\
input=$(cat)
if [ -x "$CHAINED" ]; then
    {{ [ -z "$input" ] || printf '%s\\n' "$input"; }} | "$CHAINED" "$@" || exit $?
fi
{check}{{ [ -z "$input" ] || printf '%s\\n' "$input"; }} | "$PYTHON" -m dvlite hook {name}{root} "$@"
"""


def hook_script(name: str, python: str, package: str, root_rel: str) -> bytes:
    root = "" if root_rel in ("", ".") else f" --root {shlex.quote(root_rel)}"
    body = {"pre-push": _PUSH_BODY, "post-rewrite": _STDIN_BODY}.get(name, _PLAIN_BODY)
    check = _CHECK.format(name=name)
    text = _SCRIPT.format(
        marker=MARKER, name=name, python=shlex.quote(python), package=shlex.quote(package), chained=CHAINED,
        body=body.format(name=name, root=root, check=check),
    )
    return text.encode()


def driver_command(python: str) -> str:
    return f"{shlex.quote(python)} -m dvlite merge-driver %O %A %B %P"


@dataclass(frozen=True)
class HookChange:
    name: str
    action: str  # installed | updated | unchanged | chained | removed | restored | absent | not dvlite's
    path: str


@dataclass
class InstallResult:
    hooks_dir: str
    hooks: list[HookChange] = field(default_factory=list)
    driver: str | None = None  # the merge driver command registered (None after uninstall)
    attributes: str | None = None  # the attributes file holding the driver's lines
    attributes_changed: bool = False
    gitattributes: str | None = None  # .gitattributes, when uninstall took dvlite's lines out of it
    gitattributes_deleted: bool = False


def _is_ours(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except (FileNotFoundError, IsADirectoryError):
        return False
    return MARKER.encode() in head


def _write_hook(path: str, script: bytes) -> None:
    atomic_write(path, script, mode=0o755)
    os.chmod(path, 0o755)


def install(repo: Repo, python: str, package: str) -> InstallResult:
    """Install the hooks and register the merge driver; running it again changes nothing.

    `python` runs dvlite (`python -m dvlite`); `package` is dvlite's package directory: a hook
    whose interpreter or package is gone says so instead of failing obscurely.
    """
    worktree = repo.require_scm().worktree
    hooks = scm_mod.hooks_dir(worktree)
    root_rel = os.path.relpath(repo.root, worktree)
    result = InstallResult(hooks)
    os.makedirs(hooks, exist_ok=True)
    for name in HOOKS:
        path = os.path.join(hooks, name)
        chained = path + CHAINED
        script = hook_script(name, python, package, root_rel)
        if _is_ours(path):
            with open(path, "rb") as f:
                same = f.read() == script
            if not same:
                _write_hook(path, script)
            result.hooks.append(HookChange(name, "unchanged" if same else "updated", path))
            continue
        if os.path.lexists(path):
            if os.path.lexists(chained):
                raise BadInputError(
                    f"{path} is not dvlite's hook, and {chained} (a hook dvlite chained earlier) is in the way",
                    hint="merge the two by hand or move one of them away, then run `dvlite install` again",
                )
            os.rename(path, chained)  # the same inode: bytes and mode kept exactly
            _write_hook(path, script)
            result.hooks.append(HookChange(name, "chained", path))
        else:
            _write_hook(path, script)
            result.hooks.append(HookChange(name, "installed", path))
    result.driver = driver_command(python)
    scm_mod.config_set(worktree, f"merge.{DRIVER}.name", "dvlite: merge .dvl pointers and dvlite.lock")
    scm_mod.config_set(worktree, f"merge.{DRIVER}.driver", result.driver)
    result.attributes = scm_mod.git_path(worktree, "info/attributes")
    result.attributes_changed = _add_attributes(result.attributes) is not None
    return result


def uninstall(repo: Repo) -> InstallResult:
    """Remove dvlite's hooks (restoring chained ones), the merge driver and its .gitattributes lines."""
    worktree = repo.require_scm().worktree
    hooks = scm_mod.hooks_dir(worktree)
    result = InstallResult(hooks)
    for name in HOOKS:
        path = os.path.join(hooks, name)
        chained = path + CHAINED
        if os.path.lexists(path) and not _is_ours(path):
            result.hooks.append(HookChange(name, "not dvlite's", path))
            continue
        existed = os.path.lexists(path)
        if existed:
            os.unlink(path)
        if os.path.lexists(chained):
            os.rename(chained, path)
            result.hooks.append(HookChange(name, "restored", path))
        else:
            result.hooks.append(HookChange(name, "removed" if existed else "absent", path))
    scm_mod.config_remove_section(worktree, f"merge.{DRIVER}")
    result.attributes = scm_mod.git_path(worktree, "info/attributes")
    result.attributes_changed = _remove_attributes(result.attributes)[0] is not None
    # lines an older dvlite wrote into the work tree's .gitattributes
    attributes = os.path.join(worktree, ".gitattributes")
    result.gitattributes, result.gitattributes_deleted = _remove_attributes(attributes)
    return result


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _add_attributes(path: str) -> str | None:
    text = _read_text(path) or ""
    lines = text.splitlines()
    missing = [line for line in ATTRIBUTES if line not in lines]
    if not missing:
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    text += "".join(line + "\n" for line in missing)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, text.encode("utf-8", "surrogateescape"))
    return path


def _remove_attributes(path: str) -> tuple[str | None, bool]:
    text = _read_text(path)
    if text is None:
        return None, False
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if line.rstrip("\r\n") not in ATTRIBUTES]
    if kept == lines:
        return None, False
    if not "".join(kept).strip():
        os.unlink(path)
        return path, True
    atomic_write(path, "".join(kept).encode("utf-8", "surrogateescape"))
    return path, False


# --- what the hooks do -----------------------------------------------------------------------

def skip_checkout_reason(worktree: str, flag: str) -> str | None:
    """Why post-checkout should leave the data alone, or None to restore it."""
    if flag != "1":
        return "a file checkout"
    busy = scm_mod.operation_in_progress(worktree)
    if busy:
        return f"a {busy} is in progress"
    return None


def skip_rewrite_reason(worktree: str, command: str) -> str | None:
    """Why post-rewrite should leave the data alone, or None to restore it: `git commit
    --amend` moves no file, a finished rebase (or `git pull --rebase`) may have moved many."""
    if command != "rebase":
        return f"a {command or 'rewrite'} changes no file"
    busy = scm_mod.operation_in_progress(worktree)
    if busy and busy != "rebase":
        return f"a {busy} is in progress"
    return None


def is_strict(repo: Repo) -> bool:
    return (repo.config.get("hooks.strict") or "").strip().lower() in ("true", "1", "yes", "on")


@dataclass(frozen=True)
class RefUpdate:
    local_ref: str
    local_sha: str
    remote_ref: str
    remote_sha: str


def parse_push_lines(text: str) -> list[RefUpdate]:
    """The `<local ref> <local sha> <remote ref> <remote sha>` lines git gives pre-push on stdin."""
    updates = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise BadInputError(f"pre-push: malformed input line {line!r}",
                                hint="expected `<local ref> <local sha> <remote ref> <remote sha>`")
        updates.append(RefUpdate(*parts))
    return updates


@dataclass
class PushPlan:
    commits: list[str]
    outputs: list[tuple[Tracked, None]]


def pushed_outputs(repo: Repo, updates: list[RefUpdate], git_remote: str | None) -> PushPlan:
    """The tracked outputs named by every commit these ref updates send (and the remote lacks)."""
    scm = repo.require_scm()
    worktree = scm.worktree
    exclude_remote = git_remote if git_remote and scm_mod.is_remote_name(worktree, git_remote) else None
    commits: list[str] = []
    for u in updates:
        if u.local_sha == scm_mod.ZERO_SHA:
            continue  # a branch deletion sends no data
        exclude = [u.remote_sha] if u.remote_sha != scm_mod.ZERO_SHA and scm_mod.commit_exists(
            worktree, u.remote_sha) else []
        for sha in scm_mod.new_commits(worktree, u.local_sha, exclude, exclude_remote):
            if sha not in commits:
                commits.append(sha)
    seen: set[tuple[str, object]] = set()
    outputs: list[tuple[Tracked, None]] = []
    for sha in commits:
        for t in parse_pointers_at(scm.files_at(sha, SUFFIX), sha[:10]):
            if (t.rel, t.pointer) not in seen:
                seen.add((t.rel, t.pointer))
                outputs.append((t, None))
    return PushPlan(commits, outputs)

"""git integration: `dvlite install`, the hidden `dvlite hook ...` entries, `dvlite merge-driver`."""

from __future__ import annotations

import os
import sys

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo, locked

ROOT = typer.Option(None, "--root", help="The dvlite root, relative to the git work tree.")
_GIT_PATH_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def install(
    uninstall: bool = typer.Option(False, "--uninstall", help="Remove the hooks and the merge driver."),
    json_out: bool = JSON,
) -> None:
    """Install git hooks (post-checkout, post-merge, post-rewrite, pre-commit, pre-push) and the
    merge driver for .dvl and dvlite.lock."""
    from dvlite.gitside import hooks

    repo = find_repo()
    if uninstall:
        result = hooks.uninstall(repo)
        if json_out:
            return ui.emit_json(result)
        for h in result.hooks:
            ui.say({"restored": f"{h.name}: removed dvlite's hook; the hook it chained is back",
                    "removed": f"{h.name}: removed",
                    "absent": f"{h.name}: not installed",
                    "not dvlite's": f"{h.name}: not dvlite's hook, left alone"}[h.action])
        ui.say("merge driver unregistered")
        if result.gitattributes:
            ui.say(f"removed dvlite's lines from {os.path.relpath(result.gitattributes)}; commit that")
    else:
        if not sys.executable:
            from dvlite.errors import DvliteError

            raise DvliteError("cannot tell which Python runs dvlite (sys.executable is empty)")
        import dvlite

        result = hooks.install(repo, sys.executable, os.path.dirname(os.path.abspath(dvlite.__file__)))
        if json_out:
            return ui.emit_json(result)
        for h in result.hooks:
            ui.say({"installed": f"{h.name}: installed",
                    "updated": f"{h.name}: updated",
                    "unchanged": f"{h.name}: already installed",
                    "chained": f"{h.name}: installed; the existing hook is kept as "
                               f"{h.name}{hooks.CHAINED} and runs first"}[h.action])
        ui.say(f"hooks directory: {result.hooks_dir}")
        ui.say(f"merge driver registered for *.dvl and dvlite.lock (in {result.attributes}; "
               "every clone runs `dvlite install` once, nothing to commit)")


# --- hook entries ------------------------------------------------------------------------------

def _warn(message: str) -> None:
    ui.err.print(f"[yellow]warning:[/] {ui.escape(message)}")


def _hint(text: str) -> None:
    ui.err.print(f"[yellow]hint:[/] {ui.escape(text)}")


def _hook_repo(root: str | None):
    """The dvlite repo the hook serves, or None when this checkout has none (the hook does nothing)."""
    for var in _GIT_PATH_VARS:  # git may export these relative to the work tree; we run git elsewhere
        value = os.environ.get(var)
        if value and not os.path.isabs(value):
            os.environ[var] = os.path.abspath(value)
    from dvlite.repo import DIRNAME, Repo

    top = os.path.abspath(root or ".")
    if not os.path.isdir(os.path.join(top, DIRNAME)):
        return None
    repo = Repo(os.path.realpath(top))
    repo.check_config()
    return repo if repo.scm is not None else None


def post_checkout(
    prev: str | None = typer.Argument(None, help="The previous HEAD."),
    new: str | None = typer.Argument(None, help="The new HEAD."),
    flag: str | None = typer.Argument(None, help="1 for a branch checkout, 0 for a file checkout."),
    root: str | None = ROOT,
) -> None:
    """Restore the data the new HEAD names (after a branch checkout only)."""
    from dvlite.gitside import hooks

    if flag is None:  # the pre-commit framework passes these in its environment
        flag = os.environ.get("PRE_COMMIT_CHECKOUT_TYPE", "1")
    repo = _hook_repo(root)
    if repo is None or hooks.skip_checkout_reason(repo.scm.worktree, flag):
        return
    _follow_pointers(repo, "post-checkout")


def post_merge(
    squash: str | None = typer.Argument(None, help="1 for a squash merge (git's argument)."),
    root: str | None = ROOT,
) -> None:
    """Restore the data the merged pointers name (after `git merge` and `git pull`)."""
    repo = _hook_repo(root)
    if repo is None:
        return
    _follow_pointers(repo, "post-merge", fetch=True)


def post_rewrite(
    command: str | None = typer.Argument(None, help="amend or rebase (git's argument)."),
    root: str | None = ROOT,
) -> None:
    """Restore the data the rewritten HEAD names (after `git rebase`, `git pull --rebase`)."""
    from dvlite.gitside import hooks

    if command is None:  # the pre-commit framework passes it in its environment
        command = os.environ.get("PRE_COMMIT_REWRITE_COMMAND", "")
    repo = _hook_repo(root)
    if repo is None or hooks.skip_rewrite_reason(repo.scm.worktree, command):
        return
    _follow_pointers(repo, "post-rewrite", fetch=True)


def _follow_pointers(repo, hook: str, fetch: bool = False) -> None:
    """What `dvlite checkout` does, reported as a hook does: the data follows git. With
    `fetch` (after a pull, merge or rebase: commits that came from elsewhere), what the cache
    lacks is fetched from the default remote first, unless `hooks.fetch` is false."""
    from dvlite.data.checkout import checkout
    from dvlite.errors import ChangesWouldBeLostError

    try:
        with locked(repo, f"{hook} hook"):
            result = checkout(repo, [])
            if fetch and result.missing and _hook_fetches(repo):
                result = _fetch_and_checkout(repo, result, checkout)
    except ChangesWouldBeLostError as exc:
        ui.error(f"dvlite: the data was not checked out: {exc.message}")
        ui.listing(exc.paths, cap=20, console=ui.err)
        _hint("record them with `dvlite add`, or discard them with `dvlite checkout --force`")
        raise typer.Exit(1) from None
    if result.written or result.removed:
        ui.say(f"dvlite: data checked out ({len(result.written)} written, {len(result.removed)} removed)")
    if result.missing:
        _warn(f"dvlite: {len(result.missing)} tracked path(s) not in the cache, not checked out:")
        ui.listing([p for p, _ in result.missing], console=ui.err)
        _hint("run `dvlite pull` to fetch them from the remote")
    if result.corrupt:
        ui.error(f"dvlite: {len(result.corrupt)} cache object(s) corrupt, not checked out:")
        ui.listing([p for p, _ in result.corrupt], console=ui.err)
        _hint("run `dvlite fsck --repair`, then `dvlite pull`")
        raise typer.Exit(4)


def _hook_fetches(repo) -> bool:
    return (repo.config.get("hooks.fetch") or "true").strip().lower() not in ("false", "0", "no", "off")


def _fetch_and_checkout(repo, result, checkout):
    """Fetch what the checkout found missing, then check out again; a fetch that fails is a
    warning (the merge or rebase itself is done)."""
    from dvlite import sync
    from dvlite.errors import DvliteError

    targets = sorted({repo.abs(path) for path, _ in result.missing})
    try:
        fetched = sync.fetch(repo, targets)
    except DvliteError as exc:
        _warn(f"dvlite: could not fetch the data the new commits name: {exc.message}")
        return result
    if fetched.downloaded:
        ui.say(f"dvlite: fetched {fetched.downloaded} object(s), "
               f"{ui.human_size(fetched.downloaded_bytes)} from {fetched.remote}")
    return checkout(repo, [])


SKIP_CHECKS = "DVLITE_SKIP_CHECKS"


def _staged_data(repo) -> list[str]:
    """The tracked paths whose pointer (or dvlite.lock entry) the commit adds or changes."""
    from dvlite.formats.pointer import SUFFIX
    from dvlite.outputs import lock_outputs

    staged = repo.require_scm().staged([f"*{SUFFIX}", "dvlite.lock", "*/dvlite.lock"])
    paths = [p[:-len(SUFFIX)] for p in staged if p.endswith(SUFFIX)]
    for lock in (p for p in staged if p.rsplit("/", 1)[-1] == "dvlite.lock"):
        try:
            with open(repo.abs(lock), "rb") as f:
                paths += [t.rel for t in lock_outputs(f.read(), lock)]
        except FileNotFoundError:
            continue
    return paths


def _staged_contracts(repo) -> None:
    """The data contracts of what the commit records; a failing one refuses the commit."""
    from dvlite.pipelines.checks import staged_findings

    if os.environ.get(SKIP_CHECKS):
        _warn(f"dvlite: data contracts not run ({SKIP_CHECKS} is set)")
        return
    findings = staged_findings(repo, _staged_data(repo))
    failed = [f for f in findings if not f.passed]
    for f in findings:
        if f.passed:
            ui.note(f"dvlite: {f.text}")
    if failed:
        for f in failed:
            ui.error(f"dvlite: {f.text}")
        _hint(f"fix the data and `dvlite add` it again (`dvlite validate` shows every failing row), "
              f"or commit with {SKIP_CHECKS}=1 to skip the contracts")
        raise typer.Exit(1)


def pre_commit(root: str | None = ROOT) -> None:
    """Run the data contracts of what the commit records (a failure refuses it); warn (or with
    hooks.strict, fail) when tracked data changed since `dvlite add`."""
    from dvlite.data.status import Flag, status
    from dvlite.gitside import hooks

    repo = _hook_repo(root)
    if repo is None:
        return
    _staged_contracts(repo)
    changed = [r for r in status(repo, []) if Flag.MODIFIED in r.flags]
    if not changed:
        return
    strict = hooks.is_strict(repo)
    lines = []
    for r in changed:
        lines.append(r.path + ("/" if r.kind == "dir" else ""))
        lines += [f"    {c.kind}: {c.path}" for c in r.changes[:ui.CAP]]
        if len(r.changes) > ui.CAP:
            lines.append(f"    ... and {len(r.changes) - ui.CAP} more")
    message = f"{len(changed)} tracked path(s) changed since `dvlite add`; the commit does not record those changes:"
    hint = "record them with `dvlite add PATH` and `git add PATH.dvl`, or discard them with `dvlite checkout PATH`"
    if strict:
        ui.error(f"dvlite: {message}")
        ui.listing(lines, cap=len(lines), console=ui.err)
        _hint(hint + " (hooks.strict is true: the commit is refused)")
        raise typer.Exit(1)
    _warn(f"dvlite: {message}")
    ui.listing(lines, cap=len(lines), console=ui.err)
    _hint(hint + "; `dvlite config hooks.strict true` refuses such commits")


def pre_push(
    remote: str | None = typer.Argument(None, help="The git remote's name (or its URL)."),
    url: str | None = typer.Argument(None, help="The git remote's URL."),
    root: str | None = ROOT,
) -> None:
    """Push the data of the commits being pushed (read from stdin, as git gives them) to the default remote."""
    from dvlite.errors import DvliteError
    from dvlite.gitside import hooks
    from dvlite.remotes import transfer
    from dvlite.scm import ZERO_SHA

    repo = _hook_repo(root)
    if repo is None:
        return
    env = os.environ
    if env.get("PRE_COMMIT") == "1" and env.get("PRE_COMMIT_REMOTE_NAME"):  # the pre-commit framework
        tip = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_LOCAL_BRANCH")
        if not tip:
            return
        updates = [hooks.RefUpdate(env.get("PRE_COMMIT_LOCAL_BRANCH", ""), tip,
                                   env.get("PRE_COMMIT_REMOTE_BRANCH", ""),
                                   env.get("PRE_COMMIT_FROM_REF") or ZERO_SHA)]
        remote = env["PRE_COMMIT_REMOTE_NAME"]
    else:
        text = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        updates = hooks.parse_push_lines(text)
    plan = hooks.pushed_outputs(repo, updates, remote)
    if not plan.outputs:
        return
    try:
        with locked(repo, "pre-push hook"):
            result = transfer.push_outputs(repo, plan.outputs)
    except DvliteError as exc:
        exc.message = f"dvlite pre-push: {exc.message}"
        exc.hint = ((exc.hint + "; ") if exc.hint else "") + \
            "to push the commits without their data: `git push --no-verify`"
        raise
    what = f"the data of {len(plan.commits)} commit(s)"
    if result.uploaded:
        ui.say(f"dvlite: pushed {result.uploaded} object(s), {ui.human_size(result.uploaded_bytes)}, "
               f"{what} to {result.remote}")
    elif result.ok:
        ui.say(f"dvlite: {what} already on {result.remote}")
    if result.missing_locally:
        ui.error(f"dvlite: {len(result.missing_locally)} object(s) the pushed commits need are not in "
                 f"the local cache, so not on {result.remote}:")
        ui.listing(sorted({p for _, paths in result.missing_locally for p in paths}), console=ui.err)
        _hint("fetch them (`dvlite fetch --all-commits`) and push again, or push without data: "
              "`git push --no-verify`")
    for digest, reason in result.failed:
        ui.error(f"dvlite: upload failed: {digest}: {reason}")
    if not result.ok:
        raise typer.Exit(1)


# --- merge driver -------------------------------------------------------------------------------

def merge_driver(
    ancestor: str = typer.Argument(..., help="The common ancestor's version (git's %O)."),
    ours: str = typer.Argument(..., help="Our version; the result is written here (git's %A)."),
    theirs: str = typer.Argument(..., help="Their version (git's %B)."),
    path: str = typer.Argument(..., help="The file's path in the repository (git's %P)."),
) -> None:
    """git merge driver for .dvl pointers and dvlite.lock (registered by `dvlite install`)."""
    from dvlite.gitside import driver
    from dvlite.repo import Repo

    def open_repo(start: str):
        repo = Repo.find(start)
        repo.check_config()
        return repo

    result = driver.run_driver(ancestor, ours, theirs, path, open_repo, driver.fetcher)
    if result.stale_stages:
        ui.err.print(ui.escape(
            f"dvlite: {path}: stage(s) changed on both branches keep our entry: "
            f"{', '.join(result.stale_stages)}; run `dvlite repro` to bring them up to date"))
    if result.reason is not None:
        ui.error(f"dvlite: cannot merge {path}: {result.reason}; it keeps our version",
                 "choose a side with `git checkout --theirs/--ours`, or re-add the data; then `git add` it")
        raise typer.Exit(1)
    if result.conflicts:
        ui.error(f"dvlite: {path}: {len(result.conflicts)} file(s) changed differently on both branches "
                 "(the merged pointer has our version of them):")
        ui.listing(result.conflicts, cap=50, console=ui.err)
        _hint("`dvlite checkout`, fix these files, `dvlite add` the directory, then `git add` the pointer")
        raise typer.Exit(1)
    if result.merged_files:
        ui.err.print(ui.escape(f"dvlite: merged {path} file by file ({result.merged_files} files); "
                               "the hooks of `dvlite install` check the data out when git is done "
                               "(else run `dvlite checkout`)"))


def register(app: typer.Typer) -> None:
    hook_app = typer.Typer(help="Entry points of the git hooks `dvlite install` writes.", no_args_is_help=True)
    hook_app.command("post-checkout")(post_checkout)
    hook_app.command("post-merge")(post_merge)
    hook_app.command("post-rewrite")(post_rewrite)
    hook_app.command("pre-commit")(pre_commit)
    hook_app.command("pre-push")(pre_push)
    app.command()(install)
    app.command("merge-driver")(merge_driver)
    app.add_typer(hook_app, name="hook", hidden=True)

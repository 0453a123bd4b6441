"""Data from other repositories and URLs: `get`, `import`, `update`, `list`, `import-url`,
`get-url`, `ls-url`."""

from __future__ import annotations

import typer

from dvlite.cli import output as ui
from dvlite.cli.common import JSON, find_repo, locked

REV = typer.Option(None, "--rev", help="Branch, tag or commit of the source (default: its HEAD).")
URL = typer.Argument(..., metavar="REPO_URL", help="A dvlite git repo: a path, file:// or git URL.")
PATH = typer.Argument(..., help="Tracked path in that repo (a file, a directory, or inside one).")
TARGETS = typer.Argument(None, help="Imported paths (default: every import).")
FS_CONFIG = typer.Option(None, "--fs-config", metavar="KEY=VALUE",
                         help="An option for the URL's filesystem (e.g. endpoint_url=...); repeatable.")
DATA_URL = typer.Argument(..., metavar="URL", help="A path, file://, s3://, gs://, http(s)://, ... URL.")


def _json(results) -> None:
    """Imports as JSON, a URL source's version marker as a mapping."""
    from dvlite.formats.pointer import UrlSource

    docs = ui.to_plain(results)
    for doc, r in zip(docs if isinstance(docs, list) else [docs],
                      results if isinstance(results, list) else [results]):
        if isinstance(r.source, UrlSource):
            doc["source"]["version"] = r.source.marker
    ui.emit_json(docs)


def _fs_options(pairs: list[str] | None) -> dict:
    from dvlite.errors import BadInputError
    from dvlite.sources.listing import fs_options

    flat = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadInputError(f"--fs-config {pair!r}: expected KEY=VALUE")
        flat[key.strip()] = value
    return fs_options(flat)


JOBS = typer.Option(None, "-j", "--jobs", min=1, max=256,
                    help="Parallel requests to the source's remote (default per backend).")


def get(
    url: str = URL,
    path: str = PATH,
    rev: str | None = REV,
    out: str | None = typer.Option(None, "-o", "--out", help="Where to write (default: the name, here)."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="A remote of the source repo."),
    jobs: int | None = JOBS,
    json_out: bool = JSON,
) -> None:
    """Download a tracked path from another dvlite repository (no repository needed here)."""
    import contextlib

    from dvlite.errors import NotARepoError
    from dvlite.sources import repos as external

    try:
        repo = find_repo()
    except NotARepoError:
        repo = None
    guard = locked(repo, "get") if repo is not None else contextlib.nullcontext()
    with guard:
        result = external.get(repo, url, path, rev, out, remote, jobs)
    if json_out:
        return ui.emit_json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    ui.say(f"{result.out}: {what}{ui.human_size(result.size)} from {result.url} "
           f"at {result.rev} ({result.commit[:12]})")


def import_cmd(
    url: str = URL,
    path: str = PATH,
    rev: str | None = REV,
    out: str | None = typer.Option(None, "-o", "--out", help="Where to put it (default: the name, here)."),
    jobs: int | None = JOBS,
    json_out: bool = JSON,
) -> None:
    """Like get, and write OUT.dvl recording the source URL, revision and commit."""
    from dvlite.sources import repos as external

    repo = find_repo()
    with locked(repo, "import"):
        result = external.import_(repo, url, path, rev, out, jobs=jobs)
    if json_out:
        return ui.emit_json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    src = result.source
    ui.say(f"imported {result.path}: {what}{ui.human_size(result.size)} from {src.url} "
           f"at {src.rev} ({src.rev_lock[:12]})")
    ui.git_hint([p for p in (result.pointer_path, result.gitignore) if p])


def update(
    targets: list[str] = TARGETS,
    rev: str | None = typer.Option(None, "--rev", help="Move repository imports to this revision "
                                   "(default: the recorded)."),
    to_remote: bool = typer.Option(False, "--to-remote", help="URL imports: stream changed data "
                                   "to the remote instead of the cache and workspace."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="The remote of --to-remote."),
    fs_config: list[str] | None = FS_CONFIG,
    jobs: int | None = JOBS,
    json_out: bool = JSON,
) -> None:
    """Bring imports up to date: repository imports to the newest commit of their revision (or
    --rev), URL imports downloaded again when their version marker changed."""
    from dvlite.formats.pointer import UrlSource
    from dvlite.sources import urls

    options = _fs_options(fs_config)
    repo = find_repo()
    with locked(repo, "update"):
        results = urls.update(repo, targets or [], rev, remote, to_remote, options, jobs)
    if json_out:
        return _json(results)
    if not results:
        ui.say("No imports to update. Make one with `dvlite import REPO_URL PATH` or "
               "`dvlite import-url URL`.")
        return
    for r in results:
        src = r.source
        state = "updated" if r.changed else "up to date"
        where = (src.url if isinstance(src, UrlSource)
                 else f"{src.url} at {src.rev}, {src.rev_lock[:12]}")
        ui.say(f"{r.path}: {state} ({where})")
    ui.git_hint([r.pointer_path for r in results if r.changed])


def import_url(
    url: str = DATA_URL,
    out: str | None = typer.Argument(None, help="Where to put it (default: the URL's last name, here)."),
    to_remote: bool = typer.Option(False, "--to-remote", help="Stream the data straight to the "
                                   "remote; keep no copy here (`dvlite pull` brings it)."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="The remote of --to-remote."),
    fs_config: list[str] | None = FS_CONFIG,
    json_out: bool = JSON,
) -> None:
    """Track a file or directory from a URL: OUT.dvl records the URL and its version marker."""
    from dvlite.sources import urls

    options = _fs_options(fs_config)
    repo = find_repo()
    with locked(repo, "import-url"):
        result = urls.import_url(repo, url, out, to_remote, remote, options)
    if json_out:
        return _json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    where = " to the remote (not checked out here)" if to_remote else ""
    ui.say(f"imported {result.path}: {what}{ui.human_size(result.size)} "
           f"from {result.source.url}{where}")
    ui.git_hint([p for p in (result.pointer_path, result.gitignore) if p])


def get_url(
    url: str = DATA_URL,
    out: str | None = typer.Argument(None, help="Where to write (default: the URL's last name, here)."),
    force: bool = typer.Option(False, "-f", "--force", help="Replace OUT if it exists."),
    fs_config: list[str] | None = FS_CONFIG,
    json_out: bool = JSON,
) -> None:
    """Download a file or directory from a URL (no repository needed, nothing tracked)."""
    from dvlite.fsutil import tune_allocator
    from dvlite.sources import urls

    tune_allocator()  # moves data without the repository lock (see common.locked)
    result = urls.get_url(url, out, force, _fs_options(fs_config))
    if json_out:
        return ui.emit_json(result)
    what = f"{result.files} files, " if result.kind == "dir" else ""
    ui.say(f"{result.out}: {what}{ui.human_size(result.size)} from {result.url}")


def ls_url(
    url: str = DATA_URL,
    recursive: bool = typer.Option(False, "-R", "--recursive", help="Every file below the URL."),
    fs_config: list[str] | None = FS_CONFIG,
    json_out: bool = JSON,
) -> None:
    """List what a URL holds: name, size and type."""
    from dvlite.errors import one_line
    from dvlite.sources import listing

    entries = listing.ls_url(url, recursive, _fs_options(fs_config))
    if json_out:
        return ui.emit_json(entries)
    rows = [[one_line(e.name) + ("/" if e.type == "directory" else ""),
             "" if e.size is None else ui.human_size(e.size), e.type] for e in entries]
    ui.table(["name", "size", "type"], rows)


def list_cmd(
    url: str = URL,
    path: str | None = typer.Argument(None, help="Limit to this path in that repo."),
    rev: str | None = REV,
    recursive: bool = typer.Option(False, "-R", "--recursive",
                                   help="Also the files inside tracked directories."),
    remote: str | None = typer.Option(None, "-r", "--remote", help="A remote of the source repo "
                                      "(for the manifests of -R)."),
    json_out: bool = JSON,
) -> None:
    """List what another dvlite (or DVC) repository tracks, without fetching its data."""
    from dvlite.errors import one_line
    from dvlite.sources.listing import list_repo

    items = list_repo(url, path, rev, recursive, remote)
    if json_out:
        return ui.emit_json(items)
    rows = [[one_line(i.path) + ("/" if i.kind == "dir" else ""),
             "" if i.size is None else ui.human_size(i.size),
             str(i.files) if i.kind == "dir" and i.files is not None else ""] for i in items]
    ui.table(["path", "size", "files"], rows)


def register(app: typer.Typer) -> None:
    app.command()(get)
    app.command(name="import")(import_cmd)
    app.command()(update)
    app.command(name="list")(list_cmd)
    app.command(name="import-url")(import_url)
    app.command(name="get-url")(get_url)
    app.command(name="ls-url")(ls_url)

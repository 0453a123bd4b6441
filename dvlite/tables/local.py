"""Tables in this repository's workspace and cache: the file on disk (its digest from the
stat cache), an object of the cache, the statistics cache, the spill directory, and the
contracts of dvlite.yaml's `checks:` section.

Below `tables.versions` (which reads tables at git revisions), so `repro` can run
contracts without reaching the revision machinery.
"""

from __future__ import annotations

import os

from dvlite.errors import BadInputError, FormatError
from dvlite.paths import why_unsafe
from dvlite.tables.contracts import Contract, Located, load_located, parse_checks
from dvlite.tables.formats import TableSource, detect_format
from dvlite.tables.stats import StatsCache

WORKSPACE = "workspace"
POINTERS_LABEL = "pointers"
CHECKS_FILE = "dvlite.yaml"
CONTRACT_FILE_LIMIT = 2 << 20


def stats_cache(repo) -> StatsCache:
    """Statistics are derived data: they live under .dvlite/tmp/, safe to delete."""
    return StatsCache(os.path.join(repo.dvlite_dir, "tmp", "table-stats"))


def workdir(repo) -> str:
    """Where row diffs and uniqueness checks spill parts of big tables (removed after use)."""
    return os.path.join(repo.dvlite_dir, "tmp", "tables")


def label(rel: str, rev: str | None) -> str:
    return f"{rel}@{POINTERS_LABEL if rev is None else rev}"


def workspace_source(repo, rel: str, fmt: str | None = None) -> TableSource:
    """The file on disk now; its digest comes from the stat cache (hashed if unknown)."""
    from dvlite.workspace.scan import FileStat, stat_single

    path = repo.abs(rel)
    if not os.path.isfile(path):
        raise BadInputError(f"{rel}: no such file in the workspace",
                            hint="pull it, or name a revision with --rev")
    fmt = detect_format(rel, fmt)
    st = stat_single(path, repo.odb.objects_dir)
    digest = repo.hasher().digests([FileStat(rel, path, st)], store=False)[rel]
    repo.state.save()
    return TableSource.from_path(path, fmt, label(rel, WORKSPACE), digest)


def cached_source(repo, rel: str, hexdigest: str, name: str, fmt: str | None = None) -> TableSource | None:
    """An object of the local cache read as the table `rel` (None when the cache lacks it)."""
    if not repo.odb.contains(hexdigest):
        return None
    return TableSource(name, detect_format(rel, fmt), lambda: repo.odb.open_object(hexdigest),
                       None, hexdigest, lambda: repo.odb.verify(hexdigest))


# --- contracts --------------------------------------------------------------------------

def checks_section(repo) -> Located | None:
    """The `checks:` value of the root dvlite.yaml, with line numbers for error messages
    (the stage parser keeps the section as written; contracts are parsed here)."""
    try:
        with open(repo.abs(CHECKS_FILE), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    doc = load_located(data, CHECKS_FILE)
    if not isinstance(doc.value, dict):
        return None
    return doc.value.get("checks")


def _contract_file(repo, ref: str, at: Located) -> tuple[bytes, str]:
    problem = why_unsafe(ref)
    if problem:
        raise FormatError(f"{CHECKS_FILE}, line {at.line}: contract file {ref!r}: {problem}",
                          hint="name a file inside the repository, relative to its root")
    try:
        with open(repo.abs(ref), "rb") as f:
            data = f.read(CONTRACT_FILE_LIMIT + 1)
    except OSError as exc:
        raise FormatError(f"{CHECKS_FILE}, line {at.line}: cannot read contract file {ref} "
                          f"({exc.strerror})") from None
    if len(data) > CONTRACT_FILE_LIMIT:
        raise FormatError(f"{CHECKS_FILE}, line {at.line}: contract file {ref} is larger than "
                          f"{CONTRACT_FILE_LIMIT >> 20} MiB")
    return data, ref


def read_checks(repo) -> dict[str, Contract]:
    """Tracked path -> its contract, from dvlite.yaml (inline, or `{file: PATH}`)."""
    section = checks_section(repo)
    if section is None:
        return {}
    contracts = parse_checks(section, CHECKS_FILE, lambda ref, at: _contract_file(repo, ref, at))
    for path in contracts:
        problem = why_unsafe(path)
        if problem:
            raise FormatError(f"{CHECKS_FILE}: checks: {path!r} is not a path inside the "
                              f"repository ({problem})")
    return contracts

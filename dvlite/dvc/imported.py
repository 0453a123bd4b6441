"""Data a commit from before the switch imported with `dvc import`: DVC does not push it to
the importing repository's remote, so its objects come from the source repository, cloned at
the recorded commit: its DVC cache and workspace when it is a local directory, else the DVC
remote its `.dvc/config` names there. Verified by md5 like every DVC object."""

from __future__ import annotations

import os
import tempfile

from dvlite import scm
from dvlite.dvc import dvcconfig, settings
from dvlite.dvc.cache import LocalStore, open_remote
from dvlite.dvc.legacy import CONFIG, BroughtIn, import_into
from dvlite.dvc.objects import Importer
from dvlite.dvc.tracked import LegacyOut
from dvlite.errors import DvliteError
from dvlite.repo import Repo
from dvlite.sources.repos import clone, local_root
from dvlite.storage.md5index import Md5Index

NO_CONFIG = dvcconfig.DvcConfig({}, {})


def _from_source(repo: Repo, url: str, rev: str | None, outs: list[LegacyOut], workdir: str,
                 callback) -> BroughtIn:
    located = url if "://" in url or os.path.isabs(url) else os.path.join(repo.root, url)
    git_dir, _, commit = clone(located, rev, workdir)
    origin = f"{url}: {CONFIG}"
    shared = dvcconfig.parse(scm.blob_at(git_dir, commit, CONFIG), origin)
    keys = settings.convert(shared, NO_CONFIG, origin, origin)
    root = local_root(located) or workdir  # a remote's relative path means something only locally
    cache = LocalStore(os.path.join(root, dvcconfig.cache_dir(shared, origin)), f"the DVC cache of {url}")
    importer = Importer(repo.odb, root, cache, lambda: open_remote(root, shared, keys), repo.work_tmp,
                        callback, index=Md5Index(repo.cache_dir))
    return import_into(repo, importer, outs, inside_source=True)


def bring_in_imports(repo: Repo, outs: list[LegacyOut], callback=None) -> BroughtIn:
    """The objects of `outs` that `dvc import` brought from other repositories."""
    from fsspec.callbacks import NoOpCallback

    result = BroughtIn()
    groups: dict[tuple[str, str | None], list[LegacyOut]] = {}
    for o in outs:
        if o.source is not None:
            groups.setdefault((o.source.url, o.source.rev_lock or o.source.rev), []).append(o)
        else:
            result.missing.append((o.rel, f"{o.name} ({o.origin})"))
    with tempfile.TemporaryDirectory(prefix="dvc-import-", dir=repo.work_tmp) as workdir:
        for (url, rev), group in groups.items():
            try:
                got = _from_source(repo, url, rev, group, workdir, callback or NoOpCallback())
            except DvliteError as exc:
                result.missing += [(o.rel, f"{o.name} ({o.origin}; from {url}: {exc.message})")
                                   for o in group]
                continue
            result.linked += got.linked
            result.missing += got.missing
    return result


def bring_in_all(repo: Repo, outs: list[LegacyOut], rev: str | None = None, callback=None) -> BroughtIn:
    """`bring_in` with the DVC remote, then the sources of `dvc import`ed data for the rest."""
    from dvlite.dvc.legacy import bring_in

    result = bring_in(repo, outs, rev, True, callback)
    lacking = {rel for rel, _ in result.missing}
    imported = [o for o in outs if o.rel in lacking and o.source is not None]
    if not imported:
        return result
    extra = bring_in_imports(repo, imported, callback)
    found = set(extra.linked)
    still = [m for m in result.missing if m[0] not in found and m[0] not in {o.rel for o in imported}]
    return BroughtIn(result.linked + extra.linked, still + extra.missing)

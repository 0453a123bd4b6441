"""Commits from before the switch: bringing the objects their DVC files name into the cache.

What a `.dvc` file or `dvc.lock` tracks is named by DVC's md5. Its bytes are looked for in
the DVC cache, then the workspace, then (when asked: `pull`, `fetch`, reads at a revision)
the DVC remote that `.dvc/config` names, verified by md5 and stored by XXH3-128; the md5
index remembers the link, so the next checkout of that commit is an ordinary one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dvlite.dvc import dvcconfig, settings
from dvlite.dvc.cache import LocalStore, open_remote
from dvlite.dvc.objects import Importer, Missing
from dvlite.dvc.tracked import LegacyOut, resolve
from dvlite.fsutil import read_limited
from dvlite.outputs import any_dvc_files, dvlite_files, legacy_at, legacy_in, own_tracked
from dvlite.repo import Repo
from dvlite.storage.md5index import Md5Index

CONFIG, CONFIG_LOCAL = ".dvc/config", ".dvc/config.local"
MAX_CONFIG = 1 << 20


@dataclass
class BroughtIn:
    linked: list[str] = field(default_factory=list)  # paths whose objects are now in the cache
    missing: list[tuple[str, str]] = field(default_factory=list)  # (path, "md5 ... (origin)")

    @property
    def ok(self) -> bool:
        return not self.missing


def unlinked(repo: Repo, rev: str | None = None) -> list[LegacyOut]:
    """What DVC's files track (in the workspace, or at `rev`) that no object is linked to yet."""
    if rev is None:
        files = dvlite_files(repo)
        if not any_dvc_files(files):
            return []
        outs = legacy_in(repo, files, own_tracked(repo, files))
    else:
        from dvlite.outputs import outputs_at

        scm = repo.require_scm()
        outs = legacy_at(repo, scm, rev, rev, outputs_at(scm, rev, rev))
    if not outs:
        return []
    return resolve(Md5Index(repo.cache_dir), outs)[1]


def _read(path: str) -> bytes | None:
    try:
        return read_limited(path, MAX_CONFIG, os.path.basename(path))
    except FileNotFoundError:
        return None


def _config(repo: Repo, rev: str | None) -> tuple[dvcconfig.DvcConfig, settings.Settings]:
    """DVC's config as the commit has it (`.dvc/config` at `rev`), with the workspace's
    untracked `config.local` (where credentials live) over it."""
    if rev is None:
        shared_data = _read(repo.abs(CONFIG))
    else:
        shared_data = repo.require_scm().read_at(rev, [CONFIG], MAX_CONFIG).get(CONFIG)
    shared = dvcconfig.parse(shared_data, CONFIG)
    local = dvcconfig.parse(_read(repo.abs(CONFIG_LOCAL)), CONFIG_LOCAL)
    return dvcconfig.merged(shared, local), settings.convert(shared, local, CONFIG, CONFIG_LOCAL)


def bring_in(repo: Repo, outs: list[LegacyOut], rev: str | None = None, use_remote: bool = False,
             callback=None) -> BroughtIn:
    """Store the objects of `outs` in the cache (verified by md5) and link them in the md5
    index; the DVC remote is asked only with `use_remote`. Call it holding the repository lock."""
    from fsspec.callbacks import NoOpCallback

    if not outs:
        return BroughtIn()
    config, keys = _config(repo, rev)
    cache = LocalStore(repo.abs(dvcconfig.cache_dir(config, CONFIG)), "the DVC cache")
    importer = Importer(repo.odb, repo.root, cache,
                        (lambda: open_remote(repo.root, config, keys)) if use_remote else (lambda: None),
                        repo.work_tmp, callback or NoOpCallback(), index=Md5Index(repo.cache_dir))
    return import_into(repo, importer, outs)


def import_into(repo: Repo, importer: Importer, outs: list[LegacyOut],
                inside_source: bool = False) -> BroughtIn:
    """Each of `outs` measured through `importer` (stored, verified, linked), in one batch;
    with `inside_source`, the importer's workspace is the imported-from repository."""
    result = BroughtIn()
    with repo.odb.batch():
        for o in outs:
            where = o.source.path if inside_source and o.source is not None else o.rel
            try:
                measured = importer.measure(o.md5, o.is_dir, o.hash_name, where, True, o.origin)
            except Missing as exc:
                result.missing.append((o.rel, f"{exc} ({o.origin})"))
                continue
            if measured is None:
                result.missing.append((o.rel, f"{o.name} ({o.origin})"))
            else:
                result.linked.append(o.rel)
    importer.finish()
    return result

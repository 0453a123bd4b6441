"""push, fetch and pull as commands: the data (remotes/transfer.py) and, when asked, the run
cache's records (pipelines/runcache.py), in that order: records go up after the objects they
restore, and come down first, because they say which objects to fetch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dvlite.data.reach import Revisions
from dvlite.pipelines import runcache
from dvlite.remotes import transfer
from dvlite.remotes.transfer import FetchResult, PushResult
from dvlite.repo import Repo

if TYPE_CHECKING:  # what only fetch and pull need is imported there: a push starts sooner
    from dvlite.data.checkout import CheckoutResult
    from dvlite.dvc.legacy import BroughtIn


def push(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
         revs: Revisions = Revisions(), callback=None, run_cache: bool = False) -> PushResult:
    outputs = transfer.outputs_for(repo, targets, revs)
    if not run_cache:
        return transfer.push_outputs(repo, outputs, remote_name, jobs, callback)
    remote = transfer.connect(repo, remote_name)
    outputs += [(t, None) for t in runcache.outputs(repo)]
    result = transfer.push_outputs(repo, outputs, remote_name, jobs, callback, remote=remote)
    if result.ok:  # records go up after the objects they restore
        result.run_records = runcache.push_records(repo, remote)
    return result


def bring_in_legacy(repo: Repo, targets: list[str], use_remote: bool, callback=None) -> BroughtIn:
    """A commit from before the switch: what its DVC files track, into the cache (from the DVC
    cache, the workspace and, with `use_remote`, the DVC remote), linked by md5."""
    from dvlite.dvc.imported import bring_in_all
    from dvlite.dvc.legacy import bring_in, unlinked
    from dvlite.outputs import to_rel

    outs = unlinked(repo)
    if targets:
        rels = [to_rel(repo, t) for t in targets]
        outs = [o for o in outs if any(not r or o.rel == r or o.rel.startswith(r + "/")
                                       or r.startswith(o.rel + "/") for r in rels)]
    if use_remote:
        return bring_in_all(repo, outs, None, callback)
    return bring_in(repo, outs, None, False, callback)


def fetch(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
          revs: Revisions = Revisions(), callback=None, run_cache: bool = False) -> FetchResult:
    legacy = bring_in_legacy(repo, targets, True, callback)
    outputs = transfer.outputs_for(repo, targets, revs)
    if not run_cache:
        result = transfer.fetch_outputs(repo, outputs, remote_name, jobs, callback)
    else:
        remote = transfer.connect(repo, remote_name)
        records = runcache.pull_records(repo, remote)  # first: they say which outs to fetch
        outputs += [(t, None) for t in runcache.outputs(repo)]
        result = transfer.fetch_outputs(repo, outputs, remote_name, jobs, callback, remote=remote)
        result.run_records = records
    result.missing_on_remote += [(what, [path]) for path, what in legacy.missing]
    return result


def pull(repo: Repo, targets: list[str], remote_name: str | None = None, jobs: int | None = None,
         callback=None, run_cache: bool = False, force: bool = False
         ) -> tuple[FetchResult, CheckoutResult]:
    from dvlite.data.checkout import checkout

    fetched = fetch(repo, targets, remote_name, jobs, Revisions(), callback, run_cache)
    return fetched, checkout(repo, targets, force=force)

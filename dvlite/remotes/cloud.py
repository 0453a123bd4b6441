"""A remote compared with the cache (`status --cloud`) and collected (`gc --cloud`)."""

from __future__ import annotations

from dataclasses import dataclass

from dvlite.data.reach import Revisions, kept_outputs, used_objects
from dvlite.errors import IntegrityError
from dvlite.outputs import load_tracked, select
from dvlite.remotes import chunked, inventory
from dvlite.remotes.backend import Remote
from dvlite.remotes.config import choose
from dvlite.remotes.errors import run_jobs
from dvlite.remotes.transfer import Source, local_manifest, needs_of
from dvlite.repo import Repo
from dvlite.storage.layout import object_key


@dataclass(frozen=True)
class CloudStatus:
    path: str
    objects: int
    on_remote: int
    local: int
    state: str  # in sync | missing on remote | missing locally | missing everywhere | unknown


def cloud_status(repo: Repo, targets: list[str], remote_name: str | None = None,
                 jobs: int | None = None) -> tuple[str, list[CloudStatus]]:
    remote = Remote(choose(repo.config, remote_name))
    jobs = jobs or remote.default_jobs
    chosen = select(repo, load_tracked(repo), targets)
    per_output: list[tuple[str, set[str]]] = []
    read = local_manifest(repo.odb)
    for t, inner in chosen:
        needs = needs_of([(t, inner)], read)
        per_output.append((t.rel, set(needs.files) | set(needs.manifests)
                           | ({t.pointer.digest.hex} if needs.unreadable else set())))
    everything = set().union(*(s for _, s in per_output)) if per_output else set()
    remote.read_layout()
    on_remote = (inventory.inventory(remote, everything, repo.index_dir, jobs).holding(everything)
                 if everything else set())
    local = everything - repo.odb.missing(everything)
    out = []
    for path, digests in per_output:
        r, lo = len(digests & on_remote), len(digests & local)
        if r == lo == len(digests):
            state = "in sync"
        elif r == len(digests):
            state = "missing locally"
        elif lo == len(digests):
            state = "missing on remote"
        elif not (digests & (on_remote | local)) or digests - (on_remote | local):
            state = "missing everywhere"
        else:
            state = "partly on each side"
        out.append(CloudStatus(path, len(digests), r, lo, state))
    return remote.name, out


@dataclass(frozen=True)
class CloudGcResult:
    remote: str
    unused: list[str]  # objects no kept revision needs, loose or packed
    unused_bytes: int
    repacked: list[str]  # packs rewritten without their unused objects
    dropped: list[str]  # packs holding only unused objects
    temp_files: list[str]
    removed: bool


def cloud_gc(repo: Repo, revs: Revisions, remote_name: str | None, force: bool,
             jobs: int | None = None) -> CloudGcResult:
    remote = Remote(choose(repo.config, remote_name))
    remote.require_writable()
    remote.read_layout()
    source = Source(repo.odb, remote, repo.index_dir, jobs)
    outputs = kept_outputs(repo, revs)
    for _where, t in outputs:  # manifests we lack locally are read from the remote
        digest = t.pointer.digest.hex
        if t.pointer.kind == "dir" and not repo.odb.contains(digest):
            try:
                source.download(digest, 0)
            except (FileNotFoundError, IntegrityError):
                pass
    used = used_objects(repo, outputs)
    if used.unsafe:
        raise used.unsafe[0]
    if used.unreadable:
        path, digest = used.unreadable[0]
        raise IntegrityError(
            f"cannot read the manifest of {path} ({digest}) locally or on the remote; "
            "gc would not know what it keeps",
            hint="fetch or re-add that data first",
        )
    keep = set(used.users)
    inv = source.inv
    loose = inventory.loose_sizes(remote)
    unused = {d: size for d, size in loose.items() if d not in keep}
    plan = inventory.plan_repack(inv, keep)
    for pack in plan.dropped + plan.repacked:
        for digest, (_offset, length) in inv.indexes[pack].entries.items():
            if digest not in keep:
                unused[digest] = length
    chunk_plan = chunked.plan_gc(remote, keep)
    unused.update({d: 0 for d in chunk_plan.lists})  # sizes are in the chunk lists: not read
    temps = remote.temp_files()
    if force:
        chunked.collect(remote, chunk_plan, source.jobs)
        for pack in plan.repacked:  # the replacement is complete before the old pack goes
            inventory.repack(remote, inv.indexes[pack], keep, repo.index_dir)
        for pack in plan.repacked + plan.dropped:
            inventory.remove_pack(remote, pack)
        list(run_jobs(source.jobs, lambda d: remote.delete(object_key(d)), sorted(set(loose) - keep)))
        list(run_jobs(source.jobs, remote.delete_temp, temps))
    return CloudGcResult(remote.name, sorted(unused), sum(unused.values()), plan.repacked,
                         plan.dropped, temps, force)

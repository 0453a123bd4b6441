"""`exp push` / `exp pull`: experiment refs through git, their data through the dvlite remote.
Data goes up before the refs that name it, and comes down after them."""

from __future__ import annotations

from dataclasses import dataclass, field

from dvlite import scm as scm_mod
from dvlite.errors import BadInputError
from dvlite.experiments import refs
from dvlite.outputs import outputs_at
from dvlite.remotes import transfer
from dvlite.remotes.transfer import FetchResult, PushResult
from dvlite.repo import Repo


@dataclass
class ShareResult:
    experiments: list[str] = field(default_factory=list)
    data: PushResult | FetchResult | None = None  # None when the experiments need no data


def _chosen(found: list[refs.ExpRef], names: list[str]) -> list[refs.ExpRef]:
    if not names:
        return found
    missing = [n for n in names if not any(e.name == n for e in found)]
    if missing:
        raise BadInputError(f"no experiment named {missing[0]!r}", hint="see `dvlite exp list -A`")
    return [e for e in found if e.name in names]


def _outputs(repo: Repo, exps: list[refs.ExpRef]):
    scm = repo.require_scm()
    seen, out = set(), []
    for e in exps:
        for t in outputs_at(scm, e.commit, e.name):
            if (t.rel, t.pointer) not in seen:
                seen.add((t.rel, t.pointer))
                out.append((t, None))
    return out


def push(repo: Repo, git_remote: str, names: list[str], remote_name: str | None = None,
         jobs: int | None = None) -> ShareResult:
    """Push the experiments (all, or those named) and the data they name."""
    exps = _chosen(refs.list_refs(repo), names)
    result = ShareResult([e.name for e in exps])
    outputs = _outputs(repo, exps)
    if outputs:
        result.data = transfer.push_outputs(repo, outputs, remote_name, jobs)
        if not result.data.ok:
            return result  # no ref goes up whose data did not
    scm_mod.push_refs(refs.worktree(repo), git_remote, [e.ref for e in exps])
    return result


def pull(repo: Repo, git_remote: str, names: list[str], remote_name: str | None = None,
         jobs: int | None = None) -> ShareResult:
    """Fetch the experiments of `git_remote` (all, or those named) and their data."""
    worktree = refs.worktree(repo)
    there = []
    for ref, sha in scm_mod.remote_refs(worktree, git_remote, refs.PREFIX).items():
        parsed = refs.parse_ref(ref)
        if parsed is not None:
            there.append(refs.ExpRef(parsed[1], parsed[0], sha, 0))
    exps = _chosen(there, names)
    scm_mod.fetch_refs(worktree, git_remote, [e.ref for e in exps])
    result = ShareResult([e.name for e in exps])
    outputs = _outputs(repo, exps)
    if outputs:
        result.data = transfer.fetch_outputs(repo, outputs, remote_name, jobs)
    return result

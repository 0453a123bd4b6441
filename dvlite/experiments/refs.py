"""Experiment refs: `refs/exps/<base[:2]>/<base[2:]>/<name>`, one commit each, whose parent is the
commit the experiment started from (its base). Names are unique per base commit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from dvlite import scm as scm_mod
from dvlite.errors import BadInputError
from dvlite.repo import Repo

PREFIX = "refs/exps/"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class ExpRef:
    name: str
    base: str  # the commit the experiment started from
    commit: str  # the experiment's commit
    created: int  # unix time of the commit
    subject: str = ""

    @property
    def ref(self) -> str:
        return ref_of(self.base, self.name)


def ref_of(base: str, name: str) -> str:
    return f"{PREFIX}{base[:2]}/{base[2:]}/{name}"


def parse_ref(ref: str) -> tuple[str, str] | None:
    """(base, name) of an experiment ref; None for any other ref."""
    parts = ref.removeprefix(PREFIX).split("/")
    if not ref.startswith(PREFIX) or len(parts) != 3:
        return None
    base = parts[0] + parts[1]
    return (base, parts[2]) if _SHA.match(base) and _NAME.match(parts[2]) else None


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name or name.endswith(".lock"):
        raise BadInputError(f"{name!r} is not a valid experiment name",
                            hint="use letters, digits, '_', '-' and '.' (at most 100), "
                                 "starting with a letter or digit")
    return name


def worktree(repo: Repo) -> str:
    return repo.require_scm().worktree


def head(repo: Repo) -> str:
    """The commit experiments start from now: HEAD."""
    sha = scm_mod.head_commit(worktree(repo))
    if sha is None:
        raise BadInputError("experiments need a commit to start from, and HEAD has none",
                            hint="commit dvlite.yaml and your params first")
    return sha


def list_refs(repo: Repo, base: str | None = None) -> list[ExpRef]:
    """Every experiment (of `base` only, when given), oldest first."""
    prefix = PREFIX if base is None else f"{PREFIX}{base[:2]}/{base[2:]}/"
    found = []
    for ref, sha, when, subject in scm_mod.refs_under(worktree(repo), prefix):
        parsed = parse_ref(ref)
        if parsed is not None:
            found.append(ExpRef(parsed[1], parsed[0], sha, when, subject))
    return sorted(found, key=lambda e: (e.created, e.name))


def new_name(taken: set[str]) -> str:
    """A generated name that is not in `taken`: `exp-` and five hex digits."""
    while True:
        name = f"exp-{secrets.token_hex(3)[:5]}"
        if name not in taken:
            return name


def resolve(repo: Repo, name: str, base: str | None = None) -> ExpRef:
    """The experiment called `name` (of HEAD's commit first, else of any commit where the name
    is unique); an unknown or ambiguous name is a BadInputError."""
    found = [e for e in list_refs(repo) if e.name == name]
    if not found:
        raise BadInputError(f"no experiment named {name!r}", hint="see `dvlite exp list --all-commits`")
    if len(found) == 1:
        return found[0]
    base = base or scm_mod.head_commit(worktree(repo))
    here = [e for e in found if e.base == base]
    if len(here) == 1:
        return here[0]
    raise BadInputError(f"{len(found)} experiments are named {name!r} (of commits "
                        + ", ".join(e.base[:7] for e in found) + ")",
                        hint="check out the commit whose experiment you mean")

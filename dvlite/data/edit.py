"""`remove`, `move` and `unprotect`: stop tracking, move data with its pointer, make linked
files private and writable."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

from dvlite.errors import BadInputError
from dvlite.formats.pointer import SUFFIX
from dvlite.gitignore import add_ignore, remove_ignore
from dvlite.outputs import StageOut, Tracked, load_tracked, owner_of, select, to_rel
from dvlite.repo import Repo
from dvlite.workspace.scan import scan_tree


@dataclass(frozen=True)
class RemoveResult:
    path: str
    pointer_path: str
    gitignore: str | None


def remove(repo: Repo, args: list[str]) -> list[RemoveResult]:
    tracked = {t.rel: t for t in load_tracked(repo)}
    rels = []
    for arg in args:  # validate every argument before changing anything
        rel = to_rel(repo, arg)
        rel = rel.removesuffix(SUFFIX)
        if rel not in tracked:
            raise BadInputError(f"{arg} is not tracked by dvlite (no {rel}{SUFFIX})")
        _refuse_stage_out(tracked[rel], arg)
        rels.append(rel)
    results = []
    for rel in dict.fromkeys(rels):
        repo.guard.remove_file(rel + SUFFIX)
        results.append(RemoveResult(rel, rel + SUFFIX, remove_ignore(repo, rel)))
    return results


def _refuse_stage_out(t: Tracked, arg: str) -> None:
    if isinstance(t, StageOut):
        raise BadInputError(
            f"{arg} is an out of stage {t.stage!r}, recorded in {t.pointer_rel}, not a pointer",
            hint="change the stage in dvlite.yaml instead",
        )


@dataclass(frozen=True)
class MoveResult:
    src: str
    dst: str
    gitignores: tuple[str, ...]


def move(repo: Repo, src: str, dst: str) -> MoveResult:
    tracked = {t.rel: t for t in load_tracked(repo)}
    src_rel = to_rel(repo, src)
    src_rel = src_rel.removesuffix(SUFFIX)
    if src_rel not in tracked:
        raise BadInputError(f"{src} is not tracked by dvlite (no {src_rel}{SUFFIX})")
    _refuse_stage_out(tracked[src_rel], src)
    dst_abs = os.path.abspath(dst)
    if os.path.isdir(dst_abs):
        dst_abs = os.path.join(dst_abs, os.path.basename(src_rel))
    dst_rel = to_rel(repo, dst_abs)
    dst_rel = dst_rel.removesuffix(SUFFIX)
    if os.path.lexists(repo.abs(dst_rel)) or os.path.lexists(repo.abs(dst_rel + SUFFIX)):
        raise BadInputError(f"{dst} already exists; dvlite move never overwrites")
    if owner_of(dst_rel, list(tracked.values())):
        raise BadInputError(f"{dst} is inside a tracked directory")
    pointer = tracked[src_rel].pointer
    repo.guard.check_parents(src_rel)
    dst_path = repo.guard.prepare(dst_rel)
    if os.path.lexists(repo.abs(src_rel)):
        os.rename(repo.abs(src_rel), dst_path)  # a rename never follows a symlink it moves
    repo.write(dst_rel + SUFFIX, pointer.to_bytes())
    repo.guard.remove_file(src_rel + SUFFIX)
    changed = [g for g in (remove_ignore(repo, src_rel), add_ignore(repo, dst_rel)) if g]
    return MoveResult(src_rel, dst_rel, tuple(changed))


def unprotect(repo: Repo, args: list[str]) -> list[str]:
    """Replace linked workspace files with private writable copies."""
    tracked = load_tracked(repo)
    done = []
    for t, inner in select(repo, tracked, args):
        top = repo.abs(t.rel if inner is None else f"{t.rel}/{inner}")
        paths = [top] if not os.path.isdir(top) else [f.path for f in scan_tree(top, repo.odb.objects_dir)]
        for path in paths:
            if os.path.islink(path) or os.stat(path).st_nlink > 1 or not os.access(path, os.W_OK):
                with open(path, "rb") as src:  # a link into the cache: its bytes, read once
                    mode = 0o755 if os.stat(path).st_mode & 0o100 else 0o644

                    def write(out, src=src):
                        shutil.copyfileobj(src, out, 1 << 20)

                    repo.write(repo.rel(path), writer=write, mode=mode, durable=False,
                               replace_link=True)
                done.append(repo.rel(path))
    return done

"""The pipeline of a repository: the stages of every dvlite.yaml in one DAG, validated."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import cached_property

from dvlite.errors import FormatError
from dvlite.pipelines.spec import FILENAME, Out, PipelineFile, Stage, parse_file


def _err(msg: str, hint: str | None = None) -> FormatError:
    return FormatError(f"{FILENAME}: {msg}", hint)


class _OutIndex:
    """Every out by path, to find which stages' outs overlap a path without a scan of them all
    (a pipeline of a thousand stages would otherwise cost a million comparisons per query)."""

    def __init__(self, stages: dict[str, Stage]):
        self.rank = {name: i for i, name in enumerate(stages)}
        self.by_path: dict[str, tuple[Stage, Out]] = {}
        for s in stages.values():
            for o in s.outs:
                self.by_path.setdefault(o.path, (s, o))
        self.paths = sorted(self.by_path)

    def producer(self, path: str) -> tuple[Stage, Out] | None:
        """The out that is `path` or one of its parents."""
        while True:
            if path in self.by_path:
                return self.by_path[path]
            cut = path.rfind("/")
            if cut < 0:
                return None
            path = path[:cut]

    def overlapping(self, path: str) -> list[str]:
        """Stages with an out equal to `path`, above it or below it, in file order."""
        names = set()
        found = self.producer(path)
        if found is not None:
            names.add(found[0].name)
        start = bisect.bisect_left(self.paths, path + "/")
        for other in self.paths[start:]:
            if not other.startswith(path + "/"):
                break
            names.add(self.by_path[other][0].name)
        return sorted(names, key=self.rank.__getitem__)


@dataclass(frozen=True)
class Pipeline:
    stages: dict[str, Stage]  # in file order (the root file first)
    files: tuple[PipelineFile, ...] = field(default=())

    def find(self, name: str) -> Stage | None:
        """A stage by its name (`train`, `a/b:train`, `a/b/dvlite.yaml:train`)."""
        if name in self.stages:
            return self.stages[name]
        head, sep, key = name.rpartition(":")
        if sep and head.endswith("/" + FILENAME):
            return self.stages.get(f"{head[:-len(FILENAME) - 1]}:{key}")
        return None

    @cached_property
    def _outs(self) -> _OutIndex:
        return _OutIndex(self.stages)

    def producer_of(self, path: str) -> tuple[Stage, Out] | None:
        """The stage whose out is `path` or contains it."""
        return self._outs.producer(path)

    def upstream_of(self, stage: Stage) -> list[str]:
        """Names of the stages whose outs `stage` depends on (direct edges)."""
        found: list[str] = []
        for dep in stage.deps:
            for name in self._outs.overlapping(dep):
                if name not in found:
                    found.append(name)
        return found

    def edges(self) -> list[tuple[str, str]]:
        return [(up, s.name) for s in self.stages.values() for up in self.upstream_of(s)]

    def order(self) -> list[str]:
        """Topological order (upstream first; ties in file order). Raises on a cycle."""
        return _topological({name: self.upstream_of(s) for name, s in self.stages.items()})

    def ancestors(self, names: list[str]) -> set[str]:
        return _reach(names, lambda n: self.upstream_of(self.stages[n]))

    def descendants(self, names: list[str]) -> set[str]:
        down: dict[str, list[str]] = {}
        for a, b in self.edges():
            down.setdefault(a, []).append(b)
        return _reach(names, lambda n: down.get(n, []))


def _overlap(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _topological(ups: dict[str, list[str]]) -> list[str]:
    """Depth first, upstream before downstream, without recursion (a chain of thousands of
    stages must not overflow the stack); a cycle is a FormatError that prints it."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    done: list[str] = []
    for root in ups:
        if root in state:
            continue
        state[root] = 1
        path, stack = [root], [iter(ups[root])]
        while stack:
            for up in stack[-1]:
                if state.get(up) == 1:
                    cycle = path[path.index(up):] + [up]
                    raise FormatError(f"{FILENAME}: the stages form a cycle: {' -> '.join(cycle)}",
                                      hint="a stage cannot depend, directly or not, on its own outs")
                if up not in state:
                    state[up] = 1
                    path.append(up)
                    stack.append(iter(ups[up]))
                    break
            else:
                stack.pop()
                name = path.pop()
                state[name] = 2
                done.append(name)
    return done


def combine(files: list[PipelineFile], tracked_paths=(), check: bool = True) -> Pipeline:
    """One pipeline of every file's stages; with `check`, validated against each other and the
    `.dvl` pointers (`tracked_paths`: (data path, pointer file))."""
    stages: dict[str, Stage] = {}
    for f in files:
        stages.update(f.stages)
    pipeline = Pipeline(stages, tuple(files))
    if check:
        validate(pipeline, tracked_paths)
    return pipeline


def parse(data: bytes, tracked_paths: list[tuple[str, str]] = (), read_file=None) -> Pipeline:
    """Parse and validate one root `dvlite.yaml`."""
    return combine([parse_file(data, FILENAME, read_file)], tracked_paths)


def validate(pipeline: Pipeline, tracked_paths=()) -> None:
    owners: dict[str, str] = {}
    for s in pipeline.stages.values():
        for o in s.outs:
            if o.path in owners:
                other = owners[o.path]
                where = f"stages {other!r} and {s.name!r}" if other != s.name else f"stage {s.name!r}"
                raise _err(f"{where} both declare the out {o.path}")
            owners[o.path] = s.name
    paths = sorted(owners)
    index = pipeline._outs
    for b in paths:
        outer = index.producer(b.rpartition("/")[0]) if "/" in b else None
        if outer is not None:
            a = outer[1].path
            raise _err(f"stage {owners[b]!r}: out {b} lies inside {a}, an out of stage {owners[a]!r}")
    for data_path, pointer in tracked_paths:
        for name in index.overlapping(data_path):
            p = next(o.path for o in pipeline.stages[name].outs if _overlap(o.path, data_path))
            raise _err(f"stage {owners[p]!r}: out {p} is also tracked by {pointer}",
                       hint=f"run `dvlite remove {pointer}` to let the stage produce it")
    for s in pipeline.stages.values():
        for dep in s.deps:
            for o in s.outs:
                if _overlap(dep, o.path):
                    raise _err(f"the stages form a cycle: {s.name} -> {s.name} "
                               f"(stage {s.name!r} depends on its own out {o.path})")
    pipeline.order()


def _reach(starts: list[str], next_of) -> set[str]:
    """`starts` and every stage reached from them by `next_of` (upstream or downstream)."""
    result: set[str] = set()
    todo = list(starts)
    while todo:
        n = todo.pop()
        if n not in result:
            result.add(n)
            todo += next_of(n)
    return result

"""Stages from `dvlite.yaml` and the DAG they form (a compatible subset of DVC's `dvc.yaml`).

Pure model: parsing, validation and graph algorithms; no file system beyond reading the text
the caller hands in. Every path here is repo-relative with `/` separators (a stage's `wdir` is
already applied).
"""

from __future__ import annotations

import bisect
import posixpath
import re
from dataclasses import dataclass
from functools import cached_property

import yaml

from dvlite import paths, yamldoc
from dvlite.errors import FormatError

FILENAME = "dvlite.yaml"
DEFAULT_PARAMS = "params.yaml"
UNSUPPORTED = ("foreach", "do", "matrix", "vars")
STAGE_KEYS = {"cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta"}
TOP_KEYS = {"stages"}
OUT_OPTIONS = {"cache", "persist", "desc", "remote", "push"}
PLOT_OPTIONS = {"x", "y", "template", "title", "x_label", "y_label", "header"}
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Out:
    path: str  # repo-relative
    cache: bool
    persist: bool
    role: str  # outs | metrics | plots


@dataclass(frozen=True)
class ParamRef:
    file: str  # repo-relative params file
    key: str  # dotted key or section; "" for the whole file


@dataclass(frozen=True)
class Stage:
    name: str
    cmds: tuple[str, ...]
    wdir: str  # repo-relative, "" for the root
    deps: tuple[str, ...]
    params: tuple[ParamRef, ...]
    outs: tuple[Out, ...]
    frozen: bool
    always_changed: bool
    desc: str

    @property
    def cmd_text(self) -> str:
        return " && ".join(self.cmds)

    def cmd_record(self):
        """The cmd as the lock records it: a string, or a list for several commands."""
        return self.cmds[0] if len(self.cmds) == 1 else list(self.cmds)

    def out_paths(self) -> list[str]:
        return [o.path for o in self.outs]


def _err(msg: str, hint: str | None = None) -> FormatError:
    return FormatError(f"{FILENAME}: {msg}", hint)


def normalise_path(raw, wdir: str, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise _err(f"{where}: a path must be a non-empty string, not {raw!r}")
    if raw.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", raw):
        raise _err(f"{where}: {raw} is an absolute path; paths are relative to the stage's wdir")
    joined = posixpath.normpath(posixpath.join(wdir, raw.replace("\\", "/")))
    if joined == "." or joined == ".." or joined.startswith("../"):
        raise _err(f"{where}: {raw} is outside the repository" if joined != "." else
                   f"{where}: {raw} is the repository root")
    rule = paths.why_unsafe(joined)
    if rule is not None:
        raise _err(f"{where}: unsafe path {raw!r}: {rule}")
    return joined


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise _err(f"{where}: expected true or false, not {value!r}")
    return value


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _err(f"{where}: expected a list, not {type(value).__name__}")
    return value


def _parse_outs(name: str, role: str, raw, wdir: str) -> list[Out]:
    outs = []
    for item in _list(raw, f"stage {name!r} {role}"):
        where = f"stage {name!r} {role}"
        options: dict = {}
        if isinstance(item, dict):
            if len(item) != 1:
                raise _err(f"{where}: each entry is a path or {{path: {{options}}}}")
            (path, options), = item.items()
            options = options or {}
            if not isinstance(options, dict):
                raise _err(f"{where}: options of {path} must be a mapping")
            allowed = OUT_OPTIONS | (PLOT_OPTIONS if role == "plots" else set())
            for key in options:
                if key not in allowed:
                    raise _err(f"{where}: {path}: unsupported option {key!r}")
        else:
            path = item
        rel = normalise_path(path, wdir, where)
        cache = _bool(options.get("cache", True), f"{where}: {path}: cache")
        persist = _bool(options.get("persist", False), f"{where}: {path}: persist")
        outs.append(Out(rel, cache, persist, role))
    return outs


def _parse_params(name: str, raw, wdir: str) -> list[ParamRef]:
    refs = []
    default = normalise_path(DEFAULT_PARAMS, wdir, f"stage {name!r} params")
    for item in _list(raw, f"stage {name!r} params"):
        where = f"stage {name!r} params"
        if isinstance(item, str):
            if not item:
                raise _err(f"{where}: empty key")
            refs.append(ParamRef(default, item))
        elif isinstance(item, dict):
            for file, keys in item.items():
                rel = normalise_path(file, wdir, where)
                keys = _list(keys, f"{where}: {file}")
                if not keys:
                    refs.append(ParamRef(rel, ""))
                for key in keys:
                    if not isinstance(key, str) or not key:
                        raise _err(f"{where}: {file}: keys must be non-empty strings, not {key!r}")
                    refs.append(ParamRef(rel, key))
        else:
            raise _err(f"{where}: expected a key or {{file: [keys]}}, not {item!r}")
    seen = set()
    for r in refs:
        if (r.file, r.key) in seen:
            raise _err(f"{where}: {r.key or r.file} is listed twice")
        seen.add((r.file, r.key))
    return refs


def parse_stage(name, doc) -> Stage:
    if not isinstance(name, str) or not _NAME.match(name):
        raise _err(f"bad stage name {name!r} (letters, digits, '_', '-', '.')")
    if not isinstance(doc, dict):
        raise _err(f"stage {name!r} must be a mapping")
    for key in doc:
        if key in UNSUPPORTED:
            raise _err(f"stage {name!r}: {key!r} is not supported by dvlite",
                       hint="write one stage per variant instead")
        if key not in STAGE_KEYS:
            raise _err(f"stage {name!r}: unknown key {key!r}")
    wdir_raw = doc.get("wdir", ".")
    if not isinstance(wdir_raw, str):
        raise _err(f"stage {name!r}: wdir must be a string")
    wdir = posixpath.normpath(wdir_raw.replace("\\", "/"))
    wdir = "" if wdir == "." else normalise_path(wdir, "", f"stage {name!r} wdir")
    if "cmd" not in doc:
        raise _err(f"stage {name!r}: missing key 'cmd'")
    cmd = doc["cmd"]
    cmds = [cmd] if isinstance(cmd, str) else cmd
    if not isinstance(cmds, list) or not cmds or not all(isinstance(c, str) and c.strip() for c in cmds):
        raise _err(f"stage {name!r}: cmd must be a non-empty string or list of strings")
    deps = [normalise_path(d, wdir, f"stage {name!r} deps") for d in _list(doc.get("deps"), f"stage {name!r} deps")]
    if len(set(deps)) != len(deps):
        dup = next(d for d in deps if deps.count(d) > 1)
        raise _err(f"stage {name!r}: dep {dup} is listed twice")
    outs = []
    for role in ("outs", "metrics", "plots"):
        outs += _parse_outs(name, role, doc.get(role), wdir)
    desc = doc.get("desc", "")
    return Stage(
        name=name,
        cmds=tuple(cmds),
        wdir=wdir,
        deps=tuple(deps),
        params=tuple(_parse_params(name, doc.get("params"), wdir)),
        outs=tuple(outs),
        frozen=_bool(doc.get("frozen", False), f"stage {name!r}: frozen"),
        always_changed=_bool(doc.get("always_changed", False), f"stage {name!r}: always_changed"),
        desc=desc if isinstance(desc, str) else str(desc),
    )


def load_doc(data: bytes, origin: str = FILENAME) -> dict:
    doc = yamldoc.load(data, origin)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: expected a mapping with a 'stages' key")
    for key in doc:
        if key in UNSUPPORTED:
            raise FormatError(f"{origin}: {key!r} is not supported by dvlite",
                              hint="write the values into the stages instead")
        if key not in TOP_KEYS:
            raise FormatError(f"{origin}: unsupported top-level key {key!r}")
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise FormatError(f"{origin}: 'stages' must be a mapping of stage names")
    return doc


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
    stages: dict[str, Stage]  # in file order

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
        result: set[str] = set()
        todo = list(names)
        while todo:
            n = todo.pop()
            if n in result:
                continue
            result.add(n)
            todo += self.upstream_of(self.stages[n])
        return result

    def descendants(self, names: list[str]) -> set[str]:
        down: dict[str, list[str]] = {}
        for a, b in self.edges():
            down.setdefault(a, []).append(b)
        result: set[str] = set()
        todo = list(names)
        while todo:
            n = todo.pop()
            if n in result:
                continue
            result.add(n)
            todo += down.get(n, [])
        return result


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


def parse(data: bytes, tracked_paths: list[tuple[str, str]] = ()) -> Pipeline:
    """Parse and validate `dvlite.yaml`; `tracked_paths` are (data path, pointer file) of .dvl pointers."""
    doc = load_doc(data)
    stages = {str(name): parse_stage(name, body) for name, body in (doc.get("stages") or {}).items()}
    pipeline = Pipeline(stages)
    validate(pipeline, tracked_paths)
    return pipeline


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


# --- writing (stage add) ------------------------------------------------------------------

def stage_doc(name: str, cmd: str, deps: list[str], outs: list[str], params: list[str],
              metrics: list[str], wdir: str | None) -> dict:
    body: dict = {"cmd": cmd}
    if wdir and wdir != ".":
        body["wdir"] = wdir
    if deps:
        body["deps"] = deps
    if params:
        body["params"] = params
    if outs:
        body["outs"] = outs
    if metrics:
        body["metrics"] = [{m: {"cache": False}} for m in metrics]
    return body


def append_stage(existing: bytes | None, name: str, body: dict) -> bytes:
    """The file text with stage `name` appended (the user's text above is kept byte for byte)."""
    text = (existing or b"").decode("utf-8")
    doc = load_doc(existing or b"")
    if name in (doc.get("stages") or {}):
        raise _err(f"stage {name!r} already exists")
    stage_text = yaml.safe_dump({name: body}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    indented = "".join("  " + line + "\n" for line in stage_text.splitlines())
    if not doc.get("stages"):
        if "stages" in doc:  # `stages:` with nothing under it
            text = re.sub(r"(?m)^stages:.*$\n?", "", text)
        if text and not text.endswith("\n"):
            text += "\n"
        return (text + "stages:\n" + indented).encode()
    if not text.endswith("\n"):
        text += "\n"
    return (text + indented).encode()

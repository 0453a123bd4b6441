"""Stages from a `dvlite.yaml` (a compatible subset of DVC's `dvc.yaml`, templating included).

Pure model: parsing and validation; no file system beyond the text, and a reader of vars
files, that the caller hands in. Every path here is repo-relative with `/` separators (the
file's directory and the stage's `wdir` are already applied). A stage of `a/b/dvlite.yaml` is
named `a/b:NAME`; its lock entry, in `a/b/dvlite.lock`, is keyed by `NAME`.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass

import yaml

from dvlite import paths, yamldoc
from dvlite.errors import FormatError
from dvlite.pipelines import templating
from dvlite.plots import spec as plot_spec

FILENAME = "dvlite.yaml"
DEFAULT_PARAMS = "params.yaml"
UNSUPPORTED = ("plots", "metrics", "params", "artifacts", "datasets")  # DVC's top-level keys
STAGE_KEYS = {"cmd", "wdir", "deps", "params", "outs", "metrics", "plots", "frozen",
              "always_changed", "desc", "meta"}
TOP_KEYS = {"stages", "vars", "checks", "gates"}
TEMPLATED = ("foreach", "do", "matrix", "vars")
OUT_OPTIONS = {"cache", "persist", "desc", "remote", "push"}
PLOT_OPTIONS = set(plot_spec.OPTIONS)
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")  # `@`: a foreach or matrix stage


@dataclass(frozen=True)
class Out:
    path: str  # repo-relative
    cache: bool
    persist: bool
    role: str  # outs | metrics | plots
    plot: tuple[tuple[str, object], ...] = ()  # plots: the chart's options (x, y, template...)


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
    file: str = FILENAME  # the dvlite.yaml it comes from
    key: str = ""  # its name in that file (and in the dvlite.lock beside it); "" = `name`

    @property
    def lock_key(self) -> str:
        return self.key or self.name

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
        plot = {k: v for k, v in options.items() if k in PLOT_OPTIONS}
        if role == "plots":
            plot_spec.parse_spec(rel, plot, f"{FILENAME}: {where}")  # a bad value fails here
        outs.append(Out(rel, cache, persist, role, tuple(sorted(plot.items()))))
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


def parse_stage(name, doc, base_dir: str = "") -> Stage:
    """One stage of the dvlite.yaml in directory `base_dir` (repo-relative, "" for the root)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise _err(f"bad stage name {name!r} (letters, digits, '_', '-', '.', '@')")
    if not isinstance(doc, dict):
        raise _err(f"stage {name!r} must be a mapping")
    for key in doc:
        if key not in STAGE_KEYS:
            raise _err(f"stage {name!r}: unknown key {key!r}")
    wdir_raw = doc.get("wdir", ".")
    if not isinstance(wdir_raw, str):
        raise _err(f"stage {name!r}: wdir must be a string")
    wdir = posixpath.normpath(posixpath.join(base_dir, wdir_raw.replace("\\", "/")))
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
            raise FormatError(f"{origin}: the top-level {key!r} of dvc.yaml is not supported by "
                              "dvlite", hint="declare them on the stages instead")
        if key not in TOP_KEYS:
            raise FormatError(f"{origin}: unsupported top-level key {key!r}")
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise FormatError(f"{origin}: 'stages' must be a mapping of stage names")
    return doc


@dataclass(frozen=True)
class PipelineFile:
    """One dvlite.yaml, parsed: its stages (qualified names), and its data checks and gates."""

    path: str  # repo-relative
    stages: dict[str, Stage]
    checks: dict  # the `checks:` section, as written (see docs/data-quality.md)
    gates: dict  # the `gates:` section, as written


def qualified(path: str, name: str) -> str:
    """How the stages of a pipeline file in a subdirectory are named: `a/b:train`."""
    base = posixpath.dirname(path)
    return f"{base}:{name}" if base else name


def _templated(doc: dict) -> bool:
    stages = doc.get("stages") or {}
    return "vars" in doc or any(isinstance(b, dict) and any(k in b for k in TEMPLATED)
                                for b in stages.values()) or "${" in repr(doc)


def parse_file(data: bytes, path: str = FILENAME, read_file=None, options=None,
               origin: str | None = None) -> PipelineFile:
    """Parse one pipeline file at repo-relative `path`, templating resolved (vars files and
    params.yaml come through `read_file(repo_relative_path) -> bytes | None`)."""
    origin = origin or path
    doc = load_doc(data, origin)
    base_dir = posixpath.dirname(path)
    if _templated(doc):
        doc = templating.resolve(doc, origin, read_file or (lambda _p: None), base_dir, options)
    stages = {}
    for name, body in (doc.get("stages") or {}).items():
        try:
            stage = parse_stage(name, body, base_dir)
        except FormatError as exc:
            if origin == FILENAME:
                raise
            raise FormatError(exc.message.replace(FILENAME, origin, 1), exc.hint) from None
        full = qualified(path, str(name))
        stages[full] = dataclasses.replace(stage, name=full, file=path, key=str(name))
    return PipelineFile(path, stages, _mapping(doc, "checks", origin), _mapping(doc, "gates", origin))


def _mapping(doc: dict, key: str, origin: str) -> dict:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        raise FormatError(f"{origin}: {key!r} must be a mapping")
    return value


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

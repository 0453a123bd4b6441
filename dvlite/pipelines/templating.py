"""DVC's pipeline templating, as a pure function over a parsed dvc.yaml / dvlite.yaml document.

- `vars`: inline mappings and files (`params.yaml`, `file.yaml:key1,key2`), after the
  file's own `params.yaml` when there is one; stage-level `vars` too, relative to the stage.
- `${...}`: dotted keys and list indexes (`${model.layers[0]}`); a string that is one
  `${...}` takes the value's type, one with text around it becomes text; a mapping in `cmd`
  unpacks to `--key value` options (`parsing.bool`, `parsing.list` choose the style); `\\${`
  is a literal `${`.
- `foreach` over a list or a mapping (`${item}`, `${key}`, `${item.x}`) with `do`, and
  `matrix` stages, named `stage@key` exactly as DVC names them.

Files are read through the `read_file(repo_relative_path) -> bytes | None` the caller passes
(None: no such file); nothing here touches the disk. Every problem is a FormatError naming
the file, the stage and the construct.
"""

from __future__ import annotations

import copy
import itertools
import posixpath
import re
import shlex
from collections.abc import Callable

from dvlite.errors import FormatError
from dvlite.paths import why_unsafe
from dvlite.formats import params as params_mod

ReadFile = Callable[[str], "bytes | None"]
KEYCRE = re.compile(r"(?<!\\)\$\{(?P<inner>.*?)\}")
PRIMITIVES = (int, float, str, bytes, bool)
TOP_KEYS = {"stages", "vars", "plots", "metrics", "params", "artifacts", "datasets", "checks", "gates"}
MAX_STAGES = 10_000  # generated stages per file: a matrix can multiply fast
MAX_DEPTH = 100
DEFAULT_VARS = "params.yaml"
RESERVED = ("item", "key")


class _FromCtx:
    """A value that came from the context whole: DVC names such scalars by str(), not to_str()."""

    def __init__(self, value):
        self.value = value


def _unwrap(value):
    if isinstance(value, _FromCtx):
        return value.value
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def to_str(value, options: dict) -> str:
    """A value as interpolated into text (DVC's rules: booleans lower-case, mappings unpacked)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return _unpack(value, options)
    return str(value)


def _flatten(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _unpack(doc: dict, options: dict) -> str:
    """`{"lr": 0.1, "layers": [1, 2], "fast": true}` -> `--lr 0.1 --layers 1 2 --fast`."""
    parts = []
    for k, v in _flatten(doc).items():
        if isinstance(v, bool):
            if v:
                parts.append(f"--{k}")
            elif options.get("bool", "store_true") == "boolean_optional":
                parts.append(f"--no-{k}")
        elif isinstance(v, str):
            parts.append(f"--{k} {shlex.quote(v)}")
        elif isinstance(v, (list, tuple)):
            for n, i in enumerate(v):
                if isinstance(i, str):
                    i = shlex.quote(i)
                elif isinstance(i, (list, tuple, dict)):
                    raise ValueError(f"cannot interpolate nested iterable in '{k}'")  # noqa: TRY004
                append = options.get("list", "nargs") == "append"
                parts.append(f"--{k} {i}" if append or n == 0 else f"{i}")
        else:
            parts.append(f"--{k} {v}")
    return " ".join(parts)


def parse_expr(inner: str) -> list[str]:
    """`a.b[0]` -> ["a", "b", "0"]; raises ValueError on bad syntax (DVC's grammar)."""
    parts, pos, n = [], 0, len(inner)

    def word(start: int) -> tuple[str, int]:
        end = start
        while end < n and inner[end] not in ".[]":
            end += 1
        text = inner[start:end].strip()
        if not text:
            raise ValueError(f"bad expression '${{{inner}}}'")
        return text, end

    text, pos = word(0)
    parts.append(text)
    while pos < n:
        if inner[pos] == ".":
            text, pos = word(pos + 1)
        elif inner[pos] == "[":
            text, pos = word(pos + 1)
            if pos >= n or inner[pos] != "]":
                raise ValueError(f"bad expression '${{{inner}}}'")
            pos += 1
        else:
            raise ValueError(f"bad expression '${{{inner}}}'")
        parts.append(text)
    return parts


def _clean(value, where: str, depth: int = 0):
    """A context value: str keys only (DVC drops others), primitives, lists and mappings."""
    if depth > MAX_DEPTH:
        raise ValueError(f"values nested deeper than {MAX_DEPTH} levels in {where}")
    if value is None or isinstance(value, PRIMITIVES):
        return value
    if isinstance(value, dict):
        return {k: _clean(v, where, depth + 1) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list):
        return [_clean(v, where, depth + 1) for v in value]
    raise ValueError(f"unsupported value of type '{type(value).__name__}' in {where}")


class Context:
    """The values `${...}` can name, where each top-level key came from, and loaded files."""

    def __init__(self, read_file: ReadFile):
        self.data: dict = {}
        self.sources: dict[str, str] = {}
        self.imports: dict[str, list | None] = {}  # file -> selected keys (None: all of it)
        self.reserved: set[str] = set()
        self.read_file = read_file
        self.files: dict[str, dict] = {}  # parsed vars files, shared by clones

    def clone(self) -> Context:
        new = Context(self.read_file)
        new.data = copy.deepcopy(self.data)
        new.sources, new.imports = dict(self.sources), copy.deepcopy(self.imports)
        new.reserved, new.files = set(self.reserved), self.files
        return new

    def merge(self, values: dict, source: str) -> None:
        clash = sorted(self.reserved & set(values))
        if clash:
            raise ValueError(f"attempted to modify reserved key(s) {', '.join(clash)} in '{source}'")
        self._merge(self.data, _clean(values, f"'{source}'"), source, "")

    def _merge(self, into: dict, update: dict, source: str, prefix: str) -> None:
        for key, val in update.items():
            path = prefix + key
            if isinstance(into.get(key), dict) and isinstance(val, dict):
                self._merge(into[key], val, source, path + ".")
            elif key in into:
                first = self.sources.get(path.split(".", 1)[0], "?")
                raise ValueError(f"cannot redefine '{path}' from '{source}' as it already exists in '{first}'")
            else:
                into[key] = val
                self.sources.setdefault(path.split(".", 1)[0], source)

    def load(self, item: str, wdir: str) -> None:
        """`vars` entry `file` or `file:key1,key2`, relative to `wdir` (repo-relative)."""
        raw, _, keys_text = item.partition(":")
        path = posixpath.normpath(posixpath.join(wdir, raw.replace("\\", "/")))
        if raw.startswith("/") or "://" in raw or why_unsafe(path) is not None:
            raise ValueError(f"'{item}' is not a path inside the repository")
        keys = [k for k in keys_text.split(",") if k] or None
        if path in self.imports:
            if keys is None and self.imports[path] is None:
                return  # the whole file again: allowed
            loaded = self.imports[path]
            if keys is None or loaded is None or set(keys) & set(loaded):
                raise ValueError(f"cannot load '{item}' as it's partially loaded already"
                                 if loaded is not None else
                                 f"cannot partially load '{item}' as it's already loaded")
        doc = self._read(path)
        if keys is not None:
            missing = [k for k in keys if k not in doc]
            if missing:
                raise ValueError(f"could not find '{missing[0]}' in '{path}'")
            doc = {k: doc[k] for k in keys}
        self.merge(doc, path)
        if path not in self.imports or self.imports[path] is None:
            self.imports[path] = keys
        else:
            self.imports[path] = self.imports[path] + keys

    def _read(self, path: str) -> dict:
        if path not in self.files:
            if path.endswith(".py"):
                raise ValueError(f"'{path}': Python vars files are not supported by dvlite")
            data = self.read_file(path)
            if data is None:
                raise ValueError(f"'{path}' does not exist")
            doc = params_mod.parse(data, path)
            if not isinstance(doc, dict):
                raise ValueError(f"expected a dictionary, got '{type(doc).__name__}' in file '{path}'")
            self.files[path] = doc
        return self.files[path]

    def select(self, expr: str):
        node = self.data
        for part in parse_expr(expr):
            try:
                if isinstance(node, dict):
                    node = node[part]
                elif isinstance(node, list):
                    node = node[int(part)]
                else:
                    raise KeyError(part)
            except (KeyError, ValueError, IndexError):
                raise KeyError(f"could not find '{expr.strip()}'") from None
        return node


# --- interpolation --------------------------------------------------------------------------

def _check_value(value, key: str | None) -> None:
    """DVC lets only primitives into text, except a mapping in `cmd` (unpacked to options)."""
    if value is None or isinstance(value, PRIMITIVES) or key is None or "foreach" in key:
        return
    if isinstance(value, dict) and key == "cmd":
        return
    raise ValueError(f"cannot interpolate data of type '{type(value).__name__}'")


class _Resolver:
    def __init__(self, ctx: Context, options: dict):
        self.ctx, self.options = ctx, options

    def value(self, value, key: str | None, wrap: bool = False, depth: int = 0):
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                rk = self.value(k, key, depth=depth + 1) if isinstance(k, str) else k
                if isinstance(rk, (dict, list)):
                    raise ValueError(f"a mapping key cannot be a {type(rk).__name__}")  # noqa: TRY004
                out[rk] = self.value(v, key, wrap, depth + 1)
            return out
        if isinstance(value, list):
            return [self.value(v, key, wrap, depth + 1) for v in value]
        if isinstance(value, str):
            return self.text(value, key, wrap)
        return value

    def text(self, src: str, key: str | None, wrap: bool = False):
        matches = list(KEYCRE.finditer(src))
        if not matches:
            return src
        if len(matches) == 1 and matches[0].group(0) == src:
            value = copy.deepcopy(self.ctx.select(matches[0]["inner"]))
            _check_value(value, key)
            return _FromCtx(value) if wrap else value
        buf, index = "", 0
        for m in matches:
            value = self.ctx.select(m["inner"])
            _check_value(value, key)
            buf += src[index:m.start()] + to_str(value, self.options)
            index = m.end()
        return (buf + src[index:]).replace("\\${", "${")


def check_syntax(value, depth: int = 0) -> None:
    """Every `${...}` in `value` parses (DVC checks a template once, before expanding it)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            check_syntax(k, depth + 1)
            check_syntax(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            check_syntax(v, depth + 1)
    elif isinstance(value, str):
        for m in KEYCRE.finditer(value):
            parse_expr(m["inner"])


def _has_interpolation(value) -> bool:
    if isinstance(value, dict):
        return any(_has_interpolation(k) or _has_interpolation(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(_has_interpolation, value))
    return isinstance(value, str) and bool(KEYCRE.search(value))


# --- stages -------------------------------------------------------------------------------

class _File:
    """One document being expanded: its name, directory, options and the error prefix."""

    def __init__(self, origin: str, base_dir: str, options: dict):
        self.origin, self.base_dir, self.options = origin, base_dir, options

    def error(self, where: str, exc: Exception) -> FormatError:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        if isinstance(exc, FormatError):
            text = exc.message
        return FormatError(f"{self.origin}: {where}: {text}")

    def load_vars(self, ctx: Context, vars_, wdir: str, where: str, stage: str = "") -> None:
        if not isinstance(vars_, list) or not all(isinstance(v, (str, dict)) for v in vars_):
            raise FormatError(f"{self.origin}: {where}: vars must be a list of files and mappings")
        if _has_interpolation(vars_):
            raise FormatError(f"{self.origin}: {where}: interpolating is not allowed in vars")
        for index, item in enumerate(vars_):
            try:
                if isinstance(item, str):
                    ctx.load(item, wdir)
                else:
                    ctx.merge(item, f"{stage + '.' if stage else ''}vars[{index}]")
            except (ValueError, KeyError, FormatError) as exc:
                raise self.error(where, exc) from None

    def entry(self, ctx: Context, name: str, definition: dict) -> dict:
        """One plain stage: its own vars loaded, every value interpolated."""
        where = f"stage '{name}'"
        body = dict(definition)
        vars_ = body.pop("vars", [])
        resolver = _Resolver(ctx, self.options)
        wdir = ""
        if body.get("wdir"):
            try:
                wdir = to_str(resolver.value(body["wdir"], "wdir"), self.options)
            except (ValueError, KeyError) as exc:
                raise self.error(f"{where}: wdir", exc) from None
        if vars_:
            ctx = ctx.clone()
            stage_dir = posixpath.normpath(posixpath.join(self.base_dir, wdir)) if wdir else self.base_dir
            self.load_vars(ctx, vars_, "" if stage_dir == "." else stage_dir, f"{where}: vars", name)
            resolver = _Resolver(ctx, self.options)
        out = {}
        for key, value in body.items():
            try:
                out[key] = resolver.value(value, key)
            except (ValueError, KeyError) as exc:
                raise self.error(f"{where}: {key}", exc) from None
        return out

    def _iterate(self, ctx: Context, name: str, items: dict, template: dict, with_key: bool):
        if len(items) > MAX_STAGES:
            raise FormatError(f"{self.origin}: stage '{name}': more than {MAX_STAGES} generated stages")
        try:
            check_syntax(template)
        except ValueError as exc:
            raise self.error(f"stage '{name}'", exc) from None
        out = {}
        names = RESERVED if with_key else ("item",)
        for key, value in items.items():
            saved = {k: ctx.data[k] for k in names if k in ctx.data}
            saved_reserved = set(ctx.reserved)
            ctx.data.update({"item": value, "key": key} if with_key else {"item": value})
            ctx.reserved |= set(names)
            try:
                generated = f"{name}@{key}"
                out[generated] = self.entry(ctx, generated, template)
            finally:
                for k in names:
                    ctx.data.pop(k, None)
                ctx.data.update(saved)
                ctx.reserved = saved_reserved
        return out

    def foreach(self, ctx: Context, name: str, definition: dict) -> dict:
        extra = sorted(set(definition) - {"foreach", "do"})
        if extra or "do" not in definition:
            what = f"unknown key '{extra[0]}' beside foreach" if extra else "foreach without do"
            raise FormatError(f"{self.origin}: stage '{name}': {what}")
        if not isinstance(definition["do"], dict):
            raise FormatError(f"{self.origin}: stage '{name}': do must be a mapping")
        try:
            data = _Resolver(ctx, self.options).value(definition["foreach"], None, wrap=True)
        except (ValueError, KeyError) as exc:
            raise self.error(f"stage '{name}': foreach", exc) from None
        whole = isinstance(data, _FromCtx)
        data = data.value if whole else data
        if isinstance(data, dict):
            items = {to_str(k, {}): _unwrap(v) for k, v in data.items()}
        elif isinstance(data, list):
            if any(isinstance(_unwrap(v), (dict, list)) for v in data):
                items = {str(i): _unwrap(v) for i, v in enumerate(data)}
            else:
                items = {_name(v, whole): _unwrap(v) for v in data}
        else:
            raise FormatError(f"{self.origin}: stage '{name}': foreach: expected a list or a "
                              f"mapping, got {type(data).__name__}")
        return self._iterate(ctx, name, items, definition["do"], isinstance(data, dict))

    def matrix(self, ctx: Context, name: str, definition: dict) -> dict:
        template = {k: v for k, v in definition.items() if k != "matrix"}
        if "foreach" in template or "do" in template:
            raise FormatError(f"{self.origin}: stage '{name}': matrix and foreach cannot be combined")
        raw = definition["matrix"]
        if not isinstance(raw, dict) or not raw:
            raise FormatError(f"{self.origin}: stage '{name}': matrix must map names to lists")
        axes = {}
        for axis, values in raw.items():
            try:
                data = _Resolver(ctx, self.options).value(values, None, wrap=True)
            except (ValueError, KeyError) as exc:
                raise self.error(f"stage '{name}': matrix.{axis}", exc) from None
            whole = isinstance(data, _FromCtx)
            data = data.value if whole else data
            if not isinstance(axis, str) or not isinstance(data, list):
                raise FormatError(f"{self.origin}: stage '{name}': matrix.{axis}: expected a list")
            axes[axis] = [(v, whole) for v in data]
        total = 1
        for values in axes.values():
            total *= len(values)
        if total > MAX_STAGES:
            raise FormatError(f"{self.origin}: stage '{name}': more than {MAX_STAGES} generated stages")
        items = {}
        for combination in itertools.product(*(list(enumerate(v)) for v in axes.values())):
            fragments, item = [], {}
            for axis, (i, (value, whole)) in zip(axes, combination):
                plain = _unwrap(value)
                item[axis] = plain
                fragments.append(f"{axis}{i}" if isinstance(plain, (dict, list)) else _name(value, whole))
            items["-".join(fragments)] = item
        return self._iterate(ctx, name, items, template, True)


def _name(value, whole: bool) -> str:
    """How DVC names a generated stage after a scalar: str() for context values, else to_str."""
    if isinstance(value, _FromCtx) or whole:
        return str(_unwrap(value))
    return to_str(value, {})


def resolve(doc, origin: str, read_file: ReadFile, base_dir: str = "",
            options: dict | None = None) -> dict:
    """Expand a parsed pipeline document: {"stages": {name: body}, other top-level keys}.

    `origin` names the file in errors; `base_dir` is its repo-relative directory ("" at the
    root), against which `vars` files and stage `wdir`s are read; `options` are DVC's
    `parsing.bool` / `parsing.list` settings.
    """
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise FormatError(f"{origin}: expected a mapping with a 'stages' key")
    for key in doc:
        if key not in TOP_KEYS:
            raise FormatError(f"{origin}: unknown top-level key {key!r:.40}")
    file = _File(origin, base_dir, options or {})
    ctx = Context(read_file)
    default = posixpath.join(base_dir, DEFAULT_VARS) if base_dir else DEFAULT_VARS
    try:
        if read_file(default) is not None:
            ctx.load(DEFAULT_VARS, base_dir)
    except (ValueError, KeyError, FormatError) as exc:
        raise file.error("vars", exc) from None
    file.load_vars(ctx, doc.get("vars") or [], base_dir, "vars")
    stages = doc.get("stages") or {}
    if not isinstance(stages, dict):
        raise FormatError(f"{origin}: 'stages' must be a mapping of stage names")
    out: dict = {}
    for name, definition in stages.items():
        if not isinstance(name, str) or "@" in name:
            raise FormatError(f"{origin}: bad stage name {name!r:.60} ('@' marks generated stages)")
        if not isinstance(definition, dict):
            raise FormatError(f"{origin}: stage '{name}' must be a mapping")
        if "matrix" in definition:
            out.update(file.matrix(ctx, name, definition))
        elif "foreach" in definition or "do" in definition:
            out.update(file.foreach(ctx, name, definition))
        else:
            out[name] = file.entry(ctx, name, definition)
        if len(out) > MAX_STAGES:
            raise FormatError(f"{origin}: more than {MAX_STAGES} stages")
    result = {"stages": out}
    for key in sorted(set(doc) - {"stages", "vars"}):
        try:
            result[key] = _Resolver(ctx, file.options).value(doc[key], None)
        except (ValueError, KeyError) as exc:
            raise file.error(key, exc) from None
    return result

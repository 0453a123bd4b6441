"""Property-based fuzzing of every parser of untrusted input (issue 10: hostile input is harmless).

Each parser gets arbitrary bytes and structure-aware mutations of valid files written by
dvlite's own writers (flipped bytes, truncation, splices, YAML anchors/aliases, deep nesting,
huge numbers, NUL, non-UTF-8, wrong types in every field). Every call runs in a forked child
under `RLIMIT_AS` (its current size + CALL_MEMORY) and a wall-clock limit, then it uses the
result the way a command would (re-serialise it, flatten params, order stages, plan reads).
The properties:

- the only exception that escapes is a `dvlite.errors.DvliteError` (a MemoryError,
  RecursionError, OverflowError, ValueError, ... is a failure, and so is a hang or a child
  killed by a signal);
- an error raised while parsing is one line (no control characters) and names the file;
- a pack index that parses describes only bytes inside its pack.

Regression cases from the issue are explicit tests: a billion-laughs alias bomb under `params`
in dvlite.lock, a 5,000-deep nested list in each YAML/JSON/TOML parser, a long stage chain,
pack indexes with a correct checksum and offsets/lengths of 2**63 (parsed, in the local cache
under `checkout`/`fsck`, and on a remote under `pull`), and `status` / `repro --dry` through the
real CLI on a repository whose dvlite.lock holds an alias bomb.

CI runs a bounded number of examples per parser, without shrinking (a timeout shrunk a
hundred times costs minutes). For a local hunt, raise both:

    DVLITE_FUZZ_EXAMPLES=2000 DVLITE_FUZZ_SHRINK=1 \\
        .venv/bin/python -m pytest -q tests/test_fuzz_parsers.py -k fuzz

(about 10 minutes on 2 cores; the default of 40 examples per parser runs the whole file in
well under a minute).
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import re
import resource
import select
import signal
import struct
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import fsspec.implementations.local  # noqa: F401 - imported once here, not in every child
import pytest
import yaml
from conftest import DVLITE, GIT_ENV, git, run, write_tree
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from dvlite.formats import lockfile
from dvlite.formats import params
from dvlite.pipelines import dag
from dvlite.pipelines import spec as pipeline
from dvlite.pipelines import runcache as run_mod
from dvlite.config import Config
from dvlite.digest import Digest, hash_bytes
from dvlite.errors import DvliteError
from dvlite.formats.manifest import Entry as ManifestEntry
from dvlite.formats.manifest import Manifest, diff
from dvlite.formats.packs import PACK_MAGIC, PackedObject, PackIndex, build_pack, plan_reads
from dvlite.formats.pointer import Pointer, Source
from dvlite.remotes.backend import Remote
from dvlite.remotes.config import RemoteConfig, fsspec_kwargs, remote_configs
from dvlite.storage.layout import LAYOUT_FILE

EXAMPLES = int(os.environ.get("DVLITE_FUZZ_EXAMPLES", "40"))
SHRINK = os.environ.get("DVLITE_FUZZ_SHRINK", "") not in ("", "0")
CALL_SECONDS = 30.0  # a parse takes milliseconds; this bounds hangs only (CI may pause a child)
CALL_MEMORY = 256 << 20  # address space a child may add to what it inherited
CLI_SECONDS = 20.0
CLI_MEMORY = 1 << 30

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # time is bounded per call in the child, which a deadline cannot interrupt
    phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SHRINK else []),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)


# --- running one call in a bounded child -------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    kind: str  # ok | dvlite | escaped | unsound | timeout | died
    stage: str = ""  # parse | use: where an exception came from
    error: str = ""  # exception type
    message: str = ""
    trace: str = ""

    def describe(self) -> str:
        text = f"{self.kind} during {self.stage or '?'}: {self.error}: {self.message[:300]}"
        return text + (f"\n{self.trace}" if self.trace else "")


class Unsound(Exception):
    """A parser accepted a file that describes something impossible."""


def _limit_memory(extra: int) -> None:
    with open("/proc/self/status") as f:
        vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = vm_kib * 1024 + extra
    resource.setrlimit(resource.RLIMIT_AS, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def _child(parse: Callable, use: Callable, data: bytes) -> tuple:
    stage = "parse"
    try:
        _limit_memory(CALL_MEMORY)
        value = parse(data)
        stage = "use"
        use(value)
        return ("ok", "", "", "", "")
    except DvliteError as exc:
        return ("dvlite", stage, type(exc).__name__, exc.message, "")
    except Unsound as exc:
        return ("unsound", stage, "Unsound", str(exc), "")
    except BaseException as exc:  # noqa: BLE001 - exactly what the test looks for
        trace = "".join(traceback.format_exception(exc, limit=-6))[-3000:]
        return ("escaped", stage, type(exc).__name__, str(exc)[:500], trace)


def bounded(parse: Callable, use: Callable, data: bytes, seconds: float = CALL_SECONDS) -> Outcome:
    """parse(data) then use(result) in a forked child with bounded memory and time."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(r)
        try:
            payload = pickle.dumps(_child(parse, use, data))
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
        finally:
            os._exit(0)
    os.close(w)
    chunks, deadline, timed_out = [], time.monotonic() + seconds, False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                timed_out = True
                os.kill(pid, signal.SIGKILL)
                break
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        _, status = os.waitpid(pid, 0)
    if timed_out:
        return Outcome("timeout", message=f"still running after {seconds:.0f} s")
    if not chunks:
        return Outcome("died", message=f"child ended with wait status {status}")
    return Outcome(*pickle.loads(b"".join(chunks)))


# --- what a file must name, and what a command does with a parsed value ---------------------------

@dataclass(frozen=True)
class Target:
    name: str
    origin: str  # the file name an error must mention
    parse: Callable[[bytes], object]
    use: Callable[[object], None]


MANIFEST_ORIGIN = "data.dvl (manifest 5c1f0a)"
POINTER_ORIGIN = "models/model.pkl.dvl"
LOCK_ORIGIN = "dvlite.lock"
RECORD_ORIGIN = ".dvlite/cache/runs/0f3c9a"
INDEX_ORIGIN = ".dvlite/cache/packs/0f3c9a.idx"


def use_manifest(m: Manifest) -> None:
    m.to_bytes()
    m.digest()
    diff(m.by_path(), {})
    _ = m.size


def use_pointer(p: Pointer) -> None:
    p.to_bytes()


def _use_values(stage_params: dict) -> None:
    """What `status` does with recorded params that differ: flatten and show every value."""
    for values in stage_params.values():
        for key, value in values.items():
            flat = params.flatten(value, key) if isinstance(value, dict) else {key: value}
            for v in flat.values():
                params.show(v)


def use_lock(lock: lockfile.Lock) -> None:
    lock.to_bytes()
    lock.cached_outs()
    for stage in lock.stages.values():
        _use_values(stage.params)
        for out in stage.outs:
            out.pointer().to_bytes()


def parse_pipeline(data: bytes) -> dag.Pipeline:
    """One dvlite.yaml as `repro` reads it: parsed, templating resolved, combined and validated."""
    return dag.combine([pipeline.parse_file(data)])


def use_pipeline(pipe: dag.Pipeline) -> None:
    names = pipe.order()
    pipe.edges()
    pipe.ancestors(names)
    pipe.descendants(names)
    for stage in pipe.stages.values():
        _ = stage.cmd_text
        stage.cmd_record()


def use_params(doc) -> None:
    params.show(params.lookup(doc, ""))
    for value in params.flatten(doc).values():
        params.show(value)


def use_record(result) -> None:
    _key, entry = result
    lockfile.dump({"schema": lockfile.SCHEMA, "run": entry.to_doc()})
    _use_values(entry.params)


def use_index(index: PackIndex) -> None:
    for digest, (offset, length) in index.entries.items():
        if offset < len(PACK_MAGIC) or length < 0 or offset + length > index.pack_size:
            raise Unsound(f"entry {digest} at [{offset}, {offset + length}) lies outside the "
                          f"pack of {index.pack_size} bytes")
    index.to_bytes()
    wanted = {d: PackedObject(index.pack, o, n) for d, (o, n) in index.entries.items()}
    plan_reads(wanted, {index.pack: index.pack_size})


def use_config(config: Config) -> None:
    config.items()
    config.link_types()
    config.lock_timeout()
    config.pack_small()
    for cfg in remote_configs(config).values():
        fsspec_kwargs(cfg.protocol, cfg.options)


TARGETS: dict[str, Target] = {
    "manifest": Target("manifest", MANIFEST_ORIGIN,
                       lambda d: Manifest.from_bytes(d, MANIFEST_ORIGIN), use_manifest),
    "pointer": Target("pointer", POINTER_ORIGIN,
                      lambda d: Pointer.from_bytes(d, POINTER_ORIGIN), use_pointer),
    "lock": Target("lock", LOCK_ORIGIN, lambda d: lockfile.from_bytes(d, LOCK_ORIGIN), use_lock),
    "pipeline": Target("pipeline", pipeline.FILENAME, parse_pipeline, use_pipeline),
    "params.yaml": Target("params.yaml", "params.yaml",
                          lambda d: params.parse(d, "params.yaml"), use_params),
    "params.json": Target("params.json", "params.json",
                          lambda d: params.parse(d, "params.json"), use_params),
    "params.toml": Target("params.toml", "params.toml",
                          lambda d: params.parse(d, "params.toml"), use_params),
    "record": Target("record", RECORD_ORIGIN,
                     lambda d: run_mod.parse_record(d, RECORD_ORIGIN), use_record),
    "index": Target("index", INDEX_ORIGIN, lambda d: PackIndex.from_bytes(d, INDEX_ORIGIN),
                    use_index),
}


def config_target(root: Path) -> Target:
    """`.dvlite/config` under `root`: the child writes the bytes, then reads them as dvlite does."""
    dvlite_dir = root / ".dvlite"
    dvlite_dir.mkdir(parents=True, exist_ok=True)
    path = dvlite_dir / "config"

    def parse(data: bytes) -> Config:
        path.write_bytes(data)
        return Config(str(dvlite_dir))

    return Target("config", str(path), parse, use_config)


def layout_target(root: Path) -> Target:
    """A local-directory remote whose `dvlite-remote.json` holds the bytes."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LAYOUT_FILE

    def parse(data: bytes):
        path.write_bytes(data)
        return Remote(RemoteConfig("fuzz", str(root))).read_layout()

    return Target("layout", LAYOUT_FILE, parse, lambda _layout: None)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check(target: Target, data: bytes, outcome: Outcome | None = None) -> Outcome:
    """The properties every parser keeps; each on its own line, so each is reported apart."""
    outcome = outcome or bounded(target.parse, target.use, data)
    shown = f"{target.name} on {data[:160]!r}{'...' if len(data) > 160 else ''} ({len(data)} bytes)"
    assert outcome.kind != "timeout", f"{shown}: hang: {outcome.describe()}"
    assert outcome.kind != "died", f"{shown}: child killed: {outcome.describe()}"
    assert outcome.kind != "unsound", f"{shown}: accepted an impossible file: {outcome.describe()}"
    assert outcome.kind != "escaped", f"{shown}: non-dvlite exception: {outcome.describe()}"
    if outcome.kind == "dvlite" and outcome.stage == "parse":
        assert not _CONTROL.search(outcome.message), (
            f"{shown}: error message is not one clean line: {outcome.message[:300]!r}")
        assert target.origin in outcome.message, (
            f"{shown}: error does not name {target.origin}: {outcome.message[:300]!r}")
    return outcome


# --- valid files, from dvlite's own writers -----------------------------------------------------

def _digest(i: int) -> Digest:
    return hash_bytes(f"object {i}".encode())


def _lock_entry(path: str, kind: str, i: int, cache: bool = True) -> lockfile.Entry:
    return lockfile.Entry(path, kind, _digest(i), 1000 + i, 3 if kind == "dir" else 1, cache)


def _stage_lock(name: str) -> lockfile.StageLock:
    return lockfile.StageLock(
        name, ["python src/prepare.py", "python src/train.py data/prepared model.pkl"],
        (_lock_entry("data/prepared", "dir", 1), _lock_entry("src/train.py", "file", 2, False)),
        {"params.yaml": {"train.alpha": 0.5, "train.layers": [64, 32], "seed": 7},
         "conf/extra.json": {"": {"name": "ü", "flag": True, "none": None}}},
        (_lock_entry("model.pkl", "file", 3), _lock_entry("metrics.json", "file", 4, False)),
    )


def seed_files() -> dict[str, list[bytes]]:
    manifest = Manifest.build([
        ManifestEntry("a/b.txt", _digest(1).hex, 12, False),
        ManifestEntry("bin/run.sh", _digest(2).hex, 0, True),
        ManifestEntry('odd "name"\\ü.bin', _digest(3).hex, 1 << 40, False),
    ]).to_bytes()
    pointers = [
        Pointer("file", _digest(4), 123, 1).to_bytes(),
        Pointer("dir", _digest(5), 4096, 3,
                Source("https://example.invalid/team/registry.git", "v1.0", "5d2f" + "0" * 36,
                       "data/images")).to_bytes(),
    ]
    lock = lockfile.Lock({"train": _stage_lock("train"), "prepare": _stage_lock("prepare")})
    body = pipeline.stage_doc("prepare", "python src/prepare.py raw data/prepared", ["raw", "src/prepare.py"],
                              ["data/prepared"], ["prepare.split"], ["prep.json"], None)
    yml = pipeline.append_stage(None, "prepare", body)
    body = pipeline.stage_doc("train", "python train.py", ["data/prepared"], ["model.pkl"],
                              ["train.alpha", "seed"], ["metrics.json"], "src")
    yml = pipeline.append_stage(yml, "train", body)
    rich = (b"stages:\n  eval:\n    cmd: [python eval.py, echo done]\n    wdir: .\n"
            b"    deps: [model.pkl]\n    params: [{conf/eval.toml: [threshold]}]\n"
            b"    plots: [{plots/roc.csv: {x: fpr, y: tpr}}]\n    frozen: false\n"
            b"    always_changed: true\n    desc: evaluate\n")
    params_doc = {"seed": 7, "train": {"alpha": 0.5, "layers": [64, 32], "name": "ü"},
                  "prepare": {"split": 0.2}}
    toml = (b'seed = 7\n[train]\nalpha = 0.5\nlayers = [64, 32]\nname = "\xc3\xbc"\n'
            b"when = 2024-01-02T03:04:05Z\n[prepare]\nsplit = 0.2\n")
    pack = build_pack([(hash_bytes(b).hex, b) for b in (b"one", b"two" * 50, b"", b"three")])
    record = lockfile.dump({"schema": lockfile.SCHEMA, "key": "0f3c9a",
                            "run": _stage_lock("run").to_doc()})
    return {
        "manifest": [manifest],
        "pointer": pointers,
        "lock": [lock.to_bytes()],
        "pipeline": [yml, rich],
        "params.yaml": [yaml.safe_dump(params_doc).encode()],
        "params.json": [json.dumps(params_doc, indent=2).encode()],
        "params.toml": [toml],
        "record": [record],
        "index": [pack.index.to_bytes()],
        "config": [_config_bytes()],
        "layout": [json.dumps({"format": "dvlite-remote", "layout": 2}).encode() + b"\n"],
    }


def _config_bytes() -> bytes:
    """A config written by Config.set, the real writer, in a scratch directory."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(os.path.join(tmp, ".dvlite"))
        cfg = Config(os.path.join(tmp, ".dvlite"))
        cfg.set("core.remote", "origin")
        cfg.set("core.lock_timeout", "10")
        cfg.set("cache.type", "reflink,copy")
        cfg.set("remote.origin.url", "s3://bucket/path")
        cfg.set("remote.origin.config_kwargs.retries.max_attempts", "3")
        cfg.set("remote.backup.url", "../backup")
        with open(os.path.join(tmp, ".dvlite", "config"), "rb") as f:
            return f.read()


SEEDS = seed_files()
TEXT_DUMPERS = {  # how a mutated document is written back, per target
    "manifest": "json", "params.json": "json", "layout": "json",
    "pointer": "yaml", "lock": "yaml", "pipeline": "yaml", "params.yaml": "yaml", "record": "yaml",
}


# --- hostile pieces ----------------------------------------------------------------------------

def deep(n: int, kind: str = "list") -> str:
    return "[" * n + "]" * n if kind == "list" else "{a: " * n + "1" + "}" * n


def deep_json(n: int, kind: str = "list") -> str:
    return "[" * n + "]" * n if kind == "list" else '{"a": ' * n + "1" + "}" * n


def bomb_flow(levels: int, fanout: int) -> str:
    """A YAML flow sequence whose last element expands to fanout**levels scalars."""
    parts = [f"&l0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    return "[" + ", ".join(parts) + "]"


def bomb_block(levels: int = 9, fanout: int = 9, indent: str = "") -> str:
    """The billion-laughs mapping, one anchor per line (`top` expands to fanout**levels)."""
    lines = [f"{indent}l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]")
    lines.append(f"{indent}top: *l{levels - 1}")
    return "\n".join(lines) + "\n"


TOKENS = [
    b"\x00", b"\xff", b"\xfe\xff", b"\xed\xa0\x80", b"\xc3", b"\x1b[2J", b"\r\n", b"\t",
    b"*a", b"&a ", b"&a [x, *a]", b"<<: *a\n", b"!!python/object/apply:os.system ['true']",
    b"!!binary aGk=", b"!!set {a, b}", b"!!timestamp 2001-12-14", b"? [a]\n: b\n", b"%YAML 1.1\n",
    b"---\n", b"\n...\n", b"'", b'"', b"\\", b"\\u0000", b"\\ud800", b"{", b"[", b"]", b"}",
    b": ", b"- ", b",", b"#", b"=", b"[[section]]\n", b"[remote \"x\"]\n",
    b"9" * 400, b"9" * 5000, b"-1", b"-0", b"1e999", b"-1e999", b".inf", b".nan", b"Infinity",
    b"NaN", b"18446744073709551616", b"0x7fffffffffffffff", b"1_000", b"0o777", b"0b1",
    b"../../escaped", b"/etc/passwd", b".git/hooks/pre-commit", b"a/../../x", b"null", b"~",
    b"true", b"yes", b"on", b"[]", b"{}", b'""', b"%(x)s", b"${x}",
]


def _hostile_values():
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
        st.sampled_from([2**63, 2**64, -1, 10**400, float("inf"), float("-inf"), float("nan"),
                         "", "\x00", "a\nb", "../../escaped", "/abs/path", ".git/hooks/pre-commit",
                         "a" * 5000, "@@DEEP:5000@@", "@@DEEP:900@@", "@@DEEPMAP:3000@@",
                         "@@BOMB:9:9@@", "@@BOMB:5:4@@", "@@HUGEINT:5000@@", "@@HUGEINT:4000@@"]),
    )
    return st.recursive(scalars, lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
        max_leaves=12)


_PLACEHOLDER = re.compile(r"""['"]?@@(DEEP|DEEPMAP|BOMB|HUGEINT):(\d+)(?::(\d+))?@@['"]?""")


def _expand(text: str, dialect: str) -> str:
    def one(m: re.Match) -> str:
        what, a, b = m[1], int(m[2]), int(m[3] or 0)
        if what == "DEEP":
            return deep(a) if dialect == "yaml" else deep_json(a)
        if what == "DEEPMAP":
            return deep(a, "map") if dialect == "yaml" else deep_json(a, "map")
        if what == "BOMB":
            return bomb_flow(a, b)
        return "9" * a
    return _PLACEHOLDER.sub(one, text)


def _slots(node, out: list) -> list:
    """(container, key) of every node below `node`: places a value can be swapped."""
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _slots(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)
    return out


def _dump(doc, dialect: str) -> bytes:
    if dialect == "json":
        text = json.dumps(doc, ensure_ascii=False, allow_nan=True)
    else:
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1 << 16)
    return _expand(text, dialect).encode("utf-8", "surrogatepass")


@st.composite
def doc_mutations(draw, name: str) -> bytes:
    """Parse a valid file, change its tree (swap, drop or add nodes), write it back."""
    dialect = TEXT_DUMPERS[name]
    raw = draw(st.sampled_from(SEEDS[name]))
    doc = copy.deepcopy(json.loads(raw) if dialect == "json" else yaml.safe_load(raw))
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(doc, [])
        if not slots:
            doc = draw(_hostile_values())
            break
        container, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["swap", "swap", "swap", "drop", "add", "wrap"]))
        if op == "swap":
            container[key] = draw(_hostile_values())
        elif op == "drop":
            del container[key]
        elif op == "wrap":
            container[key] = [container[key]] if draw(st.booleans()) else {"x": container[key]}
        elif isinstance(container, dict):
            container[draw(st.text(max_size=10))] = draw(_hostile_values())
        else:
            container.append(draw(_hostile_values()))
    return _dump(doc, dialect)


@st.composite
def byte_mutations(draw, name: str) -> bytes:
    """Flip, overwrite, cut, insert hostile tokens, splice pieces of valid files."""
    pool = [s for seeds in SEEDS.values() for s in seeds]
    data = bytearray(draw(st.sampled_from(SEEDS[name])))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "set", "cut", "drop", "token", "token", "splice", "dup"]))
        if op == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[min(at, len(data) - 1)] = draw(st.sampled_from([0, 0xff, 0x80, ord("\n"), ord(":")]))
        elif op == "cut":
            del data[at:]
        elif op == "drop":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=8))
        elif op == "splice":
            other = draw(st.sampled_from(pool))
            i = draw(st.integers(0, len(other)))
            data[at:at] = other[i:i + draw(st.integers(1, 64))]
        elif op == "dup" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[i:i + draw(st.integers(1, 64))] * draw(st.integers(1, 50))
    return bytes(data)


def inputs(name: str):
    parts = [st.binary(max_size=2048), byte_mutations(name)]
    if name in TEXT_DUMPERS:
        parts.append(doc_mutations(name))
    return st.one_of(*parts)


# --- pack indexes with a correct checksum ------------------------------------------------------

_HEAD = struct.Struct("<8s16sQQ")
_ENTRY = struct.Struct("<16sQQ")
U64 = st.one_of(st.sampled_from([0, 1, 7, 8, 9, 2**31, 2**32, 2**62, 2**63 - 1, 2**63, 2**64 - 1]),
                st.integers(0, 2**64 - 1), st.integers(0, 4096))


def sealed(body: bytes) -> bytes:
    """An index body with its correct trailing checksum."""
    return body + bytes.fromhex(hash_bytes(body).hex)


@st.composite
def crafted_indexes(draw) -> bytes:
    """Checksum-correct indexes with arbitrary counts, sizes, offsets and lengths."""
    entries = draw(st.lists(st.tuples(st.binary(min_size=16, max_size=16), U64, U64), max_size=6))
    count = draw(st.one_of(st.just(len(entries)), U64))
    magic = draw(st.sampled_from([b"DVLIDX01", b"DVLIDX01", b"DVLIDX02", b"\x00" * 8]))
    body = _HEAD.pack(magic, draw(st.binary(min_size=16, max_size=16)), draw(U64), count)
    body += b"".join(_ENTRY.pack(*e) for e in entries)
    if draw(st.booleans()):  # a mutated real index, re-sealed so the mutation is read
        real = bytearray(SEEDS["index"][0][:-16])
        at = draw(st.integers(0, len(real) - 8))
        real[at:at + 8] = struct.pack("<Q", draw(U64))
        body = bytes(real)
    if draw(st.integers(0, 9)) == 0:
        body += draw(st.binary(max_size=40))  # trailing garbage, sealed
    return sealed(body)


# --- the fuzz tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_parser_raises_only_dvlite_errors_within_bounds(name):
    target = TARGETS[name]

    @FUZZ
    @given(data=inputs(name))
    @example(data=b"")
    @example(data=SEEDS[name][0])
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


def test_fuzz_config_reader(tmp_path):
    target = config_target(tmp_path / "repo")

    @FUZZ
    @given(data=inputs("config"))
    @example(data=SEEDS["config"][0])
    @example(data=b"[core]\nlock_timeout = 1e999\n")
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


def test_fuzz_remote_layout_file(tmp_path):
    target = layout_target(tmp_path / "remote")

    @FUZZ
    @given(data=inputs("layout"))
    @example(data=SEEDS["layout"][0])
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


def test_fuzz_pack_index_with_correct_checksum():
    target = TARGETS["index"]

    @FUZZ
    @given(data=crafted_indexes())
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


def test_the_seed_files_parse(tmp_path):
    """The fuzzers start from files dvlite itself accepts (else they test little)."""
    targets = {**TARGETS, "config": config_target(tmp_path / "repo"),
               "layout": layout_target(tmp_path / "remote")}
    for name, target in targets.items():
        for data in SEEDS[name]:
            outcome = bounded(target.parse, target.use, data)
            assert outcome.kind == "ok", f"{name}: {outcome.describe()}"


# --- explicit regressions from the issue -----------------------------------------------------

LOCK_HEAD = "schema: 1\nstages:\n  train:\n    cmd: python train.py\n"


def lock_with_params(value_yaml: str) -> bytes:
    return (LOCK_HEAD + "    params:\n      params.yaml:\n        alpha: " + value_yaml + "\n").encode()


def test_alias_bomb_under_lock_params_is_rejected_naming_the_file():
    data = (LOCK_HEAD + "    params:\n      params.yaml:\n" + bomb_block(indent="        ")).encode()
    outcome = check(TARGETS["lock"], data)
    assert outcome.kind == "dvlite" and outcome.stage == "parse", (
        f"a billion-laughs lock was accepted: {outcome.describe()}")


@pytest.mark.parametrize("where", ["params.yaml", "dvlite.yaml", "pointer", "record"])
def test_alias_bombs_in_other_yaml_files_stay_bounded(where):
    bomb = bomb_flow(9, 9)
    data = {
        "params.yaml": f"seed: 1\ntrain: {bomb}\n",
        "dvlite.yaml": f"stages:\n  s:\n    cmd: echo\n    desc: {bomb}\n",
        "pointer": f"version: 1\nkind: file\nhash: xxh3-128\ndigest: {'0' * 32}\nsize: 1\nextra: {bomb}\n",
        "record": f"schema: 1\nkey: k\nrun:\n  cmd: echo\n  params:\n    p.yaml:\n      a: {bomb}\n",
    }[where].encode()
    name = {"dvlite.yaml": "pipeline"}.get(where, where)
    check(TARGETS[name], data)


DEEP_CASES = {
    "manifest": lambda n: ('{"version": 1, "algo": "xxh3-128", "entries": ' + deep_json(n) + "}").encode(),
    "pointer": lambda n: f"version: 1\nkind: file\nhash: xxh3-128\ndigest: {'0' * 32}\nsize: {deep(n)}\n".encode(),
    "lock": lambda n: lock_with_params(deep(n)),
    "pipeline": lambda n: f"stages:\n  s:\n    cmd: echo\n    deps: {deep(n)}\n".encode(),
    "params.yaml": lambda n: f"a: {deep(n)}\n".encode(),
    "params.json": lambda n: ('{"a": ' + deep_json(n) + "}").encode(),
    "params.toml": lambda n: f"a = {deep(n)}\n".encode(),
    "record": lambda n: f"schema: 1\nkey: k\nrun:\n  cmd: echo\n  params:\n    p.yaml:\n      a: {deep(n)}\n".encode(),
}


@pytest.mark.parametrize("name", sorted(DEEP_CASES))
@pytest.mark.parametrize("depth", [5000, 900])
def test_deeply_nested_document_is_an_error_or_parses(name, depth):
    check(TARGETS[name], DEEP_CASES[name](depth))


@pytest.mark.parametrize("name", sorted(n for n in TARGETS if n != "index"))
def test_deeply_nested_top_level_document(name):
    dialect = "json" if TEXT_DUMPERS.get(name) == "json" else "yaml"
    check(TARGETS[name], (deep_json(5000) if dialect == "json" else deep(5000, "map")).encode())


def test_deeply_nested_remote_layout_file(tmp_path):
    check(layout_target(tmp_path / "remote"), ('{"layout": ' + deep_json(5000) + "}").encode())


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e999", "9" * 5000, "[2]", "true"])
def test_remote_layout_with_odd_numbers(tmp_path, value):
    check(layout_target(tmp_path / "remote"), f'{{"format": "dvlite-remote", "layout": {value}}}'.encode())


@pytest.mark.parametrize("size", ["Infinity", "1e999", "-1", "NaN", "9" * 5000])
def test_manifest_with_odd_sizes(size):
    data = ('{"version": 1, "algo": "xxh3-128", "entries": [\n'
            f'["a.txt", "{"0" * 32}", {size}, false]\n]}}\n').encode()
    check(TARGETS["manifest"], data)


HUGE = "9" * 5000  # beyond Python's 4,300-digit limit for int(str): a ValueError if unguarded

HUGE_INT_CASES = {
    "pointer": f"version: 1\nkind: file\nhash: xxh3-128\ndigest: {'0' * 32}\nsize: {HUGE}\n",
    "lock": LOCK_HEAD + "    outs:\n    - path: model.pkl\n      kind: file\n      hash: xxh3-128\n"
            f"      digest: {'0' * 32}\n      size: {HUGE}\n      files: 1\n",
    "pipeline": f"stages:\n  s:\n    cmd: echo\n    desc: {HUGE}\n",
    "params.yaml": f"seed: {HUGE}\n",
    "params.toml": f"seed = {HUGE}\n",
    "params.json": f'{{"seed": {HUGE}}}',
    "record": f"schema: 1\nkey: {HUGE}\nrun:\n  cmd: echo\n",
    "manifest": f'{{"version": 1, "algo": "xxh3-128", "entries": [["a", "{"0" * 32}", {HUGE}, false]]}}',
}


@pytest.mark.parametrize("name", sorted(HUGE_INT_CASES))
def test_integer_with_5000_digits(name):
    check(TARGETS[name], HUGE_INT_CASES[name].encode())


def test_manifest_with_a_bad_digest_names_the_file():
    data = Manifest.build([ManifestEntry("a.txt", "0" * 32, 1, False)]).to_bytes().replace(
        b"0" * 32, b"0" * 20)
    outcome = check(TARGETS["manifest"], data)
    assert outcome.kind == "dvlite", outcome.describe()


@pytest.mark.parametrize("outs", ['["/abs\\npath\\e[31m"]', '["a\\nb", "a\\nb"]', '["../x\\rFAKE"]'])
def test_pipeline_errors_quote_hostile_paths_on_one_line(outs):
    """A path with a newline or an escape sequence must not forge lines on the terminal."""
    outcome = check(TARGETS["pipeline"], f"stages:\n  s:\n    cmd: echo\n    outs: {outs}\n".encode())
    assert outcome.kind == "dvlite", outcome.describe()


def test_long_stage_chain_in_dvlite_yaml():
    """1,500 stages, each reading the next one's out (downstream first, so a depth-first walk
    goes 1,500 deep): a valid file a few dozen KiB long."""
    lines = ["stages:"]
    for i in range(1500):
        lines += [f"  s{i}:", f"    cmd: echo {i}", f"    outs: [o{i}]"]
        if i < 1499:
            lines.append(f"    deps: [o{i + 1}]")
    check(TARGETS["pipeline"], ("\n".join(lines) + "\n").encode())


def _index(entries: dict[str, tuple[int, int]], pack_size: int) -> bytes:
    """An index written by the real writer: its checksum is correct whatever it says."""
    return PackIndex("ab" * 16, pack_size, entries).to_bytes()


@pytest.mark.parametrize("offset,length,pack_size", [
    (2**63, 10, 100), (8, 2**63, 100), (2**63, 2**63, 2**64 - 1), (2**64 - 1, 1, 100),
    (8, 10, 2**63), (0, 4, 100), (90, 20, 100),
])
def test_pack_index_with_correct_checksum_and_huge_numbers(offset, length, pack_size):
    data = _index({"cd" * 16: (offset, length), "ef" * 16: (8, 4)}, pack_size)
    check(TARGETS["index"], data)


def test_pack_index_with_huge_count_and_correct_checksum():
    body = _HEAD.pack(b"DVLIDX01", b"\xab" * 16, 100, 2**62) + _ENTRY.pack(b"\xcd" * 16, 8, 4)
    outcome = check(TARGETS["index"], sealed(body))
    assert outcome.kind == "dvlite", outcome.describe()


# --- through the real CLI --------------------------------------------------------------------

def run_bounded(cwd: Path, *args: str, seconds: float = CLI_SECONDS) -> subprocess.CompletedProcess:
    """The real CLI, like conftest.run, but killed after `seconds` and with bounded memory:
    today's alias bomb would otherwise take 30 s and gigabytes of a shared machine."""
    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CLI_MEMORY, CLI_MEMORY))

    t0 = time.monotonic()
    try:
        proc = subprocess.run([*DVLITE, *args], check=False, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **GIT_ENV}, timeout=seconds, preexec_fn=limits)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"dvlite {' '.join(args)} still running after {seconds:.0f} s "
                             f"(stderr so far: {exc.stderr!r})") from None
    proc.elapsed = time.monotonic() - t0
    return proc


def assert_one_line_error(proc: subprocess.CompletedProcess, names: str) -> None:
    shown = f"exit {proc.returncode} after {proc.elapsed:.1f} s\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode != 0, shown
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, shown
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and names in errors[0], shown


@pytest.fixture
def pipeline_repo(repo: Path) -> Path:
    """A committed one-stage pipeline reading param `alpha`, reproduced once."""
    (repo / "params.yaml").write_text("alpha: 1\n")
    run(repo, "stage", "add", "-n", "train", "-p", "alpha", "-o", "model.txt", "echo hi > model.txt")
    run(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "pipeline")
    return repo


@pytest.mark.parametrize("command", [["status"], ["repro", "--dry"]])
def test_cli_on_alias_bomb_lock_fails_fast_naming_dvlite_lock(pipeline_repo, command):
    data = (LOCK_HEAD.replace("python train.py", "echo hi > model.txt")
            + "    params:\n      params.yaml:\n" + bomb_block(indent="        ")
            + "        alpha: *l8\n")
    (pipeline_repo / "dvlite.lock").write_text(data)
    proc = run_bounded(pipeline_repo, *command)
    assert_one_line_error(proc, "dvlite.lock")
    assert proc.elapsed < 5, f"took {proc.elapsed:.1f} s"


@pytest.fixture
def packed_repo(repo: Path) -> tuple[Path, dict[str, bytes]]:
    """Small files (packed in the cache) and one 2 MiB file (loose), committed."""
    files = {f"data/f{i:02d}.txt": f"small file {i}\n".encode() * (i + 1) for i in range(20)}
    files["big.bin"] = os.urandom(2 << 20)
    write_tree(repo, files)
    run(repo, "add", "data", "big.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    return repo, files


def _rewrite_index(idx: Path, victim: str | None, offset: int, length: int, pack_size: int | None) -> None:
    index = PackIndex.from_bytes(idx.read_bytes(), str(idx))
    entries = dict(index.entries)
    if victim:
        entries[victim] = (offset, length)
    os.chmod(idx, 0o644)
    idx.write_bytes(PackIndex(index.pack, pack_size or index.pack_size, entries).to_bytes())


DAMAGE = {  # name -> (offset, length, pack_size), None = keep
    "offset 2**63": (2**63, None, None),
    "length 2**63": (None, 2**63, None),
    "pack size 2**63": (None, None, 2**63),
    "length and pack size 2**63": (None, 2**63, 2**63 + 16),
}


def assert_clean_result(proc, what: str, damage: str, files: dict[str, bytes], root: Path) -> None:
    """No crash; what was written is right; a loose object is restored whatever the pack says.
    An entry beyond its pack cannot be read (non-zero exit); a wrong pack size alone harms
    no object, so the command may succeed, but then with every file restored."""
    shown = f"{what}: exit {proc.returncode} after {proc.elapsed:.1f} s\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, shown
    big = root / "big.bin"
    assert big.exists() and big.read_bytes() == files["big.bin"], f"a loose object was not restored: {shown}"
    for rel, body in files.items():  # what was written is right; the damaged pack may be missing
        if (root / rel).exists():
            assert (root / rel).read_bytes() == body, f"{rel} restored with the wrong bytes: {shown}"
    if damage == "pack size 2**63":  # the only damage that leaves every object readable
        assert proc.returncode != 0 or all((root / rel).exists() for rel in files), shown
    else:
        assert proc.returncode != 0, shown


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_local_pack_index_with_huge_numbers_fails_cleanly(packed_repo, damage):
    repo, files = packed_repo
    (idx,) = (repo / ".dvlite" / "cache" / "packs").glob("*.idx")
    victim = hash_bytes(files["data/f05.txt"]).hex
    old = PackIndex.from_bytes(idx.read_bytes(), str(idx)).entries[victim]
    offset, length, pack_size = DAMAGE[damage]
    _rewrite_index(idx, victim, offset if offset is not None else old[0],
                   length if length is not None else old[1], pack_size)
    for rel in files:
        (repo / rel).unlink()

    assert_clean_result(run_bounded(repo, "checkout"), "checkout", damage, files, repo)
    fsck = run_bounded(repo, "fsck")
    shown = f"fsck: exit {fsck.returncode}\n{fsck.stdout}\n{fsck.stderr}"
    assert "Traceback" not in fsck.stderr and "unexpected" not in fsck.stderr, shown
    assert fsck.returncode != 0, f"fsck does not notice an index that lies about its pack: {shown}"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_remote_pack_index_with_huge_numbers_fails_cleanly(packed_repo, tmp_path, damage):
    repo, files = packed_repo
    remote = tmp_path / "remote"
    run(repo, "remote", "add", "-d", "origin", str(remote))
    git(repo, "commit", "-qam", "remote")
    run(repo, "push")
    victim = hash_bytes(files["data/f05.txt"]).hex
    for idx in (remote / "packs").glob("*.idx"):
        entries = PackIndex.from_bytes(idx.read_bytes(), str(idx)).entries
        if victim in entries:
            offset, length, pack_size = DAMAGE[damage]
            _rewrite_index(idx, victim, offset if offset is not None else entries[victim][0],
                           length if length is not None else entries[victim][1], pack_size)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    assert_clean_result(run_bounded(clone, "pull"), "pull", damage, files, clone)

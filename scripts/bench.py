#!/usr/bin/env python3
"""Benchmark dvlite against the floor commands on the same data.

Generates two deterministic datasets in a work directory:

  big   one 2 GiB file (a 64 MiB random block, repeated with a per-block counter)
  tree  50,000 files of 1-16 KiB in ~200 folders

and, for each, times in fresh git repositories (`git init` + `dvlite init`):

  add                     `dvlite add DATA`
  status                  no-op `dvlite status` (pointer committed, nothing changed)
  checkout                `dvlite checkout` after the workspace copy was removed
  status_after_checkout   `dvlite status` right after that checkout

next to the floors on the same data: `cp` / `cp -a` (to a sibling directory on the
same filesystem, removed afterwards), the same followed by `sync`, `cat` of the data
to /dev/null, and for the tree `git add` and `git status` of the tree committed in git.

Every command runs as a child process. Wall time is measured around it; CPU time
(user + system, children included) comes from os.wait4; peak RSS comes from
`/usr/bin/time -f %M` (os.wait4 is the fallback, see `measure`). Floors and tools
run in interleaved rounds, so a burst of load from other processes hits both sides.

The page cache cannot be dropped reliably without root, so the data is read (`cat`)
before each round, and every tool sees a warm page cache; `sync` runs (untimed)
before each timed command so nobody pays for another's dirty pages; many-file trees
made by a round are deleted only after the last round (see `discard`). With
--wait-idle, each timed command first waits for the other processes on a shared
machine to leave the CPUs idle (and re-reads the data after a long wait).

Each step is repeated --repeat times (default 3): the median wall and CPU times
are reported, the peak RSS is the largest seen. Stdlib only; run it with the
project's venv:

    .venv/bin/python scripts/bench.py [--scale F] [--dataset big|tree|all]
                                      [--repeat N] [--json] [--workdir DIR]
                                      [--keep-data] [--save FILE]

Adding another tool (issue 4: DVC, installed into its own venv): write a function
`bench_<tool>(ctx, ds, round) -> {step: Run}` like `bench_dvlite` below and register
it in TOOLS; the tables and the JSON pick it up as extra columns.
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

BIG_SIZE = 2 * GIB
BIG_BLOCK = 64 * MIB
TREE_FILES = 50_000
TREE_FOLDERS = 200
TREE_MIN, TREE_MAX = 1 * KIB, 16 * KIB
SEED = 20261127
# A fixed, old mtime for every generated file: deterministic metadata, and no file
# is "racily clean" (modified within a stat-cache tick of being hashed).
DATA_MTIME = 1_767_225_600  # 2026-01-01T00:00:00Z

STEPS = ("add", "status", "checkout", "status_after_checkout")
STEP_LABELS = {
    "add": "add",
    "status": "status (no-op)",
    "checkout": "checkout (data deleted)",
    "status_after_checkout": "status after checkout",
}
MARKER = ".dvlite-bench"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,  # no user config (fsmonitor, hooks...) skews git or dvlite
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- measuring --------------------------------------------------------------------

@dataclass
class Run:
    seconds: float  # wall clock
    rss_kib: int
    cpu: float = 0.0  # user + system CPU seconds of the command and its children
    stdout: str = ""


class CommandFailed(RuntimeError):
    pass


@dataclass
class Ctx:
    workdir: str
    scratch: str
    repeat: int
    env: dict[str, str]
    dvlite: list[str]
    use_time: bool = True
    defer_deletes: bool = False  # see `discard`
    wait_idle: bool = False  # see `wait_for_idle`
    waited: float = 0.0
    gave_up: int = 0
    rewarm: Callable[[], None] | None = None  # re-reads the current dataset after a long wait


TIME = "/usr/bin/time"


def measure(ctx: Ctx, cmd: list[str], cwd: str, capture: bool = True) -> Run:
    """Run `cmd` once (after an untimed sync); wall seconds and peak RSS of the command.

    The peak RSS comes from `/usr/bin/time -f %M` when it exists: a child forked straight
    from this script inherits the script's own high-water RSS (Linux keeps it across
    exec), so os.wait4's ru_maxrss would report at least this process's peak (e.g. the
    64 MiB generation block). Without /usr/bin/time we fall back to os.wait4 anyway.
    """
    os.sync()
    if ctx.wait_idle and wait_for_idle(ctx) > 20 and ctx.rewarm is not None:
        ctx.rewarm()  # the page cache may have dropped data idle for a minute; read it again
        os.sync()
    with tempfile.TemporaryFile(dir=ctx.scratch) as out, \
            tempfile.TemporaryFile(dir=ctx.scratch) as err, \
            tempfile.NamedTemporaryFile(dir=ctx.scratch, mode="r") as rss_file:
        full = [TIME, "-q", "-f", "%M", "-o", rss_file.name, *cmd] if ctx.use_time else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(
            full, cwd=cwd, env=ctx.env, stdin=subprocess.DEVNULL,
            stdout=out if capture else subprocess.DEVNULL, stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime  # /usr/bin/time itself adds ~1 ms
        if ctx.use_time:
            lines = rss_file.read().split()
            rss_kib = int(lines[-1]) if lines and lines[-1].isdigit() else 0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise CommandFailed(
            f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}\n"
            f"stdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-2000:]}"
        )
    return Run(seconds, rss_kib, cpu, stdout)


def _cpu_ticks() -> tuple[int, int]:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def wait_for_idle(ctx: Ctx, busy_max: float = 0.25, timeout: float = 120.0) -> float:
    """On a shared machine, wait until other processes leave the CPUs mostly idle.

    Between commands this script itself is idle, so any CPU time spent is someone
    else's. Waits until two consecutive half-second windows are below `busy_max`
    of all CPUs, or `timeout` seconds (then counts it in `gave_up`).
    """
    start = time.monotonic()
    calm = 0
    busy0, total0 = _cpu_ticks()
    while calm < 2:
        time.sleep(0.5)
        busy1, total1 = _cpu_ticks()
        fraction = (busy1 - busy0) / max(1, total1 - total0)
        busy0, total0 = busy1, total1
        calm = calm + 1 if fraction < busy_max else 0
        if time.monotonic() - start > timeout:
            ctx.gave_up += 1
            break
    waited = time.monotonic() - start
    ctx.waited += waited
    return waited


def quiet(ctx: Ctx, cmd: list[str], cwd: str) -> str:
    """An untimed helper command; raises on failure."""
    proc = subprocess.run(cmd, cwd=cwd, env=ctx.env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}\n{proc.stderr}")
    return proc.stdout


# --- datasets ---------------------------------------------------------------------

@dataclass
class Dataset:
    name: str
    target: str  # the file or directory name inside a repository
    params: dict
    description: str
    home: str = ""  # the directory holding the pristine copy (`home/target`)
    current: str = ""  # where the pristine copy is right now (moved into repositories)

    @property
    def path(self) -> str:
        return os.path.join(self.home, self.target)

    @property
    def is_dir(self) -> bool:
        return self.name == "tree"


def make_datasets(scale: float) -> dict[str, Dataset]:
    big_size = max(MIB, int(BIG_SIZE * scale))
    files = max(10, round(TREE_FILES * scale))
    folders = max(2, min(files, round(TREE_FOLDERS * scale)))
    return {
        "big": Dataset(
            "big", "big.bin", {"size": big_size, "block": min(BIG_BLOCK, big_size), "seed": SEED},
            f"one {big_size / GIB:.2f} GiB file" if big_size >= GIB
            else f"one {big_size / MIB:.1f} MiB file",
        ),
        "tree": Dataset(
            "tree", "tree",
            {"files": files, "folders": folders, "min": TREE_MIN, "max": TREE_MAX, "seed": SEED},
            f"{files:,} files of 1-16 KiB in {folders} folders",
        ),
    }


def gen_big(path: str, size: int, block_size: int, seed: int) -> None:
    block = bytearray(random.Random(seed).randbytes(block_size))
    view = memoryview(block)
    with open(path, "wb") as f:
        written = index = 0
        while written < size:
            block[:8] = index.to_bytes(8, "little")  # every block differs
            n = min(block_size, size - written)
            f.write(view[:n])
            written += n
            index += 1
    os.utime(path, (DATA_MTIME, DATA_MTIME))


def gen_tree(top: str, files: int, folders: int, min_size: int, max_size: int, seed: int) -> int:
    rng = random.Random(seed)
    pool = rng.randbytes(MIB + max_size)
    dirs = [os.path.join(top, f"g{i // 10:02d}", f"d{i:03d}") for i in range(folders)]
    for d in dirs:
        os.makedirs(d)
    total = 0
    for i in range(files):
        size = rng.randint(min_size, max_size)
        offset = rng.randrange(0, len(pool) - size)
        data = bytearray(pool[offset:offset + size])
        data[:8] = i.to_bytes(8, "little")  # every file differs
        path = os.path.join(dirs[i % folders], f"f{i:05d}.bin")
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (DATA_MTIME, DATA_MTIME))
        total += size
    for d in dirs:
        os.utime(d, (DATA_MTIME, DATA_MTIME))
    return total


def ensure_data(ds: Dataset, data_root: str) -> None:
    """Generate `ds` under data_root/NAME unless an identical copy is already there."""
    ds.home = os.path.join(data_root, ds.name)
    params_file = os.path.join(data_root, ds.name + ".params.json")
    if os.path.exists(ds.path) and os.path.exists(params_file):
        with open(params_file) as f:
            if json.load(f) == ds.params:
                log(f"[{ds.name}] reusing generated data at {ds.path}")
                return
    with_params = dict(ds.params)
    if os.path.exists(params_file):
        os.unlink(params_file)
    if os.path.exists(ds.home):
        shutil.rmtree(ds.home)
    os.makedirs(ds.home)
    log(f"[{ds.name}] generating {ds.description} ...")
    start = time.perf_counter()
    if ds.is_dir:
        p = ds.params
        gen_tree(ds.path, p["files"], p["folders"], p["min"], p["max"], p["seed"])
    else:
        p = ds.params
        gen_big(ds.path, p["size"], p["block"], p["seed"])
    os.sync()
    log(f"[{ds.name}] generated in {time.perf_counter() - start:.1f}s")
    with open(params_file, "w") as f:
        json.dump(with_params, f)


def data_bytes(ds: Dataset) -> int:
    if not ds.is_dir:
        return os.path.getsize(ds.path)
    return sum(listing(ds.path).values())


def listing(top: str) -> dict[str, int]:
    out = {}
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, top)] = os.path.getsize(p)
    return out


def check_restored(ds: Dataset, restored: str, full: bool) -> None:
    """The checked-out copy has the pristine data's files and sizes (and bytes, when `full`)."""
    if ds.is_dir:
        want, got = listing(ds.path), listing(restored)
        if want != got:
            missing = sorted(set(want) - set(got))[:5]
            raise CommandFailed(f"checkout restored a different tree (e.g. missing {missing})")
        pairs = [(os.path.join(ds.path, r), os.path.join(restored, r)) for r in want]
    else:
        pairs = [(ds.path, restored)]
    for a, b in pairs:
        same = os.path.getsize(a) == os.path.getsize(b)
        if not same or (full and not filecmp.cmp(a, b, shallow=False)):
            raise CommandFailed(f"checkout restored different bytes for {b}")


def cat_cmd(ds: Dataset, path: str) -> list[str]:
    if ds.is_dir:
        return ["sh", "-c", 'find "$1" -type f -print0 | xargs -0 cat', "sh", path]
    return ["cat", path]


def warm_up(ctx: Ctx, ds: Dataset) -> None:
    """Read the data (wherever it is now) so the timed tools find it in the page cache."""
    subprocess.run(cat_cmd(ds, ds.current or ds.path), stdout=subprocess.DEVNULL, check=True)


# --- git repositories -------------------------------------------------------------

def new_git_repo(ctx: Ctx, path: str) -> None:
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    quiet(ctx, ["git", "init", "-q", "-b", "main"], path)


def move_in(ds: Dataset, repo: str) -> str:
    """Move the pristine data into `repo` (a rename: instant, metadata unchanged)."""
    dest = os.path.join(repo, ds.target)
    os.rename(ds.path, dest)
    ds.current = dest
    return dest


def move_out(ds: Dataset, repo: str) -> None:
    os.rename(os.path.join(repo, ds.target), ds.path)
    ds.current = ds.path


def discard(ctx: Ctx, path: str) -> None:
    """Remove `path` now, or (for many-file trees) move it aside until the dataset is done.

    On ext4 without a journal (this benchmark's reference machine) the inode allocator
    skips inodes deleted in the last minutes (`recently_deleted()`), re-checking each
    one on every create: creating 50,000 files right after deleting 50,000 costs several
    times more kernel time. Deleting between rounds would tax whichever command runs
    next (cp -a, git add, dvlite add or checkout alike), so trees are deleted at the end.
    """
    if not os.path.lexists(path):
        return
    if ctx.defer_deletes:
        trash = os.path.join(ctx.scratch, "trash")
        os.makedirs(trash, exist_ok=True)
        os.rename(path, os.path.join(trash, f"{len(os.listdir(trash)):04d}"))
    else:
        remove(path)


def empty_trash(ctx: Ctx) -> None:
    remove(os.path.join(ctx.scratch, "trash"))


def remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        for d, dirs, _ in os.walk(path):  # the dvlite cache is read-only
            for name in dirs:
                os.chmod(os.path.join(d, name), 0o755)
        os.chmod(path, 0o755)
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# --- floors -----------------------------------------------------------------------

FLOOR_LABELS = {
    "cp": "{cp} {target}",
    "cp+sync": "{cp} {target} && sync",
    "cat": "cat {target} > /dev/null",
    "git add": "git add {target}",
    "git status": "git status (tree committed)",
}


def floor_round(ctx: Ctx, ds: Dataset, r: int) -> dict[str, Run]:
    """One run of every floor command on `ds`."""
    out: dict[str, Run] = {}
    copy = os.path.join(ctx.scratch, "floor-copy")
    cp = ["cp", "-a"] if ds.is_dir else ["cp"]
    out["cp"] = measure(ctx, [*cp, ds.path, copy], ctx.scratch)
    discard(ctx, copy)
    out["cp+sync"] = measure(
        ctx, ["sh", "-c", 'cp "$@" && sync', "sh", *cp[1:], ds.path, copy], ctx.scratch
    )
    discard(ctx, copy)
    out["cat"] = measure(ctx, cat_cmd(ds, ds.path), ctx.scratch, capture=False)
    if ds.is_dir:
        repo = os.path.join(ctx.scratch, f"git-{ds.name}-{r}")
        new_git_repo(ctx, repo)
        move_in(ds, repo)
        try:
            out["git add"] = measure(ctx, ["git", "add", ds.target], repo)
            quiet(ctx, ["git", "commit", "-q", "-m", "data"], repo)
            run = measure(ctx, ["git", "status"], repo)
            if "nothing to commit" not in run.stdout:
                raise CommandFailed(f"git status is not clean:\n{run.stdout[-1000:]}")
            out["git status"] = run
        finally:
            move_out(ds, repo)
        discard(ctx, repo)
    return out


# Which floors stand beside which step (the first one is the reference for targets).
FLOORS_FOR = {
    "big": {
        "add": ["cp", "cp+sync", "cat"],
        "status": ["cat"],  # what a status without the stat cache would at least cost
        "checkout": ["cp", "cat"],
        "status_after_checkout": ["cat"],
    },
    "tree": {
        "add": ["cp", "cp+sync", "git add", "cat"],
        "status": ["git status"],
        "checkout": ["cp", "cat"],
        "status_after_checkout": ["git status", "cat"],
    },
}


# --- tools ------------------------------------------------------------------------

def bench_dvlite(ctx: Ctx, ds: Dataset, r: int) -> dict[str, Run]:
    """One round of every step in a fresh git repository with `dvlite init`."""
    runs: dict[str, Run] = {}
    dvl = ctx.dvlite
    repo = os.path.join(ctx.scratch, f"dvlite-{ds.name}-{r}")
    new_git_repo(ctx, repo)
    quiet(ctx, [*dvl, "init"], repo)
    quiet(ctx, ["git", "add", ".dvlite/config", ".dvlite/.gitignore"], repo)
    quiet(ctx, ["git", "commit", "-q", "-m", "init dvlite"], repo)
    move_in(ds, repo)
    try:
        runs["add"] = measure(ctx, [*dvl, "add", ds.target], repo)
        quiet(ctx, ["git", "add", ds.target + ".dvl", ".gitignore"], repo)
        quiet(ctx, ["git", "commit", "-q", "-m", "track data"], repo)
        run = measure(ctx, [*dvl, "status"], repo)
        if "up to date" not in run.stdout:
            raise CommandFailed(f"dvlite status is not clean:\n{run.stdout[-1000:]}")
        runs["status"] = run
    finally:
        move_out(ds, repo)  # the workspace copy is gone, as after `rm -rf`
    runs["checkout"] = measure(ctx, [*dvl, "checkout"], repo)
    check_restored(ds, os.path.join(repo, ds.target), full=(r == 0))
    run = measure(ctx, [*dvl, "status"], repo)
    if "up to date" not in run.stdout:
        raise CommandFailed(f"dvlite status after checkout is not clean:\n{run.stdout[-1000:]}")
    runs["status_after_checkout"] = run
    discard(ctx, repo)
    return runs


# One function per tool: (ctx, dataset, round) -> {step: Run}, one Run per step in STEPS.
# Issue 4 adds "dvc": bench_dvc here — DVC from its own venv (`dvc add`, `dvc status`,
# `dvc checkout` after removing the data), in the same shape.
TOOLS: dict[str, Callable[[Ctx, Dataset, int], dict[str, Run]]] = {
    "dvlite": bench_dvlite,
}


# --- reporting --------------------------------------------------------------------

def summary(runs: list[Run]) -> dict:
    return {
        "seconds": statistics.median(r.seconds for r in runs),
        "min_seconds": min(r.seconds for r in runs),
        "cpu_seconds": statistics.median(r.cpu for r in runs),
        "rss_mib": max(r.rss_kib for r in runs) / 1024,
        "runs": [round(r.seconds, 4) for r in runs],
        "cpu_runs": [round(r.cpu, 4) for r in runs],
    }


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def bench_dataset(ctx: Ctx, ds: Dataset) -> dict:
    log(f"[{ds.name}] warm-up read of the data")
    warm_up(ctx, ds)
    ctx.defer_deletes = ds.is_dir
    load_start = loadavg()
    floors: dict[str, list[Run]] = {}
    tools: dict[str, dict[str, list[Run]]] = {name: {s: [] for s in STEPS} for name in TOOLS}
    # Rounds interleave the floors and the tools, so a burst of load on a shared
    # machine hits both sides of a ratio rather than one.
    ctx.rewarm = lambda: warm_up(ctx, ds)
    for r in range(ctx.repeat):
        if r:
            warm_up(ctx, ds)  # page cache idle for a minute may be reclaimed (see docs)
        log(f"[{ds.name}] round {r + 1}/{ctx.repeat}: floors")
        for key, run in floor_round(ctx, ds, r).items():
            floors.setdefault(key, []).append(run)
        for name, fn in TOOLS.items():
            log(f"[{ds.name}] round {r + 1}/{ctx.repeat}: {name}")
            for step, run in fn(ctx, ds, r).items():
                tools[name][step].append(run)
    log(f"[{ds.name}] removing the rounds' copies and repositories")
    empty_trash(ctx)
    ctx.defer_deletes = False
    cp = "cp -a" if ds.is_dir else "cp"
    steps = {}
    for step in STEPS:
        steps[step] = {
            "label": STEP_LABELS[step],
            "tools": {name: summary(runs[step]) for name, runs in tools.items()},
            "floors": [
                {"key": k, "command": FLOOR_LABELS[k].format(cp=cp, target=ds.target),
                 **summary(floors[k])}
                for k in FLOORS_FOR[ds.name][step]
                if k in floors
            ],
        }
    return {
        "description": ds.description,
        "bytes": data_bytes(ds),
        "params": ds.params,
        "loadavg": {"start": load_start, "end": loadavg()},
        "steps": steps,
    }


def targets(results: dict) -> list[dict]:
    """The issue's targets, judged on median wall time (the CPU-time ratio beside it)."""
    wanted = [
        ("tree", "status", "git status", 3.0, "no-op status on the tree within 3x of git status"),
        ("big", "add", "cp", 1.5, "add of the big file within 1.5x of cp"),
    ]
    out = []
    for ds, step, floor_key, limit, text in wanted:
        if ds not in results:
            continue
        st = results[ds]["steps"][step]
        dv = st["tools"]["dvlite"]
        floor = next(f for f in st["floors"] if f["key"] == floor_key)
        ratio = dv["seconds"] / floor["seconds"]
        cpu_ratio = dv["cpu_seconds"] / floor["cpu_seconds"] if floor["cpu_seconds"] else None
        out.append({"target": text, "ratio": ratio, "cpu_ratio": cpu_ratio, "limit": limit,
                    "met": ratio <= limit})
    return out


def table(name: str, res: dict) -> str:
    tools = list(next(iter(res["steps"].values()))["tools"])
    head = ["step"]
    for t in tools:
        head += [f"{t} s", f"{t} CPU s", f"{t} RSS MiB"]
    head += ["floor", "floor s", "floor CPU s"]
    head += [f"{t}/floor" for t in tools] + [f"{t}/floor CPU" for t in tools]
    rows = [head]

    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}x" if b else "-"

    for step in res["steps"].values():
        floors = step["floors"] or [{"command": "-", "seconds": None, "cpu_seconds": None}]
        for i, fl in enumerate(floors):
            row = [step["label"] if i == 0 else ""]
            for t in tools:
                s = step["tools"][t]
                row += ([f"{s['seconds']:.3f}", f"{s['cpu_seconds']:.3f}", f"{s['rss_mib']:.0f}"]
                        if i == 0 else ["", "", ""])
            row += [
                fl["command"],
                f"{fl['seconds']:.3f}" if fl["seconds"] else "-",
                f"{fl['cpu_seconds']:.3f}" if fl["cpu_seconds"] is not None else "-",
            ]
            row += [ratio(step["tools"][t]["seconds"], fl["seconds"]) for t in tools]
            row += [ratio(step["tools"][t]["cpu_seconds"], fl["cpu_seconds"]) for t in tools]
            rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    numeric = {i for i, h in enumerate(head) if h.endswith((" s", "MiB", "/floor", " CPU"))}

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))
        ) + " |"

    sep = "|" + "|".join(
        "-" * (w + 1) + ":" if i in numeric else "-" * (w + 2) for i, w in enumerate(widths)
    ) + "|"
    title = (f"{name}: {res['description']}, {res['bytes'] / MIB:,.1f} MiB (warm page cache; "
             f"load average {res['loadavg']['start']} -> {res['loadavg']['end']})")
    return "\n".join([title, "", fmt(rows[0]), sep, *map(fmt, rows[1:])])


# --- the machine ------------------------------------------------------------------

def fs_type(path: str) -> str:
    path = os.path.realpath(path)
    best, kind = "", "?"
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            mnt = parts[1].replace("\\040", " ")
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, parts[2]
    return kind


def source_revision(ctx: Ctx) -> str:
    """The last commit that changed dvlite/ in this checkout, and whether dvlite/ has local edits."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = quiet(ctx, ["git", "log", "-1", "--format=%h", "--", "dvlite"], root).strip()
        dirty = quiet(ctx, ["git", "status", "--porcelain", "--", "dvlite"], root).strip()
    except CommandFailed:
        return "unknown"
    return head + (" + uncommitted changes in dvlite/" if dirty else "")


def machine(ctx: Ctx) -> dict:
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    n = max(3, ctx.repeat)
    startup = {
        "dvlite --version": summary(
            [measure(ctx, [*ctx.dvlite, "--version"], ctx.scratch) for _ in range(n)]
        ),
        "python -c pass": summary(
            [measure(ctx, [sys.executable, "-c", "pass"], ctx.scratch) for _ in range(n)]
        ),
    }
    return {
        "date": datetime.date.today().isoformat(),
        "nproc": os.cpu_count(),
        "memory": mem,
        "cpu": cpu,
        "filesystem": fs_type(ctx.workdir),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dvlite": quiet(ctx, [*ctx.dvlite, "--version"], ctx.scratch).strip(),
        "git": quiet(ctx, ["git", "--version"], ctx.scratch).strip(),
        "source": source_revision(ctx),
        "loadavg_start": loadavg(),
        "startup": startup,
    }


# --- main -------------------------------------------------------------------------

def dvlite_command() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "dvlite")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "dvlite"]


def prepare_workdir(workdir: str) -> None:
    os.makedirs(workdir, exist_ok=True)
    entries = set(os.listdir(workdir))
    if entries and MARKER not in entries:
        sys.exit(f"error: {workdir} is not empty and not a dvlite-bench work dir; pick another")
    open(os.path.join(workdir, MARKER), "w").close()


def needed_bytes(datasets: list[Dataset], repeat: int) -> int:
    # big: pristine + cp copy + dvlite cache + checked-out copy at a time (deleted as it goes);
    # tree: pristine + per round two cp copies, git objects, dvlite cache, checked-out copy
    # (kept until the dataset is done, see `discard`)
    return sum(
        (1 + 5 * repeat) * ds.params["files"] * (TREE_MAX + 4 * KIB) if ds.is_dir
        else 4 * ds.params["size"]
        for ds in datasets
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dvlite-bench"))
    ap.add_argument("--scale", type=float, default=1.0, help="shrink sizes and counts (e.g. 0.01)")
    ap.add_argument("--dataset", choices=("big", "tree", "all"), default="all")
    ap.add_argument("--repeat", type=int, default=3, help="runs per step; the median is reported")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    ap.add_argument("--save", metavar="FILE", help="also write the JSON report to FILE")
    ap.add_argument("--wait-idle", action="store_true",
                    help="before each timed command, wait until other processes leave the "
                         "CPUs mostly idle (for shared machines)")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated data for reuse")
    args = ap.parse_args(argv)
    if not 0 < args.scale <= 1 or args.repeat < 1:
        ap.error("--scale must be in (0, 1] and --repeat at least 1")

    workdir = os.path.abspath(args.workdir)
    prepare_workdir(workdir)
    scratch = os.path.join(workdir, "scratch")
    data_root = os.path.join(workdir, "data")
    remove(scratch)
    os.makedirs(scratch)
    ctx = Ctx(workdir, scratch, args.repeat, {**os.environ, **GIT_ENV}, dvlite_command(),
              use_time=os.access(TIME, os.X_OK), wait_idle=args.wait_idle)

    all_sets = make_datasets(args.scale)
    chosen = list(all_sets.values()) if args.dataset == "all" else [all_sets[args.dataset]]
    free = shutil.disk_usage(workdir).free
    needed = needed_bytes(chosen, args.repeat)
    if free < needed:
        sys.exit(f"error: {free / GIB:.1f} GiB free in {workdir}; about {needed / GIB:.1f} GiB needed")

    results = {}
    try:
        for ds in chosen:
            ensure_data(ds, data_root)
        meta = machine(ctx)
        for ds in chosen:
            results[ds.name] = bench_dataset(ctx, ds)
    except CommandFailed as exc:
        log(f"error: {exc}")
        return 1
    finally:
        remove(scratch)
        if not args.keep_data:
            remove(data_root)
            if os.listdir(workdir) == [MARKER]:
                remove(workdir)

    meta["loadavg_end"] = loadavg()
    meta["source_end"] = source_revision(ctx)
    meta["idle_wait"] = {"enabled": args.wait_idle, "seconds": round(ctx.waited, 1),
                         "gave_up": ctx.gave_up}
    report = {
        "command": " ".join(["scripts/bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "scale": args.scale,
        "repeat": args.repeat,
        "page_cache": "warm: the data is read (cat) before each round and after a long "
                      "idle wait; sync before every timed command",
        "machine": meta,
        "datasets": results,
        "targets": targets(results),
    }
    if args.save:
        with open(args.save, "w") as f:
            json.dump(report, f, indent=2)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    m = meta
    print(f"dvlite benchmark {m['date']}: {m['dvlite']}, Python {m['python']}, {m['git']}")
    print(f"dvlite source: {m['source']}")
    if m["source_end"] != m["source"]:
        print(f"warning: the dvlite source changed during the run (now {m['source_end']})")
    print(f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory']} RAM, {m['filesystem']}, "
          f"kernel {m['kernel']}")
    print(f"scale {args.scale}, median of {args.repeat} runs; {report['page_cache']}")
    print(f"load average (1/5/15 min) at start {m['loadavg_start']}, at end {m['loadavg_end']}")
    if args.wait_idle:
        print(f"waited {ctx.waited:.0f}s in total for idle CPUs before timed commands"
              + (f" (gave up {ctx.gave_up} times after 120s)" if ctx.gave_up else ""))
    for k, s in m["startup"].items():
        print(f"startup: {k}: {s['seconds']:.3f}s")
    for name, res in results.items():
        print()
        print(table(name, res))
    if report["targets"]:
        print()
        for t in report["targets"]:
            verdict = "met" if t["met"] else "NOT met"
            cpu = f"{t['cpu_ratio']:.2f}x" if t["cpu_ratio"] is not None else "-"
            print(f"target: {t['target']}: {t['ratio']:.2f}x wall, {cpu} CPU "
                  f"(limit {t['limit']}x, on wall time) -> {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

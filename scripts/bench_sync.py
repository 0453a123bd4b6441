#!/usr/bin/env python3
"""Benchmark dvlite's push/pull against DVC's on the same data, in the same run.

Datasets (deterministic, generated in the work directory; --scale shrinks them):

  tree  50,000 files of 1-16 KiB in 200 folders
  big   one 2 GiB file (a 64 MiB random block, repeated with a per-block counter)

Remotes: `local` (an empty directory on the same filesystem) and `s3` (moto's S3
server, started in this process on 127.0.0.1; nothing else is ever contacted).

For every dataset, remote and round, each tool gets its own fresh git repository
(`git init`, `dvlite init` / `dvc init`, add the data untimed, `git commit`, add the
remote) and these steps are timed:

  push       push to the empty remote
  push_noop  push again (nothing to upload)
  pull       pull after the workspace data AND the cache were deleted

The pulled data is checked against the pristine copy (file list and sizes; every
byte too, unless the dataset is big and --scale is large).

The tools run interleaved (dvlite, dvc, dvlite, dvc ...) so a burst of load from
other processes hits both sides. Every command is a child process: wall time around
it, peak RSS from `/usr/bin/time -f %M` (os.wait4 as the fallback), like
scripts/bench.py. With --repeat N the median time and the largest RSS are reported.

DVC runs from its own venv: --dvc PATH names a `dvc` executable; otherwise the
script creates WORKDIR/dvc-venv (`python3 -m venv` + `pip install 'dvc[s3]'`) unless
it exists. --skip-dvc benchmarks dvlite alone.

    .venv/bin/python scripts/bench_sync.py [--scale F] [--dataset tree|big|all]
        [--remotes local,s3] [--repeat N] [--dvc PATH | --skip-dvc]
        [--json] [--save FILE] [--workdir DIR] [--keep-data]
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (  # noqa: E402 - the shared generators and helpers, one copy
    CommandFailed,
    dvlite_command,
    gen_big,
    gen_tree,
    loadavg,
    log,
    remove,
    summary,
)

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

BIG_SIZE = 2 * GIB
BIG_BLOCK = 64 * MIB
TREE_FILES = 50_000
TREE_FOLDERS = 200
TREE_MIN, TREE_MAX = 1 * KIB, 16 * KIB
SEED = 20261127
DATA_MTIME = 1_767_225_600  # 2026-01-01T00:00:00Z, see scripts/bench.py
FULL_COMPARE_MAX = 512 * MIB  # compare every byte of a pulled big file up to this size

STEPS = ("push", "push_noop", "pull")
STEP_LABELS = {
    "push": "push (empty remote)",
    "push_noop": "push (no-op)",
    "pull": "pull (data + cache deleted)",
}
REMOTES = ("local", "s3")
MARKER = ".dvlite-bench-sync"
S3_KEY, S3_SECRET = "bench-key", "bench-secret"

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}
# No AWS configuration of the machine may leak into either tool. (The files are
# empty files in the scratch dir, not /dev/null: DVC's aiobotocore refuses /dev/null
# with "The specified config file (/dev/null) could not be found".)
AWS_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
}
AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "HTTP_PROXY", "HTTPS_PROXY",
             "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy")


# --- measuring --------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    rss_kib: int
    cpu: float = 0.0
    stdout: str = ""


@dataclass
class Ctx:
    workdir: str
    scratch: str
    repeat: int
    env: dict[str, str]
    dvlite: list[str]
    dvc: list[str] | None
    use_time: bool = True
    defer_deletes: bool = False
    s3: S3 | None = None


TIME = "/usr/bin/time"


def measure(ctx: Ctx, cmd: list[str], cwd: str) -> Run:
    """Run `cmd` once (after an untimed sync): wall seconds, CPU seconds, peak RSS."""
    os.sync()
    with tempfile.TemporaryFile(dir=ctx.scratch) as out, \
            tempfile.TemporaryFile(dir=ctx.scratch) as err, \
            tempfile.NamedTemporaryFile(dir=ctx.scratch, mode="r") as rss_file:
        full = [TIME, "-q", "-f", "%M", "-o", rss_file.name, *cmd] if ctx.use_time else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=cwd, env=ctx.env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        rss_kib = usage.ru_maxrss
        cpu = usage.ru_utime + usage.ru_stime
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
    return Run(seconds, rss_kib, cpu, stdout + stderr)


def quiet(ctx: Ctx, cmd: list[str], cwd: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=ctx.env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise CommandFailed(f"{' '.join(cmd)} (in {cwd}) exited {proc.returncode}\n"
                            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


# --- datasets (same generators as scripts/bench.py) ---------------------------------

@dataclass
class Dataset:
    name: str
    target: str
    params: dict
    description: str
    home: str = ""

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
        "tree": Dataset(
            "tree", "tree",
            {"files": files, "folders": folders, "min": TREE_MIN, "max": TREE_MAX, "seed": SEED},
            f"{files:,} files of 1-16 KiB in {folders} folders",
        ),
        "big": Dataset(
            "big", "big.bin", {"size": big_size, "block": min(BIG_BLOCK, big_size), "seed": SEED},
            f"one {big_size / GIB:.2f} GiB file" if big_size >= GIB
            else f"one {big_size / MIB:.1f} MiB file",
        ),
    }


def ensure_data(ds: Dataset, data_root: str) -> None:
    ds.home = os.path.join(data_root, ds.name)
    params_file = os.path.join(data_root, ds.name + ".params.json")
    if os.path.exists(ds.path) and os.path.exists(params_file):
        with open(params_file) as f:
            if json.load(f) == ds.params:
                log(f"[{ds.name}] reusing generated data at {ds.path}")
                return
    if os.path.exists(params_file):
        os.unlink(params_file)
    remove(ds.home)
    os.makedirs(ds.home)
    log(f"[{ds.name}] generating {ds.description} ...")
    start = time.perf_counter()
    p = ds.params
    if ds.is_dir:
        gen_tree(ds.path, p["files"], p["folders"], p["min"], p["max"], p["seed"])
    else:
        gen_big(ds.path, p["size"], p["block"], p["seed"])
    os.sync()
    log(f"[{ds.name}] generated in {time.perf_counter() - start:.1f}s")
    with open(params_file, "w") as f:
        json.dump(ds.params, f)


def listing(top: str) -> dict[str, int]:
    if os.path.isfile(top):
        return {"": os.path.getsize(top)}
    out = {}
    for d, _, names in os.walk(top):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, top)] = os.path.getsize(p)
    return out


def check_pulled(ds: Dataset, pulled: str, who: str) -> dict:
    """The pulled copy has the pristine files and sizes, and (unless too big) the same bytes."""
    if not os.path.lexists(pulled):
        raise CommandFailed(f"{who}: pull left no {pulled}")
    want, got = listing(ds.path), listing(pulled)
    if want != got:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])[:5]
        raise CommandFailed(f"{who}: pulled a different tree: {len(got)} files vs {len(want)}; "
                            f"missing {missing}, extra {extra}, wrong size {wrong}")
    total = sum(want.values())
    full = ds.is_dir or total <= FULL_COMPARE_MAX
    if full:
        for rel in want:
            a = os.path.join(ds.path, rel) if rel else ds.path
            b = os.path.join(pulled, rel) if rel else pulled
            if not filecmp.cmp(a, b, shallow=False):
                raise CommandFailed(f"{who}: pulled different bytes for {b}")
    return {"files": len(want), "bytes": total, "bytes_compared": full}


# --- file system helpers -----------------------------------------------------------


def discard(ctx: Ctx, path: str) -> None:
    """Remove now, or (many-file trees) move aside until the dataset is done: see
    scripts/bench.py `discard` (ext4 taxes creating files right after deleting many)."""
    if not os.path.lexists(path):
        return
    if ctx.defer_deletes:
        trash = os.path.join(ctx.scratch, "trash")
        os.makedirs(trash, exist_ok=True)
        os.rename(path, os.path.join(trash, f"{len(os.listdir(trash)):04d}"))
    else:
        remove(path)


def new_git_repo(ctx: Ctx, path: str) -> None:
    remove(path)
    os.makedirs(path)
    quiet(ctx, ["git", "init", "-q", "-b", "main"], path)


# --- the S3 server --------------------------------------------------------------------

class S3:
    """moto's threaded S3 server on 127.0.0.1 in this process, without authentication."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        if host != "127.0.0.1":
            raise CommandFailed(f"moto listens on {host}, not 127.0.0.1")
        self.endpoint = f"http://127.0.0.1:{port}"

    def _post(self, path: str, data: bytes = b"") -> None:
        req = urllib.request.Request(self.endpoint + path, data=data, method="POST")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=60) as r:
            r.read()

    def fresh_bucket(self) -> str:
        """Reset moto (frees the previous run's objects) and create an empty bucket."""
        import botocore.config
        import botocore.session

        self._post("/moto-api/reset")
        session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
        session.set_config_variable("config_file", os.devnull)
        session.set_config_variable("credentials_file", os.devnull)
        client = session.create_client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET,
            config=botocore.config.Config(retries={"max_attempts": 0}),
        )
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()
        return bucket

    def stop(self) -> None:
        self.server.stop()


# --- tools ------------------------------------------------------------------------------

def remote_dir(ctx: Ctx, tool: str, ds: Dataset, r: int) -> str:
    return os.path.join(ctx.scratch, f"remote-{tool}-{ds.name}-{r}")


def setup_remote(ctx: Ctx, tool: str, remote: str, ds: Dataset, r: int, repo: str) -> None:
    if tool == "dvlite":
        dvl = ctx.dvlite
        if remote == "local":
            d = remote_dir(ctx, tool, ds, r)
            remove(d)
            os.makedirs(d)
            quiet(ctx, [*dvl, "remote", "add", "-d", "r", d], repo)
        else:
            bucket = ctx.s3.fresh_bucket()
            quiet(ctx, [*dvl, "remote", "add", "-d", "r", f"s3://{bucket}/dvlite"], repo)
            for k, v in (("endpoint_url", ctx.s3.endpoint), ("key", S3_KEY),
                         ("secret", S3_SECRET)):
                quiet(ctx, [*dvl, "remote", "modify", "--local", "r", k, v], repo)
    else:
        dvc = ctx.dvc
        if remote == "local":
            d = remote_dir(ctx, tool, ds, r)
            remove(d)
            os.makedirs(d)
            quiet(ctx, [*dvc, "remote", "add", "-d", "r", d], repo)
        else:
            bucket = ctx.s3.fresh_bucket()
            quiet(ctx, [*dvc, "remote", "add", "-d", "r", f"s3://{bucket}/dvc"], repo)
            quiet(ctx, [*dvc, "remote", "modify", "r", "endpointurl", ctx.s3.endpoint], repo)
            quiet(ctx, [*dvc, "remote", "modify", "r", "region", "us-east-1"], repo)
            for k, v in (("access_key_id", S3_KEY), ("secret_access_key", S3_SECRET)):
                quiet(ctx, [*dvc, "remote", "modify", "--local", "r", k, v], repo)


TOOL_SPEC = {
    # files to commit after init, pointer suffix, cache dir
    "dvlite": {"meta": [".dvlite/config", ".dvlite/.gitignore"], "ptr": ".dvl",
               "cache": ".dvlite/cache"},
    "dvc": {"meta": [".dvc", ".dvcignore"], "ptr": ".dvc", "cache": ".dvc/cache"},
}


def bench_tool(ctx: Ctx, tool: str, remote: str, ds: Dataset, r: int) -> tuple[dict, dict]:
    """One round of push / no-op push / pull for `tool` in a fresh git repository."""
    cmd = ctx.dvlite if tool == "dvlite" else ctx.dvc
    spec = TOOL_SPEC[tool]
    repo = os.path.join(ctx.scratch, f"{tool}-{ds.name}-{remote}-{r}")
    new_git_repo(ctx, repo)
    quiet(ctx, [*cmd, "init"], repo)
    if tool == "dvc":
        quiet(ctx, [*cmd, "config", "core.analytics", "false"], repo)
    quiet(ctx, ["git", "add", *spec["meta"]], repo)
    quiet(ctx, ["git", "commit", "-q", "-m", f"init {tool}"], repo)
    setup_remote(ctx, tool, remote, ds, r, repo)
    runs: dict[str, Run] = {}
    os.rename(ds.path, os.path.join(repo, ds.target))  # move the pristine data in
    try:
        start = time.perf_counter()
        quiet(ctx, [*cmd, "add", ds.target], repo)
        add_s = time.perf_counter() - start
        quiet(ctx, ["git", "add", "-A", "."], repo)
        quiet(ctx, ["git", "commit", "-q", "-m", "track data"], repo)
        runs["push"] = measure(ctx, [*cmd, "push"], repo)
        runs["push_noop"] = measure(ctx, [*cmd, "push"], repo)
    finally:
        # the workspace data is gone, as after `rm -rf` (moved back to the pristine home)
        os.rename(os.path.join(repo, ds.target), ds.path)
    discard(ctx, os.path.join(repo, spec["cache"]))
    runs["pull"] = measure(ctx, [*cmd, "pull"], repo)
    check = check_pulled(ds, os.path.join(repo, ds.target), f"{tool} pull ({remote})")
    info = {"add_seconds_untimed_step": round(add_s, 3), "pulled": check,
            "push_output": runs["push"].stdout.strip()[-300:],
            "push_noop_output": runs["push_noop"].stdout.strip()[-300:],
            "pull_output": runs["pull"].stdout.strip()[-300:]}
    discard(ctx, repo)
    if remote == "local":
        discard(ctx, remote_dir(ctx, tool, ds, r))
    return runs, info


# --- reporting --------------------------------------------------------------------


def bench_dataset_remote(ctx: Ctx, ds: Dataset, remote: str, tools: list[str]) -> dict:
    ctx.defer_deletes = ds.is_dir
    load_start = loadavg()
    runs: dict[str, dict[str, list[Run]]] = {t: {s: [] for s in STEPS} for t in tools}
    infos: dict[str, list[dict]] = {t: [] for t in tools}
    for r in range(ctx.repeat):
        for tool in tools:  # interleaved: A B A B
            log(f"[{ds.name}/{remote}] round {r + 1}/{ctx.repeat}: {tool}")
            got, info = bench_tool(ctx, tool, remote, ds, r)
            for step, run in got.items():
                runs[tool][step].append(run)
            infos[tool].append(info)
            log(f"[{ds.name}/{remote}]   " + ", ".join(
                f"{s} {run.seconds:.2f}s {run.rss_kib / 1024:.0f}MiB" for s, run in got.items()))
    remove(os.path.join(ctx.scratch, "trash"))
    ctx.defer_deletes = False
    return {
        "description": ds.description,
        "remote": remote,
        "loadavg": {"start": load_start, "end": loadavg()},
        "steps": {s: {"label": STEP_LABELS[s],
                      "tools": {t: summary(runs[t][s]) for t in tools}} for s in STEPS},
        "details": infos,
    }


def table(res: dict, data_bytes: int) -> str:
    tools = list(res["steps"]["push"]["tools"])
    head = ["step"]
    for t in tools:
        head += [f"{t} s", f"{t} RSS MiB"]
    if "dvc" in tools and "dvlite" in tools:
        head.append("dvlite/dvc")
    rows = [head]
    for st in res["steps"].values():
        row = [st["label"]]
        for t in tools:
            s = st["tools"][t]
            row += [f"{s['seconds']:.3f}", f"{s['rss_mib']:.0f}"]
        if "dvc" in tools and "dvlite" in tools:
            d = st["tools"]["dvc"]["seconds"]
            row.append(f"{st['tools']['dvlite']['seconds'] / d:.2f}x" if d else "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]

    def fmt(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"

    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|"
    title = (f"{res['dataset']} on {res['remote']}: {res['description']}, "
             f"{data_bytes / MIB:,.1f} MiB (load average {res['loadavg']['start']} -> "
             f"{res['loadavg']['end']})")
    return "\n".join([title, "", fmt(rows[0]), sep, *map(fmt, rows[1:])])


# --- set-up -----------------------------------------------------------------------


def dvc_command(args, workdir: str) -> list[str]:
    if args.dvc:
        path = shutil.which(args.dvc) or args.dvc
        if not os.access(path, os.X_OK):
            sys.exit(f"error: --dvc {args.dvc} is not an executable")
        return [os.path.abspath(path)]
    venv = os.path.join(workdir, "dvc-venv")
    dvc = os.path.join(venv, "bin", "dvc")
    if not os.access(dvc, os.X_OK):
        log(f"creating {venv} and installing dvc[s3] (once; reused next time) ...")
        subprocess.run(["python3", "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "dvc[s3]"], check=True)
    return [dvc]


def prepare_workdir(workdir: str) -> None:
    os.makedirs(workdir, exist_ok=True)
    entries = set(os.listdir(workdir)) - {"dvc-venv"}
    if entries and MARKER not in entries:
        sys.exit(f"error: {workdir} is not empty and not a bench_sync work dir; pick another")
    open(os.path.join(workdir, MARKER), "w").close()


def child_env(workdir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AWS_UNSET}
    env.update(GIT_ENV)
    env.update(AWS_ENV)
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    empty = os.path.join(workdir, "scratch", "aws-empty-config")
    open(empty, "w").close()
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = empty
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_SITE_CACHE_DIR"] = os.path.join(workdir, "scratch", "dvc-site-cache")
    return env


def needed_bytes(datasets: list[Dataset], remotes: list[str], ntools: int) -> int:
    # per tool and remote: cache + remote copy + pulled copy (+ the pristine data);
    # tree repos are kept until the dataset/remote pair is done.
    out = 0
    for ds in datasets:
        one = ds.params["files"] * (TREE_MAX // 2 + 4 * KIB) if ds.is_dir else ds.params["size"]
        out += one * (1 + 3 * ntools * (len(remotes) if not ds.is_dir else 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dvlite-bench-sync"))
    ap.add_argument("--scale", type=float, default=1.0, help="shrink sizes and counts")
    ap.add_argument("--dataset", choices=("tree", "big", "all"), default="all")
    ap.add_argument("--remotes", default="local,s3", help="comma-separated: local, s3")
    ap.add_argument("--repeat", type=int, default=1, help="runs per step; medians reported")
    ap.add_argument("--dvc", metavar="PATH", help="an existing dvc executable")
    ap.add_argument("--skip-dvc", action="store_true", help="benchmark dvlite only")
    ap.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    ap.add_argument("--save", metavar="FILE", help="also write the JSON report to FILE")
    ap.add_argument("--keep-data", action="store_true", help="keep the generated data")
    args = ap.parse_args(argv)
    remotes = [r.strip() for r in args.remotes.split(",") if r.strip()]
    if not 0 < args.scale <= 1 or args.repeat < 1:
        ap.error("--scale must be in (0, 1] and --repeat at least 1")
    if not remotes or set(remotes) - set(REMOTES):
        ap.error(f"--remotes takes a comma-separated subset of {', '.join(REMOTES)}")

    workdir = os.path.abspath(args.workdir)
    prepare_workdir(workdir)
    scratch = os.path.join(workdir, "scratch")
    data_root = os.path.join(workdir, "data")
    remove(scratch)
    os.makedirs(scratch)
    dvc = None if args.skip_dvc else dvc_command(args, workdir)
    tools = ["dvlite"] + ([] if dvc is None else ["dvc"])
    ctx = Ctx(workdir, scratch, args.repeat, child_env(workdir), dvlite_command(), dvc,
              use_time=os.access(TIME, os.X_OK))

    all_sets = make_datasets(args.scale)
    chosen = list(all_sets.values()) if args.dataset == "all" else [all_sets[args.dataset]]
    free = shutil.disk_usage(workdir).free
    needed = needed_bytes(chosen, remotes, len(tools))
    if free < needed:
        sys.exit(f"error: {free / GIB:.1f} GiB free in {workdir}; about {needed / GIB:.1f} GiB needed")

    results: dict[str, dict] = {}
    meta: dict = {}
    try:
        for ds in chosen:
            ensure_data(ds, data_root)
        meta = {
            "date": datetime.date.today().isoformat(),
            "nproc": os.cpu_count(),
            "kernel": platform.release(),
            "python": platform.python_version(),
            "dvlite": quiet(ctx, [*ctx.dvlite, "--version"], scratch).strip(),
            "dvc": quiet(ctx, [*dvc, "--version"], scratch).strip() if dvc else None,
            "git": quiet(ctx, ["git", "--version"], scratch).strip(),
            "loadavg_start": loadavg(),
        }
        if "s3" in remotes:
            ctx.s3 = S3()
            meta["s3"] = f"moto {__import__('moto').__version__} ThreadedMotoServer at {ctx.s3.endpoint}"
        for ds in chosen:
            log(f"[{ds.name}] warm-up read of the data")
            listing(ds.path)
            subprocess.run(["sh", "-c", 'find "$1" -type f -print0 | xargs -0 cat > /dev/null',
                            "sh", ds.path], check=True)
            results[ds.name] = {"description": ds.description,
                                "bytes": sum(listing(ds.path).values()),
                                "params": ds.params, "remotes": {}}
            for remote in remotes:
                res = bench_dataset_remote(ctx, ds, remote, tools)
                res["dataset"] = ds.name
                results[ds.name]["remotes"][remote] = res
    except CommandFailed as exc:
        log(f"error: {exc}")
        return 1
    finally:
        if ctx.s3 is not None:
            ctx.s3.stop()
        remove(scratch)
        if not args.keep_data:
            remove(data_root)
            if set(os.listdir(workdir)) <= {MARKER}:
                remove(workdir)

    meta["loadavg_end"] = loadavg()
    report = {
        "command": " ".join(["scripts/bench_sync.py", *(argv if argv is not None else sys.argv[1:])]),
        "scale": args.scale, "repeat": args.repeat, "tools": tools, "machine": meta,
        "datasets": results,
    }
    if args.save:
        with open(args.save, "w") as f:
            json.dump(report, f, indent=2)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    m = meta
    print(f"push/pull benchmark {m['date']}: {m['dvlite']}; {m['dvc'] or 'DVC skipped'}; {m['git']}")
    print(f"{m['nproc']} cores, kernel {m['kernel']}, Python {m['python']}; scale {args.scale}, "
          f"{'median of ' + str(args.repeat) + ' runs' if args.repeat > 1 else '1 run'}")
    if "s3" in m:
        print(f"S3: {m['s3']} (in the benchmark process; both tools share it)")
    for ds in results.values():
        for res in ds["remotes"].values():
            print()
            print(table(res, ds["bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

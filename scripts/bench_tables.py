#!/usr/bin/env python3
"""Benchmark the table commands on generated Parquet data: wall time and peak RSS.

  show   `dvlite table show data/big.parquet --stats` on a workspace file of --rows rows
         (first run: hashing through the stat cache plus one streaming statistics pass;
         second run: statistics from the cache). The issue's figure is 50 million rows /
         5 GiB with a peak under 512 MiB.
  diff   `dvlite table diff data/d.parquet --rev HEAD~1 --rev HEAD --key id` between two
         committed versions of --diff-rows rows each (1 % of rows changed, 0.5 % removed,
         0.5 % added); target under 60 s on a 2-core machine.

    .venv/bin/python scripts/bench_tables.py [--rows N] [--diff-rows N] [--steps show,diff]
        [--workdir DIR] [--keep]

Columns: id int64 (sequential), ts timestamp[us], x and y float64 (random), category (one of
20 strings), label int8, text (two random numbers as text, ~36 characters, all distinct), doc
(four, ~75 characters): about 111 bytes a row on disk, so 50 million rows make ~5.2 GiB.
Data is generated with pyarrow in chunks of 1 million rows (seeded, deterministic) and
written with Parquet's defaults (snappy, row groups of 1 Mi rows). Every measured command
is a child process: wall time around it, peak RSS from `/usr/bin/time -f %M`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
CHUNK = 1_000_000
ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
       "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid"}


def dvlite(*args: str) -> list[str]:
    return [PYTHON if os.path.exists(PYTHON) else sys.executable, "-m", "dvlite", *args]


def chunk_table(start: int, n: int, seed: int, version: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = pc.add(pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.int64()), n)), start - 1)
    x = pc.random(n, initializer=seed)
    y = pc.round(pc.multiply(pc.random(n, initializer=seed + 1), 1000.0), 2)
    cats = pa.array([f"category-{i:02d}" for i in range(20)])
    category = pc.take(cats, pc.cast(pc.floor(pc.multiply(pc.random(n, initializer=seed + 2), 20)), pa.int64()))
    label = pc.cast(pc.greater(x, 0.7), pa.int8())
    text = pc.binary_join_element_wise(pc.cast(pc.random(n, initializer=seed + 3), pa.string()),
                                       pc.cast(pc.random(n, initializer=seed + 4), pa.string()), "-")
    doc = pc.binary_join_element_wise(
        *[pc.cast(pc.random(n, initializer=seed + k), pa.string()) for k in (5, 6, 7, 8)], " ")
    ts = pc.cast(pc.add(pc.multiply(ids, 1_000_000), 1_700_000_000_000_000), pa.timestamp("us"))
    t = pa.table({"id": ids, "ts": ts, "x": x, "y": y, "category": category, "label": label, "text": text, "doc": doc})
    if version == "b":  # 1 % changed, 0.5 % removed
        changed = pc.equal(pc.remainder(ids, 100), 7)
        t = t.set_column(2, "x", pc.if_else(changed, pc.add(x, 1.0), x))
        t = t.filter(pc.not_equal(pc.remainder(ids, 200), 3))
    return t


def write_parquet(path: str, rows: int, version: str = "a", extra: int = 0) -> float:
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    start = time.perf_counter()
    writer = None
    for i, offset in enumerate(range(0, rows, CHUNK)):
        t = chunk_table(offset, min(CHUNK, rows - offset), 1000 + 10 * i, version)
        writer = writer or pq.ParquetWriter(path, t.schema)
        writer.write_table(t)
    if extra:  # version b: 0.5 % new rows after the last id
        writer.write_table(chunk_table(rows, extra, 999_999, "a"))
    writer.close()
    return time.perf_counter() - start


def measure(cmd: list[str], cwd: str) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB, output) of one child process."""
    os.sync()
    rss_file = os.path.join(cwd, ".bench-rss")
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file, *cmd], cwd=cwd,
                          env=ENV, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    os.unlink(rss_file)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[2:])} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, rss, proc.stdout


def git(cwd: str, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def make_repo(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    git(path, "init", "-q", "-b", "main")
    subprocess.run(dvlite("init"), cwd=path, env=ENV, check=True, capture_output=True)
    git(path, "add", ".dvlite")
    git(path, "commit", "-qm", "init")


def report(name: str, seconds: float, rss_kib: int, target: str = "") -> None:
    print(f"{name:<34} {seconds:8.1f} s  peak {rss_kib / 1024:7.0f} MiB  {target}", flush=True)


def bench_show(work: str, rows: int) -> None:
    repo = os.path.join(work, "show")
    make_repo(repo)
    path = os.path.join(repo, "data", "big.parquet")
    took = write_parquet(path, rows)
    size = os.path.getsize(path)
    print(f"generated {rows:,} rows, {size / 2**30:.2f} GiB in {took:.0f} s", flush=True)
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm page cache
    cmd = dvlite("table", "show", "data/big.parquet", "--stats")
    seconds, rss, out = measure(cmd, repo)
    verdict = "(target: peak < 512 MiB)" + (" met" if rss < 512 * 1024 else " MISSED")
    report(f"show --stats, {rows:,} rows (cold)", seconds, rss, verdict)
    seconds, rss, _ = measure(cmd, repo)
    report(f"show --stats, {rows:,} rows (cached)", seconds, rss)
    print(out)


def bench_diff(work: str, rows: int) -> None:
    repo = os.path.join(work, "diff")
    make_repo(repo)
    path = os.path.join(repo, "data", "d.parquet")
    for version, extra in (("a", 0), ("b", rows // 200)):
        write_parquet(path, rows, version, extra)
        subprocess.run(dvlite("add", "data/d.parquet"), cwd=repo, env=ENV, check=True, capture_output=True)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", f"version {version}")
    print(f"generated two versions of {rows:,} rows ({os.path.getsize(path) / 2**20:.0f} MiB each)",
          flush=True)
    cmd = dvlite("table", "diff", "data/d.parquet", "--rev", "HEAD~1", "--rev", "HEAD", "--key", "id")
    seconds, rss, out = measure(cmd, repo)
    verdict = "(target: < 60 s)" + (" met" if seconds < 60 else " MISSED")
    report(f"keyed diff, 2 x {rows:,} rows", seconds, rss, verdict)
    print("\n".join(out.splitlines()[:12]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=5_000_000, help="rows for show --stats")
    p.add_argument("--diff-rows", type=int, default=10_000_000, help="rows per version for the diff")
    p.add_argument("--steps", default="show,diff")
    p.add_argument("--workdir", default="/tmp/dvlite-bench-tables")
    p.add_argument("--keep", action="store_true", help="keep the generated repositories")
    args = p.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    try:
        if "show" in args.steps:
            bench_show(args.workdir, args.rows)
        if "diff" in args.steps:
            bench_diff(args.workdir, args.diff_rows)
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Micro-benchmark: what `.dvliteignore` matching costs a scan of a 50,000-file tree.

CPU times (user + system: steadier than wall time on a shared machine), on a tree of 200 folders x 250 files (made once in --workdir):

  dvlite         dvlite.workspace.scan.scan_with_stamp as it is (for reference: the same
                 loop defined in this script runs ~15% slower here, hooks or not)
  baseline       that loop, copied here without the hooks
  hooked         the loop with the ignore hooks, but no Ignores object
  no-rules       hooked, with an Ignores object and no .dvliteignore anywhere
  root-rules     hooked, with a root .dvliteignore of floating patterns (`*.tmp`, ...)
  deep-rules     hooked, with anchored rules for one folder only (`data/d007/*.log`)

each in the fast path of a no-op `status` (keep=False: the stamp only, directories matched,
files not) and in the full scan (keep=True: every file matched where rules can reach it).
The hooked loop is the change proposed for workspace/scan.py (see `scan` below).

    .venv/bin/python scripts/bench_ignore.py [--repeat N] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from stat import S_ISDIR, S_ISLNK, S_ISREG

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from dvlite.fsutil import TMP_MARK
from dvlite.workspace import scan as scan_mod
from dvlite.workspace.ignore import IGNORE_FILE, Ignores

FOLDERS, PER_FOLDER = 200, 250


def scan(top, cache_objects, links, keep=True, ignores=None, top_rel="data"):
    """scan_with_stamp with the proposed ignore hooks (marked `# +`)."""
    out = []
    stamp = scan_mod.TreeStamp()
    add_file, add_dir = stamp.files.extend, stamp.dirs.extend
    st = os.lstat(top)
    add_dir((st.st_ino, st.st_mtime_ns))
    stack = [(top, "", None)]  # + the parent's rules
    while stack:
        directory, prefix, parent = stack.pop()
        subdirs = []
        with os.scandir(directory) as it:
            entries = list(it)  # + a directory's own rule file is known once it is listed
        rules = None  # +
        if ignores is not None:  # +
            rel_dir = f"{top_rel}/{prefix[:-1]}" if prefix else top_rel  # +
            rules = ignores.rules_at(rel_dir) if not prefix else ignores.rules_below(  # +
                parent, rel_dir, any(e.name == IGNORE_FILE for e in entries))  # +
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if S_ISREG(mode):
                add_file((st.st_ino, st.st_mtime_ns, st.st_size, mode))
                if keep and not entry.name.startswith(TMP_MARK) and (
                        rules is None or not rules.ignored(entry.name, False)):  # +
                    out.append(scan_mod.FileStat(prefix + entry.name, entry.path, st))
            elif S_ISDIR(mode):
                if entry.name not in scan_mod.NOT_DATA and not entry.name.startswith(TMP_MARK) and (
                        rules is None or not rules.ignored(entry.name, True)):  # +
                    add_dir((st.st_ino, st.st_mtime_ns))
                    subdirs.append((entry.path, prefix + entry.name + "/", rules))  # +
            elif S_ISLNK(mode) and not entry.name.startswith(TMP_MARK):
                scan_mod._symlink(entry, prefix, cache_objects, links, out if keep else None, stamp)
        stack += reversed(subdirs)
    return out, stamp


def plain(top, cache_objects, links, keep=True):
    """scan_with_stamp's loop as it is, defined here like `scan` (the fair baseline)."""
    out = []
    stamp = scan_mod.TreeStamp()
    add_file, add_dir = stamp.files.extend, stamp.dirs.extend
    st = os.lstat(top)
    add_dir((st.st_ino, st.st_mtime_ns))
    stack = [(top, "")]
    while stack:
        directory, prefix = stack.pop()
        subdirs = []
        with os.scandir(directory) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if S_ISREG(mode):
                    add_file((st.st_ino, st.st_mtime_ns, st.st_size, mode))
                    if keep and not entry.name.startswith(TMP_MARK):
                        out.append(scan_mod.FileStat(prefix + entry.name, entry.path, st))
                elif S_ISDIR(mode):
                    if entry.name not in scan_mod.NOT_DATA and not entry.name.startswith(TMP_MARK):
                        add_dir((st.st_ino, st.st_mtime_ns))
                        subdirs.append((entry.path, prefix + entry.name + "/"))
                elif S_ISLNK(mode) and not entry.name.startswith(TMP_MARK):
                    scan_mod._symlink(entry, prefix, cache_objects, links, out if keep else None, stamp)
        stack += reversed(subdirs)
    return out, stamp


def make_tree(root: str) -> str:
    data = os.path.join(root, "data")
    if os.path.isdir(data):
        return data
    for d in range(FOLDERS):
        folder = os.path.join(data, f"d{d:03}")
        os.makedirs(folder)
        for i in range(PER_FOLDER):
            with open(os.path.join(folder, f"f{i:03}.bin"), "wb") as f:
                f.write(b"x" * (i % 64))
    return data


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        runs.append(time.process_time() - t)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dvlite-bench-ignore"))
    args = parser.parse_args()
    root = args.workdir
    top = make_tree(root)
    objects = os.path.join(root, ".dvlite", "cache", "objects")
    rule_file = os.path.join(root, IGNORE_FILE)
    cases = {
        "dvlite": lambda keep: scan_mod.scan_with_stamp(top, objects, [], keep=keep),
        "baseline": lambda keep: plain(top, objects, [], keep),
        "hooked": lambda keep: scan(top, objects, [], keep),
        "no-rules": lambda keep: scan(top, objects, [], keep, Ignores(root)),
        "root-rules": lambda keep: scan(top, objects, [], keep, Ignores(root)),
        "deep-rules": lambda keep: scan(top, objects, [], keep, Ignores(root)),
    }
    rules = {"root-rules": "*.tmp\n*.log\n__pycache__/\n.DS_Store\n!keep.log\n",
             "deep-rules": "/data/d007/*.log\n"}
    print(f"{FOLDERS * PER_FOLDER} files in {FOLDERS} folders, median of {args.repeat} "
          "interleaved rounds")
    runs: dict[tuple[str, bool], list[float]] = {}
    for _ in range(args.repeat):  # interleaved: a busy machine slows every case alike
        for name, fn in cases.items():
            if name in rules:
                with open(rule_file, "w") as f:
                    f.write(rules[name])
            elif os.path.exists(rule_file):
                os.unlink(rule_file)
            for keep in (False, True):
                fn(keep)  # warm
                runs.setdefault((name, keep), []).append(
                    timed(lambda fn=fn, keep=keep: fn(keep), 1))
    for name in cases:
        row = []
        for keep in (False, True):
            seconds = statistics.median(runs[name, keep])
            base = statistics.median(runs["baseline", keep])
            row.append(f"{'full' if keep else 'fast'} {seconds * 1000:6.1f} ms "
                       f"({(seconds / base - 1) * 100:+5.1f}%)")
        print(f"{name:11} " + "   ".join(row))
    if os.path.exists(rule_file):
        os.unlink(rule_file)


if __name__ == "__main__":
    main()

"""SIGKILL `checkout` (switching revisions), `pull`, `push` and `gc --force` at several points each.

Extends tests/test_crash.py (add, and checkout into an empty workspace) with the same data set
(3,000 small files in 30 directories plus a 40 MiB file) and a pipeline stage whose cached out
`model.bin` is recorded in dvlite.lock. Kill points are chosen by what is on disk (first pack,
a half-streamed big temp file, a deleted index, N files written) and by fractions of a timed
full run drawn from `random.Random(fixed seed)`, so every run aims at the same points.

After every kill, the invariants of docs/design.md:
- every cache object hashes to its name; every pack index is complete and names a complete pack;
- a pointer or dvlite.lock out names only objects fully present (in the repository whose
  cache is meant to hold them: checkout, push, gc);
- on the remote, no object or index appears before all its bytes (loose objects hash to their
  names, an index names a complete pack, layout 2 is recorded before the first pack), and no
  manifest names a missing file;
- every workspace file under a final name holds one of the versions it may hold; the user's
  own files (an untracked note, an uncommitted edit of a committed file) are untouched;
- nothing left by dvlite is visible to `git status`, and the next command removes every
  `.dvlite-tmp-*` file from the workspace.

The last two are collected across kill points and asserted at the end of each test, so one
failing run reports every kill point that left something behind (issue 10 item 9: expected to
fail for checkout and pull until temp files leave the workspace). A re-run then completes,
and the data is byte-identical.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash
import yaml
from conftest import git, run, tree_digests, write_tree
from test_crash import (
    BIG_SIZE,
    TMP_MARK,
    check_cache,
    kill_after,
    kill_when,
    make_dataset,
    objects_dir,
    packed_objects,
    packs_dir,
    sha,
    start,
)

MODEL_BYTES = 3_000_000  # the stage's out: the head of big.bin, a loose object
STAGE_CMD = f"head -c {MODEL_BYTES} big.bin > model.bin"
README = b"# project\n"
README_EDIT = b"# project\n\nan edit the user has not committed\n"
NOTES = b"the user's own notes, never tracked\n"
DATA_ROOTS = ("data", "big.bin", "model.bin")


def xxh(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


# --- building the repositories -----------------------------------------------------------

def with_model(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "model.bin": files["big.bin"][:MODEL_BYTES]}


def make_v1(repo: Path, remote: Path | None = None) -> dict[str, bytes]:
    """Data, a stage, a committed README; tagged v1. Returns every data file's bytes."""
    if remote is not None:
        run(repo, "remote", "add", "-d", "origin", str(remote))
    files = make_dataset(repo)
    run(repo, "add", "data", "big.bin")
    run(repo, "stage", "add", "-n", "model", "-d", "big.bin", "-o", "model.bin", STAGE_CMD)
    run(repo, "repro")
    (repo / "README.md").write_bytes(README)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    git(repo, "tag", "v1")
    return with_model(files)


def make_v2(repo: Path, v1: dict[str, bytes]) -> dict[str, bytes]:
    """A third of the small files changed, 200 deleted, 200 new, a new big file; tagged v2."""
    rng = random.Random(2002)
    v2 = {k: v for k, v in v1.items() if k != "model.bin"}
    small = sorted(k for k in v1 if k.startswith("data/"))
    for rel in small[::3]:
        v2[rel] = b"changed " + rng.randbytes(rng.randrange(1, 300))
    for rel in small[1::15]:
        del v2[rel]
        (repo / rel).unlink()
    for i in range(200):
        v2[f"data/new/n{i:04d}.bin"] = f"new {i}\n".encode() + rng.randbytes(rng.randrange(1, 300))
    v2["big.bin"] = rng.randbytes(BIG_SIZE)
    write_tree(repo, {k: v for k, v in v2.items() if v1.get(k) != v})
    run(repo, "add", "data", "big.bin")
    run(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v2")
    git(repo, "tag", "v2")
    return with_model(v2)


def add_canaries(repo: Path) -> None:
    """The user's own work: an untracked note and an uncommitted edit of a committed file."""
    (repo / "notes.txt").write_bytes(NOTES)
    (repo / "README.md").write_bytes(README_EDIT)


def check_canaries(repo: Path, how: str) -> None:
    assert (repo / "notes.txt").read_bytes() == NOTES, f"{how}: the user's untracked notes.txt changed"
    assert (repo / "README.md").read_bytes() == README_EDIT, f"{how}: the user's edit of README.md was lost"


# --- what is on disk ------------------------------------------------------------------------

def data_digests(repo: Path) -> dict[str, str]:
    """sha256 of every data file under a final name (temp files left out)."""
    out = {}
    if (repo / "data").is_dir():
        for rel, digest in tree_digests(repo / "data").items():
            if not rel.rsplit("/", 1)[-1].startswith(TMP_MARK):
                out["data/" + rel] = digest
    for name in ("big.bin", "model.bin"):
        if (repo / name).is_file():
            out[name] = sha((repo / name).read_bytes())
    return out


def check_data(repo: Path, allowed: dict[str, set[str]], how: str) -> int:
    """Every data file present holds a version it may hold; returns how many are present."""
    now = data_digests(repo)
    wrong = sorted(rel for rel, digest in now.items() if digest not in allowed.get(rel, ()))
    assert not wrong, f"{how}: torn or foreign files under final names: {wrong[:5]}"
    return len(now)


def temp_files(repo: Path) -> list[str]:
    """`.dvlite-tmp-*` files in the workspace (outside .git and .dvlite)."""
    found = []
    for top, dirs, names in os.walk(repo):
        if top == str(repo):
            dirs[:] = [d for d in dirs if d not in (".git", ".dvlite")]
        found += [os.path.relpath(os.path.join(top, n), repo) for n in names + dirs
                  if n.startswith(TMP_MARK)]
    return sorted(found)


def git_status(repo: Path) -> set[str]:
    return set(git(repo, "status", "--porcelain", "--untracked-files=all").splitlines())


def assert_up_to_date(repo: Path) -> None:
    st = run(repo, "status")
    lines = st.stdout.strip().splitlines()
    assert lines == ["Data and pointers are up to date.", "Pipeline stages are up to date."], (
        st.stdout + st.stderr)


def read_object(repo: Path, digest: str, packed: dict[str, bytes]) -> bytes:
    loose = objects_dir(repo) / digest[:2] / digest[2:]
    return loose.read_bytes() if loose.exists() else packed[digest]


def needed_objects(repo: Path, objects: set[str]) -> set[str]:
    """Digests the pointers and dvlite.lock outs of the workspace name (with manifest entries);
    asserts each is present. An independent reading: yaml and json, not dvlite's parsers."""
    packed = packed_objects(repo)
    named: list[tuple[str, str, str]] = []  # (where, kind, digest)
    for pointer in sorted(repo.glob("*.dvl")):
        doc = yaml.safe_load(pointer.read_bytes())
        assert isinstance(doc, dict) and doc.get("version") == 1, f"{pointer.name} is malformed"
        named.append((pointer.name, doc["kind"], doc["digest"]))
    if (repo / "dvlite.lock").exists():
        lock = yaml.safe_load((repo / "dvlite.lock").read_bytes())
        for stage in lock["stages"].values():
            named += [("dvlite.lock " + o["path"], o["kind"], o["digest"])
                      for o in stage.get("outs", []) if o.get("cache", True)]
    needed = set()
    for where, kind, digest in named:
        assert digest in objects, f"{where} names {digest}, which is not (intact) in the cache"
        needed.add(digest)
        if kind == "dir":
            entries = json.loads(read_object(repo, digest, packed))["entries"]
            absent = [path for path, d, _size, _x in entries if d not in objects]
            assert not absent, f"{where} lists files whose objects are not in the cache: {absent[:5]}"
            needed |= {d for _p, d, _s, _x in entries}
    return needed


def check_remote(remote: Path, manifests: dict[str, set[str]]) -> set[str]:
    """Remote invariants 8, 9, 13, 14, 17; returns the digests the remote holds."""
    from dvlite.formats.packs import PackIndex

    present: set[str] = set()
    objects = remote / "objects"
    for fan in sorted(objects.iterdir()) if objects.exists() else []:
        if fan.is_file():
            assert fan.name.startswith(TMP_MARK), f"stray file on the remote: objects/{fan.name}"
            continue
        for obj in fan.iterdir():
            if obj.name.startswith(TMP_MARK):
                continue
            name = fan.name + obj.name
            assert xxh(obj.read_bytes()) == name, f"remote object {name} is incomplete or corrupt"
            present.add(name)
    packs = remote / "packs"
    finals = [p for p in packs.iterdir() if not p.name.startswith(TMP_MARK)] if packs.exists() else []
    if finals:
        layout = json.loads((remote / "dvlite-remote.json").read_bytes())
        assert layout["layout"] == 2, f"packs on a remote that says layout {layout}"
    for idx in finals:
        if idx.suffix != ".idx":
            assert idx.suffix == ".pack", f"stray file on the remote: packs/{idx.name}"
            continue
        index = PackIndex.from_bytes(idx.read_bytes(), str(idx))
        pack_path = packs / f"{index.pack}.pack"
        assert pack_path.exists(), f"remote index {idx.name} names a missing pack"
        pack = pack_path.read_bytes()
        assert len(pack) == index.pack_size and xxh(pack) == index.pack == idx.stem, (
            f"remote index {idx.name} names an incomplete pack")
        for digest, (offset, length) in index.entries.items():
            assert xxh(pack[offset:offset + length]) == digest, f"packed {digest} is corrupt"
            present.add(digest)
    for manifest, entries in manifests.items():
        if manifest in present:
            missing = entries - present
            assert not missing, f"remote manifest {manifest} names missing files: {sorted(missing)[:3]}"
    return present


def manifests_of(repo: Path) -> dict[str, set[str]]:
    """Manifest digest -> file digests, for every dir pointer of the workspace."""
    packed = packed_objects(repo)
    out = {}
    for pointer in repo.glob("*.dvl"):
        doc = yaml.safe_load(pointer.read_bytes())
        if doc["kind"] == "dir":
            entries = json.loads(read_object(repo, doc["digest"], packed))["entries"]
            out[doc["digest"]] = {d for _p, d, _s, _x in entries}
    return out


# --- kill points and what they leave --------------------------------------------------------

@dataclass
class Kills:
    """Kill points that landed, and what each left that the user could see."""

    landed: list[tuple[str, bool, int]] = field(default_factory=list)  # (how, killed, measure)
    leftovers: list[str] = field(default_factory=list)

    def visible(self, repo: Path, baseline: set[str], how: str) -> None:
        extra = sorted(git_status(repo) - baseline)
        if extra:
            self.leftovers.append(f"after a kill at {how}, git status shows: {extra[:4]}")

    def after_rerun(self, repo: Path, baseline: set[str], what: str) -> None:
        extra = sorted(git_status(repo) - baseline)
        if extra:
            self.leftovers.append(f"after the re-run of {what}, git status still shows: {extra[:4]}")
        temps = temp_files(repo)
        if temps:
            self.leftovers.append(f"after the re-run of {what}, temp files remain in the "
                                  f"workspace: {temps[:4]} ({len(temps)} in all)")

    def assert_enough(self, at_least: int) -> None:
        killed = [k for k in self.landed if k[1]]
        assert len(killed) >= at_least, f"too few kills landed mid-run: {self.landed}"

    def assert_nothing_left(self) -> None:
        assert not self.leftovers, "dvlite left files in the workspace:\n" + "\n".join(self.leftovers)


def fractions(seed: int, n: int, low: float = 0.2, high: float = 0.8) -> list[float]:
    rng = random.Random(seed)
    return sorted(round(rng.uniform(low, high), 2) for _ in range(n))


def temp_at_least(directory: Path, size: int, recursive: bool = False) -> Callable[[], bool]:
    """A `.dvlite-tmp-*` file of `size` bytes or more is being written in `directory`."""
    def reached() -> bool:
        dirs = [directory]
        if recursive:
            try:
                dirs += [Path(e.path) for e in os.scandir(directory) if e.is_dir()]
            except FileNotFoundError:
                return False
        for d in dirs:
            try:
                for entry in os.scandir(d):
                    if entry.name.startswith(TMP_MARK) and entry.stat().st_size >= size:
                        return True
            except FileNotFoundError:
                pass
        return False
    return reached


def count_files(directory: Path) -> int:
    return sum(len(names) for _d, _s, names in os.walk(directory))


def timed(repo: Path, *args: str) -> float:
    t0 = time.monotonic()
    run(repo, *args)
    return time.monotonic() - t0


def kill_run(repo: Path, args: tuple[str, ...], kill) -> tuple[bool, str]:
    proc = start(repo, *args)
    killed = kill(proc)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if not killed:
        assert proc.returncode == 0, f"dvlite {' '.join(args)} failed on its own: {err}"
    return killed, err


def aside(trash: Path, *paths: Path) -> None:
    """Rename aside (cheaper than deleting 40 MiB files each round)."""
    for p in paths:
        if p.exists() or p.is_symlink():
            p.rename(trash / f"{p.name}-{len(os.listdir(trash))}")


# --- checkout from one revision to another -----------------------------------------------------

def test_sigkill_during_checkout_between_revisions(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    v1 = make_v1(repo)
    v2 = make_v2(repo, v1)
    allowed: dict[str, set[str]] = {}
    for version in (v1, v2):
        for rel, body in version.items():
            allowed.setdefault(rel, set()).add(sha(body))
    add_canaries(repo)
    baseline = git_status(repo)
    expected_v2 = {rel: sha(body) for rel, body in v2.items()}
    assert data_digests(repo) == expected_v2
    new_paths = [repo / rel for rel in v2 if rel not in v1]

    def to_v1() -> None:
        git(repo, "checkout", "-q", "v1")
        run(repo, "checkout")
        git(repo, "checkout", "-q", "v2")

    to_v1()
    full = timed(repo, "checkout")
    kills = Kills()
    points = [(f"{f:.0%} of {full:.2f}s", lambda p, f=f: kill_after(p, f * full))
              for f in fractions(1001, 3)]
    points += [
        ("first new file", lambda p: kill_when(p, lambda: any(q.exists() for q in new_paths[:50]))),
        ("half the new files", lambda p: kill_when(p, lambda: sum(q.exists() for q in new_paths) >= 100)),
        ("big file half written", lambda p: kill_when(p, temp_at_least(repo, BIG_SIZE // 2))),
    ]
    for how, kill in points:
        to_v1()
        killed, _ = kill_run(repo, ("checkout",), kill)
        present = check_data(repo, allowed, f"checkout killed at {how}")
        check_canaries(repo, how)
        needed_objects(repo, check_cache(repo))
        kills.landed.append((how, killed, present))
        kills.visible(repo, baseline, how)
    kills.assert_enough(4)

    # The last kill's leftovers stay; a plain re-run finishes the switch.
    co = run(repo, "checkout")
    assert TMP_MARK not in co.stdout + co.stderr
    assert data_digests(repo) == expected_v2
    check_canaries(repo, "the re-run")
    assert_up_to_date(repo)
    kills.after_rerun(repo, baseline, "checkout")
    kills.assert_nothing_left()


# --- pull into a clone -----------------------------------------------------------------------

def test_sigkill_during_pull_from_a_local_remote(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    remote = tmp_path / "remote"
    v1 = make_v1(repo, remote)
    run(repo, "push")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    add_canaries(clone)
    baseline = git_status(clone)
    expected = {rel: sha(body) for rel, body in v1.items()}
    allowed = {rel: {digest} for rel, digest in expected.items()}

    def reset() -> None:
        """Nothing fetched, nothing checked out; leftovers at the root stay."""
        aside(trash, objects_dir(clone), packs_dir(clone), clone / ".dvlite" / "tmp" / "pack-index",
              *(clone / name for name in DATA_ROOTS))
        objects_dir(clone).mkdir()

    full = timed(clone, "pull")
    assert data_digests(clone) == expected
    kills = Kills()
    points = [(f"{f:.0%} of {full:.2f}s", lambda p, f=f: kill_after(p, f * full))
              for f in fractions(1002, 2)]
    points += [
        ("first pack fetched", lambda p: kill_when(
            p, lambda: packs_dir(clone).exists() and any(packs_dir(clone).glob("*.pack")))),
        ("big object half fetched", lambda p: kill_when(
            p, temp_at_least(objects_dir(clone), BIG_SIZE // 2, recursive=True))),
        ("first file checked out", lambda p: kill_when(p, lambda: count_files(clone / "data") >= 1)),
        ("1500 files checked out", lambda p: kill_when(p, lambda: count_files(clone / "data") >= 1500)),
        ("big file half checked out", lambda p: kill_when(p, temp_at_least(clone, BIG_SIZE // 2))),
    ]
    for how, kill in points:
        reset()
        killed, _ = kill_run(clone, ("pull",), kill)
        present = check_data(clone, allowed, f"pull killed at {how}")
        check_canaries(clone, how)
        check_cache(clone)
        kills.landed.append((how, killed, present))
        kills.visible(clone, baseline, how)
    kills.assert_enough(5)
    assert any(k and 0 < n < len(expected) for _h, k, n in kills.landed), kills.landed

    pull = run(clone, "pull")
    assert TMP_MARK not in pull.stdout + pull.stderr
    assert data_digests(clone) == expected
    check_canaries(clone, "the re-run")
    needed_objects(clone, check_cache(clone))
    assert_up_to_date(clone)
    kills.after_rerun(clone, baseline, "pull")
    kills.assert_nothing_left()


# --- push to a local remote ------------------------------------------------------------------

def test_sigkill_during_push_to_a_local_remote(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    remote = tmp_path / "remote"
    v1 = make_v1(repo, remote)
    add_canaries(repo)
    baseline = git_status(repo)
    expected = {rel: sha(body) for rel, body in v1.items()}
    manifests = manifests_of(repo)
    needed = needed_objects(repo, check_cache(repo))

    full = timed(repo, "push")
    assert check_remote(remote, manifests) >= needed
    kills = Kills()
    objects = remote / "objects"
    packs = remote / "packs"
    points = [(f"{f:.0%} of {full:.2f}s", lambda p, f=f: kill_after(p, f * full))
              for f in fractions(1003, 2)]
    points += [
        ("layout file written", lambda p: kill_when(p, (remote / "dvlite-remote.json").exists)),
        ("first pack uploaded", lambda p: kill_when(
            p, lambda: packs.exists() and any(packs.glob("*.pack")))),
        ("first index uploaded", lambda p: kill_when(
            p, lambda: packs.exists() and any(packs.glob("*.idx")))),
        ("big object half uploaded", lambda p: kill_when(
            p, temp_at_least(objects, BIG_SIZE // 2, recursive=True))),
        ("big object in place", lambda p: kill_when(
            p, (objects / xxh(v1["big.bin"])[:2] / xxh(v1["big.bin"])[2:]).exists)),
    ]
    for how, kill in points:
        aside(trash, remote)
        killed, _ = kill_run(repo, ("push",), kill)
        held = check_remote(remote, manifests)
        assert data_digests(repo) == expected, f"push killed at {how} changed the workspace"
        check_canaries(repo, how)
        needed_objects(repo, check_cache(repo))
        kills.landed.append((how, killed, len(held & needed)))
        kills.visible(repo, baseline, how)
    kills.assert_enough(5)
    assert any(k and 0 < n < len(needed) for _h, k, n in kills.landed), kills.landed

    # The last kill's partial remote stays; a re-run completes it.
    run(repo, "push")
    assert check_remote(remote, manifests) >= needed
    kills.after_rerun(repo, baseline, "push")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    run(clone, "pull")
    assert data_digests(clone) == expected, "a clone does not get byte-identical data from the remote"
    kills.assert_nothing_left()


# --- gc --force --------------------------------------------------------------------------------

def test_sigkill_during_gc_force(repo, tmp_path):
    trash = tmp_path / "trash"
    trash.mkdir()
    v1 = make_v1(repo)
    v2 = make_v2(repo, v1)
    add_canaries(repo)
    baseline = git_status(repo)
    expected = {rel: sha(body) for rel, body in v2.items()}
    cache = repo / ".dvlite" / "cache"
    full_cache = tmp_path / "full-cache"
    shutil.copytree(cache, full_cache)  # v1 and v2: gc --force drops what only v1 needs
    before = check_cache(repo)
    needed = needed_objects(repo, before)
    garbage = before - needed
    assert len(garbage) > 1000, "v1 should leave many unused objects"
    old_packs = {p.stem for p in packs_dir(repo).glob("*.idx")}
    old_big = xxh(v1["big.bin"])

    def refill() -> None:  # hard links: objects are never modified in place (invariant 1)
        shutil.rmtree(cache)
        shutil.copytree(full_cache, cache, copy_function=os.link)

    full = timed(repo, "gc", "--force")
    assert check_cache(repo) == needed
    kills = Kills()
    points = [(f"{f:.0%} of {full:.2f}s", lambda p, f=f: kill_after(p, f * full))
              for f in fractions(1004, 2, 0.4, 0.9)]
    points += [
        ("first loose object deleted", lambda p: kill_when(
            p, lambda: not (objects_dir(repo) / old_big[:2] / old_big[2:]).exists())),
        ("replacement pack written", lambda p: kill_when(
            p, lambda: any(q.stem not in old_packs for q in packs_dir(repo).glob("*.pack")))),
        ("replacement index written", lambda p: kill_when(
            p, lambda: any(q.stem not in old_packs for q in packs_dir(repo).glob("*.idx")))),
        ("old index deleted", lambda p: kill_when(
            p, lambda: any(not (packs_dir(repo) / f"{s}.idx").exists() for s in old_packs))),
    ]
    for how, kill in points:
        refill()
        killed, _ = kill_run(repo, ("gc", "--force"), kill)
        objects = check_cache(repo)
        assert needed <= objects, f"gc killed at {how} lost kept objects: {sorted(needed - objects)[:3]}"
        needed_objects(repo, objects)
        assert data_digests(repo) == expected, f"gc killed at {how} changed the workspace"
        check_canaries(repo, how)
        kills.landed.append((how, killed, len(objects & garbage)))
        kills.visible(repo, baseline, how)
    kills.assert_enough(4)
    assert any(k and 0 < n < len(garbage) for _h, k, n in kills.landed), kills.landed

    run(repo, "gc", "--force")
    assert check_cache(repo) == needed, "a re-run of gc --force left unused objects"
    leftovers = [p.name for d in (objects_dir(repo), packs_dir(repo)) for p in d.rglob(f"{TMP_MARK}*")]
    assert not leftovers, f"gc --force left temp files in the cache: {leftovers[:4]}"
    aside(trash, *(repo / name for name in DATA_ROOTS))
    run(repo, "checkout")
    assert data_digests(repo) == expected
    check_canaries(repo, "the re-run")
    fsck = run(repo, "fsck")
    assert fsck.stdout.strip().endswith("No problems found."), fsck.stdout + fsck.stderr
    kills.after_rerun(repo, baseline, "gc --force")
    kills.assert_nothing_left()

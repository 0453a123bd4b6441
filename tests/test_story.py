"""The acceptance story: versioned data across three commits, restored byte for byte.

A 20 MB model.bin and a data/ directory of 2,000 files in nested folders go through
three commits that add, modify, delete and rename files. Checking out each commit with
git and then `dvlite checkout` must restore exactly the bytes written at that commit;
`dvlite diff` must list exactly the changes made; `gc --force` after deleting a branch
must remove that branch's data and nothing a kept revision needs.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import xxhash
from conftest import git, run, tree_digests, write_tree

SEED = 20240611
N_FILES = 2000
MODEL_SIZE = 20 * 1024 * 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def xxh(data: bytes) -> str:
    """The cache object name for these bytes (the object store is content-addressed by XXH3-128)."""
    return xxhash.xxh3_128_hexdigest(data)


def blob(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(100, 4096))


def initial_files(rng: random.Random) -> dict[str, bytes]:
    """2,000 files under data/, in folders up to three levels deep."""
    folders = [""]
    for a in range(6):
        folders.append(f"a{a}/")
        for b in range(4):
            folders.append(f"a{a}/b{b}/")
            for c in range(3):
                folders.append(f"a{a}/b{b}/c{c}/")
    files: dict[str, bytes] = {}
    while len(files) < N_FILES:
        rel = f"{rng.choice(folders)}f{len(files):04d}.bin"
        files[rel] = blob(rng)
    return files


def mutate(rng: random.Random, files: dict[str, bytes], tag: str):
    """Add, modify, delete and rename files (and drop one whole folder); return (new files, changes).

    Changes are (kind, path, old_path) tuples as `dvlite diff --json` reports them, with
    paths relative to the data directory.
    """
    new = dict(files)
    changes: set[tuple[str, str, str | None]] = set()
    paths = sorted(new)
    rng.shuffle(paths)
    # a whole leaf folder goes away (its files are deleted)
    leaf = sorted({p.rsplit("/", 1)[0] for p in paths if p.count("/") == 3})[rng.randrange(10)]
    gone = [p for p in paths if p.startswith(leaf + "/")]
    rest = [p for p in paths if p not in gone]
    for p in gone:
        del new[p]
        changes.add(("deleted", p, None))
    for p in rest[:30]:
        new[p] = blob(rng)
        changes.add(("modified", p, None))
    for p in rest[30:45]:
        del new[p]
        changes.add(("deleted", p, None))
    for i, p in enumerate(rest[45:57]):
        # renames: some in place, some into another existing folder, some into a new one
        target = [
            f"{p.rsplit('/', 1)[0]}/renamed_{tag}_{i}.bin" if "/" in p else f"renamed_{tag}_{i}.bin",
            f"a{i % 6}/moved_{tag}_{i}.bin",
            f"new_{tag}/deep/moved_{i}.bin",
        ][i % 3]
        new[target] = new.pop(p)
        changes.add(("renamed", target, p))
    for i in range(25):
        target = [f"added_{tag}_{i}.bin", f"a{i % 6}/b{i % 4}/added_{tag}_{i}.bin",
                  f"fresh_{tag}/x{i % 3}/y/added_{i}.bin"][i % 3]
        new[target] = blob(rng)
        changes.add(("added", target, None))
    return new, changes


def expected_diff(old: dict[str, bytes], new: dict[str, bytes]) -> set[tuple[str, str, str | None, int]]:
    """What changed between two states, independently of dvlite (contents are unique random bytes)."""
    out = set()
    deleted = {p for p in old if p not in new}
    added = {p for p in new if p not in old}
    by_content = {old[p]: p for p in deleted}
    for p in added:
        src = by_content.get(new[p])
        if src is not None:
            deleted.discard(src)
            out.add(("renamed", p, src, len(new[p])))
        else:
            out.add(("added", p, None, len(new[p])))
    out |= {("deleted", p, None, len(old[p])) for p in deleted}
    out |= {("modified", p, None, len(new[p])) for p in new if p in old and old[p] != new[p]}
    return out


def set_data(root: Path, files: dict[str, bytes]) -> None:
    """Make root/data hold exactly `files` (as a user would by editing, renaming and deleting)."""
    data = root / "data"
    for p in sorted(data.rglob("*"), reverse=True):
        rel = p.relative_to(data).as_posix()
        if p.is_file() and rel not in files:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    changed = {rel: b for rel, b in files.items()
               if not (data / rel).is_file() or (data / rel).read_bytes() != b}
    for rel in changed:
        target = data / rel
        if target.exists():
            target.chmod(0o644)  # checked-out files may be read-only links or copies
            target.unlink()
    write_tree(data, changed)


def set_model(root: Path, content: bytes) -> None:
    target = root / "model.bin"
    if target.exists():
        target.chmod(0o644)
        target.unlink()
    target.write_bytes(content)


def commit(root: Path, message: str) -> str:
    run(root, "add", "data", "model.bin")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return git(root, "rev-parse", "HEAD").strip()


def cache_objects(root: Path) -> set[str]:
    objects = root / ".dvlite" / "cache" / "objects"
    return {p.parent.name + p.name for p in objects.glob("??/*") if p.is_file()}


def pointer_digest(root: Path, rev: str, pointer: str) -> str:
    text = git(root, "show", f"{rev}:{pointer}")
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("digest:"))


def assert_restores(root: Path, sha_: str, data: dict[str, bytes], model: bytes, label: str) -> None:
    git(root, "checkout", "-q", sha_)
    run(root, "checkout")
    assert tree_digests(root / "data") == {p: sha(b) for p, b in data.items()}, f"data/ at {label}"
    assert sha((root / "model.bin").read_bytes()) == sha(model), f"model.bin at {label}"
    assert run(root, "status").stdout.strip() == "Data and pointers are up to date.", label
    assert run(root, "status", "-q", check=False).returncode == 0, label


def test_three_commits_restore_diff_and_gc(repo: Path):
    rng = random.Random(SEED)

    # --- commit 1: everything new ------------------------------------------------------
    data1 = initial_files(rng)
    model1 = rng.randbytes(MODEL_SIZE)
    write_tree(repo / "data", data1)
    set_model(repo, model1)
    c1 = commit(repo, "data v1")

    # --- commit 2 and 3: add, modify, delete, rename inside data/, change model.bin ----
    data2, changes2 = mutate(rng, data1, "two")
    model2 = bytearray(model1)
    for _ in range(64):  # scattered edits, same size
        i = rng.randrange(MODEL_SIZE - 8)
        model2[i:i + 8] = rng.randbytes(8)
    model2 = bytes(model2)
    set_data(repo, data2)
    set_model(repo, model2)
    c2 = commit(repo, "data v2")

    data3, _ = mutate(rng, data2, "three")
    model3 = model2[: MODEL_SIZE // 2] + rng.randbytes(3 * 1024 * 1024)  # shrinks, new tail
    set_data(repo, data3)
    set_model(repo, model3)
    c3 = commit(repo, "data v3")
    assert run(repo, "status", "-q", check=False).returncode == 0

    states = {"c1": (c1, data1, model1), "c2": (c2, data2, model2), "c3": (c3, data3, model3)}

    # --- each commit, in a random order: git checkout + dvlite checkout -----------------
    order = list(states)
    rng.shuffle(order)
    if order[0] == "c3":  # start somewhere the workspace is not already
        order.append(order.pop(0))
    for label in order:
        sha_, data, model = states[label]
        assert_restores(repo, sha_, data, model, label)
    git(repo, "checkout", "-q", "main")
    run(repo, "checkout")
    assert tree_digests(repo / "data") == {p: sha(b) for p, b in data3.items()}

    # --- diff lists exactly the changes made ---------------------------------------------
    def diff_of(a: str, b: str) -> set[tuple[str, str, str | None, int]]:
        doc = json.loads(run(repo, "diff", a, b, "--json").stdout)
        assert doc["unreadable"] == []
        return {(c["kind"], c["path"], c["old_path"], c["size"]) for c in doc["changes"]}

    in_data = lambda changes: {(k, f"data/{p}", f"data/{o}" if o else None, s) for k, p, o, s in changes}
    model_change = {("modified", "model.bin", None, len(model3))}
    got13 = diff_of(c1, c3)
    assert got13 == in_data(expected_diff(data1, data3)) | model_change
    assert {k for k, *_ in got13} == {"added", "deleted", "modified", "renamed"}
    # one commit's diff is exactly what that commit did
    got12 = diff_of(c1, c2)
    assert {(k, p, o) for k, p, o, _ in got12} == (
        {(k, f"data/{p}", f"data/{o}" if o else None) for k, p, o in changes2}
        | {("modified", "model.bin", None)}
    )

    # --- a branch with data of its own, then deleted --------------------------------------
    git(repo, "checkout", "-q", "-b", "experiment")
    branch_data = dict(data3)
    unique: list[bytes] = []
    for p in sorted(branch_data)[:5]:
        branch_data[p] = blob(rng)
        unique.append(branch_data[p])
    for i in range(5):
        branch_data[f"experiment/e{i}.bin"] = blob(rng)
        unique.append(branch_data[f"experiment/e{i}.bin"])
    branch_model = rng.randbytes(1024 * 1024)
    unique.append(branch_model)
    branch_only = rng.randbytes(50_000)
    unique.append(branch_only)
    set_data(repo, branch_data)
    set_model(repo, branch_model)
    (repo / "branch_only.bin").write_bytes(branch_only)
    run(repo, "add", "branch_only.bin")
    commit(repo, "experiment")
    branch_objects = {xxh(b) for b in unique} | {pointer_digest(repo, "experiment", "data.dvl")}
    assert branch_objects <= cache_objects(repo)

    git(repo, "checkout", "-q", "main")
    run(repo, "checkout")
    (repo / "branch_only.bin").unlink()  # its pointer left with the branch; the user deletes the file
    assert tree_digests(repo / "data") == {p: sha(b) for p, b in data3.items()}
    git(repo, "branch", "-D", "experiment")
    # the older commits of main are kept through tags (--all-branches keeps branch tips only)
    git(repo, "tag", "v1", c1)
    git(repo, "tag", "v2", c2)

    before = cache_objects(repo)

    def unused(*flags: str) -> set[str]:
        doc = json.loads(run(repo, "gc", *flags, "--json").stdout)
        return {d for d, _size in doc["unused"]}

    # dry runs list exactly the deleted branch's objects and delete nothing
    assert unused("--all-branches", "--all-tags") == branch_objects
    assert unused("--all-commits") == branch_objects
    # branch tips alone do not keep v1/v2's data: the dry run says so
    tips_only = unused("--all-branches")
    assert branch_objects < tips_only
    assert {xxh(model1), xxh(model2)} <= tips_only
    assert xxh(model3) not in tips_only
    dry = run(repo, "gc", "--all-branches", "--all-tags")
    assert f"Would remove {len(branch_objects)} object(s)" in dry.stdout
    assert "Dry run: nothing deleted" in dry.stdout
    assert cache_objects(repo) == before

    forced = run(repo, "gc", "--all-branches", "--all-tags", "--force")
    assert f"Removed {len(branch_objects)} object(s)" in forced.stdout
    after = cache_objects(repo)
    assert after == before - branch_objects
    objects_dir = repo / ".dvlite" / "cache" / "objects"
    for d in branch_objects:
        assert not (objects_dir / d[:2] / d[2:]).exists()
    assert unused("--all-branches", "--all-tags") == set()

    # nothing a kept revision needs was removed: every commit still restores byte for byte
    for label in ("c1", "c2", "c3"):
        sha_, data, model = states[label]
        assert_restores(repo, sha_, data, model, label)
    git(repo, "checkout", "-q", "main")
    run(repo, "checkout")
    assert tree_digests(repo / "data") == {p: sha(b) for p, b in data3.items()}
    assert sha((repo / "model.bin").read_bytes()) == sha(model3)

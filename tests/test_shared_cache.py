"""A cache shared by two projects (issue 10, item 8), as a team on one server sets it up:
`dvlite config cache.dir /srv/dvlite-cache` in two real git repositories.

`gc` in one project must keep what the other needs (its workspace pointers), list only what
neither needs, and refuse, naming the project and the way out (`--projects`), when a project
recorded in the cache cannot be opened, since its data would look unused.

On a shared cache gc also keeps every object younger than an hour: another project may have just
added it and not yet written its pointer. Tests that need something collected backdate the cache
files with os.utime, and say so.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import git, run, tree_digests, write_tree

TWO_HOURS = 2 * 3600


def pointer_digest(repo: Path, rel: str) -> str:
    for line in (repo / f"{rel}.dvl").read_text().splitlines():
        if line.startswith("digest:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no digest in {rel}.dvl")


def make_project(root: Path, cache: Path | None) -> Path:
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    if cache is not None:
        run(root, "config", "cache.dir", str(cache))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def small_files(tag: str, n: int = 20) -> dict[str, bytes]:
    rng = random.Random(tag)
    return {f"{tag}/f{i:02d}.bin": f"{tag} {i}\n".encode() + rng.randbytes(rng.randint(10, 2000))
            for i in range(n)}


def backdate(cache: Path, seconds: int = TWO_HOURS) -> None:
    """Make every object and pack look older than gc's one-hour grace on a shared cache."""
    when = time.time() - seconds
    for sub in ("objects", "packs"):
        for path in (cache / sub).rglob("*"):
            os.utime(path, (when, when), follow_symlinks=False)


def gc_json(repo: Path, *args: str) -> dict:
    proc = run(repo, "gc", "--json", *args)
    return json.loads(proc.stdout)


def loose_object(cache: Path, digest: str) -> Path:
    return cache / "objects" / digest[:2] / digest[2:]


@dataclass
class Team:
    cache: Path
    a: Path
    b: Path
    old_model: str  # digest of a version of a's model.bin that no project needs any more
    a_files: dict[str, bytes]
    b_files: dict[str, bytes]


@pytest.fixture
def team(tmp_path: Path) -> Team:
    cache = tmp_path / "srv" / "dvlite-cache"
    a = make_project(tmp_path / "alice" / "proj-a", cache)
    b = make_project(tmp_path / "bob" / "proj-b", cache)

    rng = random.Random(8)
    write_tree(a, {"model.bin": rng.randbytes(300_000)})
    run(a, "add", "model.bin")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "model v1")
    old_model = pointer_digest(a, "model.bin")
    a_files = {**small_files("train"), "model.bin": rng.randbytes(300_000)}
    write_tree(a, a_files)
    run(a, "add", "train", "model.bin")
    git(a, "add", "-A")
    git(a, "commit", "-qm", "model v2 and training data")

    # Bob adds other data and has not committed it yet: his workspace pointers still count.
    b_files = {**small_files("images"), "weights.bin": rng.randbytes(250_000)}
    write_tree(b, b_files)
    run(b, "add", "images", "weights.bin")
    return Team(cache, a, b, old_model, a_files, b_files)


def test_gc_keeps_what_the_other_project_needs(team: Team):
    # Fresh objects are kept whoever needs them: another project may have just added them.
    assert gc_json(team.a)["unused"] == []

    backdate(team.cache)  # older than the grace period: only what neither project needs may go
    dry = gc_json(team.a)
    assert [digest for digest, _size in dry["unused"]] == [team.old_model]
    assert dry["projects"] == [str(team.b)]
    text = run(team.a, "gc")
    assert "Would remove 1 object(s)" in text.stdout and team.old_model in text.stdout, text.stdout
    assert str(team.b) in text.stdout, "gc names the other project whose data it keeps"

    forced = run(team.a, "gc", "--force")
    assert "Removed 1 object(s)" in forced.stdout, forced.stdout
    assert not loose_object(team.cache, team.old_model).exists()

    before = tree_digests(team.b / "images")
    shutil.rmtree(team.b / "images")
    (team.b / "weights.bin").unlink()
    checkout = run(team.b, "checkout", check=False)
    assert checkout.returncode == 0, checkout.stderr
    assert tree_digests(team.b / "images") == before
    assert (team.b / "weights.bin").read_bytes() == team.b_files["weights.bin"]
    git(team.b, "add", "-A")
    git(team.b, "commit", "-qm", "bob's data")
    status = run(team.b, "status")
    assert status.stdout.startswith("Data and pointers are up to date."), status.stdout
    assert run(team.b, "fsck").returncode == 0
    assert run(team.a, "fsck").returncode == 0


def test_gc_refuses_while_a_recorded_project_cannot_be_opened(team: Team, tmp_path: Path):
    backdate(team.cache)
    moved = tmp_path / "bob" / "proj-b-renamed"
    team.b.rename(moved)  # the cache still records proj-b, which is gone

    refused = run(team.a, "gc", "--force", check=False)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert str(team.b) in refused.stderr, refused.stderr
    assert "--projects" in refused.stderr, refused.stderr
    assert loose_object(team.cache, team.old_model).exists(), "a refused gc deletes nothing"

    for wrong in (team.b, team.a.parent):  # gone, or not a project: still refused
        proc = run(team.a, "gc", "--force", "--projects", str(wrong), check=False)
        assert proc.returncode != 0 and str(wrong) in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert loose_object(team.cache, team.old_model).exists()

    listed = gc_json(team.a, "--projects", str(moved))
    assert listed["projects"] == [str(moved)]
    assert [digest for digest, _size in listed["unused"]] == [team.old_model]

    # the record now names the projects given: a plain gc works again, and keeps the moved one
    forced = run(team.a, "gc", "--force", check=False)
    assert forced.returncode == 0, forced.stderr
    assert str(moved) in forced.stdout, forced.stdout
    assert not loose_object(team.cache, team.old_model).exists()
    shutil.rmtree(moved / "images")
    run(moved, "checkout")
    assert tree_digests(moved / "images") == {
        p.split("/", 1)[1]: hashlib.sha256(d).hexdigest()
        for p, d in team.b_files.items() if p.startswith("images/")
    }


def test_moved_project_with_its_own_cache_still_collects(tmp_path: Path):
    """A project whose cache is its own `.dvlite/cache` shares it with nobody: moving the
    project (mv, or a copy) must not make gc refuse on account of its own old path."""
    old = make_project(tmp_path / "old-place", None)
    write_tree(old, {"model.bin": b"v1" * 1000})
    run(old, "add", "model.bin")
    write_tree(old, {"model.bin": b"v2" * 1000})
    run(old, "add", "model.bin")
    new = tmp_path / "new-place"
    old.rename(new)

    gc = run(new, "gc", "--force", check=False)
    assert gc.returncode == 0, gc.stderr
    assert "Removed 1 object(s)" in gc.stdout, gc.stdout

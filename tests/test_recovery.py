"""Recovery from damage, interruption and a full disk (issue 10, items 5, 6 and 9), through the CLI.

Each test damages what a user's disk or a shared remote can really hold (a flipped byte in a
pack index, a crafted index whose checksum is right but whose entries lie, a truncated pack,
a loose object overwritten with other bytes), then asserts what the user notices: exit codes,
the messages naming what is damaged, which files are restored and that they are byte-identical,
which files are absent rather than wrong, and that the documented repair (`fsck --repair`,
`fsck --cloud --repair`, `pull`, `add`, `push`) brings everything back.

A project template is built once per module (two tracked directories whose small files land in
separate packs, two big files stored loose, pushed to a local-directory remote named by the
relative URL `../remote` so that a copy of the sandbox, and every clone made inside it, keeps
using its own remote); each test works on a copy of it.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import xxhash
from conftest import DVLITE, GIT_ENV, git, run, write_tree

TMP_MARK = ".dvlite-tmp-"
DIRS = ("a", "b")  # tracked directories of small files: one local pack each, one remote pack each
BIG = ("big.bin", "mid.bin")  # loose objects: big is streamed through a temp file, mid is not
BIG_SIZES = {"big.bin": 5 << 20, "mid.bin": 1_500_000}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset() -> dict[str, bytes]:
    rng = random.Random(1010)
    files = {f"{d}/f{i:02d}.bin": f"{d}{i}\n".encode() + rng.randbytes(rng.randint(10, 3000))
             for d in DIRS for i in range(30)}
    files.update({name: rng.randbytes(size) for name, size in BIG_SIZES.items()})
    return files


# A pack index, read and written here independently of dvlite's code (format: docs/design.md):
# b"DVLIDX01" + pack digest (16) + pack size (u64) + count (u64)
# + count x (object digest 16, offset u64, length u64), sorted + XXH3-128 of all before (16).
_HEAD = struct.Struct("<8s16sQQ")
_ENTRY = struct.Struct("<16sQQ")


def read_index(idx: Path) -> tuple[bytes, int, dict[str, tuple[int, int]]]:
    """(pack digest, pack size, {object digest: (offset, length)}) of a sound index."""
    data = idx.read_bytes()
    body = data[:-16]
    assert xxhash.xxh3_128_digest(body) == data[-16:], f"{idx} is already damaged"
    magic, pack, size, count = _HEAD.unpack_from(body)
    assert magic == b"DVLIDX01"
    entries = {d.hex(): (o, n) for d, o, n in _ENTRY.iter_unpack(body[_HEAD.size:])}
    assert len(entries) == count
    return pack, size, entries


def write_index(idx: Path, pack: bytes, size: int, entries: dict[str, tuple[int, int]]) -> None:
    body = _HEAD.pack(b"DVLIDX01", pack, size, len(entries)) + b"".join(
        _ENTRY.pack(bytes.fromhex(d), *entries[d]) for d in sorted(entries))
    idx.write_bytes(body + xxhash.xxh3_128_digest(body))


def pack_names(packs_dir: Path) -> set[str]:
    if not packs_dir.exists():
        return set()
    return {p.stem for p in packs_dir.glob("*.idx") if not p.name.startswith(TMP_MARK)}


def pointer_digest(repo: Path, rel: str) -> str:
    for line in (repo / f"{rel}.dvl").read_text().splitlines():
        if line.startswith("digest:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no digest in {rel}.dvl")


def files_of(top: Path, prefix: str) -> dict[str, bytes]:
    """The files under `top/prefix` as {repo-relative path: bytes}."""
    base = top / prefix
    if base.is_file():
        return {prefix: base.read_bytes()}
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


@dataclass
class Project:
    top: Path  # the sandbox: repo/, remote/, and any clones
    files: dict[str, bytes]
    cache_packs: dict[str, str]  # tracked dir -> the cache pack holding its files
    remote_packs: dict[str, str]  # tracked dir -> the remote pack holding its files

    @property
    def repo(self) -> Path:
        return self.top / "repo"

    @property
    def remote(self) -> Path:
        return self.top / "remote"

    def cache_pack(self, d: str, ext: str) -> Path:
        return self.repo / ".dvlite" / "cache" / "packs" / f"{self.cache_packs[d]}.{ext}"

    def remote_pack(self, d: str, ext: str) -> Path:
        return self.remote / "packs" / f"{self.remote_packs[d]}.{ext}"

    def remote_object(self, rel: str) -> Path:
        digest = pointer_digest(self.repo, rel)
        return self.remote / "objects" / digest[:2] / digest[2:]

    def clone(self, name: str) -> Path:
        dest = self.top / name
        git(self.top, "clone", "-q", str(self.repo), str(dest))
        return dest

    def expect(self, root: Path, *prefixes: str) -> None:
        """The files under each prefix are byte-identical to the originals (and no others)."""
        for prefix in prefixes:
            want = {p: sha(b) for p, b in self.files.items() if p == prefix or p.startswith(prefix + "/")}
            got = {p: sha(b) for p, b in files_of(root, prefix).items()} if (root / prefix).exists() else {}
            assert got == want, f"{root / prefix} is not what was added"

    def no_wrong_bytes(self, root: Path, prefix: str) -> None:
        """Every file under prefix is either absent or byte-identical: never other bytes."""
        if not (root / prefix).exists():
            return
        for p, data in files_of(root, prefix).items():
            assert sha(data) == sha(self.files[p]), f"{p} holds bytes that were never added"


def _build_template(top: Path) -> Project:
    repo = top / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    run(repo, "init")
    run(repo, "remote", "add", "-d", "origin", "../remote")  # relative: copies keep their own
    files = dataset()
    write_tree(repo, files)
    packs_dir = repo / ".dvlite" / "cache" / "packs"
    remote_packs_dir = top / "remote" / "packs"
    cache_packs, remote_packs = {}, {}
    for d in DIRS:
        before = pack_names(packs_dir)
        run(repo, "add", d)
        (cache_packs[d],) = pack_names(packs_dir) - before
    run(repo, "add", *BIG)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    for d in DIRS:  # one push per directory: its files travel in a remote pack of their own
        before = pack_names(remote_packs_dir)
        run(repo, "push", d)
        new = pack_names(remote_packs_dir) - before
        holding = [p for p in new if set(_entries(remote_packs_dir / f"{p}.idx"))
                   & _digests_of(repo, d)]
        (remote_packs[d],) = holding
    run(repo, "push")
    run(repo, "status")  # a user has looked at a clean status before the damage happens
    return Project(top, files, cache_packs, remote_packs)


def _entries(idx: Path) -> dict[str, tuple[int, int]]:
    return read_index(idx)[2]


def _digests_of(repo: Path, d: str) -> set[str]:
    return {xxhash.xxh3_128_hexdigest(p.read_bytes()) for p in (repo / d).rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Project:
    return _build_template(tmp_path_factory.mktemp("template") / "sandbox")


@pytest.fixture
def project(template: Project, tmp_path: Path) -> Project:
    top = tmp_path / "sandbox"
    shutil.copytree(template.top, top, symlinks=True)
    # The cache records the projects that use it (for gc on a shared cache); the copy's record
    # names the template's path, which this test must not depend on.
    shutil.rmtree(top / "repo" / ".dvlite" / "cache" / "projects", ignore_errors=True)
    return Project(top, template.files, template.cache_packs, template.remote_packs)


def writable(path: Path) -> None:
    os.chmod(path, 0o644)  # cache and remote files are read-only: damage does not ask


def flip_byte(path: Path, at: int) -> None:
    writable(path)
    with open(path, "r+b") as f:  # in place, as bit rot does: the directory does not change
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


def craft_lying_index(idx: Path) -> None:
    """An index with a correct checksum whose first entry reaches far past the end of its pack."""
    pack, size, entries = read_index(idx)
    first = min(entries)
    entries[first] = (entries[first][0], 1 << 62)
    writable(idx)
    write_index(idx, pack, size, entries)


def truncate_half(path: Path) -> None:
    writable(path)
    os.truncate(path, path.stat().st_size // 2)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr


# --- 1. a damaged local pack index ---------------------------------------------------------

LOCAL_DAMAGE = {
    "flipped-byte": lambda p: flip_byte(p.cache_pack("a", "idx"), 60),
    "lying-offsets": lambda p: craft_lying_index(p.cache_pack("a", "idx")),
    "truncated-pack": lambda p: truncate_half(p.cache_pack("a", "pack")),
}


@pytest.mark.parametrize("damage", sorted(LOCAL_DAMAGE))
def test_damaged_local_pack_leaves_the_rest_working_and_is_repaired(project: Project, damage: str):
    repo = project.repo
    LOCAL_DAMAGE[damage](project)

    status = run(repo, "status")
    assert status.returncode == 0, status.stderr
    assert "a: not in cache" in status.stdout, status.stdout
    assert not any(line.startswith(("b:", "big.bin:", "mid.bin:")) for line in status.stdout.splitlines())

    write_tree(repo, {"new/n.txt": b"data added after the damage\n"})
    run(repo, "add", "new")  # other data still goes in
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new data")

    for rel in ("a", "b", *BIG):
        remove(repo / rel)
    checkout = run(repo, "checkout", check=False)
    assert_clean_failure(checkout, 4)
    project.expect(repo, "b", *BIG)  # every other output restored
    project.no_wrong_bytes(repo, "a")
    assert "a/f" in checkout.stderr  # the affected files are named

    gc = run(repo, "gc", "--force", check=False)
    assert gc.returncode == 0, gc.stderr

    fsck = run(repo, "fsck", check=False)
    assert_clean_failure(fsck, 4)
    assert project.cache_packs["a"] in fsck.stdout + fsck.stderr, "fsck must name the damaged pack"
    assert "fsck --repair" in fsck.stdout + fsck.stderr

    repair = run(repo, "fsck", "--repair", check=False)
    assert "Traceback" not in repair.stderr, repair.stderr
    assert repair.returncode in (0, 4), repair.stderr
    corrupt = repo / ".dvlite" / "cache" / "corrupt"
    pack = project.cache_packs["a"]
    assert (corrupt / f"{pack}.idx").exists() and (corrupt / f"{pack}.pack").exists(), repair.stderr
    assert not project.cache_pack("a", "idx").exists() and not project.cache_pack("a", "pack").exists()

    pull = run(repo, "pull", check=False)
    assert pull.returncode == 0, pull.stderr
    project.expect(repo, "a", "b", *BIG)
    fsck = run(repo, "fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert run(repo, "status").stdout.startswith("Data and pointers are up to date.")


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated-pack"])
def test_damaged_local_pack_is_refilled_by_add(project: Project, damage: str):
    """No remote needed: the workspace still holds the data, and `add` stores it again."""
    repo = project.repo
    LOCAL_DAMAGE[damage](project)
    repair = run(repo, "fsck", "--repair", check=False)
    assert "Traceback" not in repair.stderr, repair.stderr
    assert not project.cache_pack("a", "idx").exists(), repair.stdout + repair.stderr
    assert "a: not in cache" in run(repo, "status").stdout

    run(repo, "add", "a")
    fsck = run(repo, "fsck", check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    shutil.rmtree(repo / "a")
    run(repo, "checkout")
    project.expect(repo, "a")


def test_pack_without_index_is_listed_and_collected_by_gc(project: Project):
    repo = project.repo
    idx, pack = project.cache_pack("a", "idx"), project.cache_pack("a", "pack")
    idx.unlink()  # by hand: the pack is an orphan now

    dry = run(repo, "gc")
    assert "1 pack(s) without an index" in dry.stdout, dry.stdout
    assert pack.exists(), "a dry run deletes nothing"
    forced = run(repo, "gc", "--force")
    assert "1 pack(s) without an index" in forced.stdout, forced.stdout
    assert not pack.exists()
    assert "a: not in cache" in run(repo, "status").stdout
    run(repo, "pull")  # the remote still has it
    assert run(repo, "fsck").returncode == 0


# --- 2. a damaged remote index -------------------------------------------------------------

def _heal_remote(project: Project, how: str, damaged: str) -> None:
    repo = project.repo
    if how == "push":
        push = run(repo, "push", check=False)
        assert push.returncode == 0, push.stderr
        assert "pushed" in push.stdout, f"push saw nothing to upload: {push.stdout}"
        return
    check = run(repo, "fsck", "--cloud", check=False)
    assert_clean_failure(check, 4)
    assert damaged in check.stderr, f"fsck --cloud must name {damaged}: {check.stderr}"
    repair = run(repo, "fsck", "--cloud", "--repair", check=False)
    assert "Traceback" not in repair.stderr, repair.stderr
    again = run(repo, "fsck", "--cloud", check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No problems found." in again.stdout


def _fresh_clone_pulls_everything(project: Project, name: str) -> None:
    fresh = project.clone(name)
    pull = run(fresh, "pull", check=False)
    assert pull.returncode == 0, pull.stdout + pull.stderr
    project.expect(fresh, *DIRS, *BIG)


REMOTE_INDEX_DAMAGE = {
    "flipped-byte": lambda p: flip_byte(p.remote_pack("a", "idx"), 60),
    "lying-offsets": lambda p: craft_lying_index(p.remote_pack("a", "idx")),
}


@pytest.mark.parametrize("heal", ["push", "fsck-cloud"])
@pytest.mark.parametrize("damage", sorted(REMOTE_INDEX_DAMAGE))
def test_damaged_remote_index_affects_only_its_pack(project: Project, damage: str, heal: str):
    REMOTE_INDEX_DAMAGE[damage](project)

    first = project.clone("first")
    pull = run(first, "pull", check=False)
    assert_clean_failure(pull, 1)  # data missing, not a remote failure (5)
    project.expect(first, "b", *BIG)  # loose objects and other packs still come
    project.no_wrong_bytes(first, "a")
    assert "missing on origin" in pull.stderr and "a/f" in pull.stderr, pull.stderr

    for where in (first, project.repo):  # the clone that lacks the data, the one that pushed it
        cloud = run(where, "status", "--cloud", check=False)
        assert "in sync" not in cloud.stdout, f"{where.name}: {cloud.stdout}"
        assert any(line.startswith("a:") for line in cloud.stdout.splitlines()), cloud.stdout

    _heal_remote(project, heal, f"packs/{project.remote_packs['a']}.idx")
    _fresh_clone_pulls_everything(project, "second")


# --- 3. a corrupt loose object on a remote -------------------------------------------------

def test_corrupt_remote_object_is_refused_and_repaired_from_the_cache(project: Project):
    for rel in BIG:
        obj = project.remote_object(rel)
        writable(obj)
        obj.write_bytes(random.Random(rel).randbytes(BIG_SIZES[rel]))  # same size, other bytes

    fresh = project.clone("fresh")
    pull = run(fresh, "pull", check=False)
    assert_clean_failure(pull, 1)
    for rel in BIG:
        digest = pointer_digest(project.repo, rel)
        assert "corrupt" in pull.stderr and f"{digest[:2]}/{digest[2:]}" in pull.stderr, pull.stderr
        assert not (fresh / rel).exists(), f"{rel}: wrong bytes written"
        assert not (fresh / ".dvlite" / "cache" / "objects" / digest[:2] / digest[2:]).exists()
    project.expect(fresh, *DIRS)
    leftovers = list((fresh / ".dvlite" / "cache").rglob(f"{TMP_MARK}*"))
    assert not leftovers, f"a refused download leaves no temp file: {leftovers}"

    # push checks what the remote holds by name, not by content: it sees the objects there
    # and uploads nothing, so the damage stays (this is why `fsck --cloud --repair` exists).
    push = run(project.repo, "push")
    assert "Everything is already on origin" in push.stdout, push.stdout
    assert run(fresh, "pull", check=False).returncode == 1

    check = run(project.repo, "fsck", "--cloud", check=False)
    assert_clean_failure(check, 4)
    for rel in BIG:
        assert str(project.remote_object(rel).relative_to(project.remote)) in check.stderr, check.stderr
    repair = run(project.repo, "fsck", "--cloud", "--repair", check=False)
    assert "Traceback" not in repair.stderr, repair.stderr
    assert "Repaired" in repair.stdout, repair.stdout
    assert run(project.repo, "fsck", "--cloud", check=False).returncode == 0
    _fresh_clone_pulls_everything(project, "after-repair")


# --- 4. a truncated pack on a remote --------------------------------------------------------

@pytest.mark.parametrize("heal", ["push", "fsck-cloud"])
def test_truncated_remote_pack_is_reported_and_healed(project: Project, heal: str):
    truncate_half(project.remote_pack("a", "pack"))

    fresh = project.clone("fresh")
    pull = run(fresh, "pull", check=False)
    assert_clean_failure(pull, 1)
    assert "a/f" in pull.stderr or project.remote_packs["a"] in pull.stderr, pull.stderr
    project.no_wrong_bytes(fresh, "a")
    project.expect(fresh, "b", *BIG)

    _heal_remote(project, heal, f"packs/{project.remote_packs['a']}.pack")
    _fresh_clone_pulls_everything(project, "after-heal")


# --- 6. Ctrl-C -----------------------------------------------------------------------------

N_SMALL = 3000


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    """A pushed repository of 3,000 small files and two 8 MiB files (sandbox/repo, sandbox/remote)."""
    top = tmp_path_factory.mktemp("sigint") / "sandbox"
    repo = top / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    run(repo, "init")
    run(repo, "remote", "add", "-d", "origin", "../remote")
    rng = random.Random(130)
    files = {f"data/d{i % 30:02d}/f{i:05d}.bin": rng.randbytes(rng.randint(10, 1500)) for i in range(N_SMALL)}
    files.update({f"data/big{i}.bin": rng.randbytes(8 << 20) for i in range(2)})
    write_tree(repo, files)
    run(repo, "add", "data")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    run(repo, "push")
    return top


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([*DVLITE, *args], cwd=cwd, env={**os.environ, **GIT_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def interrupt_when(proc: subprocess.Popen, reached, limit: float = 60.0) -> str:
    """Send SIGINT once `reached()` holds; return stderr. Skips if the command ended first."""
    deadline = time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < deadline:
        if reached():
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.001)
    _out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip("the command finished before the signal arrived")
    return err


def any_entry(*dirs: Path):
    def reached() -> bool:
        for d in dirs:
            try:
                if any(os.scandir(d)):
                    return True
            except FileNotFoundError:
                pass
        return False

    return reached


def files_written(top: Path, at_least: int):
    def reached() -> bool:
        count = 0
        for _root, _dirs, names in os.walk(top):
            count += len(names)
            if count >= at_least:
                return True
        return False

    return reached


def assert_interrupted(err: str, code: int) -> None:
    assert code == 130, (code, err)
    assert "error: interrupted" in err, err
    assert "Traceback" not in err, err


def assert_no_temp_files(repo: Path) -> None:
    status = git(repo, "status", "--porcelain", "--untracked-files=all")
    assert TMP_MARK not in status, status
    leftovers = [p for p in repo.rglob(f"{TMP_MARK}*") if ".dvlite" not in p.relative_to(repo).parts
                 and ".git" not in p.relative_to(repo).parts]
    assert not leftovers, leftovers


def test_ctrl_c_during_add(big_tree: Path, tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    run(repo, "init")
    shutil.copytree(big_tree / "repo" / "data", repo / "data")
    cache = repo / ".dvlite" / "cache"
    proc = start(repo, "add", "data")
    err = interrupt_when(proc, any_entry(cache / "objects", cache / "packs"))
    assert_interrupted(err, proc.returncode)
    assert_no_temp_files(repo)

    run(repo, "add", "data")
    assert run(repo, "fsck").returncode == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    assert run(repo, "status").stdout.startswith("Data and pointers are up to date.")
    assert_no_temp_files(repo)


def test_ctrl_c_during_checkout(big_tree: Path, tmp_path: Path):
    top = tmp_path / "sandbox"
    shutil.copytree(big_tree, top, symlinks=True)
    repo = top / "repo"
    shutil.rmtree(repo / ".dvlite" / "cache" / "projects", ignore_errors=True)
    want = files_of(repo, "data")
    shutil.rmtree(repo / "data")
    proc = start(repo, "checkout")
    err = interrupt_when(proc, files_written(repo / "data", 50))
    assert_interrupted(err, proc.returncode)
    assert_no_temp_files(repo)

    run(repo, "checkout")
    assert files_of(repo, "data") == want
    assert_no_temp_files(repo)


def test_ctrl_c_during_pull(big_tree: Path, tmp_path: Path):
    top = tmp_path / "sandbox"
    top.mkdir()
    shutil.copytree(big_tree / "remote", top / "remote")
    repo = top / "clone"
    git(top, "clone", "-q", str(big_tree / "repo"), str(repo))
    cache = repo / ".dvlite" / "cache"
    proc = start(repo, "pull")
    err = interrupt_when(proc, any_entry(cache / "objects", cache / "packs"))
    assert_interrupted(err, proc.returncode)
    assert_no_temp_files(repo)

    run(repo, "pull")
    assert files_of(repo, "data") == files_of(big_tree / "repo", "data")
    assert_no_temp_files(repo)


# --- 7. a full local disk ------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MiB tmpfs, unmounted afterwards; skipped where mounting is not permitted."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def assert_local_disk_full(proc: subprocess.CompletedProcess, disk: Path, project: Project) -> None:
    assert_clean_failure(proc, 1)  # a local problem, not the remote's (5)
    assert "No space left on device" in proc.stderr, proc.stderr
    assert str(disk) in proc.stderr, f"the message must name the local path: {proc.stderr}"
    assert "remote 'origin'" not in proc.stderr and str(project.remote) not in proc.stderr, proc.stderr


def test_disk_full_during_pull_is_a_local_error(project: Project, small_disk: Path):
    clone = small_disk / "clone"
    git(project.top, "clone", "-q", str(project.repo), str(clone))
    run(clone, "remote", "add", "-d", "--force", "origin", str(project.remote))  # not ../remote
    pull = run(clone, "pull", check=False)
    assert_local_disk_full(pull, small_disk, project)


def test_disk_full_while_fetching_one_big_object_into_the_cache(project: Project, small_disk: Path):
    clone = project.clone("clone")
    run(clone, "config", "--local", "cache.dir", str(small_disk / "cache"))
    fetch = run(clone, "fetch", "big.bin", check=False)
    assert_local_disk_full(fetch, small_disk, project)
    leftovers = [p for p in (small_disk / "cache").rglob("*") if p.is_file()
                 and p.parent.name != "projects"]
    assert not leftovers, f"a failed fetch leaves nothing in the cache: {leftovers}"


# --- 8. usage errors -----------------------------------------------------------------------

@pytest.mark.parametrize("args, named", [
    (("add", "--bogus"), "--bogus"),
    (("push", "-j", "0"), "-j"),
    (("add",), "paths"),
])
def test_usage_error_is_one_line(repo: Path, args: tuple[str, ...], named: str):
    proc = run(repo, *args, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error:"), proc.stderr
    lines = proc.stderr.splitlines()
    assert named.lower() in lines[0].lower(), proc.stderr  # the message names the option
    assert len(lines) == 2 and lines[1].startswith("hint:") and "--help" in lines[1], proc.stderr
    assert not any(ch in proc.stderr for ch in "╭╮╰╯│─"), proc.stderr
    assert "Traceback" not in proc.stderr

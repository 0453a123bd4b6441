"""DVC's md5s computed by dvlite.dvc.hashing, checked against what the real DVC records and accepts."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from conftest import git, write_tree
from dvc_helpers import dvc, requires_dvc

from dvlite.dvc import hashing
from dvlite.errors import DvliteError, FormatError, IntegrityError

RNG = random.Random(7)
FILES = {
    "crlf.txt": b"id,name\r\n1,a\r\n2,b\r\n",
    "binary.bin": bytes(RNG.randrange(256) for _ in range(4000)) + b"\r\n",
    "empty.txt": b"",
    # first 1 MiB chunk text with CRLF, then a binary chunk: DVC 2.x and 3.x disagree here
    "mixed.dat": (b"line\r\n" * 200_000)[: 1 << 20] + bytes(RNG.randrange(256) for _ in range(5000))
    + b"\r\nend\r\n",
    "big-text.txt": b"text line\r\n" * 150_000,
}


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    return repo


@requires_dvc
def test_md5_of_files_and_directories_matches_dvc_add(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    write_tree(repo, {f"d/{k}": v for k, v in FILES.items()} | {"d/sub/x": b"x\n", "one.txt": b"one\r\n"})
    dvc(repo, "add", "d", "one.txt")
    recorded = {p: (repo / f"{p}.dvc").read_text().split("md5: ")[1].split()[0] for p in ("d", "one.txt")}
    assert recorded["one.txt"] == hashing.md5_of_bytes(b"one\r\n")  # 3.x: plain md5, CRLF kept
    entries = [hashing.DirEntry(p, hashing.md5_of_bytes(v), len(v), None)
               for p, v in {**FILES, "sub/x": b"x\n"}.items()]
    assert recorded["d"] == hashing.dir_md5(entries) + ".dir"
    md5 = recorded["d"][:-4]
    listing = (repo / ".dvc/cache/files/md5" / md5[:2] / (md5[2:] + ".dir")).read_bytes()
    parsed = hashing.verify_listing(listing, md5, "d.dir")
    assert {e.relpath for e in parsed} == set(FILES) | {"sub/x"}


@requires_dvc
def test_md5_dos2unix_is_what_dvc_3_accepts_for_2x_records(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    write_tree(repo, FILES)
    for name, data in FILES.items():
        md5 = hashing.md5_of_bytes(data, hashing.LEGACY)
        if name in ("crlf.txt", "big-text.txt"):
            assert md5 != hashlib.md5(data).hexdigest()  # the rule did something
        (repo / ".dvc/cache" / md5[:2]).mkdir(parents=True, exist_ok=True)
        (repo / ".dvc/cache" / md5[:2] / md5[2:]).write_bytes(data)  # the 2.x cache layout
        (repo / f"{name}.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {len(data)}\n  path: {name}\n")
    assert "Data and pipelines are up to date" in dvc(repo, "status").stdout
    # both DVC 2.x's reading and 3.x's are accepted when verifying
    stream = hashing.Md5Stream(hashing.LEGACY)
    stream.update(FILES["mixed.dat"])
    assert len(stream.candidates()) == 2 and stream.primary() in stream.candidates()


def test_verify_refuses_a_listing_that_does_not_hash_to_its_name() -> None:
    entries = [hashing.DirEntry("a", hashing.md5_of_bytes(b"a"), 1, None)]
    data = hashing.listing_bytes(entries)
    good = hashing.dir_md5(entries)
    assert hashing.verify_listing(data, good, "x.dir")[0].relpath == "a"
    with pytest.raises(IntegrityError, match="does not hash to"):
        hashing.verify_listing(data.replace(b'"a"', b'"b"'), good, "x.dir")


@pytest.mark.parametrize(("listing", "message"), [
    (b"{}", "expected a JSON list"),
    (b"[1]", "entries must be objects"),
    (b'[{"relpath": "../x", "md5": "' + b"a" * 32 + b'"}]', "unsafe path '../x'"),
    (b'[{"relpath": "/etc/passwd", "md5": "' + b"a" * 32 + b'"}]', "unsafe path '/etc/passwd'"),
    (b'[{"relpath": "a", "md5": "nope"}]', "bad md5"),
    (b'[{"relpath": "a", "md5": "' + b"a" * 32 + b'", "size": -1}]', "bad size"),
    (b'[{"relpath": "a", "md5": "' + b"a" * 32 + b'"}, {"relpath": "a", "md5": "' + b"b" * 32 + b'"}]',
     "names a twice"),
    (b"[" * 100_000, "not a DVC directory listing"),
])
def test_malformed_listings_are_one_line_errors(listing: bytes, message: str) -> None:
    with pytest.raises(DvliteError) as info:  # FormatError, or UnsafePathError for paths
        hashing.parse_listing(listing, "cache/ab/cd.dir")
    assert message in info.value.message and info.value.message.startswith("cache/ab/cd.dir")


def test_listing_bytes_are_dvcs_json() -> None:
    entries = [hashing.DirEntry("b", "1" * 32, None, None), hashing.DirEntry("a", "2" * 32, None, None)]
    assert json.loads(hashing.listing_bytes(entries)) == [
        {"md5": "2" * 32, "relpath": "a"}, {"md5": "1" * 32, "relpath": "b"}]


def test_objects_come_verified_from_a_remote_filesystem(tmp_path: Path) -> None:
    """The fsspec path (FsStore): small and large objects, both layouts, and a corrupt one."""
    import fsspec
    from fsspec.callbacks import NoOpCallback

    from dvlite.dvc.cache import FsStore, LocalStore
    from dvlite.dvc.objects import Importer
    from dvlite.storage.cache import Cache
    from dvlite.remotes.backend import Remote
    from dvlite.remotes.config import RemoteConfig

    root = f"memory://dvc-remote-{tmp_path.name}"
    fs = fsspec.filesystem("memory")
    small, large = b"small\r\n", bytes(RNG.randrange(256) for _ in range(5 << 20))
    m_small, m_large = hashing.md5_of_bytes(small, hashing.LEGACY), hashing.md5_of_bytes(large)
    fs.pipe(f"{root}/{m_small[:2]}/{m_small[2:]}", small)  # DVC 2.x layout
    fs.pipe(f"{root}/files/md5/{m_large[:2]}/{m_large[2:]}", large)
    bad = hashing.md5_of_bytes(b"original")
    fs.pipe(f"{root}/files/md5/{bad[:2]}/{bad[2:]}", b"tampered")
    store = FsStore(Remote(RemoteConfig("r", root)), "DVC remote 'r'")
    odb = Cache(str(tmp_path / "cache"))
    importer = Importer(odb, str(tmp_path), LocalStore(str(tmp_path / "no-cache"), "the DVC cache"),
                        lambda: store, str(tmp_path / "tmp"), NoOpCallback())
    got_small = importer.file(m_small, hashing.LEGACY, "x", True, "x.dvc")
    got_large = importer.file(m_large, hashing.MD5, "y", True, "y.dvc")
    assert odb.read(got_small.digest.hex) == small and odb.read(got_large.digest.hex) == large
    assert importer.counts.remote == 2 and not any((tmp_path / "tmp").iterdir())
    with pytest.raises(IntegrityError, match="corrupt object in DVC remote 'r'"):
        importer.file(bad, hashing.MD5, "z", True, "z.dvc")

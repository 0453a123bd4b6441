"""dvlite.api and the `dvlite://` fsspec filesystem: tracked data at any revision, read with
pyarrow, from the cache or from the remote when the cache lacks it."""

from __future__ import annotations

import io
import shutil
import uuid
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from conftest import git, run, write_tree

from dvlite import api
from dvlite.errors import BadInputError, DvliteError
from dvlite.api.filesystem import DvliteFileSystem

CSV = {"v1": b"city,temp\nOslo,3\nRome,18\n", "v2": b"city,temp\nOslo,4\nRome,19\nLima,22\n"}
TABLES = {
    "v1": pa.table({"id": [1, 2], "name": ["a", "b"]}),
    "v2": pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"]}),
}
PARTS = {  # data/parts/: a partitioned dataset; v2 adds a partition
    "v1": {"year=2023/part-0.parquet": pa.table({"x": [1, 2]}),
           "year=2024/part-0.parquet": pa.table({"x": [3]})},
    "v2": {"year=2023/part-0.parquet": pa.table({"x": [1, 2]}),
           "year=2024/part-0.parquet": pa.table({"x": [3]}),
           "year=2025/part-0.parquet": pa.table({"x": [4, 5, 6]})},
}


BIG = bytes(range(256)) * (8 << 10)  # 2 MiB: stored on the remote as a loose object, not packed


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _write_version(src: Path, tag: str) -> None:
    shutil.rmtree(src / "data" / "parts", ignore_errors=True)
    write_tree(src, {
        "data/train.csv": CSV[tag],
        "data/table.parquet": _parquet(TABLES[tag]),
        "data/big.bin": BIG,
        **{f"data/parts/{k}": _parquet(t) for k, t in PARTS[tag].items()},
    })


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A repository with tags v1 and v2, its data pushed to a local remote."""
    top = tmp_path_factory.mktemp("api")
    src = top / "src"
    src.mkdir()
    git(src, "init", "-q", "-b", "main")
    run(src, "init")
    run(src, "remote", "add", "-d", "store", str(top / "store"))
    for tag in ("v1", "v2"):
        _write_version(src, tag)
        run(src, "add", "data/train.csv", "data/table.parquet", "data/parts", "data/big.bin")
        run(src, "push")
        git(src, "add", "-A")
        git(src, "commit", "-q", "-m", tag)
        git(src, "tag", tag)
    return src


@pytest.fixture
def clone(source, tmp_path) -> Path:
    """A fresh git clone of the source: pointers and config, an empty cache."""
    dst = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(source), str(dst))
    return dst


def _hide_remote(source: Path) -> Path:
    """Move the remote away (the caller moves it back); returns where it went."""
    store = source.parent / "store"
    hidden = source.parent / f"store-hidden-{uuid.uuid4().hex[:6]}"
    store.rename(hidden)
    return hidden


def _cache_files(root: Path) -> list[Path]:
    return [p for p in (root / ".dvlite" / "cache").rglob("*") if p.is_file()]  # loose or packs


# --- dvlite.api --------------------------------------------------------------------------------

def test_read_two_tags_from_the_remote_then_from_the_cache(source, clone):
    assert _cache_files(clone) == []
    for tag in ("v1", "v2"):
        assert api.read("data/train.csv", repo=clone, rev=tag, mode="rb") == CSV[tag]
        assert api.read("data/parts/year=2023/part-0.parquet", repo=clone, rev=tag, mode="rb") \
            == _parquet(PARTS[tag]["year=2023/part-0.parquet"])
    assert _cache_files(clone)  # what was read came into the cache
    hidden = _hide_remote(source)
    try:  # with the remote gone, the same reads are served from the cache
        for tag in ("v1", "v2"):
            with api.open("data/train.csv", repo=clone, rev=tag, mode="r", encoding="utf-8") as f:
                assert f.read() == CSV[tag].decode()
        with pytest.raises(DvliteError, match="nor on remote 'store'"):  # never fetched
            api.read("data/parts/year=2025/part-0.parquet", repo=clone, rev="v2")
    finally:
        hidden.rename(source.parent / "store")


def test_read_after_the_cache_is_emptied(source, clone):
    assert api.read("data/train.csv", repo=clone, rev="v1") == CSV["v1"].decode()
    shutil.rmtree(clone / ".dvlite" / "cache")
    assert _cache_files(clone) == []
    assert api.read("data/train.csv", repo=clone, rev="v1") == CSV["v1"].decode()
    assert api.read("data/train.csv", repo=clone, rev="v2") == CSV["v2"].decode()


def test_rev_none_reads_what_the_workspace_pointers_name(source):
    assert api.read("data/train.csv", repo=source, mode="rb") == CSV["v2"]
    # an edited, un-added workspace file is not what the pointer names
    path = source / "data" / "train.csv"
    path.chmod(0o644)
    original = path.read_bytes()
    try:
        path.write_bytes(b"edited\n")
        assert api.read("data/train.csv", repo=source, mode="rb") == CSV["v2"]
        status = {s["path"]: s for s in api.status(repo=source)}
        assert status["data/train.csv"]["flags"] == ["modified"]
        assert status["data/table.parquet"]["flags"] == []
        assert [s["path"] for s in api.status(["data/train.csv"], repo=source)] == ["data/train.csv"]
    finally:
        path.write_bytes(original)
    assert all(not s["flags"] for s in api.status(repo=source))


def test_errors_for_paths_and_revisions(source):
    with pytest.raises(FileNotFoundError, match="data/nope.csv is not tracked"):
        api.read("data/nope.csv", repo=source, rev="v1")
    with pytest.raises(FileNotFoundError):
        api.read("data/parts/year=2025/part-0.parquet", repo=source, rev="v1")  # only in v2
    with pytest.raises(IsADirectoryError):
        api.read("data/parts", repo=source, rev="v1")
    with pytest.raises(BadInputError, match="unknown revision"):
        api.read("data/train.csv", repo=source, rev="v9")
    with pytest.raises(ValueError, match="reads only"):
        api.open("data/train.csv", repo=source, mode="wb")


def test_get_url_names_the_object_on_the_remote(source):
    store = source.parent / "store"
    url = api.get_url("data/train.csv", repo=source, rev="v1")
    # a small object sits in a pack: the pack's URL and the object's inclusive byte range
    pack, span = url.split("#bytes=")
    assert pack.startswith(f"{store}/packs/") and pack.endswith(".pack")
    start, end = map(int, span.split("-"))
    with open(pack, "rb") as f:
        f.seek(start)
        assert f.read(end - start + 1) == api.read("data/train.csv", repo=source, rev="v1", mode="rb")
    assert url != api.get_url("data/train.csv", repo=source, rev="v2")
    # a large object is a file of its own on the remote (small ones may travel in pack files)
    big = api.get_url("data/big.bin", repo=source, rev="v1")
    assert Path(big).read_bytes() == BIG
    inner = api.get_url("data/parts/year=2024/part-0.parquet", repo=source, rev="v1")
    assert inner.startswith(f"{store}/")
    assert api.get_url("data/parts", repo=source, rev="v1") != api.get_url(
        "data/parts", repo=source, rev="v2")  # a directory: its manifest's URL
    with pytest.raises(FileNotFoundError):
        api.get_url("data/nope", repo=source, rev="v1")


# --- fsspec ------------------------------------------------------------------------------------

def test_the_entry_point_registers_the_protocol():
    assert fsspec.get_filesystem_class("dvlite") is DvliteFileSystem


def test_pyarrow_csv_through_fsspec_open_at_two_tags(source, clone):
    for tag in ("v1", "v2"):
        with fsspec.open("dvlite://data/train.csv", mode="rb", repo=str(clone), rev=tag) as f:
            table = pacsv.read_csv(f)
        assert table.num_rows == CSV[tag].count(b"\n") - 1
        assert table.column("city").to_pylist()[-1] == CSV[tag].split(b"\n")[-2].split(b",")[0].decode()
        fs, path = fsspec.core.url_to_fs("dvlite://data/train.csv", repo=str(clone), rev=tag)
        assert path == "data/train.csv"
        assert fs.cat_file(path) == CSV[tag]


def test_pyarrow_parquet_and_dataset_at_two_tags(source, clone):
    for tag in ("v1", "v2"):
        fs = fsspec.filesystem("dvlite", repo=str(clone), rev=tag)
        assert pq.read_table("data/table.parquet", filesystem=fs).equals(TABLES[tag])
        dataset = pads.dataset("data/parts", filesystem=fs, format="parquet", partitioning="hive")
        table = dataset.to_table().sort_by("x")
        expected = sorted(x for t in PARTS[tag].values() for x in t.column("x").to_pylist())
        assert table.column("x").to_pylist() == expected
        assert sorted(set(table.column("year").to_pylist())) == sorted(
            int(k.split("/")[0].split("=")[1]) for k in PARTS[tag])


def test_ls_info_find_inside_tracked_directories(source):
    fs = fsspec.filesystem("dvlite", repo=str(source), rev="v2")
    assert fs.ls("", detail=False) == ["data"]
    assert fs.ls("dvlite://data", detail=False) == [
        "data/big.bin", "data/parts", "data/table.parquet", "data/train.csv"]
    assert fs.ls("data/parts", detail=False) == [
        "data/parts/year=2023", "data/parts/year=2024", "data/parts/year=2025"]
    info = fs.info("data/parts/year=2025/part-0.parquet")
    assert info["type"] == "file"
    assert info["size"] == len(_parquet(PARTS["v2"]["year=2025/part-0.parquet"]))
    assert fs.info("data/parts/year=2025")["type"] == "directory"
    assert fs.info("data")["type"] == "directory"
    assert fs.find("data/parts") == sorted(f"data/parts/{k}" for k in PARTS["v2"])
    assert fs.find("data", maxdepth=1) == ["data/big.bin", "data/table.parquet", "data/train.csv"]
    assert "data/parts/year=2024" in fs.find("data/parts", withdirs=True)
    assert fs.find("data/train.csv") == ["data/train.csv"]
    assert fs.isdir("data/parts/year=2023") and fs.isfile("data/train.csv")
    assert not fs.exists("data/parts/year=2026")
    with pytest.raises(FileNotFoundError):  # that partition is new in v2
        fsspec.filesystem("dvlite", repo=str(source), rev="v1").info("data/parts/year=2025")
    with pytest.raises(FileNotFoundError):
        fs.ls("data/nope")
    with pytest.raises(PermissionError):
        fs.open("data/new.csv", "wb")
    assert fs.cat("data/parts/year=2024/part-0.parquet", start=0, end=4) == b"PAR1"


def test_workspace_filesystem_sees_changed_pointers_after_invalidate(clone):
    fs = fsspec.filesystem("dvlite", repo=str(clone))  # rev None: the workspace's pointers
    assert fs.cat_file("data/train.csv") == CSV["v2"]
    git(clone, "checkout", "-q", "v1", "--", "data/train.csv.dvl")
    assert fs.cat_file("data/train.csv") == CSV["v2"]  # read once, when first used
    fs.invalidate_cache()
    assert fs.cat_file("data/train.csv") == CSV["v1"]
    assert fsspec.filesystem("dvlite", repo=str(clone)) is not fs  # never shared: may go stale


def test_lineage_is_what_the_pipelines_module_answers(source):
    from dvlite.pipelines import lineage
    from dvlite.repo import Repo

    expected = lineage.lineage(Repo.find(str(source)), "data/train.csv", "v1")
    assert api.lineage(source / "data" / "train.csv", repo=source, rev="v1") == expected
    with pytest.raises(BadInputError):
        api.lineage("data/nope.csv", repo=source)

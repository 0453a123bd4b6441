"""`dvlite import-url`, `get-url`, `ls-url` and `update` of URL imports, against real sources:
local directories, moto's S3 server and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
import yaml
from conftest import git, run, tree_digests, write_tree
from remote_helpers import configure, fresh_location, remote_objects, serve, storage

FILES = {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"bee\n", "sub/deep/c.bin": bytes(range(256)) * 40}


def _pointer(path: Path) -> dict:
    return yaml.safe_load(path.read_bytes())


def _one_line_error(proc, code: int, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), proc.stderr
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), proc.stderr
    for w in words:
        assert w in lines[0], proc.stderr


def _leftovers(*dirs: Path) -> list[str]:
    return [p.name for d in dirs if d.exists() for p in d.iterdir() if p.name.startswith(".dvlite-tmp")]


def _s3_options(server) -> list[str]:
    return [a for k in ("endpoint_url", "key", "secret") for a in ("--fs-config", f"{k}={server.options[k]}")]


# --- local paths ------------------------------------------------------------------------------

def test_import_url_of_a_local_directory_and_update_only_when_its_marker_changes(repo, tmp_path):
    src = tmp_path / "src"
    write_tree(src, FILES)
    (src / "sub" / "run.sh").write_bytes(b"#!/bin/sh\n")
    (src / "sub" / "run.sh").chmod(0o755)
    proc = run(repo, "import-url", src, "data")
    assert "git add data.dvl .gitignore" in proc.stdout
    assert tree_digests(repo / "data") == tree_digests(src)
    assert os.access(repo / "data" / "sub" / "run.sh", os.X_OK)
    doc = _pointer(repo / "data.dvl")
    assert doc["kind"] == "dir" and doc["files"] == 4
    assert doc["source"]["url"] == str(src) and set(doc["source"]["version"]) == {"listing"}
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "import")
    assert "up to date" in run(repo, "status").stdout

    before = (repo / "data.dvl").read_bytes()
    assert "data: up to date" in run(repo, "update").stdout
    assert (repo / "data.dvl").read_bytes() == before
    # same size, same mtime: the marker says nothing changed, so nothing is downloaded
    target = src / "a.csv"
    st = target.stat()
    target.write_bytes(b"X,Y\n9,9\n")
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert "data: up to date" in run(repo, "update", "data").stdout
    assert (repo / "data" / "a.csv").read_bytes() == FILES["a.csv"]
    # a real change: fetched again, the workspace follows
    (src / "sub" / "b.txt").write_bytes(b"a longer bee\n")
    (src / "sub" / "deep" / "c.bin").unlink()
    assert "data: updated" in run(repo, "update").stdout
    assert tree_digests(repo / "data") == tree_digests(src)
    assert _pointer(repo / "data.dvl")["files"] == 3
    assert _leftovers(repo, repo / ".dvlite" / "tmp") == []


def test_import_url_of_a_file_records_mtime_and_size(repo, tmp_path):
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    run(repo, "import-url", f"file://{src}")
    assert (repo / "model.bin").read_bytes() == b"weights" * 1000
    source = _pointer(repo / "model.bin.dvl")["source"]
    assert source["url"] == f"file://{src}"
    assert set(source["version"]) == {"mtime", "size"} and source["version"]["size"] == 7000
    _one_line_error(run(repo, "import-url", src, "model.bin", check=False), 2, "already tracked")
    src.write_bytes(b"new weights")
    [result] = json.loads(run(repo, "update", "model.bin", "--json").stdout)
    assert result["changed"] and result["source"]["version"]["size"] == len(b"new weights")
    assert (repo / "model.bin").read_bytes() == b"new weights"
    _one_line_error(run(repo, "update", "model.bin", "--rev", "v1", check=False), 2, "--rev")


def test_update_keeps_unsaved_changes_and_the_old_pointer(repo, tmp_path):
    src = tmp_path / "one.txt"
    src.write_bytes(b"one\n")
    run(repo, "import-url", src)
    before = (repo / "one.txt.dvl").read_bytes()
    (repo / "one.txt").chmod(0o644)
    (repo / "one.txt").write_bytes(b"my edit\n")
    src.write_bytes(b"one, two\n")
    proc = run(repo, "update", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (repo / "one.txt").read_bytes() == b"my edit\n"
    assert (repo / "one.txt.dvl").read_bytes() == before


# --- S3 and HTTP ------------------------------------------------------------------------------

def test_s3_file_and_directory_and_update_by_etag(repo, tmp_path):
    with serve("s3", tmp_path / "s3") as s3:
        where = fresh_location(s3)
        fs, root = storage(where)
        for rel, data in FILES.items():
            fs.pipe_file(f"{root}/raw/{rel}", data)
        opts = _s3_options(s3)
        run(repo, "import-url", f"{where.url}/raw/a.csv", "a.csv", *opts)
        run(repo, "import-url", f"{where.url}/raw", "raw", *opts)
        assert (repo / "a.csv").read_bytes() == FILES["a.csv"]
        assert tree_digests(repo / "raw") == tree_digests_of(FILES)
        assert "etag" in _pointer(repo / "a.csv.dvl")["source"]["version"]
        assert "raw: up to date" in run(repo, "update", "raw", *opts).stdout
        fs.pipe_file(f"{root}/raw/a.csv", b"x,y\n3,4\n")  # same size, new ETag
        out = run(repo, "update", *opts).stdout
        assert "a.csv: updated" in out and "raw: updated" in out
        assert (repo / "a.csv").read_bytes() == b"x,y\n3,4\n"
        assert (repo / "raw" / "a.csv").read_bytes() == b"x,y\n3,4\n"
        listed = json.loads(run(repo, "ls-url", f"{where.url}/raw", "-R", "--json", *opts).stdout)
        assert {e["name"]: e["size"] for e in listed} == {k: len(v) for k, v in FILES.items()}


def tree_digests_of(files: dict[str, bytes]) -> dict[str, str]:
    import hashlib

    return {k: hashlib.sha256(v).hexdigest() for k, v in files.items()}


def test_http_file_and_directory(repo, tmp_path):
    with serve("http", tmp_path / "http") as http:
        write_tree(Path(http.extra["root"]) / "ds", FILES)
        run(repo, "import-url", f"{http.url}/ds/a.csv")
        version = _pointer(repo / "a.csv.dvl")["source"]["version"]
        assert version["size"] == len(FILES["a.csv"]) and "mtime" in version  # Last-Modified
        run(repo, "import-url", f"{http.url}/ds/", "ds")  # a trailing slash: a directory
        assert tree_digests(repo / "ds") == tree_digests_of(FILES)
        assert "ds: up to date" in run(repo, "update", "ds").stdout
        listed = run(repo, "ls-url", f"{http.url}/ds/", "--json").stdout
        assert {e["name"]: e["type"] for e in json.loads(listed)} == {"a.csv": "file", "sub": "directory"}
        out = tmp_path / "got"
        out.mkdir()
        run(out, "get-url", f"{http.url}/ds/")
        assert tree_digests(out / "ds") == tree_digests_of(FILES)


def test_hostile_listings_never_write_outside_out(repo, tmp_path):
    with serve("http", tmp_path / "http") as http:
        docroot = Path(http.extra["root"])
        write_tree(docroot, {"escape.txt": b"outside\n", "evil/ok.txt": b"ok\n",
                             "evil/sub/escape2.txt": b"outside 2\n"})
        (docroot / "evil" / "index.html").write_text(
            '<a href="ok.txt">ok</a> <a href="../escape.txt">x</a> <a href="sub/../../escape.txt">y</a>')
        for args in (["import-url", f"{http.url}/evil/", "evil"],):
            _one_line_error(run(repo, *args, check=False), 4, "unsafe name")
        assert not (repo / "evil").exists() and not (repo / "evil.dvl").exists()
        assert not (repo / "escape.txt").exists() and not (repo / ".gitignore").exists()
        got = tmp_path / "got"
        got.mkdir()
        _one_line_error(run(got, "get-url", f"{http.url}/evil/", "out", check=False), 4, "unsafe name")
        assert list(got.iterdir()) == []
    with serve("s3", tmp_path / "s3") as s3:
        where = fresh_location(s3)
        fs, root = storage(where)
        fs.pipe_file(f"{root}/raw/ok.txt", b"ok")
        fs.pipe_file(f"{root}/raw/../evil.txt", b"evil")  # S3 keys may say anything
        proc = run(repo, "import-url", f"{where.url}/raw", "raw", *_s3_options(s3), check=False)
        _one_line_error(proc, 4, "unsafe name '..'")
        assert not (repo / "raw").exists() and not (repo / "evil.txt").exists()
        assert not (repo / "raw.dvl").exists()


# --- --to-remote ------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["local", "s3"])
def test_to_remote_streams_to_the_remote_and_pull_brings_it(repo, tmp_path, backend):
    rnd = random.Random(3)
    src = tmp_path / "src"
    files = {**FILES, "big.bin": rnd.randbytes(5 << 20)}  # above 4 MiB: streamed under a temp name
    write_tree(src, files)
    with serve(backend, tmp_path / backend) as server:
        where = fresh_location(server) if backend == "s3" else server
        configure(repo, where)
        proc = run(repo, "import-url", src, "data", "--to-remote")
        assert "to the remote" in proc.stdout
        assert not (repo / "data").exists()
        doc = _pointer(repo / "data.dvl")
        assert doc["files"] == 4 and doc["source"]["url"] == str(src)
        cache = repo / ".dvlite" / "cache"
        kept = [p.parent.name + p.name for p in cache.rglob("*") if p.is_file() and "objects" in p.parts]
        assert kept == [doc["digest"]] and not list(cache.rglob("*.pack"))  # the manifest only
        assert doc["digest"] in remote_objects(where)  # the manifest, after its files
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "import to remote")
        other = tmp_path / "other"
        git(tmp_path, "clone", "-q", str(repo), str(other))
        for key, value in where.options.items():
            run(other, "remote", "modify", "--local", "origin", key,
                str(value).lower() if isinstance(value, bool) else str(value))
        run(other, "pull")
        assert tree_digests(other / "data") == tree_digests(src)
        assert not [k for k in _remote_keys(where) if ".dvlite-tmp" in k]


def _remote_keys(server) -> list[str]:
    fs, root = storage(server)
    return fs.find(root)


def test_update_to_remote_leaves_the_workspace_and_pull_brings_the_new_data(repo, tmp_path):
    src = tmp_path / "table.csv"
    src.write_bytes(b"a\n1\n")
    with serve("local", tmp_path / "local") as server:
        configure(repo, server)
        run(repo, "import-url", src, "--to-remote")
        src.write_bytes(b"a\n1\n2\n")
        assert "table.csv: updated" in run(repo, "update", "--to-remote").stdout
        assert not (repo / "table.csv").exists()
        run(repo, "pull")
        assert (repo / "table.csv").read_bytes() == b"a\n1\n2\n"


def test_to_remote_without_a_default_remote_changes_nothing(repo, tmp_path):
    src = tmp_path / "f.txt"
    src.write_bytes(b"data\n")
    _one_line_error(run(repo, "import-url", src, "--to-remote", check=False), 2, "no remote")
    assert not (repo / "f.txt.dvl").exists() and not (repo / "f.txt").exists()


# --- get-url, ls-url --------------------------------------------------------------------------

def test_get_url_writes_whole_and_refuses_to_overwrite(tmp_path):
    src = tmp_path / "src"
    write_tree(src, FILES)
    here = tmp_path / "here"  # no repository anywhere
    here.mkdir()
    assert "3 files" in run(here, "get-url", src).stdout
    assert tree_digests(here / "src") == tree_digests(src)
    run(here, "get-url", src / "a.csv", "one.csv")
    assert (here / "one.csv").read_bytes() == FILES["a.csv"]
    (here / "one.csv").write_bytes(b"mine")
    _one_line_error(run(here, "get-url", src / "sub" / "b.txt", "one.csv", check=False), 2,
                    "already exists")
    assert (here / "one.csv").read_bytes() == b"mine"
    run(here, "get-url", src / "sub" / "b.txt", "one.csv", "--force")
    assert (here / "one.csv").read_bytes() == FILES["sub/b.txt"]
    run(here, "get-url", src / "a.csv", "src", "-f")  # a directory replaced by a file
    assert (here / "src").read_bytes() == FILES["a.csv"]
    assert _leftovers(here) == []


def test_ls_url_lists_names_sizes_and_types(tmp_path):
    src = tmp_path / "src"
    write_tree(src, FILES)
    top = json.loads(run(tmp_path, "ls-url", src, "--json").stdout)
    assert [(e["name"], e["type"]) for e in top] == [("a.csv", "file"), ("sub", "directory")]
    deep = json.loads(run(tmp_path, "ls-url", src, "-R", "--json").stdout)
    assert {e["name"]: e["size"] for e in deep} == {k: len(v) for k, v in FILES.items()}
    text = run(tmp_path, "ls-url", src / "a.csv").stdout
    assert "a.csv" in text and "file" in text


# --- bad input --------------------------------------------------------------------------------

def test_bad_urls_and_outputs_are_one_line_errors(repo, tmp_path):
    missing = tmp_path / "nowhere" / "x.csv"
    _one_line_error(run(repo, "import-url", missing, check=False), 2, str(missing), "no such file")
    _one_line_error(run(tmp_path, "get-url", missing, check=False), 2, str(missing))
    _one_line_error(run(repo, "ls-url", missing, check=False), 2, str(missing))
    _one_line_error(run(repo, "import-url", "nosuch://bucket/x", check=False), 2,
                    "unknown URL scheme nosuch://")
    src = tmp_path / "x.csv"
    src.write_bytes(b"x")
    _one_line_error(run(repo, "import-url", src, str(tmp_path / "out.csv"), check=False), 2,
                    "outside the repository")
    _one_line_error(run(repo, "import-url", src, "--fs-config", "novalue", check=False), 2,
                    "KEY=VALUE")
    assert sorted(p.name for p in repo.iterdir()) == [".dvlite", ".git"]


def test_a_symlink_loop_is_refused_and_a_file_link_followed(repo, tmp_path):
    looped = tmp_path / "looped"
    write_tree(looped, {"a/f.txt": b"f"})
    (looped / "a" / "loop").symlink_to("..")
    _one_line_error(run(repo, "import-url", looped, check=False), 2, "symlink to a directory")
    assert sorted(p.name for p in repo.iterdir()) == [".dvlite", ".git"]
    linked = tmp_path / "linked"
    write_tree(linked, {"real.txt": b"real\n"})
    (linked / "alias.txt").symlink_to("real.txt")
    run(repo, "import-url", linked)
    assert (repo / "linked" / "alias.txt").read_bytes() == b"real\n"
    assert not (repo / "linked" / "alias.txt").is_symlink()


GOOD_SOURCE = 'source:\n  url: "s3://b/x"\n  version:\n    etag: "abc"\n'


@pytest.mark.parametrize("block, words", [
    ('source:\n  url: "s3://b/x"\n  version:\n    colour: "red"\n', "source.version.colour"),
    ('source:\n  url: "s3://b/x"\n  version:\n    listing: "nothex"\n', "listing"),
    ('source:\n  url: "s3://b/x"\n  version:\n    size: -1\n', "size"),
    ('source:\n  url: "s3://b/x"\n  version: {}\n', "non-empty mapping"),
    ('source:\n  url: ""\n  version:\n    etag: "abc"\n', "source.url"),
    (GOOD_SOURCE + '  rev_lock: "' + "a" * 40 + '"\n', "both 'version'"),
    (GOOD_SOURCE + '  extra: 1\n', "source.extra"),
])
def test_a_malformed_url_source_is_a_format_error_naming_the_pointer(repo, block, words):
    from dvlite.digest import hash_bytes

    head = f"version: 1\nkind: file\nhash: xxh3-128\ndigest: {hash_bytes(b'x').hex}\nsize: 1\n"
    (repo / "bad.txt.dvl").write_text(head + block)
    for args in (["status"], ["update"]):
        proc = run(repo, *args, check=False)
        _one_line_error(proc, 2, "bad.txt.dvl", words)


def test_url_source_round_trips_canonically():
    from dvlite.digest import hash_bytes
    from dvlite.formats.pointer import Pointer, UrlSource

    src = UrlSource.of('https://host/dä ta/"q".csv?x=1', {"etag": '"5d-1"', "size": 93, "mtime": "2024"})
    p = Pointer("file", hash_bytes(b"x"), 1, 1, src)
    data = p.to_bytes()
    assert Pointer.from_bytes(data, "p.dvl") == p
    assert data.decode().endswith('  version:\n    etag: "\\"5d-1\\""\n    mtime: "2024"\n    size: 93\n')

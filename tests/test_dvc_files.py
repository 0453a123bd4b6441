"""Reading DVC's files: .dvc files, dvc.lock (2.0 and 1.x), .dvc/config; bad input is one line."""

from __future__ import annotations

import pytest

from dvlite.dvc import dvcconfig, dvcfile, dvclock, settings
from dvlite.errors import DvliteError, FormatError

MD5 = "0123456789abcdef0123456789abcdef"


def test_dvc_files_of_three_versions() -> None:
    v3 = dvcfile.parse(f"outs:\n- md5: {MD5}.dir\n  size: 10\n  nfiles: 2\n  hash: md5\n  path: data\n"
                       .encode(), "sub/data.dvc")
    assert (v3.out.path, v3.out.is_dir, v3.out.hash_name, v3.out.nfiles) == ("sub/data", True, "md5", 2)
    v2 = dvcfile.parse(f"md5: {'f' * 32}\nouts:\n- md5: {MD5}\n  size: 3\n  path: x.bin\n".encode(), "x.bin.dvc")
    assert v2.out.hash_name == "md5-dos2unix" and not v2.out.is_dir
    v1 = dvcfile.parse(f"md5: {'f' * 32}\nwdir: ..\nouts:\n- md5: {MD5}\n  path: a/b\n  cache: true\n"
                       f"  metric: false\n  persist: false\n".encode(), "dir/b.dvc")
    assert v1.out.path == "a/b" and v1.out.size is None
    imp = dvcfile.parse(f"md5: {'e' * 32}\nfrozen: true\ndeps:\n- path: images\n  repo:\n"
                        f"    url: ../source\n    rev_lock: {'a' * 40}\nouts:\n- md5: {MD5}.dir\n"
                        f"  hash: md5\n  path: imported\n".encode(), "imported.dvc")
    assert imp.frozen and imp.repo.url == "../source" and imp.repo.rev is None
    url = dvcfile.parse(f"deps:\n- etag: '\"abc\"'\n  path: https://example.com/x.csv\nouts:\n"
                        f"- md5: {MD5}\n  path: x.csv\n".encode(), "x.csv.dvc")
    assert url.url.url == "https://example.com/x.csv" and url.url.marker == {"etag": '"abc"'}


@pytest.mark.parametrize(("text", "message"), [
    ("- just a list\n", "not a .dvc file"),
    ("outs: [\n", "invalid YAML"),
    (f"outs:\n- md5: {MD5}\n  path: ../escape\n", "unsafe path '../escape': '..' component"),
    (f"outs:\n- md5: {MD5}\n  path: /etc/passwd\n", "external output /etc/passwd"),
    (f"outs:\n- md5: {MD5}\n  path: s3://bucket/x\n", "external output s3://bucket/x"),
    (f"outs:\n- md5: {MD5}\n  path: .git/config\n", "names .git/"),
    (f"outs:\n- md5: {MD5}\n  path: x\n  colour: red\n", "unknown key 'colour'"),
    (f"outs:\n- md5: {MD5}\n  path: x\nshoes: 2\n", "unknown key 'shoes'"),
    ("outs:\n- md5: nothex\n  path: x\n", "bad md5"),
    (f"outs:\n- md5: {MD5}\n  hash: sha256\n  path: x\n", "unknown hash 'sha256'"),
    (f"cmd: python x.py\nouts:\n- md5: {MD5}\n  path: x\n", "a stage with a command"),
    (f"outs:\n- md5: {MD5}\n  path: a\n- md5: {MD5}\n  path: b\n", "exactly one output, not 2"),
    (f"outs:\n- md5: {MD5}\n  path: a\n  cache: false\n", "cache: false has no data"),
    (f"outs:\n- path: a\n  files: []\n  md5: {MD5}\n", "cloud-versioned"),
    (f"outs:\n- md5: {MD5}\n  path: a\n  size: -3\n", "non-negative integer"),
])
def test_bad_dvc_files(text: str, message: str) -> None:
    with pytest.raises(DvliteError) as info:  # FormatError, or UnsafePathError for paths
        dvcfile.parse(text.encode(), "bad.dvc")
    assert message in info.value.message and info.value.message.startswith("bad.dvc: ")


def test_lock_schema_2_and_1x() -> None:
    v2 = dvclock.parse(f"schema: '2.0'\nstages:\n  train:\n    cmd: [a, b]\n    deps:\n    - path: d\n"
                       f"      hash: md5\n      md5: {MD5}.dir\n      nfiles: 2\n    params:\n"
                       f"      params.yaml:\n        lr: 0.1\n    outs:\n    - path: m\n      md5: {MD5}\n"
                       .encode())
    stage = v2["train"]
    assert stage.cmd == ["a", "b"] and stage.deps[0].is_dir and stage.outs[0].hash_name == "md5-dos2unix"
    v1 = dvclock.parse(f"train:\n  cmd: python t.py\n  deps:\n  - path: d\n    md5: {MD5}\n".encode())
    assert v1["train"].deps[0].md5 == MD5


@pytest.mark.parametrize(("text", "message"), [
    ("schema: '3.0'\nstages: {}\n", "unknown dvc.lock schema"),
    ("schema: '2.0'\nstages:\n  s:\n    cmd: 1\n", "cmd must be a string"),
    ("schema: '2.0'\nstages:\n  s:\n    cmd: x\n    outs:\n    - path: a\n      color: 1\n", "unknown key 'color'"),
    ("schema: '2.0'\nstages:\n  s:\n    cmd: x\n    deps: {a: 1}\n", "deps must be a list"),
    ("schema: '2.0'\nstages:\n  s:\n    cmd: x\n    params: [a]\n", "params must map files"),
    ("schema: '2.0'\ndatasets: [{name: x}]\nstages: {}\n", "datasets are not supported"),
])
def test_bad_locks(text: str, message: str) -> None:
    with pytest.raises(FormatError) as info:
        dvclock.parse(text.encode(), "dvc.lock")
    assert message in info.value.message


def test_config_sections_quotes_lists_and_relative_paths() -> None:
    text = b"""[core]
    remote = Storage   # the default
['remote "Storage"']
    url = ../../remote
[cache]
    type = reflink, copy
    dir = ../cache-elsewhere
['remote "s3"']
    url = "s3://bucket/p"
    region = eu-west-1
"""
    conf = dvcconfig.parse(text, ".dvc/config")
    assert conf.get("core", "remote") == "Storage"
    assert conf.remotes["storage"]["url"] == "../../remote"  # DVC lowers section names
    assert conf.get("cache", "type") == ["reflink", "copy"]
    assert dvcconfig.cache_dir(conf, ".dvc/config") == "cache-elsewhere"
    out = settings.convert(conf, dvcconfig.parse(None, ".dvc/config.local"), ".dvc/config", ".dvc/config.local")
    assert out.shared["remote.storage.url"] == "../remote"
    assert out.shared["core.remote"] == "storage" and out.shared["cache.type"] == "reflink,copy"
    assert out.shared["remote.s3.client_kwargs.region_name"] == "eu-west-1"


@pytest.mark.parametrize(("text", "message"), [
    (b"key = value\n", "inside a [section]"),
    (b"[core]\nremote = 'open\n", "unterminated quote"),
    (b"[core]\n[[nested]]\n", "nested sections"),
    (b"['remote \"x\"']\nurl = hdfs://host/p\n", "hdfs:// remotes are not supported"),
    (b"['remote \"x\"']\nurl = s3://b/p\ngrant_read = id=1\n", "option 'grant_read' has no dvlite equivalent"),
    (b"['remote \"x\"']\nurl = ~/remote\n", "a path under ~"),
    (b"[cache]\ntype = teleport\n", "unknown link type 'teleport'"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_bad_configs(text: bytes, message: str) -> None:
    with pytest.raises(FormatError) as info:
        conf = dvcconfig.parse(text, ".dvc/config")
        settings.convert(conf, dvcconfig.parse(None, "l"), ".dvc/config", "l")
    assert message in info.value.message and info.value.message.startswith(".dvc/config")

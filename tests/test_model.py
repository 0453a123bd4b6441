"""Pure values: manifests, pointers and digests round-trip and reject what they must."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvlite.digest import ALGORITHM, Digest, hash_bytes
from dvlite.errors import FormatError
from dvlite.formats.manifest import Entry, Manifest, diff
from dvlite.formats.pointer import Pointer

names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"), min_size=1, max_size=12
).filter(lambda s: s not in (".", "..", ".git", ".dvlite"))
paths = st.lists(names, min_size=1, max_size=3).map("/".join)
hexes = st.binary(min_size=1, max_size=8).map(lambda b: hash_bytes(b).hex)
entries = st.builds(Entry, paths, hexes, st.integers(0, 2**40), st.booleans())


@settings(max_examples=200, deadline=None)
def _no_file_is_a_dir(items) -> bool:
    paths = {e.path for e in items}
    return not any(p.startswith(q + "/") for p in paths for q in paths)


@settings(max_examples=200, deadline=None)
@given(st.lists(entries, max_size=30, unique_by=lambda e: e.path).filter(_no_file_is_a_dir))
def test_manifest_bytes_round_trip_and_are_canonical(items):
    m = Manifest.build(items)
    data = m.to_bytes()
    assert Manifest.from_bytes(data) == m
    assert Manifest.build(reversed(items)).to_bytes() == data  # order of input does not matter
    assert data.endswith(b"\n")


def test_manifest_rejects_unknown_version_and_garbage():
    with pytest.raises(FormatError, match="unknown manifest version"):
        Manifest.from_bytes(b'{"version": 2, "algo": "xxh3-128", "entries": []}')
    with pytest.raises(FormatError):
        Manifest.from_bytes(b"\x00\xff not json")
    with pytest.raises(FormatError):
        Manifest.from_bytes(b'{"version": 1, "algo": "xxh3-128", "entries": [["a", "zz", 1, false]]}')


def test_diff_pairs_renames_by_digest():
    a = {"x": Entry("x", "1" * 32, 1, False), "y": Entry("y", "2" * 32, 2, False)}
    b = {"z": Entry("z", "1" * 32, 1, False), "y": Entry("y", "3" * 32, 3, False),
         "n": Entry("n", "4" * 32, 4, False)}
    got = {(c.kind, c.path, c.old_path) for c in diff(a, b)}
    assert got == {("renamed", "z", "x"), ("modified", "y", None), ("added", "n", None)}


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["file", "dir"]), hexes, st.integers(0, 2**50), st.integers(0, 10**7))
def test_pointer_round_trip(kind, hexdigest, size, files):
    p = Pointer(kind, Digest(ALGORITHM, hexdigest), size, files if kind == "dir" else 1)
    assert Pointer.from_bytes(p.to_bytes(), "x.dvl") == p


@pytest.mark.parametrize(
    "text, message",
    [
        (b"version: 1\nkind: file\nhash: xxh3-128\nsize: 1\n", "missing key 'digest'"),
        (b"version: 9\nkind: file\n", "unknown pointer version 9"),
        (b"version: 1\nkind: file\nhash: md5\ndigest: 00\nsize: 1\n", "unknown hash algorithm"),
        (b"- a\n- b\n", "expected a mapping"),
        (b"version: [1\n", "invalid YAML"),
    ],
)
def test_pointer_errors_name_the_file(text, message):
    with pytest.raises(FormatError) as exc:
        Pointer.from_bytes(text, "data.dvl")
    assert exc.value.message.startswith("data.dvl: ")
    assert message in exc.value.message


def _read_by_yaml(data: bytes):
    """What the YAML reader alone makes of `data`: a Pointer, or the FormatError's class."""
    from unittest.mock import patch

    from dvlite.formats import pointer

    with patch.object(pointer, "_plain", lambda data: None):
        try:
            return Pointer.from_bytes(data, "x.dvl")
        except FormatError as exc:
            return type(exc)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["file", "dir"]), hexes, st.integers(0, 2**62), st.integers(0, 10**7))
def test_the_plain_pointer_reader_agrees_with_yaml_on_pointers_and_their_near_misses(
        kind, hexdigest, size, files):
    """Pointers dvlite writes are read without PyYAML; that reader must never take a file the
    YAML reader reads differently or refuses (any byte inserted or dropped anywhere)."""
    from dvlite.formats.pointer import _plain

    data = Pointer(kind, Digest(ALGORITHM, hexdigest), size, files if kind == "dir" else 1).to_bytes()
    assert _plain(data) == _read_by_yaml(data)  # the plain reader takes what dvlite writes
    for at in range(len(data) + 1):
        for insert in (b"", b" ", b"0", b"#", b"\n", b"'", b"x", b"-", b"+", b"_"):
            for drop in (0, 1):
                mutated = data[:at] + insert + data[at + drop:]
                fast = _plain(mutated)
                assert fast is None or fast == _read_by_yaml(mutated), mutated

"""Pack files and their indexes: the format, damage detection, and how reads are planned."""

from __future__ import annotations

import pytest

from dvlite.digest import hash_bytes
from dvlite.errors import IntegrityError
from dvlite.formats.packs import PackedObject, PackIndex, build_pack, group_for_packs, plan_reads, slice_objects


def _objects(n: int, size: int = 100) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        data = bytes([i % 251]) * (size + i)
        out.append((hash_bytes(data).hex, data))
    return out


def test_pack_round_trip_through_its_index():
    objects = _objects(50)
    pack = build_pack(objects)
    assert pack.digest == hash_bytes(pack.data).hex
    index = PackIndex.from_bytes(pack.index.to_bytes(), "x.idx")
    assert index == pack.index
    for digest, data in objects:
        offset, length = index.entries[digest]
        assert pack.data[offset:offset + length] == data


def test_index_bytes_are_canonical():
    objects = _objects(20)
    assert build_pack(objects).index.to_bytes() == build_pack(objects).index.to_bytes()


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_index_is_refused_with_its_name(damage):
    body = bytearray(build_pack(_objects(5)).index.to_bytes())
    if damage == "flip":
        body[40] ^= 1
    elif damage == "truncate":
        body = body[:-3]
    else:
        body = bytearray()
    with pytest.raises(IntegrityError, match="pack index packs/abc.idx is damaged"):
        PackIndex.from_bytes(bytes(body), "packs/abc.idx")


def test_groups_are_bounded_by_bytes():
    sizes = {f"{i:032x}": 1000 for i in range(95)}
    groups = list(group_for_packs(sizes, target=10_000))
    assert [len(g) for g in groups] == [10] * 9 + [5]
    assert [d for g in groups for d in g] == list(sizes)


def test_few_wanted_objects_become_byte_ranges_and_neighbours_merge():
    pack = build_pack(_objects(100, size=10_000))
    sizes = {pack.digest: len(pack.data)}
    locs = {d: PackedObject(pack.digest, *pack.index.entries[d]) for d in pack.index.entries}
    by_offset = sorted(locs, key=lambda d: locs[d].offset)
    wanted = {d: locs[d] for d in (by_offset[3], by_offset[4], by_offset[80])}
    reads = plan_reads(wanted, sizes, gap=0)
    assert [len(r.objects) for r in reads] == [2, 1]  # 3 and 4 touch: one range
    assert all(r.end - r.start < 30_000 for r in reads)
    for r in reads:
        for digest, body in slice_objects(r, pack.data[r.start:r.end]):
            assert hash_bytes(body).hex == digest


def test_most_of_a_pack_wanted_reads_it_whole():
    pack = build_pack(_objects(10, size=1000))
    locs = {d: PackedObject(pack.digest, *pack.index.entries[d]) for d in pack.index.entries}
    wanted = dict(list(locs.items())[:7])
    (read,) = plan_reads(wanted, {pack.digest: len(pack.data)})
    assert (read.start, read.end) == (0, len(pack.data))
    assert len(read.objects) == 7

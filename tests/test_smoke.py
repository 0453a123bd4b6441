from conftest import git, run, write_tree


def test_add_then_checkout_restores_bytes(repo):
    write_tree(repo, {"data/a.txt": b"alpha", "data/sub/b.txt": b"beta", "model.bin": b"m" * 1000})
    run(repo, "add", "data", "model.bin")
    assert "data: new" in run(repo, "status").stdout  # pointer not yet committed to git
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    (repo / "data" / "a.txt").unlink()
    (repo / "model.bin").unlink()
    run(repo, "checkout")
    assert (repo / "data" / "a.txt").read_bytes() == b"alpha"
    assert (repo / "model.bin").read_bytes() == b"m" * 1000
    assert "up to date" in run(repo, "status").stdout


def test_status_notices_an_object_removed_from_the_cache(repo):
    import os
    import time

    write_tree(repo, {f"d/{i}.txt": f"{i}".encode() for i in range(5)})
    old = time.time() - 60
    for p in (repo / "d").iterdir():
        os.utime(p, (old, old))  # old enough for the stat fingerprint to be trusted
    run(repo, "add", "d")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "d")
    assert "up to date" in run(repo, "status").stdout  # records the fingerprint
    assert "up to date" in run(repo, "status").stdout  # uses it
    import xxhash

    digest = xxhash.xxh3_128_hexdigest(b"3")
    obj = repo / ".dvlite/cache/objects" / digest[:2] / digest[2:]
    obj.chmod(0o644)
    obj.unlink()
    assert "d: not in cache" in run(repo, "status").stdout

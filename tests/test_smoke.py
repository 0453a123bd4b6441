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

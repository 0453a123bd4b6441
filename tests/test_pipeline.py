"""Pipelines through the CLI: dvlite.yaml validation, dvlite.lock, repro, status, checkout/gc/push of
stage outs, stage add, dag, params and metrics. Commands are plain shell so the tests stay fast."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import run, write_tree


def pipeline(root: Path, text: str, files: dict[str, bytes] | None = None) -> None:
    write_tree(root, {"dvlite.yaml": text.encode(), **(files or {})})


def fails(root: Path, *args, code: int = 2) -> str:
    proc = run(root, *args, check=False)
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvlite.lock").read_bytes())


CHAIN = """stages:
  a:
    cmd: cp in.txt a.txt
    deps: [in.txt]
    outs: [a.txt]
  b:
    cmd: cat a.txt a.txt > b.txt
    deps: [a.txt]
    outs: [b.txt]
  c:
    cmd: wc -c < b.txt > c.txt
    deps: [b.txt]
    outs: [c.txt]
"""


# --- validation ------------------------------------------------------------------------------

def test_unsupported_keys_are_errors_naming_the_key(repo: Path) -> None:
    """Templating (foreach, matrix, vars) works now (tests/test_pipeline_templating.py); DVC's
    top-level plots, metrics and params sections, and unknown keys, are still refused."""
    pipeline(repo, "plots:\n  - x.csv\nstages: {}\n")
    assert "error: dvlite.yaml: the top-level 'plots' of dvc.yaml is not supported" in fails(repo, "repro")
    pipeline(repo, "stages:\n  s:\n    cmd: echo\n    outz: [x]\n")
    assert "stage 's': unknown key 'outz'" in fails(repo, "repro")
    pipeline(repo, "stages:\n  s:\n    cmd: echo ${nope}\n")
    assert "dvlite.yaml: stage 's': cmd: could not find 'nope'" in fails(repo, "dag")


def test_a_cycle_is_printed(repo: Path) -> None:
    pipeline(repo, """stages:
  a: {cmd: cp y x, deps: [y], outs: [x]}
  b: {cmd: cp x z, deps: [x], outs: [z]}
  c: {cmd: cp z y, deps: [z], outs: [y]}
""")
    err = fails(repo, "repro")
    assert "the stages form a cycle: a -> c -> b -> a" in err
    assert not (repo / "x").exists()


def test_duplicate_and_nested_outs(repo: Path) -> None:
    pipeline(repo, "stages:\n  a: {cmd: echo, outs: [x]}\n  b: {cmd: echo, outs: [x]}\n")
    assert "stages 'a' and 'b' both declare the out x" in fails(repo, "repro")
    pipeline(repo, "stages:\n  a: {cmd: echo, outs: [d]}\n  b: {cmd: echo, outs: [d/x]}\n")
    assert "stage 'b': out d/x lies inside d, an out of stage 'a'" in fails(repo, "repro")


def test_an_out_tracked_by_a_pointer_is_refused(repo: Path) -> None:
    write_tree(repo, {"data/f": b"x"})
    run(repo, "add", "data")
    pipeline(repo, "stages:\n  a: {cmd: echo, outs: [data/f]}\n")
    err = fails(repo, "repro")
    assert "stage 'a': out data/f is also tracked by data.dvl" in err
    assert "dvlite remove data.dvl" in err


def test_a_missing_dep_nobody_produces(repo: Path) -> None:
    pipeline(repo, "stages:\n  a: {cmd: cp nope.txt x, deps: [nope.txt], outs: [x]}\n")
    err = fails(repo, "repro")
    assert "stage 'a': dep nope.txt does not exist and no stage produces it" in err


def test_paths_outside_the_repo_are_refused(repo: Path) -> None:
    pipeline(repo, "stages:\n  a: {cmd: echo, outs: [../x]}\n")
    assert "../x is outside the repository" in fails(repo, "repro")

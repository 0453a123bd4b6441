"""scripts/bench.py at a tiny scale: it runs end to end, times every step, and judges targets.

The dvlite-only runs always run. The runs beside DVC need a `dvc` executable: $DVLITE_BENCH_DVC,
/tmp/dvc-venv/bin/dvc, or `dvc` on PATH (`scripts/bench.py --install-dvc` makes one); without
one they are skipped, because CI (scripts/test.sh) does not install DVC.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
WORKFLOW = ["init", "add", "status", "add_changed", "push", "push_noop", "pull", "checkout", "gc"]
S3 = ["push_s3", "push_noop_s3", "pull_s3"]


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def find_dvc() -> str | None:
    for candidate in (os.environ.get("DVLITE_BENCH_DVC"), "/tmp/dvc-venv/bin/dvc",
                      shutil.which("dvc")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


DVC = find_dvc()
needs_dvc = pytest.mark.skipif(
    DVC is None, reason="DVC is not installed: set DVLITE_BENCH_DVC=/path/to/dvc or run "
                        "scripts/bench.py --install-dvc (CI does not install DVC)")


def bench(tmp_path: Path, *args: str, keep: bool = False) -> dict:
    workdir = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.002", "--repeat", "1", "--json",
         "--workdir", str(workdir), *args, *(["--keep-data"] if keep else [])],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    if not keep:  # the generated data and the scratch repositories are cleaned up
        assert not workdir.exists() or [p.name for p in workdir.iterdir()] == [".dvlite-bench"]
    return json.loads(proc.stdout)


def assert_timed(report: dict, dataset: str, tools: list[str], steps: list[str]) -> dict:
    res = report["datasets"][dataset]
    assert res["bytes"] > 0 and res["files"] > 0
    assert res["tools"] == tools
    assert list(res["steps"]) == steps, dataset
    for name, step in res["steps"].items():
        for tool in tools:
            s = step["tools"][tool]
            where = f"{dataset}/{name}/{tool}"
            assert s["seconds"] > 0, where
            assert s["rss_mib"] > 1, where  # a measured process, not a placeholder
            assert len(s["runs"]) == 1, where
        for floor in step["floors"]:
            assert floor["seconds"] > 0, f"{dataset}/{name}: {floor['command']}"
    return res


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_pristine(tmp_path: Path, dataset: str, target: str) -> None:
    """The kept data equals a fresh generation, mtimes included: rounds changed nothing."""
    bench_mod = load_bench()
    ds = bench_mod.make_dataset(dataset, 0.002)
    fresh = tmp_path / "fresh" / dataset
    fresh.mkdir(parents=True)
    ds.gen(str(fresh / target))
    bench_mod.set_mtimes(str(fresh / target))
    kept = tmp_path / "bench" / "data" / dataset / target
    assert (tmp_path / "bench" / "data" / f"{dataset}.params.json").exists()
    for path in [fresh / target, *(fresh / target).rglob("*")]:
        if path.is_file():
            other = kept / path.relative_to(fresh / target) if path != fresh / target else kept
            assert digest(other) == digest(path), other
            assert other.stat().st_mtime == bench_mod.DATA_MTIME, other


def test_dvlite_big_and_tree_with_s3_and_targets(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "big,tree", "--s3", "tree", "--skip-dvc", keep=True)
    assert report["machine"]["dvc"] is None
    for key in ("date", "nproc", "memory", "filesystem", "dvlite", "git", "python"):
        assert report["machine"][key], key
    big = assert_timed(report, "big", ["dvlite"], WORKFLOW)
    tree = assert_timed(report, "tree", ["dvlite"], WORKFLOW + S3)
    assert big["s3"] is None and tree["s3"]["files"] == tree["files"] == 100
    assert [f["key"] for f in tree["steps"]["add"]["floors"]] == ["cp", "cp+sync", "git add", "cat"]
    assert [f["key"] for f in tree["steps"]["status"]["floors"]] == ["git status"]
    assert [f["key"] for f in big["steps"]["add"]["floors"]] == ["cp", "cp+sync", "cat"]
    # floor targets are judged, DVC targets cannot be without DVC
    status = {t["target"]: t for t in tree["steps"]["status"]["targets"]}
    assert status["<=3x git status"]["met"] in (True, False)
    assert status["<=3x git status"]["value"] > 0
    assert status[">=5x faster than DVC"]["met"] is None
    memory = {t["target"]: t["met"] for t in big["memory_targets"]}
    assert memory["peak RSS flat in file size: every step <= 256 MiB"] is True
    # the changed file (and the big file) were restored: the kept data is the generated data
    assert_pristine(tmp_path, "tree", "tree")
    assert_pristine(tmp_path, "big", "big.bin")


def test_dvlite_mixed_and_million(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "mixed,million", "--s3", "none", "--skip-dvc")
    mixed = assert_timed(report, "mixed", ["dvlite"], WORKFLOW)
    million = assert_timed(report, "million", ["dvlite"], ["add", "status", "push", "pull"])
    assert mixed["files"] == 11  # the Parquet file and 10 small files
    assert million["files"] == 2000
    assert million["steps"]["status"]["targets"][0]["met"] is True  # under 10 s
    assert million["memory_targets"][0]["met"] is True


def test_steps_times_only_the_chosen_steps_and_their_floors(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "tree", "--steps", "status", "--skip-dvc")
    tree = assert_timed(report, "tree", ["dvlite"], ["status"])
    assert [f["key"] for f in tree["steps"]["status"]["floors"]] == ["git status"]
    assert tree["s3"] is None and "s3" not in report["machine"]


def test_a_step_over_the_timeout_is_reported_not_fatal(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "million", "--skip-dvc", "--timeout", "0.01")
    steps = report["datasets"]["million"]["steps"]
    assert steps["add"]["tools"]["dvlite"]["timed_out"] is True
    assert steps["pull"]["tools"]["dvlite"]["seconds"] is None  # the round stopped there
    assert report["datasets"]["million"]["memory_targets"][0]["met"] is False


def test_parquet_generation_is_deterministic(tmp_path: Path) -> None:
    bench_mod = load_bench()
    for name in ("a.parquet", "b.parquet"):
        bench_mod.gen_parquet(str(tmp_path / name), 3 << 20, 7)
    assert digest(tmp_path / "a.parquet") == digest(tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").stat().st_size > 3 << 20
    import pyarrow.parquet as pq

    assert pq.read_metadata(tmp_path / "a.parquet").num_rows == (3 << 20) // 24


def test_targets_are_judged_against_dvc_floors_and_limits() -> None:
    bench_mod = load_bench()

    def step(dvlite: float, dvc: float | None, floors: dict[str, float], rss=(50, 60)) -> dict:
        tools = {"dvlite": {"seconds": dvlite, "rss_mib": rss[0]}}
        if dvc is not None:
            tools["dvc"] = {"seconds": dvc, "rss_mib": rss[1]}
        return {"tools": tools, "floors": [{"key": k, "seconds": v} for k, v in floors.items()]}

    res = {"steps": {
        "status": step(0.5, 3.0, {"git status": 0.1}),  # 5x git status, 6x faster than DVC
        "push_noop": step(1.5, 2.0, {}, rss=(70, 60)),  # over 1 s; more memory than DVC
        "checkout": step(1.0, None, {"cp": 1.0}),  # no DVC: its targets are not judged
    }}
    bench_mod.judge("tree", res)
    got = {(name, t["target"]): t["met"] for name, s in res["steps"].items() for t in s["targets"]}
    assert got == {
        ("status", "<=3x git status"): False,
        ("status", ">=5x faster than DVC"): True,
        ("push_noop", "under 1 s"): False,
        ("checkout", "<=1.3x cp -a"): True,
        ("checkout", "<=1.5x cp -a (issue 12)"): True,
    }
    assert res["memory_targets"] == [{"target": "peak RSS: no step above DVC's",
                                      "over": ["push_noop (70 > 60 MiB)"], "met": False}]


@needs_dvc
def test_beside_dvc_big_file_local_remote(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "big", "--s3", "none", "--dvc", DVC, keep=True)
    assert report["machine"]["dvc"]
    big = assert_timed(report, "big", ["dvlite", "dvc"], WORKFLOW)
    targets = {t["target"]: t for t in big["steps"]["add"]["targets"]}
    assert targets[">=5x faster than DVC"]["met"] in (True, False)
    # DVC moves an added file into its cache and copies it back: the data is still pristine
    assert_pristine(tmp_path, "big", "big.bin")


@needs_dvc
def test_beside_dvc_tree_local_remote(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "tree", "--s3", "none", "--dvc", DVC)
    tree = assert_timed(report, "tree", ["dvlite", "dvc"], WORKFLOW)
    assert all(t["met"] is not None for s in tree["steps"].values() for t in s["targets"])
    assert tree["memory_targets"][0]["met"] in (True, False)


@needs_dvc
def test_beside_dvc_tree_s3(tmp_path: Path) -> None:
    report = bench(tmp_path, "--dataset", "tree", "--steps", ",".join(S3), "--dvc", DVC)
    tree = assert_timed(report, "tree", ["dvlite", "dvc"], S3)
    assert tree["steps"]["push_s3"]["targets"][0]["met"] in (True, False)
    assert report["machine"]["s3"].startswith("moto")

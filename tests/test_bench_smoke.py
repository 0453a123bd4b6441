"""scripts/bench.py at a tiny scale: it runs end to end and reports every step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"
STEPS = ("add", "status", "checkout", "status_after_checkout")


def test_bench_smoke_reports_a_time_for_every_step(tmp_path: Path) -> None:
    workdir = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.002", "--repeat", "1", "--json",
         "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)

    assert set(report["datasets"]) == {"big", "tree"}
    for name, dataset in report["datasets"].items():
        assert dataset["bytes"] > 0, name
        assert set(dataset["steps"]) == set(STEPS), name
        for step_name, step in dataset["steps"].items():
            where = f"{name}/{step_name}"
            dvlite = step["tools"]["dvlite"]
            assert dvlite["seconds"] > 0, where
            assert dvlite["rss_mib"] > 1, where  # a Python process, measured, not a placeholder
            assert len(dvlite["runs"]) == 1, where
            assert step["floors"], where
            for floor in step["floors"]:
                assert floor["seconds"] > 0, f"{where}: {floor['command']}"
    tree_floors = {f["key"] for f in report["datasets"]["tree"]["steps"]["status"]["floors"]}
    assert "git status" in tree_floors
    assert {t["target"] for t in report["targets"]} == {
        "no-op status on the tree within 3x of git status",
        "add of the big file within 1.5x of cp",
    }
    # the generated data and scratch repositories are cleaned up
    assert not workdir.exists() or not any(
        p.name != ".dvlite-bench" for p in workdir.iterdir()
    )

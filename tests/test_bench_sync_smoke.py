"""scripts/bench_sync.py at a tiny scale, dvlite only: it runs end to end and times every step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_sync.py"
STEPS = ("push", "push_noop", "pull")


def test_bench_sync_smoke_reports_a_time_for_every_dvlite_step(tmp_path: Path) -> None:
    workdir = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.002", "--repeat", "1", "--json",
         "--workdir", str(workdir), "--remotes", "local", "--skip-dvc"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    report = json.loads(proc.stdout)

    assert report["tools"] == ["dvlite"]
    assert set(report["datasets"]) == {"big", "tree"}
    for name, dataset in report["datasets"].items():
        assert dataset["bytes"] > 0, name
        assert set(dataset["remotes"]) == {"local"}, name
        res = dataset["remotes"]["local"]
        assert set(res["steps"]) == set(STEPS), name
        for step_name, step in res["steps"].items():
            where = f"{name}/{step_name}"
            assert set(step["tools"]) == {"dvlite"}, where
            dvlite = step["tools"]["dvlite"]
            assert dvlite["seconds"] > 0, where
            assert dvlite["rss_mib"] > 1, where
            assert len(dvlite["runs"]) == 1, where
        # the pulled copy was checked against the pristine data
        pulled = res["details"]["dvlite"][0]["pulled"]
        assert pulled["bytes"] == dataset["bytes"], name
        assert pulled["files"] == (dataset["params"].get("files") or 1), name
    # the generated data and the scratch repositories are cleaned up
    assert not workdir.exists() or not any(
        p.name != ".dvlite-bench-sync" for p in workdir.iterdir()
    )

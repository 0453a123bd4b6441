"""Contracts and metric gates around the stages `dvlite repro` runs, and `dvlite metrics check`,
through the real CLI: a failing check fails the stage, keeps its outs, and leaves its lock
entry and run record unwritten."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import git, run

MAKE_TABLE = ("import sys; n = int(sys.argv[2]); "
              "open(sys.argv[1], 'w').write('id,age\\n' + ''.join(f'{i},{20 + i % 50 - int(sys.argv[3])}\\n' "
              "for i in range(n)))")
SCORE = ("import json, sys; open(sys.argv[1], 'w').write(json.dumps("
         "{'accuracy': float(sys.argv[2]), 'loss': float(sys.argv[3])}))")
CONTRACT = {"version": 1, "columns": {"id": {"type": "integer", "unique": True},
                                      "age": {"min": 18}}, "rows": {"min": 10}}


def pipeline(root: Path, rows: int = 100, shift: int = 0, accuracy: float = 0.95,
             loss: float = 0.3, gates: dict | None = None) -> None:
    doc = {
        "stages": {
            "prepare": {"cmd": f'python -c "{MAKE_TABLE}" data/clean.csv {rows} {shift}',
                        "deps": ["raw.txt"], "outs": ["data/clean.csv"]},
            "evaluate": {"cmd": f'python -c "{SCORE}" eval/metrics.json {accuracy} {loss}',
                         "deps": ["data/clean.csv"],
                         "metrics": [{"eval/metrics.json": {"cache": False}}]},
        },
        "checks": {"data/clean.csv": CONTRACT},
        "gates": gates or {"eval/metrics.json": {"accuracy": ">= 0.9", "loss": "<= previous * 1.05"}},
    }
    (root / "eval").mkdir(exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "dvlite.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def lock_stages(root: Path) -> set[str]:
    path = root / "dvlite.lock"
    return set(yaml.safe_load(path.read_text())["stages"]) if path.exists() else set()


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "raw.txt").write_text("raw\n")
    pipeline(repo)
    run(repo, "repro")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first run")
    return repo


def test_passing_checks_are_reported_and_recorded(project: Path) -> None:
    assert lock_stages(project) == {"prepare", "evaluate"}
    (project / "raw.txt").write_text("raw 2\n")
    out = run(project, "repro", "-f").stdout
    assert "data/clean.csv: contract passed" in out
    assert "eval/metrics.json: accuracy = 0.95, wanted >= 0.9" in out


def test_an_out_that_breaks_its_contract_fails_the_stage_and_keeps_the_lock(project: Path) -> None:
    before = (project / "dvlite.lock").read_text()
    pipeline(project, shift=10)  # ages drop below 18
    proc = run(project, "repro", check=False)
    assert proc.returncode != 0
    assert "stage 'prepare' failed its checks: data/clean.csv breaks its contract" in proc.stderr
    assert "range age" in proc.stderr
    assert (project / "data" / "clean.csv").read_text().startswith("id,age\n0,10\n")  # kept to look at
    assert (project / "dvlite.lock").read_text() == before
    assert "the stages after it did not run" in proc.stderr
    assert run(project, "status", "-q", check=False).returncode == 1


def test_a_dep_that_breaks_its_contract_stops_the_stage_before_it_runs(project: Path) -> None:
    (project / "data" / "clean.csv").chmod(0o644)
    (project / "data" / "clean.csv").write_text("id,age\n1,5\n")  # 1 row, age 5
    (project / "eval" / "metrics.json").unlink()
    proc = run(project, "repro", "evaluate", "--single-item", check=False)
    assert proc.returncode != 0
    assert "stage 'evaluate' not run: data/clean.csv breaks its contract" in proc.stderr
    assert not (project / "eval" / "metrics.json").exists()  # the command never ran


def test_a_failing_gate_fails_the_stage_and_no_checks_skips_it(project: Path) -> None:
    before = (project / "dvlite.lock").read_text()
    pipeline(project, loss=0.5)  # 0.5 > 0.3 * 1.05
    proc = run(project, "repro", check=False)
    assert proc.returncode != 0
    assert "stage 'evaluate' failed its checks: eval/metrics.json: loss = 0.5, wanted <= 0.315" in proc.stderr
    assert (project / "dvlite.lock").read_text() == before
    skipped = run(project, "repro", "--no-checks")
    assert "not run (--no-checks)" in skipped.stdout + skipped.stderr
    assert "evaluate" in lock_stages(project)
    assert (project / "dvlite.lock").read_text() != before


def test_metrics_check_judges_the_workspace_against_head(project: Path) -> None:
    doc = json.loads(run(project, "metrics", "check", "--json").stdout)
    assert doc["passed"] is True
    assert {(g["key"], g["status"]) for g in doc["gates"]} == {("accuracy", "passed"), ("loss", "passed")}
    (project / "eval" / "metrics.json").write_text(json.dumps({"accuracy": 0.5, "loss": 0.3}))
    proc = run(project, "metrics", "check", check=False)
    assert proc.returncode == 1
    assert "accuracy" in proc.stdout and "FAILED" in proc.stdout
    (project / "eval" / "metrics.json").write_text(json.dumps({"loss": 0.3}))
    missing = json.loads(run(project, "metrics", "check", "--json", check=False).stdout)
    assert [g["status"] for g in missing["gates"] if g["key"] == "accuracy"] == ["missing"]


def test_a_relative_gate_without_a_baseline_passes_and_says_so(repo: Path) -> None:
    (repo / "raw.txt").write_text("raw\n")
    pipeline(repo)
    run(repo, "repro")  # nothing committed yet: HEAD has no metrics
    doc = json.loads(run(repo, "metrics", "check", "--json").stdout)
    statuses = {g["key"]: g["status"] for g in doc["gates"]}
    assert statuses == {"accuracy": "passed", "loss": "no-baseline"} and doc["passed"]


@pytest.mark.parametrize("condition, message", [
    ("about 0.9", "cannot read condition 'about 0.9'"),
    (">= previous ** 2", "cannot read condition"),
    (">= 1e999", "not a finite number"),
    (5, "a condition is a string"),
])
def test_a_malformed_gate_is_named(project: Path, condition, message: str) -> None:
    pipeline(project, gates={"eval/metrics.json": {"accuracy": condition}})
    proc = run(project, "metrics", "check", check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: dvlite.yaml: gates: eval/metrics.json: accuracy")
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_gate_on_a_path_outside_the_repository_is_refused(project: Path) -> None:
    pipeline(project, gates={"../etc/passwd": {"x": "> 0"}})
    proc = run(project, "metrics", "check", check=False)
    assert proc.returncode == 2 and "gates: '../etc/passwd'" in proc.stderr


def test_the_pre_commit_hook_runs_the_contracts_of_staged_data(repo: Path) -> None:
    import os
    import subprocess

    (repo / "dvlite.yaml").write_text(yaml.safe_dump({"checks": {"people.csv": CONTRACT}}))
    run(repo, "install")
    (repo / "people.csv").write_text("id,age\n" + "".join(f"{i},{30 + i}\n" for i in range(20)))
    run(repo, "add", "people.csv")
    git(repo, "add", "-A")
    ok = subprocess.run(["git", "commit", "-qm", "good data"], cwd=repo, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "people.csv: contract passed" in ok.stderr

    (repo / "people.csv").chmod(0o644)
    (repo / "people.csv").write_text("id,age\n1,5\n1,6\n")  # too young, duplicate id, too few rows
    run(repo, "add", "people.csv")
    git(repo, "add", "people.csv.dvl")
    bad = subprocess.run(["git", "commit", "-qm", "bad data"], cwd=repo, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "people.csv breaks its contract" in bad.stderr and "DVLITE_SKIP_CHECKS" in bad.stderr
    assert git(repo, "log", "--format=%s", "-1").strip() == "good data"

    skipped = subprocess.run(["git", "commit", "-qm", "bad data anyway"], cwd=repo, capture_output=True,
                             text=True, env={**os.environ, "DVLITE_SKIP_CHECKS": "1"})
    assert skipped.returncode == 0, skipped.stderr
    assert "data contracts not run (DVLITE_SKIP_CHECKS is set)" in skipped.stderr

"""The experiment queue on this machine: sweeps queued, `queue start -j N` in temporary work trees
with the shared cache (the workspace untouched), failures recorded with their logs, one runner per
repository, `queue kill`, `queue logs`, and the run cache serving experiments."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import git, run
from exp_project import exp_refs, make_project, popen, rows_by_name, show_json, workspace_state


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    return make_project(tmp_path / "proj")


def _status(proj: Path) -> dict[str, dict]:
    return {e["name"]: e for e in json.loads(run(proj, "queue", "status", "--json").stdout)}


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_sweep_is_queued_as_a_grid_and_run_in_work_trees_leaving_the_workspace_alone(proj):
    out = run(proj, "exp", "run", "--queue", "-S", "train.C=0.1,1,10", "-S", "train.kernel=rbf,linear").stdout
    assert out.count("Queued experiment") == 6
    queued = _status(proj)
    assert {e["state"] for e in queued.values()} == {"queued"}
    assert sorted((e["params"]["params.yaml"]["train.C"], e["params"]["params.yaml"]["train.kernel"])
                  for e in queued.values()) == sorted((c, k) for c in (0.1, 1, 10) for k in ("rbf", "linear"))
    (proj / "scratch.txt").write_text("uncommitted work in progress\n")
    before = workspace_state(proj)
    started = run(proj, "queue", "start", "-j", "2")
    assert "6 experiment(s)" in started.stdout and "6 succeeded, 0 failed" in started.stdout
    assert workspace_state(proj) == before  # nothing in the workspace, HEAD or index changed
    assert git(proj, "worktree", "list").count("\n") == 1  # the temporary work trees are gone
    rows = rows_by_name(show_json(proj))
    assert set(exp_refs(proj)) == set(queued)
    for name, entry in queued.items():
        row = rows[name]
        c, k = entry["params"]["params.yaml"]["train.C"], entry["params"]["params.yaml"]["train.kernel"]
        assert row["state"] == "success" and row["params"]["params.yaml"]["train.C"] == c
        expected = round(0.5 + 0.04 * c + (0.1 if k == "linear" else 0) + 0.003, 6)
        assert row["metrics"]["metrics.json"]["acc"] == pytest.approx(expected)
    # the outputs are in the shared cache: applying one needs nothing else
    name = next(n for n, e in queued.items() if e["params"]["params.yaml"]["train.C"] == 10
                and e["params"]["params.yaml"]["train.kernel"] == "linear")
    (proj / "scratch.txt").unlink()
    run(proj, "exp", "apply", name)
    assert (proj / "model.bin").read_bytes() == b"model C=10 kernel=linear\n" * 100


def test_range_sweeps_and_names(proj):
    run(proj, "exp", "run", "--queue", "-S", "train.C=range(1, 2, 0.25)", "-n", "r")
    entries = _status(proj)
    assert sorted(entries) == ["r-1", "r-2", "r-3", "r-4"]
    assert sorted(e["params"]["params.yaml"]["train.C"] for e in entries.values()) == [1.0, 1.25, 1.5, 1.75]
    again = run(proj, "exp", "run", "--queue", "-S", "train.C=9", "-n", "r-2", check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    run(proj, "queue", "remove", "--queued")
    assert _status(proj) == {}


def test_a_failed_experiment_is_recorded_with_its_log_and_the_others_go_on(proj):
    run(proj, "exp", "run", "--queue", "-S", "train.kernel=rbf,fail,linear")
    names = list(_status(proj))
    proc = run(proj, "queue", "start", "-j", "2", check=False)
    assert proc.returncode == 1 and "2 succeeded, 1 failed" in proc.stdout
    states = {n: e["state"] for n, e in _status(proj).items()}
    failed = [n for n, s in states.items() if s == "failed"]
    assert len(failed) == 1 and sorted(states.values()) == ["failed", "success", "success"]
    entry = _status(proj)[failed[0]]
    assert "stage 'train' failed: its command exited with code 3" in entry["error"]
    log = run(proj, "queue", "logs", failed[0]).stdout
    assert "[train] training failed on purpose" in log and "exited with code 3" in log
    assert len(exp_refs(proj)) == 2 and failed[0] not in exp_refs(proj)
    rows = rows_by_name(show_json(proj))
    assert rows[failed[0]]["state"] == "failed" and rows[failed[0]]["metrics"] == {}
    assert set(names) <= set(rows)


def test_a_second_queue_start_is_refused_while_one_runs_and_kill_stops_an_experiment(proj):
    run(proj, "exp", "run", "--queue", "-S", "train.sleep=60", "-n", "slow")
    runner = popen(proj, "queue", "start")
    try:
        _wait_for(lambda: _status(proj).get("slow", {}).get("state") == "running")
        log = proj / ".dvlite/tmp/exps/queue"
        _wait_for(lambda: any("training with" in p.read_text() for p in log.glob("*.log")))
        second = run(proj, "queue", "start", check=False)
        assert second.returncode == 3
        assert "the experiment queue of" in second.stderr and "is already being run by process" in second.stderr
        follow = popen(proj, "queue", "logs", "slow", "-f")
        run(proj, "queue", "kill", "slow")
        out, err = runner.communicate(timeout=30)
        assert runner.returncode == 1 and "failed: killed by signal 15" in out, (out, err)
        logged, _ = follow.communicate(timeout=30)
        assert "training with C=1.0" in logged  # -f printed until it ended
        assert _status(proj)["slow"]["state"] == "failed"
        assert exp_refs(proj) == {}
        assert git(proj, "worktree", "list").count("\n") == 1
        ps = __import__("subprocess").run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert "train.py" not in ps.replace(str(proj), "")  # the stage's command is gone too
    finally:
        if runner.poll() is None:
            runner.kill()


def test_the_run_cache_serves_experiments(proj):
    run(proj, "exp", "run", "-S", "train.C=4", "-n", "here")  # runs in the workspace
    run(proj, "exp", "run", "--queue", "-S", "train.C=4", "-n", "queued")
    run(proj, "queue", "start")
    log = run(proj, "queue", "logs", "queued").stdout
    assert "Stage 'train' restored from the run cache" in log and "training with" not in log
    rows = rows_by_name(show_json(proj))
    assert rows["queued"]["metrics"] == rows["here"]["metrics"]


def test_queue_remove_and_exp_remove_queue(proj):
    run(proj, "exp", "run", "--queue", "-S", "train.C=1,2,3")
    names = list(_status(proj))
    run(proj, "queue", "remove", names[0])
    assert list(_status(proj)) == names[1:]
    run(proj, "exp", "remove", "--queue")
    assert _status(proj) == {}
    missing = run(proj, "queue", "logs", "nope", check=False)
    assert missing.returncode == 2 and "no queued experiment named 'nope'" in missing.stderr

"""`queue start --dask`: queued experiments run as tasks on a real `dask.distributed.LocalCluster`
of two worker processes on 127.0.0.1, sharing a local-directory dvlite remote; an unreachable
scheduler is a one-line error within a bounded time."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import GIT_ENV, git, run
from exp_project import exp_refs, make_project, rows_by_name, show_json, workspace_state

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    import os

    saved = dict(os.environ)
    os.environ.update(GIT_ENV)  # the workers' processes commit with this identity
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as local:
        yield local
    os.environ.clear()
    os.environ.update(saved)


def test_queued_experiments_run_on_the_cluster_and_come_back_as_experiments(cluster, tmp_path):
    from dvlite.storage.cache import Cache

    proj = make_project(tmp_path / "proj")
    run(proj, "remote", "add", "-d", "shared", str(tmp_path / "shared-remote"))
    run(proj, "exp", "run", "--queue", "-S", "train.C=2,3,4,5")
    before = workspace_state(proj)
    out = run(proj, "queue", "start", "--dask", cluster.scheduler_address).stdout
    assert "4 succeeded, 0 failed" in out
    assert workspace_state(proj) == before
    refs = exp_refs(proj)
    assert len(refs) == 4
    rows = rows_by_name(show_json(proj))
    by_c = {rows[n]["params"]["params.yaml"]["train.C"]: rows[n] for n in refs}
    assert sorted(by_c) == [2, 3, 4, 5]
    for c, row in by_c.items():
        assert row["state"] == "success"
        assert row["metrics"]["metrics.json"]["acc"] == pytest.approx(round(0.5 + 0.04 * c + 0.003, 6))
    for name in refs:
        log = run(proj, "queue", "logs", name).stdout
        assert "fetched" in log and "pushed" in log and f"recorded experiment {name}" in log
    # the workers pushed the outputs to the remote; this cache never had them
    name = next(n for n in refs if rows[n]["params"]["params.yaml"]["train.C"] == 5)
    lock = __import__("yaml").safe_load(git(proj, "show", f"{refs[name]}:dvlite.lock"))
    digest = next(o for o in lock["stages"]["train"]["outs"] if o["path"] == "model.bin")["digest"]
    assert not Cache(str(proj / ".dvlite/cache")).contains(digest)
    applied = run(proj, "exp", "apply", name, check=False)
    assert applied.returncode == 1 and "dvlite pull" in applied.stdout
    run(proj, "pull")
    assert (proj / "model.bin").read_bytes() == b"model C=5 kernel=rbf\n" * 100


def test_a_failed_task_is_recorded_as_failed_with_its_log(cluster, tmp_path):
    proj = make_project(tmp_path / "proj")
    run(proj, "remote", "add", "-d", "shared", str(tmp_path / "shared-remote"))
    run(proj, "exp", "run", "--queue", "-S", "train.kernel=fail", "-n", "bad")
    proc = run(proj, "queue", "start", "--dask", cluster.scheduler_address, check=False)
    assert proc.returncode == 1 and "0 succeeded, 1 failed" in proc.stdout
    assert "[train] training failed on purpose" in run(proj, "queue", "logs", "bad").stdout
    assert exp_refs(proj) == {}


def test_an_unreachable_scheduler_is_one_line_within_a_bounded_time(tmp_path):
    proj = make_project(tmp_path / "proj")
    run(proj, "remote", "add", "-d", "shared", str(tmp_path / "shared-remote"))
    run(proj, "exp", "run", "--queue", "-S", "train.C=2", "-n", "one")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    started = time.monotonic()
    proc = run(proj, "queue", "start", "--dask", f"tcp://127.0.0.1:{port}", "--connect-timeout", "2",
               check=False)
    elapsed = time.monotonic() - started
    assert proc.returncode == 5 and elapsed < 15
    assert proc.stderr.startswith(f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 2 s")
    assert len(proc.stderr.strip().splitlines()) == 2  # the error and its hint
    assert [e["state"] for e in __import__("json").loads(run(proj, "queue", "status", "--json").stdout)] \
        == ["queued"]  # still queued for the next try

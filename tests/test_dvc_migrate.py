"""`dvlite migrate` on DVC repositories built by the real `dvc` CLI.

The scenario (built once, copied per test): a git repository with three commits, data on a
DVC local-directory remote, a root `dvc.yaml` with plain stages, a templated
`pipelines/dvc.yaml` (vars, foreach over a list and a dict, matrix), a dataset imported with
`dvc import` from another DVC repository, and a DVC cache with some objects deleted (and
their workspace copies gone) so that they must come from the remote.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import xxhash
import yaml
from conftest import git, run, tree_digests, write_tree
from dvc_helpers import dvc, migrate, requires_dvc

pytestmark = requires_dvc

RUN_PY = ("import sys, pathlib\n"
          "out = pathlib.Path(sys.argv[1]); out.parent.mkdir(parents=True, exist_ok=True)\n"
          "out.write_text(' '.join(sys.argv[2:]) + '\\n')\n")
ROOT_PIPELINE = """\
stages:
  prepare:
    cmd: python src/run.py out/prepared.txt --alpha
    deps: [src/run.py, data/labels.csv]
    params: [train.alpha]
    outs: [out/prepared.txt]
  report:
    cmd: python src/run.py out/report.json done
    deps: [out/prepared.txt]
    metrics:
    - out/report.json:
        cache: false
"""
SUB_PIPELINE = """\
vars:
  - config.yaml:seed
  - tag: v1
stages:
  train:
    foreach: ${models}
    do:
      cmd: python ../src/run.py out/model-${item}.txt ${train} ${tag} ${seed}
      outs: ["out/model-${item}.txt"]
  region:
    foreach: ${regions}
    do:
      cmd: python ../src/run.py out/region-${key}.txt ${item.n}
      outs: ["out/region-${key}.txt"]
  grid:
    matrix:
      model: ${models}
      lr: [0.1, 0.01]
    cmd: python ../src/run.py out/grid-${key}.txt ${item.model} ${item.lr}
    outs: ["out/grid-${key}.txt"]
"""


def _dataset(version: int) -> dict[str, bytes]:
    files = {
        "data/labels.csv": b"label,name\r\npos,positive\r\nneg,negative\r\n",  # CRLF text
        "data/train/a.csv": b"id,text\n1,great\n",
        "data/train/blob.bin": bytes(range(256)) * 4,
        "data/deep/er/x.txt": b"deep\n",
    }
    if version >= 2:
        files["data/train/a.csv"] += b"2,dull\n"
        files["data/test/b.csv"] = b"id,text\n3,fine\n"
    return files


def _build(base: Path) -> None:
    source, repo = base / "source", base / "repo"
    for d in (source, repo):
        d.mkdir()
        git(d, "init", "-q", "-b", "main")
        dvc(d, "init", "-q")
    # the repository a dataset is imported from
    write_tree(source, {"images/1.png": b"\x89PNG fake 1", "images/2.png": b"\x89PNG fake 2"})
    dvc(source, "remote", "add", "-d", "origin", "../source-remote")
    dvc(source, "add", "images")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "images")
    dvc(source, "push", "-q")
    # commit 1: a directory and a large file
    dvc(repo, "remote", "add", "-d", "storage", "../remote")
    write_tree(repo, _dataset(1))
    (repo / "model.bin").write_bytes(os.urandom(3 << 20))
    os.chmod(repo / "data" / "deep" / "er" / "x.txt", 0o755)
    dvc(repo, "add", "data", "model.bin")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data v1")
    dvc(repo, "push", "-q")
    # commit 2: data v2 and both pipelines, run
    write_tree(repo, _dataset(2))
    write_tree(repo, {
        "src/run.py": RUN_PY.encode(),
        "params.yaml": b"train:\n  alpha: 0.5\n",
        "dvc.yaml": ROOT_PIPELINE.encode(),
        "pipelines/params.yaml": b"models: [small, large]\nregions:\n  us: {n: 1}\n  eu: {n: 2}\n"
                                 b"train:\n  lr: 0.1\n  fast: true\n  layers: [8, 4]\n",
        "pipelines/config.yaml": b"seed: 7\nunused: 1\n",
        "pipelines/dvc.yaml": SUB_PIPELINE.encode(),
    })
    dvc(repo, "add", "data")
    dvc(repo, "repro", "-q")
    dvc(repo, "repro", "-q", "pipelines/dvc.yaml")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data v2, pipelines")
    # commit 3: an import and a new model
    dvc(repo, "import", "-q", "../source", "images", "-o", "imported")
    (repo / "model.bin").write_bytes(os.urandom(3 << 20))
    dvc(repo, "add", "model.bin")
    dvc(repo, "push", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "import, model v3")


def _drop_from_cache(repo: Path, rel: str) -> None:
    """Delete a file's object from the DVC cache and the file from the workspace."""
    md5 = hashlib.md5((repo / rel).read_bytes()).hexdigest()
    (repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).unlink()
    (repo / rel).unlink()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("dvc-scenario")
    _build(base)
    (base / "expected.json").write_text(json.dumps(tree_digests(base / "repo" / "data")
                                                   | {"model.bin": _sha(base / "repo" / "model.bin")}))
    _drop_from_cache(base / "repo", "model.bin")
    _drop_from_cache(base / "repo", "data/train/blob.bin")
    return base


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scenario(built: Path, tmp_path: Path) -> Path:
    base = tmp_path / "s"
    shutil.copytree(built, base, symlinks=True)
    return base


def _migrate_json(repo: Path, *args) -> dict:
    return json.loads(migrate(repo, "--force", "--json", *args).stdout)


def _xxh(path: Path) -> str:
    return xxhash.xxh3_128_hexdigest(path.read_bytes())


def test_dry_run_plans_and_changes_nothing(scenario: Path) -> None:
    repo = scenario / "repo"
    before = tree_digests(repo)
    proc = migrate(repo)
    assert "Dry run: nothing converted" in proc.stdout
    for name in ("data.dvc", "model.bin.dvc", "imported.dvc", "pipelines/dvc.yaml", "dvc.lock"):
        assert name in proc.stdout
    plan = json.loads(migrate(repo, "--json", "--remove-dvc").stdout)
    targets = {i["target"] for i in plan["items"]}
    assert {"data.dvl", "model.bin.dvl", "imported.dvl", "dvlite.yaml", "dvlite.lock",
            "pipelines/dvlite.yaml", "pipelines/dvlite.lock", ".dvlite/config"} <= targets
    assert "pipelines/dvc.lock" in plan["remove"]
    assert tree_digests(repo) == before
    assert not (repo / ".dvlite").exists()


def test_migrate_converts_data_and_restores_it_byte_identical(scenario: Path) -> None:
    repo = scenario / "repo"
    result = _migrate_json(repo)
    assert result["initialised"] is True
    assert result["from_remote"] == 2  # model.bin and blob.bin: neither in the cache nor the workspace
    assert result["from_cache"] > 0 and result["from_workspace"] > 0
    expected = json.loads((scenario / "expected.json").read_text())
    run(repo, "checkout")
    got = tree_digests(repo / "data") | {"model.bin": _sha(repo / "model.bin")}
    assert got == expected
    data = yaml.safe_load((repo / "data.dvl").read_text())
    assert data["kind"] == "dir" and data["files"] == 5 and data["hash"] == "xxh3-128"
    assert os.access(repo / "data" / "deep" / "er" / "x.txt", os.X_OK)
    imported = yaml.safe_load((repo / "imported.dvl").read_text())
    assert imported["source"]["url"] == "../source" and imported["source"]["path"] == "images"
    assert len(imported["source"]["rev_lock"]) == 40
    assert (repo / "imported" / "1.png").read_bytes() == b"\x89PNG fake 1"
    config = (repo / ".dvlite" / "config").read_text()
    assert 'remote = storage' in config and 'url = ../remote' in config


def test_status_is_clean_and_the_root_pipeline_is_up_to_date(scenario: Path) -> None:
    repo = scenario / "repo"
    _migrate_json(repo)
    run(repo, "checkout")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "switch to dvlite")
    status = json.loads(run(repo, "status", "--json").stdout)
    assert status["clean"] is True, status
    root = {s["name"]: s["state"] for s in status["stages"] if ":" not in s["name"]}
    assert root == {"prepare": "up to date", "report": "up to date"}
    dry = run(repo, "repro", "--dry")
    assert "Would run" not in dry.stdout


def test_templated_lock_records_what_the_workspace_holds(scenario: Path) -> None:
    repo = scenario / "repo"
    _migrate_json(repo)
    names = [n.split(":", 1)[1] for n in
             dvc(repo, "stage", "list", "--name-only", "pipelines/dvc.yaml").stdout.split()]
    lock = yaml.safe_load((repo / "pipelines" / "dvlite.lock").read_text())
    assert sorted(lock["stages"]) == sorted(names) and len(names) == 8
    dvc_lock = yaml.safe_load((repo / "pipelines" / "dvc.lock").read_text())["stages"]
    for name, stage in lock["stages"].items():
        assert stage["cmd"] == dvc_lock[name]["cmd"]
        for entry in stage.get("outs", []) + stage.get("deps", []):
            assert entry["digest"] == _xxh(repo / entry["path"]), (name, entry["path"])
    assert lock["stages"]["train@small"]["cmd"] == (
        "python ../src/run.py out/model-small.txt --lr 0.1 --fast --layers 8 4 v1 7")
    assert (repo / "pipelines" / "dvlite.yaml").read_bytes() == SUB_PIPELINE.encode()


def test_templated_pipeline_is_up_to_date_after_migrating(scenario: Path) -> None:
    """pipelines/dvlite.yaml keeps DVC's foreach and matrix; its stages join the root's in one DAG,
    named `pipelines:NAME`, and every one is up to date: nothing re-runs."""
    repo = scenario / "repo"
    _migrate_json(repo)
    status = json.loads(run(repo, "status", "--json").stdout)
    states = {s["name"]: s["state"] for s in status["stages"]}
    assert states.get("pipelines:train@small") == "up to date", states
    assert states.get("pipelines:grid@large-0.01") == "up to date", states
    assert set(states.values()) == {"up to date"}, states
    dry = run(repo, "repro", "--dry")
    assert "Would run" not in dry.stdout, dry.stdout
    assert set(states.values()) == {"up to date"}


def test_push_then_pull_in_a_fresh_clone_without_dvc(scenario: Path) -> None:
    repo = scenario / "repo"
    _migrate_json(repo, "--remove-dvc")
    run(repo, "checkout")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "switch to dvlite")
    run(repo, "push")
    clone = scenario / "clone"
    git(scenario, "clone", "-q", str(repo), str(clone))
    shutil.rmtree(clone / ".dvc")  # nothing of DVC's is needed any more
    run(clone, "pull")
    assert tree_digests(clone / "data") == tree_digests(repo / "data")
    assert _sha(clone / "model.bin") == _sha(repo / "model.bin")
    assert (clone / "out" / "prepared.txt").read_bytes() == (repo / "out" / "prepared.txt").read_bytes()


def test_rerun_is_unchanged_and_remove_dvc_keeps_the_cache(scenario: Path) -> None:
    repo = scenario / "repo"
    first = _migrate_json(repo)
    second = _migrate_json(repo, "--remove-dvc")
    assert second["written"] == [] and sorted(second["unchanged"]) == sorted(
        t for t in first["written"] if not t.startswith((".dvlite/", ".gitignore")))
    assert not (repo / "data.dvc").exists() and not (repo / "pipelines" / "dvc.lock").exists()
    assert (repo / ".dvc" / "cache").is_dir() and (repo / "data.dvl").exists()


def test_corrupt_object_in_the_dvc_cache_is_refused_and_nothing_converted(scenario: Path) -> None:
    repo = scenario / "repo"
    md5 = hashlib.md5((repo / "data" / "train" / "a.csv").read_bytes()).hexdigest()
    obj = repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"flipped bits\n")
    before = tree_digests(repo)
    proc = migrate(repo, "--force", check=False)
    assert proc.returncode == 4, proc.stderr
    assert f"{md5[:2]}/{md5[2:]}" in proc.stderr and "data.dvc" in proc.stderr
    assert not (repo / ".dvlite").exists()
    assert tree_digests(repo) == before


def test_unknown_dvc_yaml_key_is_named(scenario: Path) -> None:
    repo = scenario / "repo"
    text = (repo / "dvc.yaml").read_text().replace("    deps: [src/run.py", "    retries: 3\n    deps: [src/run.py", 1)
    (repo / "dvc.yaml").write_text(text)
    proc = migrate(repo, "--force", check=False)
    assert proc.returncode == 2
    assert "dvc.yaml: stage 'prepare': unknown key 'retries'" in proc.stderr
    assert not (repo / ".dvlite").exists() and not (repo / "data.dvl").exists()


def test_a_different_existing_target_stops_everything(scenario: Path) -> None:
    repo = scenario / "repo"
    (repo / "model.bin.dvl").write_text("hand-written\n")
    proc = migrate(repo, "--force", check=False)
    assert proc.returncode == 2 and "model.bin.dvl already exists and differs" in proc.stderr
    assert not (repo / "data.dvl").exists() and not (repo / ".dvlite").exists()
    assert (repo / "model.bin.dvl").read_text() == "hand-written\n"


def test_credentials_go_to_config_local(scenario: Path) -> None:
    repo = scenario / "repo"
    dvc(repo, "remote", "add", "s3store", "s3://bucket/path")
    dvc(repo, "remote", "modify", "s3store", "endpointurl", "http://127.0.0.1:9")
    dvc(repo, "remote", "modify", "s3store", "secret_access_key", "hunter2")
    dvc(repo, "remote", "modify", "--local", "s3store", "access_key_id", "AKIA")
    _migrate_json(repo)
    shared = (repo / ".dvlite" / "config").read_text()
    local = (repo / ".dvlite" / "config.local").read_text()
    assert "endpoint_url = http://127.0.0.1:9" in shared and "hunter2" not in shared
    assert "secret = hunter2" in local and "key = AKIA" in local


def test_a_dvc_2_repository_with_the_old_cache_layout(tmp_path: Path) -> None:
    """Records without `hash:` (md5-dos2unix) and objects in `.dvc/cache/ab/cdef`, as DVC 2 left them."""
    from fsspec.callbacks import Callback

    from dvlite.dvc import hashing
    from dvlite.dvc import migrate as mig

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    files = {"a.txt": b"one\r\ntwo\r\n", "sub/b.bin": bytes(range(256)) * 3}
    entries = []
    for rel, data in files.items():
        md5 = hashing.md5_of_bytes(data, hashing.LEGACY)
        entries.append(hashing.DirEntry(rel, md5, None, None))
        write_tree(repo, {f".dvc/cache/{md5[:2]}/{md5[2:]}": data, f"data/{rel}": data})
    dir_md5 = hashing.dir_md5(entries)
    write_tree(repo, {f".dvc/cache/{dir_md5[:2]}/{dir_md5[2:]}.dir": hashing.listing_bytes(entries),
                      "data.dvc": f"outs:\n- md5: {dir_md5}.dir\n  path: data\n".encode()})
    assert "up to date" in dvc(repo, "status").stdout  # DVC 3 accepts it as DVC 2 wrote it
    shutil.rmtree(repo / "data")

    class Recorder(Callback):
        def __init__(self):
            super().__init__()
            self.updates = 0

        def relative_update(self, inc=1):
            self.updates += inc

    recorder = Recorder()
    result = mig.apply(mig.survey(str(repo)), lambda holder: None, recorder)
    assert result.from_cache == 2 and recorder.updates == sum(map(len, files.values()))
    run(repo, "checkout")
    assert (repo / "data" / "a.txt").read_bytes() == b"one\r\ntwo\r\n"  # CRLF kept
    assert (repo / "data" / "sub" / "b.bin").read_bytes() == files["sub/b.bin"]


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy me\n")
    (repo / ".dvcignore").unlink()
    (repo / ".dvcignore").symlink_to(secret)
    proc = migrate(repo, "--force", check=False)
    assert proc.returncode == 2 and ".dvcignore leads outside the repository" in proc.stderr
    assert not (repo / ".dvliteignore").exists()


def test_a_stage_dvc_sees_as_changed_is_changed_for_dvlite_too(scenario: Path) -> None:
    repo = scenario / "repo"
    (repo / "params.yaml").write_text("train:\n  alpha: 0.9\n")
    assert "prepare" in dvc(repo, "status", "dvc.yaml").stdout
    _migrate_json(repo)
    run(repo, "checkout")
    stages = {s["name"]: s for s in json.loads(run(repo, "status", "--json").stdout)["stages"]}
    assert stages["prepare"]["state"] == "stale"
    assert "param train.alpha: 0.5 -> 0.9" in stages["prepare"]["reasons"]
    assert stages["report"]["state"] == "up to date"

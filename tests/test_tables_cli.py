"""The table commands through the real CLI, on Parquet and CSV files committed at several
git revisions: table show, table diff, validate, drift, and every bad input of issue 13."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import GIT_ENV, git, run

def as_json(cwd, *args) -> dict:
    return json.loads(run(cwd, *args, "--json").stdout)


def train_v1() -> pa.Table:
    ids = pa.array(range(1000))
    return pa.table({
        "id": ids,
        "score": pc.divide(pc.cast(pc.remainder(ids, 100), pa.float64()), 100.0),
        "amount": pc.random(1000, initializer=1),
        "label": pc.if_else(pc.equal(pc.remainder(ids, 3), 0), "dog", "cat"),
        "note": pc.cast(ids, pa.string()),
    })


def train_v2() -> pa.Table:
    """10 rows removed, 200 added, score changed in 19 kept rows, amount shifted up by 0.5,
    `note` dropped, `weight` added."""
    ids = pa.array(range(10, 1200))
    score = pc.divide(pc.cast(pc.remainder(ids, 100), pa.float64()), 100.0)
    score = pc.if_else(pc.equal(pc.remainder(ids, 50), 0), pc.add(score, 1.0), score)
    return pa.table({
        "id": ids, "score": score, "amount": pc.add(pc.random(1190, initializer=2), 0.5),
        "label": pc.if_else(pc.equal(pc.remainder(ids, 3), 0), "dog", "cat"),
        "weight": pc.cast(ids, pa.float64()),
    })


def train_v4() -> pa.Table:
    t = train_v2()
    return t.set_column(3, "label", pc.if_else(pc.less(t["id"], 1100), "dog", "cat"))


def commit(root: Path, tag: str, paths: list[str]) -> None:
    run(root, "add", *paths)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", tag)
    git(root, "tag", tag)


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """Tags v1, v2 (train.parquet changed), v3 (only parts/ changed), v4 (labels shifted);
    objects pushed to a local remote."""
    top = tmp_path_factory.mktemp("tables")
    root = top / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    run(root, "init")
    run(root, "remote", "add", "-d", "store", str(top / "store"))
    (root / "data" / "parts").mkdir(parents=True)
    versions = {
        "v1": (train_v1(), b"id,city\n1,Oslo\n2,Rome\n"),
        "v2": (train_v2(), b"id,city\n1,Oslo\n2,Roma\n3,Lima\n"),
        "v3": (None, b"id,city\n1,Oslo\n2,Roma\n3,Lima\n4,Pune\n"),
        "v4": (train_v4(), None),
    }
    for tag, (table, csv) in versions.items():
        if table is not None:
            pq.write_table(table, root / "data" / "train.parquet")
        if csv is not None:
            (root / "data" / "parts" / "part-0.csv").write_bytes(csv)
        commit(root, tag, ["data/train.parquet", "data/parts"])
        run(root, "push")  # push sends what the current pointers name
    return root


# --- table show -----------------------------------------------------------------------------

def test_show_a_table_at_a_revision(history):
    out = run(history, "table", "show", "data/train.parquet", "--rev", "v1").stdout
    assert out.startswith("data/train.parquet@v1: parquet, 1,000 rows, 5 columns\n")
    doc = as_json(history, "table", "show", "data/train.parquet", "--rev", "v1", "--head", "2")
    assert doc["rows"] == 1000
    assert [c["name"] for c in doc["columns"]] == ["id", "score", "amount", "label", "note"]
    assert doc["head"] == [{"id": 0, "score": 0.0, "amount": doc["head"][0]["amount"], "label": "dog",
                            "note": "0"}, {"id": 1, "score": 0.01, "amount": doc["head"][1]["amount"],
                                           "label": "cat", "note": "1"}]
    schema_only = as_json(history, "table", "show", "data/train.parquet", "--rev", "v1", "--schema")
    assert schema_only["head"] == [] and schema_only["stats"] is None


def test_show_stats_are_computed_once_per_object(history):
    doc = as_json(history, "table", "show", "data/train.parquet", "--rev", "v2", "--stats")
    stats = doc["stats"]
    assert stats["rows"] == 1190
    by = {c["name"]: c for c in stats["columns"]}
    assert (by["id"]["min"], by["id"]["max"], by["id"]["nulls"]) == (10, 1199, 0)
    dogs = sum(1 for i in range(10, 1200) if i % 3 == 0)
    assert by["label"]["values"] == [["cat", 1190 - dogs], ["dog", dogs]] and by["label"]["values_exact"]
    assert by["amount"]["mean"] == pytest.approx(1.0, abs=0.05)
    cached = list((history / ".dvlite" / "tmp" / "table-stats").rglob("*.parquet.json"))
    assert cached, "no statistics file was written"
    # the second run reads the cache: an edited cache file shows through
    path = next(p for p in cached if json.loads(p.read_text())["rows"] == 1190)
    original = path.read_text()
    path.write_text(original.replace('"rows": 1190', '"rows": 4242'))
    try:
        again = as_json(history, "table", "show", "data/train.parquet", "--rev", "v2", "--stats")
    finally:
        path.write_text(original)
    assert again["stats"]["rows"] == 4242
    text = run(history, "table", "show", "data/train.parquet", "--rev", "v1", "--stats").stdout
    assert "top values" in text and "cat (666), dog (334)" in text


# --- table diff -----------------------------------------------------------------------------

def test_keyed_diff_between_two_commits(history):
    doc = as_json(history, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                  "--key", "id")
    assert (doc["a"], doc["b"], doc["rows_a"], doc["rows_b"]) == \
        ("data/train.parquet@v1", "data/train.parquet@v2", 1000, 1190)
    assert [c["name"] for c in doc["schema"]["added"]] == ["weight"]
    assert [c["name"] for c in doc["schema"]["removed"]] == ["note"]
    rows = doc["rows"]
    assert (rows["added"], rows["removed"], rows["changed"], rows["unchanged"]) == (200, 10, 990, 0)
    assert rows["changed_columns"] == {"amount": 990, "score": 19}
    first = rows["changed_sample"][0]
    assert first["key"] == {"id": 10} and set(first["changes"]) == {"amount"}
    assert rows["removed_sample"] == [{"id": i} for i in range(10)]
    text = run(history, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                      "--key", "id").stdout
    assert "Rows by key (id)" in text and re.search(r"\n200 +10 +990 +0 *\n", text)
    md = run(history, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                    "--key", "id", "--md").stdout
    assert "| added | removed | changed | unchanged |\n|---|---|---|---|\n| 200 | 10 | 990 | 0 |" in md


def test_diff_without_a_key_compares_rows_as_multisets(history):
    doc = as_json(history, "table", "diff", "data/train.parquet", "--rev", "v2", "--rev", "v4")
    rows = doc["rows"]
    changed = sum(1 for i in range(10, 1200) if (i % 3 == 0) != (i < 1100))  # label flipped
    assert (rows["only_in_a"], rows["only_in_b"], rows["in_both"]) == (changed, changed, 1190 - changed)
    same = as_json(history, "table", "diff", "data/train.parquet", "--rev", "v2", "--rev", "v3")
    assert same["identical"] and same["rows"] is None


def test_diff_of_a_file_inside_a_tracked_directory(history):
    doc = as_json(history, "table", "diff", "data/parts/part-0.csv", "--rev", "v1", "--rev", "v3",
                  "--key", "id")
    rows = doc["rows"]
    assert (rows["added"], rows["removed"], rows["changed"]) == (2, 0, 1)
    assert rows["changed_sample"][0] == {"key": {"id": 2}, "changes": {"city": ["Rome", "Roma"]}}


def test_dvlite_diff_table_diffs_every_modified_table(history):
    doc = as_json(history, "diff", "v1", "v3", "--table", "--key", "id")
    modified = sorted(c["path"] for c in doc["changes"] if c["kind"] == "modified")
    assert modified == ["data/parts/part-0.csv", "data/train.parquet"]
    tables = {t["path"]: t for t in doc["tables"]}
    assert set(tables) == set(modified)
    assert tables["data/parts/part-0.csv"]["rows"]["added"] == 2  # 3 and 4; 2 changed city
    assert tables["data/parts/part-0.csv"]["rows"]["changed_columns"] == {"city": 1}
    assert tables["data/train.parquet"]["rows"]["added"] == 200
    limited = as_json(history, "diff", "v1", "v3", "--table", "--targets", "data/parts")
    assert [t["path"] for t in limited["tables"]] == ["data/parts/part-0.csv"]
    assert all(c["path"].startswith("data/parts/") for c in limited["changes"])
    text = run(history, "diff", "v2", "v3", "--table").stdout
    assert "modified  data/parts/part-0.csv" in text and "rows 3 -> 4 (+1)" in text
    assert "train.parquet" not in text  # unchanged between v2 and v3
    md = run(history, "diff", "v1", "v2", "--table", "--md", "--targets", "data/train.parquet").stdout
    assert md.startswith("### data/train.parquet\n") and "| added | weight | double |" in md
    wrong = run(history, "diff", "--key", "id", check=False)
    assert wrong.returncode == 2 and wrong.stderr.strip() == "error: --key and --md go with --table"


def test_diff_in_a_fresh_clone_reads_from_the_remote(history, tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(history), str(clone))
    doc = as_json(clone, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2", "--key", "id")
    assert (doc["rows"]["added"], doc["rows"]["removed"], doc["rows"]["changed"]) == (200, 10, 990)
    assert not (clone / "data" / "train.parquet").exists()  # nothing was checked out


# --- validate -------------------------------------------------------------------------------

CHECKS = """\
checks:
  data/train.parquet:
    version: 1
    columns:
      id: {type: int64, not_null: true, unique: true}
      score: {min: 0, max: 1}
      label: {allowed: [cat, dog]}
    rows: {min: 100}
    previous: {max_row_drop: 5, keep_columns: true}
  data/parts/part-0.csv: {file: contracts/parts.yaml}
"""


@pytest.fixture
def checked(history, tmp_path):
    clone = tmp_path / "checked"
    git(tmp_path, "clone", "-q", str(history), str(clone))
    run(clone, "pull")
    (clone / "contracts").mkdir()
    (clone / "contracts" / "parts.yaml").write_text(
        "version: 1\ncolumns:\n  city: {regex: '^[A-Z][a-z]+$', not_null: true}\n")
    (clone / "dvlite.yaml").write_text(CHECKS)
    return clone


def test_validate_reports_failures_and_exits_1(checked):
    proc = run(checked, "validate", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "data/train.parquet@workspace: FAILED (1,190 rows, contract dvlite.yaml (checks: data/train.parquet))" \
        in proc.stdout
    assert "data/parts/part-0.csv@workspace: passed" in proc.stdout
    assert "range score: sample of failing rows" in proc.stdout
    doc = json.loads(run(checked, "validate", "--json", check=False).stdout)
    assert doc["passed"] is False
    train = {(c["check"], c["target"]): c for c in doc["reports"][1]["checks"]}
    assert train[("range", "score")]["failing_rows"] == 12  # score 1.5 at ids 50, 150, ..., 1150
    assert train[("range", "score")]["sample"][0] == {"row": 40, "id": 50, "score": 1.5, "amount":
                                                      train[("range", "score")]["sample"][0]["amount"],
                                                      "label": "dog", "weight": 50.0}
    assert train[("unique", "id")]["passed"] and train[("row_drop", "table")]["passed"]


def test_validate_at_a_revision_compares_with_its_parent(checked):
    (checked / "dvlite.yaml").write_text(CHECKS.replace("score: {min: 0, max: 1}", "score: {min: 0}"))
    assert run(checked, "validate", "data/train.parquet", "--rev", "v1").returncode == 0
    doc = json.loads(run(checked, "validate", "data/train.parquet", "--rev", "v2", "--json",
                                check=False).stdout)
    keep = next(c for c in doc["reports"][0]["checks"] if c["check"] == "keep_columns")
    assert not keep["passed"] and keep["detail"] == "gone since data/train.parquet@v2~1: note"


# --- drift ----------------------------------------------------------------------------------

def test_drift_between_two_revisions(history):
    doc = as_json(history, "drift", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                  "--columns", "amount,label", "--columns", "score")
    by = {c["column"]: c for c in doc["columns"]}
    assert set(by) == {"amount", "label", "score"}
    assert by["amount"]["status"] == "drift" and by["amount"]["ks"] > 0.4
    assert by["label"]["status"] == "ok" and by["score"]["status"] == "ok"
    assert doc["verdict"] == "drift" and doc["drifted"] == ["amount"]
    assert run(history, "drift", "data/train.parquet", "--rev", "v1", "--rev", "v2").returncode == 0
    failing = run(history, "drift", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                         "--exit-code", check=False)
    assert failing.returncode == 1 and "verdict: drift in" in failing.stdout


def test_drift_along_every_commit_that_changed_the_file(history):
    doc = as_json(history, "drift", "data/train.parquet", "-A", "--columns", "label")
    tags = {git(history, "rev-parse", t).strip(): t for t in ("v1", "v2", "v3", "v4")}
    assert [tags[v["commit"]] for v in doc["versions"]] == ["v1", "v2", "v4"]  # v3 left it alone
    assert [s["report"]["verdict"] for s in doc["steps"]] == ["no drift", "drift"]
    text = run(history, "drift", "data/train.parquet", "-A").stdout
    assert "3 versions in HEAD's history" in text


# --- bad input ------------------------------------------------------------------------------

def _commit_file(repo: Path, rel: str, data: bytes, message: str = "data") -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    run(repo, "add", rel)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def _error(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stderr


def test_a_file_that_is_not_a_table_is_named_with_its_type(repo):
    _commit_file(repo, "data/img.parquet", b"\x89PNG\r\n\x1a\n" + bytes(2000))
    err = _error(run(repo, "table", "show", "data/img.parquet", "--rev", "HEAD", check=False), 2)
    assert "error: data/img.parquet@HEAD: not a table in Parquet format (its content looks like a PNG image)" in err
    (repo / "notes.txt").write_text("hello\n")
    err = _error(run(repo, "table", "show", "notes.txt", check=False), 2)
    assert "notes.txt: not a table by its name" in err and "--format" in err
    assert run(repo, "table", "show", "notes.txt", "--format", "csv").returncode == 0


def test_a_bad_key_names_the_version(history):
    err = _error(run(history, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                            "--key", "weight", check=False), 2)
    assert "error: key column 'weight' is not in data/train.parquet@v1" in err
    err = _error(run(history, "table", "diff", "data/train.parquet", "--rev", "v1", "--rev", "v2",
                            "--key", "label", check=False), 2)
    assert "error: key (label) is not unique in data/train.parquet@v1: label=" in err


def test_contract_mistakes_name_the_file_and_line(checked):
    (checked / "dvlite.yaml").write_text(CHECKS.replace("not_null: true", "not_nul: true"))
    err = _error(run(checked, "validate", check=False), 2)
    assert ("error: dvlite.yaml (checks: data/train.parquet), line 5: unknown check 'not_nul' in "
            "column 'id'") in err
    (checked / "dvlite.yaml").write_text(CHECKS)
    (checked / "contracts" / "parts.yaml").write_text("version: 1\ncolumns:\n  city:\n    not_null: 1\n")
    proc = run(checked, "validate", "--json", check=False)
    _error(proc, 2)
    assert json.loads(proc.stdout)["error"] == "contracts/parts.yaml, line 4: not_null must be true or false, not 1"
    (checked / "dvlite.yaml").write_text(CHECKS.replace("contracts/parts.yaml", "../outside.yaml"))
    err = _error(run(checked, "validate", check=False), 2)
    assert "dvlite.yaml, line 10: contract file '../outside.yaml'" in err
    (checked / "dvlite.yaml").write_text("checks: {}\n")
    err = _error(run(checked, "validate", "data/none.parquet", check=False), 2)
    assert "data/none.parquet has no contract" in err


def test_a_ragged_csv_is_a_format_error(repo):
    _commit_file(repo, "data/r.csv", b"a,b\n1,2\n3,4,5\n")
    err = _error(run(repo, "table", "show", "data/r.csv", "--rev", "HEAD", check=False), 2)
    assert "error: data/r.csv@HEAD (CSV): ragged row: expected 2 columns, got 3: '3,4,5'" in err


def test_a_truncated_parquet_is_an_integrity_error(repo):
    full = Path(repo / "full.parquet")
    pq.write_table(train_v1(), full)
    _commit_file(repo, "data/t.parquet", full.read_bytes()[:5000])
    err = _error(run(repo, "table", "show", "data/t.parquet", "--rev", "HEAD", check=False), 4)
    assert "error: data/t.parquet@HEAD (Parquet): truncated or corrupt:" in err


def test_a_corrupt_cache_object_is_an_integrity_error(repo):
    run(repo, "config", "cache.pack", "false")  # a loose object file to damage
    pq.write_table(train_v1(), repo / "a.parquet")
    _commit_file(repo, "data/t.parquet", (repo / "a.parquet").read_bytes(), "v1")
    pq.write_table(train_v2(), repo / "b.parquet")
    _commit_file(repo, "data/t.parquet", (repo / "b.parquet").read_bytes(), "v2")
    digest = json.loads(run(repo, "table", "show", "data/t.parquet", "--rev", "HEAD~1", "--json",
                                   "--schema").stdout)["source"]
    assert digest == "data/t.parquet@HEAD~1"
    pointer = git(repo, "show", "HEAD~1:data/t.parquet.dvl")
    hexdigest = next(line.split()[1] for line in pointer.splitlines() if line.startswith("digest:"))
    obj = repo / ".dvlite" / "cache" / "objects" / hexdigest[:2] / hexdigest[2:]
    obj.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the middle of a data page: still readable Parquet
    obj.write_bytes(bytes(data))
    for args in (["table", "diff", "data/t.parquet", "--rev", "HEAD~1", "--rev", "HEAD", "--key", "id"],
                 ["table", "show", "data/t.parquet", "--rev", "HEAD~1", "--stats"],
                 ["drift", "data/t.parquet", "--rev", "HEAD~1", "--rev", "HEAD"]):
        err = _error(run(repo, *args, check=False), 4)
        assert "error: data/t.parquet@HEAD~1: the cached object is corrupt" in err, args

"""`plots show`, `plots diff` and `metrics show --chart` through the real CLI, the pages checked in
Debian's headless Chromium: they load without errors, every chart is drawn, the screenshot is
not blank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git, run
from exp_project import make_project
from test_plots_render import PALETTE, chromium, near, png_pixels, probe, screenshot  # noqa: F401

EXPECTED = ["Loss", "eval/roc.json"]


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "proj")
    run(root, "exp", "run", "-S", "train.C=4", "-n", "c4")  # the workspace now holds c4
    return root


def test_plots_show_writes_one_page_and_json_data(proj):
    out = run(proj, "plots", "show", "-o", "report/plots.html").stdout
    assert "Wrote 2 plot(s) to report/plots.html" in out
    page = (proj / "report/plots.html").read_text()
    assert page.count('class="chart"') == 2 and "<script" not in page
    data = json.loads(run(proj, "plots", "show", "--json").stdout)
    assert data["revisions"] == ["workspace"]
    assert [p["title"] for p in data["plots"]] == EXPECTED
    loss = data["plots"][0]
    assert [(s["revision"], s["field"]) for s in loss["series"]] == [("workspace", "loss"), ("workspace", "val_loss")]
    assert loss["series"][0]["points"][0] == [0, 0.2]  # 1 / (1 + C) with C = 4
    roc = json.loads(run(proj, "plots", "show", "eval/roc.json", "--json").stdout)["plots"]
    assert [p["path"] for p in roc] == ["eval/roc.json"] and roc[0]["template"] == "scatter"


def test_plots_diff_compares_commits_experiments_and_the_workspace(proj):
    git(proj, "commit", "-qam", "keep c4's params")  # HEAD~1 is the base, HEAD has c4's values
    data = json.loads(run(proj, "plots", "diff", "HEAD~1", "c4", "--json").stdout)
    assert data["revisions"] == ["HEAD~1", "c4"]
    titles = [p["title"] for p in data["plots"]]
    assert titles[:2] == EXPECTED and "acc (metrics.json)" in titles
    loss = data["plots"][0]
    first = {s["revision"]: s["points"][0][1] for s in loss["series"] if s["field"] == "loss"}
    assert first == {"HEAD~1": 0.5, "c4": 0.2}
    roc = data["plots"][1]  # a cached plot: read from the object store through each lock
    assert {s["revision"] for s in roc["series"]} == {"HEAD~1", "c4"}
    acc = next(p for p in data["plots"] if p["title"] == "acc (metrics.json)")
    assert [pt[0] for pt in acc["series"][0]["points"]] == ["HEAD~1", "c4"]
    default = json.loads(run(proj, "plots", "diff", "--json").stdout)
    assert default["revisions"] == ["workspace", "HEAD"]
    unknown = run(proj, "plots", "diff", "nope", check=False)
    assert unknown.returncode == 2 and "unknown revision 'nope'" in unknown.stderr


def test_a_revision_without_the_file_is_a_note_not_a_failure(proj):
    (proj / "logs/train.csv").unlink()
    data = json.loads(run(proj, "plots", "diff", "workspace", "c4", "--json").stdout)
    assert "workspace: logs/train.csv not found" in data["plots"][0]["notes"]


def test_chromium_draws_the_pages_of_plots_show_and_plots_diff(proj, chromium, tmp_path):  # noqa: F811
    run(proj, "exp", "run", "-S", "train.C=0.5", "-n", "half")
    for args, charts in ((["show"], 2), (["diff", "HEAD", "c4", "half"], 4)):
        out = tmp_path / f"{args[0]}.html"
        run(proj, "plots", *args, "-o", out)
        where = tmp_path / args[0]
        where.mkdir()
        seen, console = probe(chromium, where, out.read_text())
        assert console == [], console
        assert seen["scripts"] == 0 and len(seen["charts"]) == charts
        for chart in seen["charts"]:
            assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], chart
            assert chart["width"] == 720 and chart["height"] > 300 and chart["ticks"] >= 4, chart
        png, console = screenshot(chromium, where, where / "plots.html", "page")
        assert console == []
        pixels = png_pixels(png)
        assert len(set(pixels[::7])) > 20, "the screenshot is (nearly) one colour"
        if args[0] == "diff":  # one colour per revision
            for colour in PALETTE[:3]:
                assert sum(near(p, colour) for p in pixels) > 200, colour


def test_metrics_show_chart_draws_sparklines_over_commits(proj):
    for c in (2, 6):
        run(proj, "exp", "run", "-S", f"train.C={c}", "-n", f"commit-{c}")
        git(proj, "commit", "-qam", f"C={c}")
    out = run(proj, "metrics", "show", "-A", "--chart").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("metrics.json:acc"))
    assert "0.543 -> 0.743" in line and any(ch in line for ch in "▁▂▃▄▅▆▇█")
    one = run(proj, "metrics", "show", "-A", "--chart", "--metric", "acc").stdout
    assert "0.743 ┤" in one and "•" in one
    bad = run(proj, "metrics", "show", "-A", "--chart", "--metric", "nope", check=False)
    assert bad.returncode == 2 and "no such metric" in bad.stderr

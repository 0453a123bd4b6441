"""Plots: data files read and validated, x/y chosen as DVC does, charts drawn in a real Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dvlite.errors import FormatError
from dvlite.plots import data, render, spec, text
from dvlite.plots.chart import PALETTE

ROWS = [{"step": i, "loss": round(1 / (i + 1), 4), "acc": round(0.5 + i / 40, 4), "note": f"n{i}"}
        for i in range(12)]


def csv_bytes(rows, sep=","):
    lines = [sep.join(rows[0])] + [sep.join(str(v) for v in r.values()) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def yaml_bytes(rows):
    lines = ("- {" + ", ".join(f"{k}: {v}" for k, v in r.items()) + "}\n" for r in rows)
    return "".join(lines).encode()


FORMATS = {
    "train.csv": csv_bytes(ROWS),
    "train.tsv": csv_bytes(ROWS, "\t"),
    "train.json": json.dumps(ROWS).encode(),
    "train.yaml": yaml_bytes(ROWS),
}


# --- reading data files ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_reads_to_the_same_table_and_y_is_the_last_numeric_field(name):
    table = data.parse_table(FORMATS[name], name)
    assert table.fields == ("step", "loss", "acc", "note")
    assert table.column("loss")[:3] == (1.0, 0.5, 0.3333)
    assert table.column("step")[-1] == 11
    x, ys = data.choose_fields(table, spec.PlotSpec(name))
    assert (x, ys) == (spec.STEP, ("acc",))  # "note" is text, so acc is the last numeric field
    points = data.extract_points(table, x, "acc")
    assert points[0] == (0.0, 0.5) and points[-1] == (11.0, 0.775)


def test_json_or_yaml_object_holding_lists_of_records():
    doc = {"meta": {"run": 1}, "train": [{"step": 0, "loss": 1}], "val": [{"step": 0, "vloss": 2}]}
    raw = json.dumps(doc).encode()
    assert data.parse_table(raw, "m.json").fields == ("step", "loss")  # the first list
    assert data.parse_table(raw, "m.json", want=["vloss"]).fields == ("step", "vloss")
    assert data.parse_table(b'{"train": []}', "empty.json").rows == 0  # no records yet
    nested = b"history:\n  epochs:\n    - {epoch: 1, f1: 0.5}\n    - {epoch: 2, f1: 0.6}\n"
    table = data.parse_table(nested, "h.yml")
    assert table.column("f1") == (0.5, 0.6)


def test_search_for_records_is_bounded_when_aliases_repeat_one_object():
    doc: dict = {"x": 1}
    for _ in range(6):  # 50**6 paths through the same few objects, as YAML aliases make
        doc = {f"k{i}": doc for i in range(50)}
    with pytest.raises(FormatError, match="^bomb.yaml: holds no list of records$"):
        data._records(doc, "bomb.yaml", ())


def test_explicit_x_and_several_y_fields_with_header_less_csv():
    table = data.parse_table(b"0.1,5\n0.2,7\n0.3,\n0.4,nan\n", "pr.csv", header=False)
    assert table.fields == ("0", "1")
    plot_spec = spec.parse_spec("pr.csv", {"x": 0, "y": [1], "header": False})  # YAML gives ints
    assert (plot_spec.x, plot_spec.y, plot_spec.header) == ("0", ("1",), False)
    # the empty cell and the NaN are left out
    assert data.extract_points(table, "0", "1") == ((0.1, 5.0), (0.2, 7.0))


def test_unnamed_header_cells_text_x_values_and_records_with_different_keys():
    table = data.parse_table(b",cls,recall\n0,cat,0.9\n1,dog,0.7\n", "r.csv")  # as pandas writes
    assert table.fields == ("0", "cls", "recall")
    assert data.extract_points(table, "cls", "recall") == (("cat", 0.9), ("dog", 0.7))
    table = data.parse_table(b'[{"a": 1}, {"b": 2, "a": [1, 2]}, {"b": 3}]', "x.json")
    assert table.fields == ("a", "b")
    assert table.columns == ((1, None, None), (None, 2, 3))  # a nested list cannot be plotted


def test_build_plot_keeps_revisions_that_lack_the_field_as_notes():
    good = data.parse_table(FORMATS["train.csv"], "train.csv")
    old = data.parse_table(b"step,error\n0,1\n", "train.csv", "train.csv at HEAD~1")
    plot = data.build_plot(spec.PlotSpec("train.csv"), [("workspace", good), ("HEAD~1", old)])
    assert plot.y_fields == ("acc",)
    assert [s.revision for s in plot.series] == ["workspace"]
    assert plot.notes == ("HEAD~1: train.csv at HEAD~1: no field 'acc'",)
    with pytest.raises(FormatError, match="at HEAD~1: no field 'acc'"):
        data.build_plot(spec.PlotSpec("train.csv"), [("workspace", good), ("HEAD~1", old)],
                        strict=True)


def test_metric_plot_over_revisions():
    plot = data.metric_plot("auc", [("workspace", 0.91), ("HEAD", 0.88), ("exp-1", None),
                                    ("exp-2", "high")])
    assert plot.series[0].points == (("workspace", 0.91), ("HEAD", 0.88))
    assert plot.notes == ("exp-1: no value", "exp-2: 'high' is not a number")


BAD_FILES = [
    ("a.json", b'[{"x": 1}', "a.json: invalid JSON"),
    ("a.json", b"[" * 100_000 + b"]" * 100_000, "a.json: invalid JSON"),
    ("a.yaml", b"[" * 100_000, "a.yaml: invalid YAML"),
    ("a.yaml", b"a: [1, 2", "a.yaml: invalid YAML at line"),
    ("a.json", b"3", "a.json: is a int; plot data is a list of records"),
    ("a.yaml", b"", "a.yaml: is empty"),
    ("a.json", b'{"a": 1}', "a.json: holds no list of records"),
    ("a.json", b"[1, 2]", "a.json: record 1 is a int, not an object"),
    ("a.csv", b"x,y\n1,\xff\n", "a.csv: not UTF-8 text"),
    ("a.csv", b"x,y\n1,\x002\n", "a.csv: holds NUL bytes, not text"),
    ("a.csv", b"x,y\n1,2,3\n", "a.csv: line 2: 3 values, but the header names 2 fields"),
    ("a.csv", b"x,x\n1,2\n", "a.csv: the header names the field 'x' twice"),
    ("a.txt", b"x\n1\n", "a.txt: unsupported plot data format '.txt'"),
    ("a.csv", b"1\n" * (data.MAX_ROWS + 2), "a.csv: more than 500,000 rows"),
    ("a.csv", b"," * data.MAX_FIELDS + b"\n", "a.csv: more than 1000 fields"),
    ("a.csv", b"x" * (data.MAX_BYTES + 1), "a.csv: larger than 32 MiB"),
    ("a.yml", b"#" * (data.MAX_YAML_BYTES + 1), "a.yml: YAML plot data larger than 8 MiB"),
]


@pytest.mark.parametrize("name,raw,message", BAD_FILES, ids=[m for _, _, m in BAD_FILES])
def test_malformed_data_is_one_line_error_naming_the_file(name, raw, message):
    with pytest.raises(FormatError) as info:
        data.parse_table(raw, name)
    assert info.value.message.startswith(message), info.value.message
    assert "\n" not in info.value.message and len(info.value.message) < 300


def test_bad_values_and_missing_fields_name_file_row_and_fields():
    table = data.parse_table(b"step,loss\n0,0.5\n1,oops\n", "t.csv")
    with pytest.raises(FormatError, match=r"^t.csv: row 2: loss is 'oops', not a number$"):
        data.extract_points(table, spec.STEP, "loss")
    with pytest.raises(FormatError, match="no field 'acc'") as info:
        data.choose_fields(table, spec.PlotSpec("t.csv", y=("acc",)))
    assert info.value.hint == "its fields: step, loss"
    with pytest.raises(FormatError, match="t.csv: no numeric field to plot"):
        data.choose_fields(data.parse_table(b"name\nx\n", "t.csv"), spec.PlotSpec("t.csv"))


def test_read_table_of_workspace_files(tmp_path):
    (tmp_path / "m.tsv").write_bytes(FORMATS["train.tsv"])
    assert data.read_table(str(tmp_path / "m.tsv"), "m.tsv").rows == 12
    with pytest.raises(FormatError, match="^gone.csv: not found$"):
        data.read_table(str(tmp_path / "gone.csv"), "gone.csv")
    with pytest.raises(FormatError, match="is a directory"):
        data.read_table(str(tmp_path), "dir.csv")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FORMATS)),
       st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_give_a_table_that_renders_or_a_format_error(name, raw):
    try:
        table = data.parse_table(raw, name)
    except FormatError as exc:
        assert "\n" not in exc.message and exc.message.startswith(name)
        return
    for template in spec.TEMPLATES:
        plot = data.build_plot(spec.PlotSpec(name, template=template), {"workspace": table})
        assert render.render_html([plot]).endswith("</html>\n")


# --- plot definitions --------------------------------------------------------------------


def test_dvc_template_names_map_to_ours_and_others_are_clear_errors():
    assert [spec.parse_spec("p.csv", {"template": t}).template
            for t in ("linear", "simple", "smooth", "scatter", "bar_horizontal", "bar")] == \
        ["line", "line", "line", "scatter", "bar", "bar"]
    with pytest.raises(FormatError, match="template 'confusion' is not supported") as info:
        spec.parse_spec("p.csv", {"template": "confusion"})
    assert "line, scatter or bar" in info.value.hint
    with pytest.raises(FormatError, match="custom template file"):
        spec.parse_spec("p.csv", {"template": ".dvc/plots/mine.json"})


@pytest.mark.parametrize("options,message", [
    ({"colour": "red"}, "unknown plot option 'colour'"),
    ({"header": "no"}, "header must be true or false"),
    ({"y": {"train.csv": "loss"}}, "DVC's {file: field} form is not supported"),
    ({"y": ["a", "a"]}, "y lists a field twice"),
    ({"y": []}, "y must not be an empty list"),
    ({"title": ["x"]}, "title must be text"),
    ({"x": ""}, "x must not be empty"),
])
def test_bad_plot_options(options, message):
    with pytest.raises(FormatError, match=re.escape(message)) as info:
        spec.parse_spec("eval/p.csv", options)
    assert info.value.message.startswith("dvlite.yaml: plots: eval/p.csv: ")


def test_plots_section_of_paths_and_options():
    specs = spec.parse_section(["a.csv", {"b.json": {"x": "fpr", "y": "tpr", "template": "linear",
                                                     "title": "ROC"}}])
    assert specs == [spec.PlotSpec("a.csv"),
                     spec.PlotSpec("b.json", x="fpr", y=("tpr",), template="line", title="ROC")]
    with pytest.raises(FormatError, match="each entry is a path"):
        spec.parse_section([{"a.csv": {}, "b.csv": {}}])


# --- rendering ---------------------------------------------------------------------------


def sample_plots():
    """Five charts of every template over three revisions, with hostile labels."""
    work = data.parse_table(FORMATS["train.csv"], "train.csv")
    head = data.parse_table(json.dumps([{**r, "acc": r["acc"] - 0.05} for r in ROWS[:9]]).encode(),
                            "train.json")
    exp = data.parse_table(yaml_bytes([{**r, "acc": r["acc"] + 0.1, "loss": r["loss"] * 0.8}
                                       for r in ROWS]), "train.yaml")
    tables = {"workspace": work, "HEAD": head, "exp-1a2b": exp}
    evil = '<script>alert("x")</script> & <img src=http://example.invalid/x.png>'
    return [
        data.build_plot(spec.parse_spec("train.csv", {"y": ["acc", "loss"], "title": "Training"}),
                        tables),
        data.build_plot(spec.parse_spec("train.csv", {"template": "scatter", "x": "loss",
                                                      "y": "acc", "x_label": evil}), tables),
        data.build_plot(spec.parse_spec("train.csv", {"template": "bar_horizontal", "x": "note",
                                                      "y": "loss"}), tables),
        data.build_plot(spec.PlotSpec("classes.tsv", x="class", y=("recall",), template="bar",
                                      title=evil),
                        {evil: data.parse_table(b"class\trecall\ncat\t0.9\ndog\t0.75\n", "c.tsv")}),
        data.metric_plot("auc", [("workspace", 0.91), ("HEAD", 0.88), ("exp-1a2b", 0.93)],
                         template="line"),
    ]


def start_tags(page: str) -> list[tuple[str, dict]]:
    tags: list[tuple[str, dict]] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: tags.append((tag, dict(attrs)))
    parser.feed(page)
    return tags


def test_html_is_self_contained_deterministic_and_escaped():
    plots = sample_plots()
    details = {"HEAD": "1a2b3c4 <add> dropout"}
    page = render.render_html(plots, ["workspace", "HEAD", "exp-1a2b"], details=details)
    assert page == render.render_html(plots, ["workspace", "HEAD", "exp-1a2b"], details=details)
    tags = start_tags(page)
    names = {tag for tag, _ in tags}
    assert not names & {"script", "img", "link", "iframe", "object", "embed", "image", "use"}
    links = [a.get("href") or a.get("src") for _, a in tags if "href" in a or "src" in a]
    assert links and all(link.startswith("#plot-") for link in links), links
    assert "url(" not in page and "@import" not in page
    csp = [a["content"] for t, a in tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "1a2b3c4 &lt;add&gt; dropout" in page
    assert sum(1 for t, a in tags if t == "svg" and a.get("class") == "chart") == 5
    for name in ("workspace", "HEAD", "exp-1a2b"):
        assert f"<code>{name}</code>" in page


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(spec.TEMPLATES),
       st.lists(st.tuples(finite | st.sampled_from(["a", "b", "<c>"]), finite), max_size=30),
       st.lists(st.tuples(finite, finite), min_size=1, max_size=30))
def test_any_finite_values_draw_valid_coordinates(template, first, second):
    plot = spec.Plot(spec.PlotSpec("p.csv", x="x", y=("y",), template=template), "x", ("y",),
                     (spec.Series("workspace", "y", tuple(first)),
                      spec.Series("HEAD", "y", tuple(second))))
    page = render.render_html([plot])
    numbers = re.findall(r' (?:x|y|x1|x2|y1|y2|cx|cy|r|width|height)="([^"]*)"', page)
    paths = re.findall(r' d="([^"]*)"', page)
    assert all(re.fullmatch(r"-?\d+(\.\d)?", n) for n in numbers), numbers
    assert all(re.fullmatch(r"[MLhZ0-9.,-]+", d) for d in paths), paths


def test_to_json_holds_every_point():
    plots = sample_plots()
    doc = json.loads(json.dumps(render.to_json(plots, ["workspace"])))
    assert doc["version"] == 1
    assert doc["revisions"][:3] == ["workspace", "HEAD", "exp-1a2b"]
    first = doc["plots"][0]
    assert (first["x"], first["y"], first["title"]) == ("step", ["acc", "loss"], "Training")
    series = {(s["revision"], s["field"]): s["points"] for s in first["series"]}
    assert series[("workspace", "acc")][:2] == [[0, 0.5], [1, 0.525]]
    assert len(series[("HEAD", "loss")]) == 9


def test_long_series_are_thinned_in_the_drawing_only():
    rows = b"".join(b"%d,%f\n" % (i, (i % 1000) / 7) for i in range(200_000))
    table = data.parse_table(b"step,value\n" + rows, "big.csv")
    plot = data.build_plot(spec.PlotSpec("big.csv"), {"workspace": table})
    page = render.render_html([plot])
    path = re.search(r'<path class="mark line" d="([^"]+)"', page).group(1)
    assert path.count("L") < 2_500
    assert "thinned" in page
    assert len(render.to_json([plot])["plots"][0]["series"][0]["points"]) == 200_000


def test_bar_chart_draws_one_bar_per_x_value_and_series():
    table = data.parse_table(b"cls,n\na,1\nb,2\na,3\n", "c.csv")
    plot = data.build_plot(spec.PlotSpec("c.csv", x="cls", template="bar"), {"workspace": table})
    page = render.render_html([plot])
    assert page.count('<rect class="mark bar"') == 2
    assert "x=a, y=3</title>" in page and "x=a, y=1</title>" not in page
    assert "its bar shows the last" in page


def test_terminal_sparkline_and_charts():
    assert text.sparkline([1, 2, 3, None, 8]) == "▁▂▃ █"
    assert text.sparkline([5, 5]) == "▄▄" and text.sparkline([None]) == " "
    bars = text.bar_chart([("workspace", 0.5), ("HEAD", 1.0), ("exp-1", None), ("exp-2", -0.5)],
                          width=20)
    assert bars[1] == "HEAD      │" + " " * 7 + "█" * 13 + " 1"
    assert bars[2] == "exp-1     │ (no value)"
    assert bars[3].startswith("exp-2     │" + "█" * 7 + " ") and bars[3].endswith(" -0.5")
    lines = text.line_chart([(f"c{i}", i) for i in range(5)], width=9, height=5)
    assert lines[0] == "4 ┤        •"
    assert lines[4] == "0 ┤•"
    assert lines[-1] == "   c0     c4"  # under the first and the last dot


# --- a real headless Chromium ------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--force-device-scale-factor=1",
                  "--enable-logging=stderr", "--v=0"]
CONSOLE = re.compile(r"CONSOLE[:(].*")

# Loads the page under test in a frame (same origin with --allow-file-access-from-files) and
# writes what it finds into the DOM, which --dump-dom prints: the page itself stays script-free.
PROBE = """<!DOCTYPE html><html><body>
<iframe id="page" src="plots.html" width="1600" height="1200"></iframe>
<script>
document.getElementById("page").addEventListener("load", function () {
  var doc = this.contentDocument, out = {title: doc.title, scripts: doc.scripts.length, charts: []};
  doc.querySelectorAll("svg.chart").forEach(function (svg) {
    var marks = svg.querySelectorAll(".mark"), drawn = 0;
    marks.forEach(function (m) { var b = m.getBBox(); if (b.width > 0 || b.height > 0) drawn++; });
    var box = svg.getBoundingClientRect();
    var count = function (selector) { return svg.querySelectorAll(selector).length; };
    out.charts.push({id: svg.id, template: svg.dataset.template, marks: marks.length,
                     drawn: drawn, width: box.width, height: box.height, paths: count("path.mark"),
                     circles: count("circle.mark"), rects: count("rect.mark"),
                     ticks: count("text.tick"), legend: count(".legend-label")});
  });
  var pre = document.body.appendChild(document.createElement("pre"));
  pre.id = "result";
  pre.textContent = JSON.stringify(out);
});
</script></body></html>
"""


@pytest.fixture(scope="module")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")


def run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a new empty profile; kill its whole process group on a hang."""
    profile.mkdir()
    proc = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError("chromium did not finish within 120 s") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def probe(binary: str, tmp: Path, page: str) -> tuple[dict, list[str]]:
    """What the probe saw in the page, and the console lines Chromium logged."""
    (tmp / "plots.html").write_text(page, encoding="utf-8")
    (tmp / "probe.html").write_text(PROBE, encoding="utf-8")
    proc = run_chromium(binary, tmp / "profile-dom", "--allow-file-access-from-files",
                        "--dump-dom", (tmp / "probe.html").as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found, f"the probe wrote no result:\n{proc.stdout[-2000:]}"
    return json.loads(html.unescape(found.group(1))), CONSOLE.findall(proc.stderr)


def screenshot(binary: str, tmp: Path, page: Path, name: str) -> tuple[bytes, list[str]]:
    shot = tmp / f"{name}.png"
    proc = run_chromium(binary, tmp / f"profile-{name}", "--window-size=1600,900",
                        "--run-all-compositor-stages-before-draw", "--virtual-time-budget=3000",
                        f"--screenshot={shot}", page.as_uri())
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    return shot.read_bytes(), CONSOLE.findall(proc.stderr)


def png_pixels(png: bytes) -> list[tuple[int, ...]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG with the standard library: one tuple a pixel."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    rows = _unfilter(zlib.decompress(b"".join(idat)), width, height, bpp)
    return [tuple(row[i:i + 3]) for row in rows for i in range(0, len(row), bpp)]


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> list[bytearray]:
    stride, rows, prev, pos = width * bpp, [], bytearray(width * bpp), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 255
            elif kind == 4:
                corner = prev[i - bpp] if i >= bpp else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 255
        rows.append(line)
        prev = line
    return rows


def near(pixel, colour: str) -> bool:
    return sum(abs(a - b) for a, b in zip(pixel, bytes.fromhex(colour[1:]))) <= 24


def test_chromium_draws_every_chart_without_console_errors(chromium, tmp_path):
    plots = sample_plots()
    page = render.render_html(plots, ["workspace", "HEAD", "exp-1a2b"])
    seen, console = probe(chromium, tmp_path, page)
    assert console == []
    assert seen["title"] == "dvlite plots" and seen["scripts"] == 0
    charts = seen["charts"]
    assert [c["template"] for c in charts] == ["line", "scatter", "bar", "bar", "line"]
    for chart in charts:
        assert chart["marks"] > 0 and chart["drawn"] == chart["marks"], chart
        assert chart["width"] == 720 and chart["height"] > 300, chart
        assert chart["ticks"] >= 4 and chart["legend"] >= 1, chart
    line, scatter, bars = charts[0], charts[1], charts[2]
    assert line["legend"] == 6  # 3 revisions x 2 fields
    assert line["paths"] == 6 and line["circles"] == 12 + 12 + 9 + 9 + 12 + 12  # dots on points
    assert scatter["legend"] == 3 and scatter["marks"] == 12 + 9 + 12
    assert bars["rects"] == 12 + 9 + 12

    png, console = screenshot(chromium, tmp_path, tmp_path / "plots.html", "page")
    assert console == []
    pixels = png_pixels(png)
    assert len(pixels) == 1600 * 900
    assert len(set(pixels[::7])) > 20, "the screenshot is (nearly) one colour"
    for colour in PALETTE[:3]:  # each revision's colour is painted by the first charts
        assert sum(near(p, colour) for p in pixels) > 400, colour


def test_chromium_checks_can_fail(chromium, tmp_path):
    """Controls: a broken chart logs a console error and a blank page screenshots as one colour."""
    broken = '<!DOCTYPE html><html><body><svg><path class="mark" d="M0,0L1,x"/></svg></body></html>'
    seen, console = probe(chromium, tmp_path, broken)
    assert seen["charts"] == [] and any("attribute d" in line for line in console), console
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    png, _ = screenshot(chromium, tmp_path, blank, "blank")
    assert len(set(png_pixels(png))) == 1

"""Plots as one self-contained HTML page (inline SVG, no script, no network) and as JSON data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from dvlite.plots.chart import PALETTE, chart_svg, clip
from dvlite.plots.spec import STEP, STEP_LABEL, Plot

JSON_VERSION = 1
# The page may load nothing at all: no scripts, fonts, images or frames from anywhere.
CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;
background:#fff}
h1{font-size:22px;margin:0 0 6px}h2{font-size:17px;margin:0 0 2px}
.summary,.path{color:#555;font-size:13px;margin:2px 0 8px}
.revisions{list-style:none;padding:0;margin:6px 0 14px;display:flex;flex-wrap:wrap;gap:6px 18px;
font-size:13px}
.swatch{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;
vertical-align:-1px}
.detail{color:#666}
nav ol{font-size:13px;margin:0 0 14px;padding-left:22px}
main{display:flex;flex-wrap:wrap;gap:20px}
.plot{border:1px solid #ddd;border-radius:6px;padding:12px 14px;background:#fff}
.notes{font-size:12px;color:#8a4b00;margin:6px 0 0;padding-left:18px;max-width:700px}
svg.chart{display:block;font-size:11px;overflow:visible}
.grid{stroke:#e8e8e8}.axis,.tick-mark{stroke:#777}
.tick,.legend-label{fill:#444}.axis-title{fill:#222;font-size:12px}
.empty{fill:#999;font-size:14px}
.mark.line{stroke-width:2;stroke-linecap:round;stroke-linejoin:round}
.legend-key{stroke-width:2.5}
"""


def _revisions(plots: Sequence[Plot], revisions: Sequence[str]) -> list[str]:
    """The given revisions, then any others the plots hold, in order of first appearance."""
    seen = dict.fromkeys(revisions)
    for plot in plots:
        seen.update(dict.fromkeys(s.revision for s in plot.series if s.revision))
    return list(seen)


def _title_block(title: str, plots: Sequence[Plot], revisions: list[str],
                 details: Mapping[str, str]) -> list[str]:
    count = f"{len(plots)} plot{'s' if len(plots) != 1 else ''}"
    revs = f"{len(revisions)} revision{'s' if len(revisions) != 1 else ''}"
    out = ['<header class="title-block">', f"<h1>{escape(title)}</h1>",
           f'<p class="summary">{count} of {revs}</p>', '<ul class="revisions">']
    for i, revision in enumerate(revisions):
        swatch = (f'<span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
                  if len(revisions) > 1 else "")
        detail = details.get(revision, "")
        extra = f' <span class="detail">{escape(clip(detail, 120))}</span>' if detail else ""
        name = escape(clip(revision, 80))
        out.append(f'<li class="revision">{swatch}<code>{name}</code>{extra}</li>')
    out.append("</ul>")
    if len(plots) > 1:
        out.append("<nav><ol>")
        out.extend(f'<li><a href="#plot-{i}">{escape(clip(p.title, 100))}</a></li>'
                   for i, p in enumerate(plots, start=1))
        out.append("</ol></nav>")
    out.append("</header>")
    return out


def _section(plot: Plot, number: int, colour_of: Mapping[str, int]) -> list[str]:
    svg, drawing_notes = chart_svg(plot, number, colour_of)
    where = plot.spec.path if plot.spec.path != plot.title else ""
    subtitle = " · ".join(x for x in (where, plot.spec.template) if x)
    out = [f'<section class="plot" id="plot-{number}">', f"<h2>{escape(plot.title)}</h2>",
           f'<p class="path">{escape(subtitle)}</p>', svg]
    notes = list(plot.notes) + drawing_notes
    if notes:
        out.append('<ul class="notes">')
        out.extend(f"<li>{escape(clip(note, 300))}</li>" for note in notes)
        out.append("</ul>")
    out.append("</section>")
    return out


def render_html(plots: Sequence[Plot], revisions: Sequence[str] = (), title: str = "dvlite plots",
                details: Mapping[str, str] | None = None) -> str:
    """One HTML page drawing every plot as inline SVG.

    `revisions` orders the title block and fixes each revision's colour across all charts
    (revisions found only in the plots follow). `details` adds a line per revision, e.g.
    {"HEAD": "1a2b3c4 add dropout"}. The same input always gives the same text.
    """
    names = _revisions(plots, revisions)
    colour_of = {name: i for i, name in enumerate(names)}
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<meta name="generator" content="dvlite">',
             f"<title>{escape(title)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>"]
    parts.extend(_title_block(title, plots, names, details or {}))
    parts.append("<main>")
    for number, plot in enumerate(plots, start=1):
        parts.extend(_section(plot, number, colour_of))
    if not plots:
        parts.append('<p class="summary">No plots.</p>')
    parts.extend(["</main>", "</body>", "</html>", ""])
    return "\n".join(parts)


def _json_number(value):
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_json(plots: Sequence[Plot], revisions: Sequence[str] = ()) -> dict:
    """Every plot's data points (all of them, none thinned), ready for json.dumps."""
    return {
        "version": JSON_VERSION,
        "revisions": _revisions(plots, revisions),
        "plots": [
            {
                "id": f"plot-{number}",
                "path": plot.spec.path,
                "title": plot.title,
                "template": plot.spec.template,
                "x": plot.x_field if plot.x_field != STEP else STEP_LABEL,
                "y": list(plot.y_fields),
                "x_label": plot.x_title,
                "y_label": plot.y_title,
                "notes": list(plot.notes),
                "series": [
                    {"revision": s.revision, "field": s.field,
                     "points": [[_json_number(x), _json_number(y)] for x, y in s.points]}
                    for s in plot.series
                ],
            }
            for number, plot in enumerate(plots, start=1)
        ],
    }

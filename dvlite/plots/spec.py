"""Plot definitions from dvlite.yaml, and the values a chart is drawn from (series, plots)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dvlite.errors import FormatError

TEMPLATES = ("line", "scatter", "bar")
# DVC's built-in template names, drawn with the nearest of ours.
DVC_TEMPLATES = {
    "linear": "line",
    "simple": "line",
    "smooth": "line",  # drawn without DVC's loess smoothing
    "scatter": "scatter",
    "bar_horizontal": "bar",  # drawn with vertical bars
    "bar_horizontal_sorted": "bar",
}
UNSUPPORTED_TEMPLATES = ("confusion", "confusion_normalized", "scatter_jitter")
OPTIONS = ("x", "y", "template", "title", "x_label", "y_label", "header")
STEP = ""  # PlotSpec.x when the x axis is the row index (DVC's "step")
STEP_LABEL = "step"
MAX_TEXT = 300  # longest title, label or field name accepted
MAX_Y_FIELDS = 32

X = float | str  # an x value: a number, or a category


@dataclass(frozen=True)
class PlotSpec:
    """One plot of one data file, as dvlite.yaml defines it."""

    path: str  # repo-relative data file
    x: str = STEP  # field for the x axis; STEP: the row index
    y: tuple[str, ...] = ()  # fields for the y axis; (): the last numeric field
    template: str = "line"  # line | scatter | bar
    title: str = ""  # "": the path
    x_label: str = ""  # "": the x field
    y_label: str = ""  # "": the y fields
    header: bool = True  # CSV/TSV: the first row names the fields (else they are "0", "1", ...)


@dataclass(frozen=True)
class Series:
    """The points of one y field in one revision, in drawing order."""

    revision: str  # "workspace", "HEAD", "exp-1a2b", or "" when the plot spans revisions
    field: str  # the y field
    points: tuple[tuple[X, float], ...]


@dataclass(frozen=True)
class Plot:
    """A chart ready to draw: its definition, resolved fields and series, and notes to show."""

    spec: PlotSpec
    x_field: str  # the resolved x field; STEP for the row index
    y_fields: tuple[str, ...]
    series: tuple[Series, ...]
    notes: tuple[str, ...] = field(default=())  # e.g. "HEAD: train.csv not found"

    @property
    def title(self) -> str:
        return self.spec.title or self.spec.path

    @property
    def x_title(self) -> str:
        return self.spec.x_label or (self.x_field if self.x_field != STEP else STEP_LABEL)

    @property
    def y_title(self) -> str:
        return self.spec.y_label or ", ".join(self.y_fields)


def template_name(raw, where: str) -> str:
    """Our template for a name from dvlite.yaml (ours, or DVC's built-in ones)."""
    if not isinstance(raw, str) or not raw:
        raise FormatError(f"{where}: template must be a name, not {raw!r}")
    name = raw.strip().lower()
    if name in TEMPLATES:
        return name
    if name in DVC_TEMPLATES:
        return DVC_TEMPLATES[name]
    what = "is not supported" if name in UNSUPPORTED_TEMPLATES else "is unknown"
    if "/" in name or name.endswith(".json"):
        what = "is a custom template file, which dvlite does not read"
    raise FormatError(
        f"{where}: template {raw!r} {what}",
        hint="use line, scatter or bar (DVC's " + ", ".join(DVC_TEMPLATES) + " are accepted)",
    )


def _text(value, where: str, name: str) -> str:
    if not isinstance(value, str):
        raise FormatError(f"{where}: {name} must be text, not {value!r}")
    if len(value) > MAX_TEXT:
        raise FormatError(f"{where}: {name} is longer than {MAX_TEXT} characters")
    return value


def _field_name(value, where: str, name: str) -> str:
    # YAML reads `y: 1` (a column of a header-less CSV) as a number.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = _text(value, where, name)
    if not text:
        raise FormatError(f"{where}: {name} must not be empty")
    return text


def _y_fields(raw, where: str) -> tuple[str, ...]:
    if isinstance(raw, dict):
        raise FormatError(f"{where}: y must be a field or a list of fields; "
                          "DVC's {file: field} form is not supported")
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise FormatError(f"{where}: y must not be an empty list")
    if len(items) > MAX_Y_FIELDS:
        raise FormatError(f"{where}: y lists more than {MAX_Y_FIELDS} fields")
    fields = tuple(_field_name(v, where, "y") for v in items)
    if len(set(fields)) != len(fields):
        raise FormatError(f"{where}: y lists a field twice")
    return fields


def parse_spec(path: str, options: Mapping | None, origin: str = "dvlite.yaml") -> PlotSpec:
    """The plot of `path` with the options dvlite.yaml gives it; a bad option is a FormatError."""
    where = f"{origin}: plots: {path}"
    options = options or {}
    if not isinstance(options, Mapping):
        raise FormatError(f"{where}: options must be a mapping")
    unknown = sorted(str(k) for k in options if k not in OPTIONS)
    if unknown:
        raise FormatError(f"{where}: unknown plot option {unknown[0]!r}",
                          hint="plot options are " + ", ".join(OPTIONS))
    header = options.get("header", True)
    if not isinstance(header, bool):
        raise FormatError(f"{where}: header must be true or false, not {header!r}")
    x = _field_name(options["x"], where, "x") if "x" in options else STEP
    return PlotSpec(
        path=path,
        x=x,
        y=_y_fields(options["y"], where) if "y" in options else (),
        template=template_name(options.get("template", "line"), where),
        title=_text(options.get("title", ""), where, "title"),
        x_label=_text(options.get("x_label", ""), where, "x_label"),
        y_label=_text(options.get("y_label", ""), where, "y_label"),
        header=header,
    )


def parse_section(raw, origin: str = "dvlite.yaml") -> list[PlotSpec]:
    """Plot definitions from a `plots:` list: each a path, or {path: {options}}."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise FormatError(f"{origin}: plots must be a list, not {type(raw).__name__}")
    specs = []
    for item in raw:
        if isinstance(item, str) and item:
            specs.append(parse_spec(item, None, origin))
        elif isinstance(item, dict) and len(item) == 1:
            (path, options), = item.items()
            if not isinstance(path, str) or not path:
                raise FormatError(f"{origin}: plots: a path must be a non-empty string, "
                                  f"not {path!r}")
            specs.append(parse_spec(path, options, origin))
        else:
            raise FormatError(f"{origin}: plots: each entry is a path or {{path: {{options}}}}")
    return specs

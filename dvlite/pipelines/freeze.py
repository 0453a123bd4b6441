"""`freeze` and `unfreeze`: set and clear a stage's `frozen: true` in its dvlite.yaml, by
editing the text (one line added, removed or changed), so the rest of the file stays byte
for byte as its author wrote it: comments, order, quoting, templating."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from dvlite.errors import BadInputError, FormatError
from dvlite.pipelines import spec as pipeline_mod
from dvlite.pipelines.project import load_pipeline, read_at
from dvlite.repo import Repo


@dataclass(frozen=True)
class FreezeResult:
    stage: str
    file: str  # the dvlite.yaml that was (or would have been) edited
    frozen: bool  # the stage's state now
    changed: bool


def _node(mapping: yaml.MappingNode, key: str):
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _stage_node(text: str, key: str, origin: str) -> yaml.MappingNode:
    """The mapping node of stage `key` (under `stages:`), with its marks into `text`."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise FormatError(f"{origin}: not valid YAML ({str(exc).splitlines()[0]})") from None
    stages = _node(root, "stages") if isinstance(root, yaml.MappingNode) else None
    found = _node(stages[1], key) if stages and isinstance(stages[1], yaml.MappingNode) else None
    if found is None or not isinstance(found[1], yaml.MappingNode):
        raise BadInputError(f"stage {key!r} is not written out in {origin} (made by foreach or "
                            "matrix?)", hint="set `frozen: true` in its template by hand")
    return found[1]


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _edit(text: str, stage: yaml.MappingNode, freeze: bool, origin: str) -> str:
    newline = "\r\n" if "\r\n" in text else "\n"
    present = _node(stage, "frozen")
    if stage.flow_style:
        raise BadInputError(f"{origin}: the stage is written in flow style ({{...}})",
                            hint="set or remove `frozen: true` in it by hand")
    if present is not None:
        key, value = present
        start = _line_start(text, key.start_mark.index)
        end = text.find("\n", value.end_mark.index)
        end = len(text) if end < 0 else end + 1
        if text[start:key.start_mark.index].strip() or value.end_mark.line != key.start_mark.line:
            raise BadInputError(f"{origin}: `frozen:` of the stage does not stand on a line of "
                                "its own", hint="edit it by hand")
        if not freeze:  # the whole line goes
            return text[:start] + text[end:]
        return text[:value.start_mark.index] + "true" + text[value.end_mark.index:]
    if not freeze:
        return text
    first = stage.value[0][0]
    start = _line_start(text, first.start_mark.index)
    indent = text[start:first.start_mark.index]
    if indent.strip():
        raise BadInputError(f"{origin}: the stage's first key does not start its line",
                            hint="add `frozen: true` by hand")
    return text[:start] + indent + "frozen: true" + newline + text[start:]


def set_frozen(repo: Repo, name: str, freeze: bool) -> FreezeResult:
    """Set (or clear) `frozen` of stage `name`; the edited file is parsed again and written
    only when that stage's `frozen` is all that changed."""
    pipeline = load_pipeline(repo)
    stage = pipeline.stages.get(name)
    if stage is None:
        known = ", ".join(pipeline.order()) or "none"
        raise BadInputError(f"no stage named {name!r} (stages: {known})")
    if stage.frozen == freeze:
        return FreezeResult(name, stage.file, freeze, False)
    data = read_at(repo, None, stage.file) or b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{stage.file}: not UTF-8 text") from None
    edited = _edit(text, _stage_node(text, stage.key or name, stage.file), freeze, stage.file)
    _check(repo, stage, text, edited, freeze)
    repo.write(stage.file, edited.encode("utf-8"))
    return FreezeResult(name, stage.file, freeze, True)


def _check(repo: Repo, stage, before: str, after: str, freeze: bool) -> None:
    """The edit changed `frozen` of this stage and nothing else (else nothing is written)."""
    import dataclasses

    options = {k.removeprefix("parsing."): v for k, v in repo.config.items().items()
               if k.startswith("parsing.")}

    def parse(text: str):
        return pipeline_mod.parse_file(text.encode("utf-8"), stage.file,
                                       lambda p: read_at(repo, None, p), options).stages

    old, new = parse(before), parse(after)
    expected = {**old, stage.name: dataclasses.replace(old[stage.name], frozen=freeze)}
    if new != expected:
        raise BadInputError(f"{stage.file}: could not edit `frozen` of stage {stage.name!r} "
                            "without changing more", hint="edit the file by hand")

"""dvlite.pipelines.templating against the real DVC: stage names and commands, then its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import git, write_tree
from dvc_helpers import dvc, requires_dvc

from dvlite.pipelines import templating
from dvlite.errors import FormatError

PARAMS = b"""\
train:
  lr: 0.001
  epochs: 10
  fast: true
  slow: false
  name: my model
  layers: [8, 4]
  nested: {depth: 2}
flags: [true, false]
models: [small, large]
regions:
  us: {n: 1}
  eu: {n: 2}
"""
PIPELINE = r"""
vars:
  - extra.yaml
  - local_var: 42
stages:
  scalars:
    foreach: [1, 2.5, true, "x-y"]
    do:
      cmd: echo ${item} ${local_var}
  from_vars:
    foreach: ${flags}
    do:
      cmd: echo ${item}
  dicts:
    foreach:
      - {a: 1, b: x}
      - {a: 2, b: y}
    do:
      cmd: echo ${item.a} ${item.b}
  regions:
    foreach: ${regions}
    do:
      cmd: echo ${key} ${item.n} ${models[1]}
  grid:
    matrix:
      cfg: [{a: 1}, {a: 2}]
      model: ${models}
      lr: [0.1, 1]
    cmd: echo ${key} ${item.cfg.a} ${item.model} ${item.lr}
  unpack:
    cmd: python train.py ${train} --seed ${extra_seed}
  escaped:
    cmd: echo \${not_a_var} ${train.epochs}
  staged:
    wdir: sub
    vars:
      - sub.yaml:who
    cmd: echo ${who} ${train.lr}
"""
FILES = {"params.yaml": PARAMS, "extra.yaml": b"extra_seed: 3\n", "sub/sub.yaml": b"who: me\nx: 1\n"}


def _resolve(doc: str, files: dict = FILES, options: dict | None = None) -> dict:
    return templating.resolve(yaml.safe_load(doc), "dvc.yaml", files.get, "", options)["stages"]


def _dvc_commands(repo: Path) -> dict[str, str]:
    """Stage -> command, as `dvc repro --dry --force` says it would run them."""
    out = dvc(repo, "repro", "--dry", "--force").stdout
    found = re.findall(r"Running stage '([^']+)':\n> (.*)", out)
    return dict(found)


@requires_dvc
def test_names_and_commands_match_dvc(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    write_tree(repo, {**FILES, "dvc.yaml": PIPELINE.encode()})
    names = dvc(repo, "stage", "list", "--name-only").stdout.split()
    ours = _resolve(PIPELINE)
    assert list(ours) == names
    assert {n: b["cmd"] for n, b in ours.items()} == _dvc_commands(repo)
    assert "from_vars@True" in ours and "scalars@true" in ours and "grid@cfg1-large-1" in ours


@requires_dvc
def test_boolean_optional_and_append_styles_match_dvc(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "parsing.bool", "boolean_optional")
    dvc(repo, "config", "parsing.list", "append")
    doc = "stages:\n  unpack:\n    cmd: python train.py ${train}\n"
    write_tree(repo, {"params.yaml": PARAMS, "dvc.yaml": doc.encode()})
    ours = _resolve(doc, {"params.yaml": PARAMS}, {"bool": "boolean_optional", "list": "append"})
    assert ours["unpack"]["cmd"] == _dvc_commands(repo)["unpack"]
    assert "--no-slow" in ours["unpack"]["cmd"] and "--layers 8 --layers 4" in ours["unpack"]["cmd"]


def test_values_keep_their_type_when_whole() -> None:
    stages = _resolve("stages:\n  s:\n    cmd: x\n    frozen: ${train.fast}\n    deps: ['${train.name}']\n")
    assert stages["s"]["frozen"] is True and stages["s"]["deps"] == ["my model"]


@pytest.mark.parametrize(("doc", "message"), [
    ("stages:\n  s:\n    cmd: echo ${nope}\n", "dvc.yaml: stage 's': cmd: could not find 'nope'"),
    ("stages:\n  s:\n    cmd: echo ${train.lr.x}\n", "could not find 'train.lr.x'"),
    ("stages:\n  s:\n    cmd: echo ${a..b}\n", "stage 's': cmd: bad expression"),
    ("stages:\n  s:\n    cmd: x\n    deps: ['${models}']\n", "stage 's': deps: cannot interpolate data of type 'list'"),
    ("stages:\n  s:\n    foreach: ${train.name}\n    do: {cmd: x}\n", "foreach: expected a list or a mapping, got str"),
    ("stages:\n  s:\n    foreach: [1]\n    do: {cmd: x}\n    deps: [a]\n", "unknown key 'deps' beside foreach"),
    ("stages:\n  s:\n    matrix: {a: '${train.lr}'}\n    cmd: x\n", "matrix.a: expected a list"),
    ("stages:\n  s:\n    foreach: [1]\n    do:\n      vars: [{item: 2}]\n      cmd: x\n", "reserved key(s) item"),
    ("vars: [{train: {lr: 1}}]\nstages: {}\n", "cannot redefine 'train.lr' from 'vars[0]' as it already exists in 'params.yaml'"),
    ("vars: ['missing.yaml']\nstages: {}\n", "vars: 'missing.yaml' does not exist"),
    ("vars: ['extra.yaml:nokey']\nstages: {}\n", "could not find 'nokey' in 'extra.yaml'"),
    ("vars: ['${x}.yaml']\nstages: {}\n", "interpolating is not allowed"),
    ("vars: ['params.py']\nstages: {}\n", "Python vars files are not supported"),
    ("vars: ['../up.yaml']\nstages: {}\n", "not a path inside the repository"),
    ("stages: {}\nplot: []\n", "unknown top-level key 'plot'"),
    ("stages:\n  a@b:\n    cmd: x\n", "'@' marks generated stages"),
])
def test_errors_name_the_file_stage_and_construct(doc: str, message: str) -> None:
    files = {**FILES, "params.py": b"x = 1\n"}
    with pytest.raises(FormatError) as info:
        _resolve(doc, files)
    assert message in info.value.message
    assert info.value.message.startswith("dvc.yaml: ") and "\n" not in info.value.message


def test_generated_stages_are_bounded() -> None:
    doc = "stages:\n  s:\n    matrix: {a: '${big}', b: '${big}'}\n    cmd: x\n"
    vars_files = {"params.yaml": b"big: [" + b",".join(str(i).encode() for i in range(200)) + b"]\n"}
    with pytest.raises(FormatError, match="more than 10000 generated stages"):
        _resolve(doc, vars_files)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = "x"
    for _ in range(300):
        deep = [deep]
    with pytest.raises(FormatError, match="nested deeper"):
        templating.resolve({"stages": {"s": {"cmd": "x", "meta": deep}}}, "dvc.yaml", FILES.get)



"""The layers of docs/design.md, enforced: every module is in the table, and imports point down.

A module may import modules of its own layer or lower ones; imports inside functions count.
Only `cli/` imports typer and rich; only `scm` imports GitPython (`git`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dvlite"
ROW = re.compile(r"^\| (\d+) [^|]*\| `([\w.]+)` \|", re.M)


def layer_table() -> dict[str, int]:
    """module (dotted, without `dvlite.`) -> layer, from docs/design.md."""
    text = (ROOT / "docs" / "design.md").read_text()
    return {module: int(layer) for layer, module in ROW.findall(text)}


def modules() -> dict[str, Path]:
    """Every module of the package that holds code (empty `__init__.py` files are just folders)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            if not path.read_text().strip():
                continue
            parts = parts[:-1]
        found[".".join(parts) or "__init__"] = path
    return found


def imports_of(source: str, known: set[str]) -> list[tuple[int, str]]:
    """(line, imported name) for every import in `source`, anywhere in it. dvlite modules are
    given without `dvlite.`; `from dvlite.x import y` names module `x.y` when that is one."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                inner = full.removeprefix("dvlite.")
                out.append((node.lineno, full if inner in known else node.module))
    return [(line, name.removeprefix("dvlite.") if name.startswith("dvlite.") else name)
            for line, name in out]


def violations(module: str, source: str, table: dict[str, int]) -> list[str]:
    found = []
    for line, name in imports_of(source, set(table)):
        top = name.split(".")[0]
        if top in ("typer", "rich") and not module.startswith("cli."):
            found.append(f"{module}:{line} imports {name}: only cli/ may")
        elif top == "git" and module != "scm" and not module.startswith("scm."):
            found.append(f"{module}:{line} imports {name}: only scm may talk to git")
        elif name in table and module in table and table[name] > table[module]:
            found.append(f"{module} (layer {table[module]}):{line} imports {name} "
                         f"(layer {table[name]})")
    return found


def test_every_module_is_in_the_layer_table_and_nothing_else():
    table, found = layer_table(), modules()
    assert sorted(set(found) - set(table)) == [], "modules missing from docs/design.md's table"
    assert sorted(set(table) - set(found)) == [], "the table lists modules that do not exist"


def test_imports_point_down_the_layers():
    table = layer_table()
    problems = [v for module, path in modules().items()
                for v in violations(module, path.read_text(), table)]
    assert problems == []


@pytest.mark.parametrize("module, source, expected", [
    ("storage.cache", "def f():\n    from dvlite.remotes import transfer\n", "imports remotes.transfer"),
    ("remotes.transfer", "from dvlite.pipelines import runcache\n", "imports pipelines.runcache"),
    ("data.status", "import rich\n", "only cli/ may"),
    ("outputs", "from git import Repo\n", "only scm may"),
])
def test_the_rule_catches_a_forbidden_import(module, source, expected):
    """The checker itself: a forbidden import, even inside a function, is reported."""
    found = violations(module, source, layer_table())
    assert len(found) == 1 and expected in found[0]

"""The package's layers: each subpackage imports only the ones below it, so the data flow reads top-down.

    cli → pipelines → report → monitor → model → ingest → features → storage → core

Read from the source with `ast` (nothing is imported), so a new upward import fails here with its file
and line, before it can grow into a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "visitseg"
LAYERS = ["cli", "pipelines", "report", "monitor", "model", "ingest", "features", "storage", "core"]
LONGEST_MODULE = 400
LONGEST_FUNCTION = 60


def layer_of(module: str) -> str | None:
    """`visitseg.model.fit` → "model"; `visitseg.cli` → "cli"; the package's own `__version__` → None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "visitseg" and parts[1] in LAYERS else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every `visitseg` import in the file, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("visitseg"):
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names if node.module == "visitseg"]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("visitseg")]
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_belongs_to_a_layer():
    stray = [p.relative_to(PACKAGE).as_posix() for p in modules() if layer_of("visitseg." + p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")) is None and p.name != "__init__.py"]
    assert stray == []


def test_no_module_imports_a_layer_above_its_own():
    upward = []
    for path in modules():
        own = layer_of("visitseg." + path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "."))
        for line, module in imports_of(path):
            target = layer_of(module)
            if own and target and LAYERS.index(target) < LAYERS.index(own):
                upward.append(f"{path.relative_to(PACKAGE)}:{line} ({own}) imports {module} ({target})")
    assert upward == []


def test_modules_and_functions_stay_short():
    too_long = []
    for path in modules():
        text = path.read_text()
        if len(text.splitlines()) > LONGEST_MODULE:
            too_long.append(f"{path.relative_to(PACKAGE)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION:
                too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert too_long == []

"""The core library (`mercato/`) imports no component and no operations code; components
import no operations code.

Read from the source with `ast`, so an import inside a function counts as much as one at
the top of a module: the core must stay usable by any component on its own, and the
operations package (`mercato_ops/`) is the only place that knows every component.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = "mercato"
OPERATIONS = "mercato_ops"
COMPONENTS = ("appservices", "bridges", "bots")


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """Every module of a top-level package, by dotted name."""
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def imported_names(module: str, path: Path) -> Iterator[str]:
    """The dotted names a module imports, anywhere in it (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                yield f"{base}.{node.module}" if node.module else base
            elif node.module:
                yield node.module


def violations(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for package in packages:
        for module, path in modules(package):
            for name in imported_names(module, path):
                if name.split(".")[0] in forbidden:
                    found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_the_core_imports_no_component_and_no_operations_code() -> None:
    found = violations((CORE,), (*COMPONENTS, OPERATIONS))
    assert not found, "the core must not know the components:\n" + "\n".join(found)


def test_no_component_imports_the_operations_package() -> None:
    found = violations(COMPONENTS, (OPERATIONS,))
    assert not found, "components must not import mercato_ops:\n" + "\n".join(found)


def test_the_walk_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    # What the two tests above rely on: an import inside a function is still an import.
    source = tmp_path / "cli.py"
    source.write_text("def main():\n    from bots.shopbot.bot import ShopBot\n"
                      "    import mercato_ops.cli\n"
                      "from .db import open_database\nfrom . import values\n",
                      encoding="utf-8")
    names = set(imported_names("mercato.cli", source))
    assert names == {"bots.shopbot.bot", "mercato_ops.cli", "mercato.db", "mercato"}

"""docs/architecture.md stays true to the code: every file, folder and module it names
exists, and every top-level package is in it.

The chapter is how a newcomer finds their way; a path that moved without the chapter
following is a wrong turn for them, so it fails here in the same change.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = ROOT / "docs" / "architecture.md"
TOP_LEVEL = ("mercato", "mercato_ops", "appservices", "bridges", "bots", "tests", "bench",
             "docs", "homeserver-config", "deploy")
PATH = re.compile(rf"(?<![\w/.-])((?:{'|'.join(TOP_LEVEL)})/[\w./*{{}}<>|-]*)")
MODULE = re.compile(r"`((?:mercato_ops|mercato|appservices|bridges|bots)(?:\.\w+)+)`")
SHORT_FILE = re.compile(r"`([\w/]+\.py)`")
FILE_ENDINGS = ("yaml", "yml", "json", "db", "md", "py", "toml", "j2", "html", "js")


def chapter() -> str:
    return CHAPTER.read_text(encoding="utf-8")


def named_paths(text: str) -> set[str]:
    return {m.rstrip(".,;:)") for m in PATH.findall(text)}


def packages() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                  if p.parent.name not in ("tests", "bench"))


def test_every_path_the_chapter_names_exists() -> None:
    missing = []
    for name in sorted(named_paths(chapter())):
        if "<" in name or "{" in name:  # a pattern such as v<NN>_….py, not a path
            continue
        if "*" in name:
            if not list(ROOT.glob(name)):
                missing.append(name)
        elif not (ROOT / name).exists():
            missing.append(name)
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def entry_point_groups() -> set[str]:
    """The plugin groups pyproject.toml declares (`mercato.cli`): names, not modules."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return set(re.findall(r'^\[project\.entry-points\."([\w.]+)"\]', text, re.MULTILINE))


def test_every_file_named_within_its_package_exists() -> None:
    # `campaigns/rules.py` or `handlers.py` under a package's heading: somewhere in the tree.
    short = {m for m in SHORT_FILE.findall(chapter()) if not PATH.fullmatch(m)}
    missing = [name for name in sorted(short)
               if not any(p for p in ROOT.glob(f"**/{name}") if ".venv" not in p.parts)]
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"


def test_every_module_the_chapter_names_can_be_imported() -> None:
    modules = {m for m in MODULE.findall(chapter())
               if m.rsplit(".", 1)[1] not in FILE_ENDINGS} - entry_point_groups()
    missing = [m for m in sorted(modules)
               if importlib.util.find_spec(m.rsplit(".", 1)[0]) is None
               or (importlib.util.find_spec(m) is None and not _attribute_exists(m))]
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def _attribute_exists(dotted: str) -> bool:
    module, _, attribute = dotted.rpartition(".")
    return hasattr(importlib.import_module(module), attribute)


def test_every_top_level_package_is_in_the_chapter() -> None:
    text = chapter()
    absent = [p for p in packages() if f"`{p}/" not in text]
    assert not absent, f"docs/architecture.md does not describe: {absent}"


def test_the_checks_catch_a_path_that_moved() -> None:
    assert "mercato/devnet.py" in named_paths("see `mercato/devnet.py` for the helpers")
    assert not (ROOT / "mercato/devnet.py").exists()

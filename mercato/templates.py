"""Jinja2 environments: autoescaped HTML, StrictUndefined everywhere."""

from __future__ import annotations

from pathlib import Path

import jinja2


def template_environment(directory: Path) -> jinja2.Environment:
    """`.html.j2` templates are autoescaped; `.txt.j2` ones are plain text."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html")),
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )

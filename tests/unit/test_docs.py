"""docs/api.md names every route the API serves and every error code it can answer.

The routes come from the same declarations the server mounts, and the codes from the
commerce sources themselves, so a new route or code without its documentation fails
here instead of drifting silently.
"""

from __future__ import annotations

import re
from pathlib import Path

import appservices.commerce.api  # noqa: F401 (imports every route module, which registers)
from appservices.commerce.api import API_PREFIX
from appservices.commerce.http import ROUTES

ROOT = Path(__file__).resolve().parents[2]
API_DOC = ROOT / "docs" / "api.md"
COMMERCE = ROOT / "appservices" / "commerce"

# errcode="…" passed to an error, a class-level `errcode = "…"`, and the codes the
# middleware answers with directly: json_error(413, "M_TOO_LARGE", …).
ERRCODE_PATTERNS = (
    re.compile(r"""\berrcode\s*=\s*["']([A-Z][A-Z0-9_]+)["']"""),
    re.compile(r"""\bjson_error\(\s*\d+\s*,\s*["']([A-Z][A-Z0-9_]+)["']"""),
)


def documented() -> str:
    return API_DOC.read_text(encoding="utf-8")


def errcodes_in_source() -> dict[str, list[str]]:
    """Each error code in the commerce appservice's sources → where it is used."""
    found: dict[str, list[str]] = {}
    for path in sorted(COMMERCE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for pattern in ERRCODE_PATTERNS:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.setdefault(match.group(1), []).append(
                    f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_route_is_in_the_api_reference() -> None:
    doc = documented()
    assert ROUTES, "no routes registered: the route modules were not imported"
    missing = [f"{method} {API_PREFIX}{path}" for method, path, _handler, _spec in ROUTES
               if f"{method} {API_PREFIX}{path}" not in doc]
    assert not missing, "docs/api.md does not document: " + ", ".join(missing)


def test_the_openapi_document_is_in_the_api_reference() -> None:
    assert f"GET {API_PREFIX}/openapi.json" in documented()


def test_every_error_code_is_in_the_api_reference() -> None:
    codes = errcodes_in_source()
    # The patterns must keep finding the codes everybody relies on.
    assert {"M_FORBIDDEN", "M_NOT_FOUND", "MERCATO_INVALID", "M_TOO_LARGE"} <= set(codes)
    doc = documented()
    missing = {code: where for code, where in codes.items()
               if not re.search(rf"\b{code}\b", doc)}
    assert not missing, "docs/api.md does not document these error codes: " + "; ".join(
        f"{code} ({', '.join(where)})" for code, where in sorted(missing.items()))

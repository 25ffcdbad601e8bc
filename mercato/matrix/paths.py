"""Homeserver request paths, built in one place so that every segment is escaped.

A room ID, user ID or alias put into a path as it is changes the request: `#` ends the
path, `?` starts a query, `/` adds a segment. Every path Mercato sends to a homeserver
(`/_matrix/…`, `/_synapse/…`) comes from here, each segment escaped as
`urllib.parse.quote(segment, safe="")`; tests/unit/test_matrix_paths.py fails if a path is
written as an f-string or glued together again.
"""

from __future__ import annotations

from urllib.parse import quote

from mautrix.api import PathBuilder


def segment(value: str) -> str:
    """One path segment, escaped: `!room:server` → `%21room%3Aserver`."""
    return quote(value, safe="")


def _built(root: str, segments: tuple[str, ...]) -> PathBuilder:
    return PathBuilder("/".join((f"/{root}", *(segment(s) for s in segments))))


def matrix_path(*segments: str) -> PathBuilder:
    """`/_matrix/<segments>`: matrix_path("client", "v3", "rooms", room_id, "messages")."""
    return _built("_matrix", segments)


def synapse_path(*segments: str) -> PathBuilder:
    """`/_synapse/<segments>`: Synapse's own APIs (admin)."""
    return _built("_synapse", segments)


def url(base_url: str, path: PathBuilder) -> str:
    """A full URL for a plain HTTP client: the homeserver's base URL and a built path."""
    return base_url.rstrip("/") + str(path)

"""Homeserver request paths: every segment escaped, and built only in mercato/matrix/paths.py."""

from __future__ import annotations

import ast
from pathlib import Path

from bridges.contacts.media import media_paths
from mercato.matrix.paths import matrix_path, synapse_path, url

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("mercato", "appservices", "bridges", "bots")
PREFIXES = ("/_matrix", "/_synapse")


def test_ids_with_reserved_characters_are_escaped() -> None:
    room_id, user_id = "!a/b?c#d:example.org", "@shop_x/../admin:example.org"
    path = matrix_path("client", "v3", "rooms", room_id, "state", "m.room.member", user_id)
    assert str(path) == ("/_matrix/client/v3/rooms/%21a%2Fb%3Fc%23d%3Aexample.org/state/"
                         "m.room.member/%40shop_x%2F..%2Fadmin%3Aexample.org")
    alias = "#shop demo/x?y:example.org"
    assert str(matrix_path("client", "v3", "directory", "room", alias)) == (
        "/_matrix/client/v3/directory/room/%23shop%20demo%2Fx%3Fy%3Aexample.org")
    assert url("http://hs:8008/", synapse_path("admin", "v2", "users", "@a:b")) == (
        "http://hs:8008/_synapse/admin/v2/users/%40a%3Ab")


def test_media_paths_escape_the_server_name() -> None:
    assert media_paths("mxc://[::1]:8448/abc_D-9") == [
        "/_matrix/client/v1/media/download/%5B%3A%3A1%5D%3A8448/abc_D-9",
        "/_matrix/media/v3/download/%5B%3A%3A1%5D%3A8448/abc_D-9"]


def _glued_paths(tree: ast.AST) -> list[int]:
    """Lines where a homeserver path is an f-string, or glued with + % or .format()."""

    def names_a_path(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
            prefix in node.value for prefix in PREFIXES)

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(names_a_path(v) for v in node.values):
            found.append(node.lineno)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)) and (
                names_a_path(node.left) or names_a_path(node.right)):
            found.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr == "format" and names_a_path(node.func.value):
            found.append(node.lineno)
    return found


def test_the_check_finds_glued_paths() -> None:
    source = ('a = f"/_matrix/client/v3/rooms/{room}"\nb = f"{hs}/_synapse/admin"\n'
              'c = "/_matrix/media/" + media\nd = "/_matrix/x/%s" % y\n'
              'e = "/_matrix/{}".format(z)\nf = matrix_path("client", room)\n')
    assert _glued_paths(ast.parse(source)) == [1, 2, 3, 4, 5]


def test_no_homeserver_path_is_glued_together() -> None:
    offenders = []
    for package in SOURCES:
        for file in sorted((ROOT / package).rglob("*.py")):
            for line in _glued_paths(ast.parse(file.read_text(encoding="utf-8"))):
                offenders.append(f"{file.relative_to(ROOT)}:{line}")
    assert offenders == [], ("build these paths with mercato.matrix.paths.matrix_path "
                             f"(or synapse_path): {offenders}")

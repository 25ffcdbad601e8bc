"""Every message the commerce appservice and the contacts bridge send goes through the
outbox (mercato/matrix/outbox.py): a direct send is lost in a crash and doubled after a
Synapse restart. This reads their code and fails on a send made anywhere else than the
places below, each with the reason it may.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("appservices", "bridges")
# Sending calls: the core's `send_once` and mautrix's IntentAPI senders.
SENDERS = {"send_once", "send_message_event", "send_text", "send_notice", "send_emote",
           "react"}
# Where a send is allowed (the method holding the call, whatever its file or class is
# called as the code moves), and why.
EXCEPTIONS: dict[str, str] = {}


def _sends(path: Path) -> list[tuple[str, str, int]]:
    """(enclosing Class.function, called name, line) of each sending call in the file."""
    found: list[tuple[str, str, int]] = []

    def visit(node: ast.AST, scope: tuple[str, ...], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, (*scope, child.name), False)
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                # A function nested in another counts as the outer one.
                visit(child, scope if in_function else (*scope, child.name), True)
                continue
            if isinstance(child, ast.Call):
                func = child.func
                name = func.attr if isinstance(func, ast.Attribute) else \
                    func.id if isinstance(func, ast.Name) else ""
                if name in SENDERS:
                    found.append((".".join(scope), name, child.lineno))
            visit(child, scope, in_function)

    visit(ast.parse(path.read_text(encoding="utf-8")), (), False)
    return found


def test_nothing_but_the_outbox_sends_messages() -> None:
    stray = []
    seen = set()
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            for scope, name, line in _sends(path):
                method = scope.rsplit(".", 1)[-1]
                if top == "appservices" and method in EXCEPTIONS:
                    seen.add(method)
                    continue
                stray.append(f"{path.relative_to(ROOT)}:{line} {scope or '<module>'} "
                             f"calls {name}()")
    assert not stray, ("Send through the outbox (Outbox.record/send), or add the place to"
                       " EXCEPTIONS with the reason:\n" + "\n".join(stray))
    # An exception that no longer sends is taken off the list.
    assert seen == set(EXCEPTIONS), set(EXCEPTIONS) - seen


def test_the_check_finds_a_direct_send(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class Bridge:\n    async def greet(self):\n"
                      "        await send_once(self.bot, room, {}, txn_id='x')\n"
                      "        await self.bot.react(room, event, '✅')\n")
    assert _sends(module) == [("Bridge.greet", "send_once", 3), ("Bridge.greet", "react", 4)]

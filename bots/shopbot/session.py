"""The shop bot's session on disk: its login (access token and device, so a restart keeps
one device and its encryption keys), the sync token it resumes from, and the questions it
waits on, in one file written whole (`state_dir/session.json`, 0600, replaced atomically)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class SessionFile:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "session.json"
        self.old_waiting_path = state_dir / "waiting.json"  # where earlier versions kept it

    def load(self) -> dict[str, Any]:
        session = _read_json(self.path)
        return session if isinstance(session, dict) else {}

    def save(self, **values: Any) -> None:
        """Change these values, keep the others."""
        _write_json(self.path, {**self.load(), **values})

    def waiting(self) -> Any:
        """The questions saved with the session (or in the older file of their own)."""
        session = self.load()
        return session["waiting"] if "waiting" in session else _read_json(self.old_waiting_path)

    def save_batch(self, since: str, waiting: Any) -> None:
        """The sync token and what the bot waits on, in one write: saved apart, a crash in
        between would hand the bot an answer again with its question already forgotten
        (the answer lost), or forget the answer with the question still waiting."""
        self.save(since=since, waiting=waiting)
        self.old_waiting_path.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(value, out)
    os.replace(tmp, path)

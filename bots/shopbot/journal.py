"""Which events of the current sync batch made the commerce API change something.

The bot saves its sync token after a whole batch is handled, so a bot killed in the
middle of a batch is handed the same events again after its restart. Running a read
again is harmless (the answer's transaction ID comes from the event, so Synapse keeps
one answer), but running a write again could do it twice: two applications, two
campaigns. So before the first call that may change something the event is noted as
`wrote`, and once it is answered as `done`; after a restart a `done` event is
skipped, and a `wrote` one is answered with a sentence saying it may or may not have
been done. The journal is emptied each time the sync token moves on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

State = Literal["wrote", "done"]


class EventJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            loaded = {}
        self._states: dict[str, State] = {
            event_id: state for event_id, state in
            (loaded.items() if isinstance(loaded, dict) else ())
            if state in ("wrote", "done")}

    def state(self, event_id: str) -> State | None:
        return self._states.get(event_id)

    def wrote(self, event_id: str) -> None:
        """Called before an API call that may change something, on behalf of `event_id`."""
        if self._states.get(event_id) is None:
            self._set(event_id, "wrote")

    def answered(self, event_id: str) -> None:
        if self._states.get(event_id) == "wrote":
            self._set(event_id, "done")

    def batch_done(self) -> None:
        """The sync token moved past every event noted here."""
        if self._states:
            self._states.clear()
            self._save()

    def _set(self, event_id: str, state: State) -> None:
        self._states[event_id] = state
        self._save()

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._states, out)
        os.replace(tmp, self.path)

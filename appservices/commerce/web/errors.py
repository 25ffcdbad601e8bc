"""A refusal a web page shows as a page of its own (the shell, a title, what happened and
what to do), raised anywhere below a handler and rendered by the web middleware."""

from __future__ import annotations


class WebError(Exception):
    def __init__(self, status: int, title: str, message: str, *,
                 action_href: str = "", action_text: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.action_href = action_href
        self.action_text = action_text

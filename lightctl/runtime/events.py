"""Events the daemon publishes to its subscribers (the WebSocket's clients, federation).

An event is serialized once, whoever and however many receive it: :class:`Published` keeps the
message and makes its JSON text on first use.
"""

from __future__ import annotations

import json
from typing import Any


class Published:
    __slots__ = ("_text", "message")

    def __init__(self, message: dict[str, Any]) -> None:
        self.message = message
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self.message, ensure_ascii=False, separators=(",", ":"))
        return self._text

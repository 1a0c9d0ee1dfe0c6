"""The daemon's log: readable lines by default, or one JSON object per line
(``daemon.log_format: json``) for a log collector, each with its context as fields.

A log call adds context with ``extra``: ``log.warning("%s: offline", cid, extra={"controller":
cid})``; the JSON line then carries ``"controller": "..."`` besides the message, so that a
collector can filter on it. The fields taken from ``extra`` are :data:`CONTEXT_FIELDS`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, tzinfo
from typing import Any, Literal

CONTEXT_FIELDS = ("controller", "command", "show", "run", "site", "district", "user", "fault", "workorder", "district_daemon")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (the installation's zone, with its offset), level, logger,
    message, the context fields given, and the exception's traceback as text when there is one."""

    def __init__(self, zone: tzinfo) -> None:
        super().__init__()
        self.zone = zone

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                event[name] = value
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def configure(log_format: Literal["text", "json"], zone: tzinfo, *, verbose: bool = False) -> None:
    """Set the root logger's one handler (standard error) to the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(zone) if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)

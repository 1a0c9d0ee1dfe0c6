"""What an audit row says of a request: what was asked, with every secret left out (a password,
a token, a CSRF token never reach the records), and how it ended."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

SECRET_KEY = re.compile(r"password|passwd|token|secret|credential|csrf", re.IGNORECASE)
"""Body fields whose value is never recorded."""
HIDDEN = "(not recorded)"
MAX_DETAIL = 2000
MAX_VALUE = 200


def without_secrets(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): HIDDEN if SECRET_KEY.search(str(k)) else without_secrets(v) for k, v in data.items()}
    if isinstance(data, list):
        return [without_secrets(v) for v in data[:50]]
    if isinstance(data, str) and len(data) > MAX_VALUE:
        return data[:MAX_VALUE] + "..."
    return data


def describe_body(raw: bytes, content_type: str) -> str | None:
    """A request body as the audit keeps it: JSON with secrets left out, at most
    :data:`MAX_DETAIL` characters; a body that is neither JSON nor a form is described by its
    size only."""
    if not raw:
        return None
    text = raw.decode("utf-8", "replace")
    data: Any
    if content_type == "application/x-www-form-urlencoded":
        data = dict(parse_qsl(text, keep_blank_values=True))
    else:
        try:
            data = json.loads(text)
        except ValueError:
            return json.dumps({"body": f"{len(raw)} bytes, not JSON"})
    detail = json.dumps(without_secrets(data), ensure_ascii=False, sort_keys=True)
    return detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 3] + "..."


def result_of(status: int) -> str:
    if status < 400:
        return "accepted"
    return "refused" if status < 500 else "failed"
